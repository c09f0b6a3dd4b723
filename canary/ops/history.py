"""Stack history -> rollout timeline: one row per update, as a table or a plot of canary weight over time.

Pure apart from `plot`: `timeline` takes history entries (as `pulumi stack history --json` describes them,
newest first) and returns rows, oldest first, so it is unit tested without an engine. Every update records
the whole stack config it ran with, so the weight an update moved to is read from that config rather than
parsed out of its message: updates made with plain `pulumi up` show up the same as the CLI's own.

"Who" is the actor the `canary` CLI wrote into the update's message (`... [by NAME]`, canary.ops.actor), or
the same trailer written by hand (`pulumi up -m "... [by NAME]"`). Without one, the DIY backends (file,
postgres://) record no person: the column then shows the author of the checked-out git commit
(`git.author`, marked "(git author)": whoever wrote the commit, not necessarily who ran the update), else
the CI system Pulumi detected, else "unknown".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from canary.ops.actor import split_actor
from canary.ops.errors import UsageProblem
from canary.weights import format_percent, parse_percent

SUCCEEDED = "succeeded"
FAILED = "failed"
IN_PROGRESS = "in-progress"

UNKNOWN = "unknown"


@dataclass(frozen=True)
class HistoryEntry:
    """One operation of the stack (update, refresh, destroy...), as stack history records it.

    `config` maps fully qualified keys ("gateway-canary:canaryWeight") to their values as strings.
    """

    kind: str
    result: str
    message: str
    start: datetime
    end: datetime | None
    config: Mapping[str, str]
    environment: Mapping[str, str]
    resource_changes: Mapping[str, int]

    @property
    def duration(self) -> timedelta | None:
        return None if self.end is None else self.end - self.start


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


def updated_by(environment: Mapping[str, str], message: str = "") -> str:
    """Who ran an update, as far as its record says: the actor in its message, else the git author (marked
    as such), else the CI system, else unknown."""
    actor = split_actor(message)[1]
    if actor:
        return actor
    author = environment.get("git.author")
    if author:
        return f"{author} (git author)"
    ci = environment.get("ci.system")
    if ci:
        return f"CI ({ci})"
    return UNKNOWN


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


def format_time(when: datetime) -> str:
    """A history timestamp in UTC, to the second (history keeps no finer)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(duration: timedelta | None) -> str:
    if duration is None:
        return "-"
    seconds = int(duration.total_seconds())
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


TABLE_HEADER = ("#", "when", "who", "weight", "image", "result", "duration", "message")


def table_cells(row: TimelineRow) -> tuple[str, ...]:
    """A row as the table shows it, column by column (TABLE_HEADER)."""
    kind = "" if row.kind == "update" else f"{row.kind}: "
    return (
        str(row.number),
        format_time(row.when),
        row.who,
        row.weight,
        row.image,
        row.result,
        format_duration(row.duration),
        f"{kind}{row.message}",
    )


def render_table(rows: Sequence[TimelineRow]) -> str:
    """A plain-text table, columns padded to their widest cell; the last column is never padded."""
    cells = [TABLE_HEADER, *(table_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_HEADER))]
    lines = []
    for line in cells:
        padded = [cell.ljust(width) for cell, width in zip(line[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines)


def row_json(row: TimelineRow) -> dict[str, object]:
    """A row for `--json`: percents as strings (exact), times in ISO 8601 UTC, duration in seconds."""
    return {
        "number": row.number,
        "kind": row.kind,
        "when": row.when.astimezone(UTC).isoformat(),
        "who": row.who,
        "fromPercent": None if row.from_percent is None else format_percent(row.from_percent),
        "toPercent": None if row.to_percent is None else format_percent(row.to_percent),
        "image": row.image,
        "result": row.result,
        "durationSeconds": None if row.duration is None else row.duration.total_seconds(),
        "message": row.message,
    }


def weight_series(rows: Sequence[TimelineRow]) -> list[tuple[datetime, Decimal]]:
    """(time, canary weight) after each successful update, for a step plot; a destroy drops to 0."""
    points = []
    for row in rows:
        if row.result != SUCCEEDED:
            continue
        when = row.when + (row.duration or timedelta())
        points.append((when, row.to_percent if row.to_percent is not None else Decimal(0)))
    return points


def plot(rows: Sequence[TimelineRow], path: Path, title: str) -> None:
    """Draw canary weight over time to `path` (PNG, SVG... by its suffix).

    matplotlib is an optional extra (`pip install 'gateway-canary[plot]'`), imported only here; the
    figure is built without pyplot, so no GUI backend or global state is involved.
    """
    try:
        import numpy as np
        from matplotlib.figure import Figure
    except ImportError as err:
        raise UsageProblem(
            f"--plot needs matplotlib, an optional extra ({err}): pip install 'gateway-canary[plot]'"
        ) from err

    points = weight_series(rows)
    failed = [row for row in rows if row.result == FAILED and row.to_percent is not None]
    figure = Figure(figsize=(8, 3.5), layout="constrained")
    axes = figure.subplots()
    if points:
        times = np.array([_naive_utc(when) for when, _ in points], dtype="datetime64[s]")
        weights = [float(weight) for _, weight in points]
        axes.step(times, weights, where="post", marker="o", label="canary weight (succeeded update)")
    if failed:
        axes.plot(
            np.array([_naive_utc(row.when) for row in failed], dtype="datetime64[s]"),
            [float(row.to_percent or 0) for row in failed],
            "x",
            color="red",
            markersize=9,
            label="failed update (weight asked for)",
        )
    axes.set_ylim(-5, 105)
    axes.set_ylabel("canary weight (%)")
    axes.set_xlabel("time (UTC)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if points or failed:
        axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    figure.savefig(path)


def _naive_utc(when: datetime) -> datetime:
    """numpy's datetime64 takes naive times; these are UTC."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _value(config: Mapping[str, str], project: str, key: str, defaults: Mapping[str, str]) -> str:
    return config.get(f"{project}:{key}", defaults.get(key, ""))


def _parse(text: str) -> Decimal | None:
    try:
        return parse_percent(text)
    except ValueError:
        return None


def _percent_text(percent: Decimal | None) -> str:
    return "-" if percent is None else f"{format_percent(percent)}%"
