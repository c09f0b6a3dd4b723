"""`canary history`'s output: the rollout timeline as a table, as JSON, or as a plot of canary weight over
time (matplotlib, an optional extra)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from canary.ops.core.history import FAILED, format_time
from canary.ops.errors import UsageProblem
from canary.ops.rollout.timeline import TimelineRow, weight_series
from canary.weights import format_percent


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
