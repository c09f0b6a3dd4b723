"""Stack history -> rollout timeline: one row per update, what the canary weight was before it and after.

Pure: `timeline` takes history entries (as `pulumi stack history --json` describes them, newest first) and
returns rows, oldest first, so it is unit tested without an engine. Every update records the whole stack
config it ran with, so the weight an update moved to is read from that config rather than parsed out of its
message: updates made with plain `pulumi up` show up the same as the CLI's own. The table, the JSON and the
plot of these rows are the CLI's (canary.cli.timeline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from canary.ops.core.history import SUCCEEDED, HistoryEntry, split_actor, updated_by
from canary.weights import format_percent, parse_percent


@dataclass(frozen=True)
class TimelineRow:
    """One update of the rollout: what the canary weight was before it, what it asked for, and how it went.

    `from_percent` is the weight the last successful update before this one left (None before the first,
    or after a destroy); `to_percent` is the weight this update's config asked for (None for a destroy, or
    when the config value was not a valid percent: `to_text` then keeps it as written).
    """

    number: int
    kind: str
    when: datetime
    who: str
    from_percent: Decimal | None
    to_percent: Decimal | None
    to_text: str
    image: str
    result: str
    duration: timedelta | None
    message: str
    """The update's message without the actor trailer (that is `who`)."""

    @property
    def weight(self) -> str:
        """The weight change in words: "5% -> 25%", "- -> 0%" for a first deploy."""
        return f"{_percent_text(self.from_percent)} -> {self.to_text}"


def canary_weight_of(config: Mapping[str, str], project: str, defaults: Mapping[str, str]) -> str:
    """The canary weight an update's config asked for, as written ("0" while there is no canary image)."""
    image = _value(config, project, "canaryImage", defaults)
    if not image:
        return "0"
    return _value(config, project, "canaryWeight", defaults)


def image_of(config: Mapping[str, str], project: str, defaults: Mapping[str, str]) -> str:
    """The image that matters in an update: the canary image while there is one, else the stable image."""
    canary = _value(config, project, "canaryImage", defaults)
    if canary:
        return f"canary {canary}"
    return f"stable {_value(config, project, 'stableImage', defaults)}"


def timeline(entries: Sequence[HistoryEntry], project: str, defaults: Mapping[str, str]) -> list[TimelineRow]:
    """Rows for the updates and destroys among `entries` (newest first, as history lists them), oldest
    first and numbered from 1. `defaults` are the Pulumi.yaml defaults, for keys an entry's config lacks."""
    rows: list[TimelineRow] = []
    deployed: Decimal | None = None
    relevant = [entry for entry in reversed(entries) if entry.kind in ("update", "destroy")]
    for number, entry in enumerate(relevant, start=1):
        if entry.kind == "destroy":
            to_percent, to_text, image = None, "-", "-"
        else:
            to_text = canary_weight_of(entry.config, project, defaults)
            to_percent = _parse(to_text)
            if to_percent is not None:
                to_text = f"{format_percent(to_percent)}%"
            image = image_of(entry.config, project, defaults)
        rows.append(
            TimelineRow(
                number=number,
                kind=entry.kind,
                when=entry.start,
                who=updated_by(entry.environment, entry.message),
                from_percent=deployed,
                to_percent=to_percent,
                to_text=to_text,
                image=image,
                result=entry.result,
                duration=entry.duration,
                message=split_actor(entry.message)[0],
            )
        )
        if entry.result == SUCCEEDED:
            deployed = to_percent
    return rows


def weight_series(rows: Sequence[TimelineRow]) -> list[tuple[datetime, Decimal]]:
    """(time, canary weight) after each successful update, for a step plot; a destroy drops to 0."""
    points = []
    for row in rows:
        if row.result != SUCCEEDED:
            continue
        when = row.when + (row.duration or timedelta())
        points.append((when, row.to_percent if row.to_percent is not None else Decimal(0)))
    return points


def _value(config: Mapping[str, str], project: str, key: str, defaults: Mapping[str, str]) -> str:
    return config.get(f"{project}:{key}", defaults.get(key, ""))


def _parse(text: str) -> Decimal | None:
    try:
        return parse_percent(text)
    except ValueError:
        return None


def _percent_text(percent: Decimal | None) -> str:
    return "-" if percent is None else f"{format_percent(percent)}%"
