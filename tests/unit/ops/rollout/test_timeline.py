"""Stack history entries (canary.ops.core.history) -> rollout timeline rows (canary.ops.rollout.timeline), and
their table, JSON and plot (canary.cli.timeline)."""

import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from canary.cli.timeline import TABLE_HEADER, format_duration, render_table, row_json
from canary.ops.core.history import HistoryEntry, updated_by
from canary.ops.errors import UsageProblem
from canary.ops.rollout.timeline import timeline, weight_series
from tests.unit.helpers import PROJECT, REPO, project_defaults

V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"
T0 = datetime(2026, 1, 2, 10, 0, 0, tzinfo=UTC)


def entry(
    minute: int,
    message: str,
    *,
    result: str = "succeeded",
    kind: str = "update",
    seconds: int = 3,
    environment: dict[str, str] | None = None,
    **config: str,
) -> HistoryEntry:
    start = T0 + timedelta(minutes=minute)
    return HistoryEntry(
        kind=kind,
        result=result,
        message=message,
        start=start,
        end=start + timedelta(seconds=seconds),
        config={f"{PROJECT}:{key}": value for key, value in config.items()},
        environment=environment or {},
        resource_changes={"update": 1},
    )


def newest_first(*entries: HistoryEntry) -> list[HistoryEntry]:
    return list(reversed(entries))


def rows_of(*entries: HistoryEntry):
    return timeline(newest_first(*entries), PROJECT, project_defaults())


def test_rows_are_oldest_first_with_from_and_to_weights() -> None:
    rows = rows_of(
        entry(0, "deploy", stableImage=V1),
        entry(1, "canary deployed", stableImage=V1, canaryImage=V2, canaryWeight="0"),
        entry(2, f"canary 0% -> 5% ({V2})", stableImage=V1, canaryImage=V2, canaryWeight="5"),
        entry(3, f"canary 5% -> 25% ({V2})", stableImage=V1, canaryImage=V2, canaryWeight="25"),
        entry(4, "rollback canary 25% -> 0%", stableImage=V1, canaryImage=V2, canaryWeight="0"),
        entry(5, f"promote {V2}", stableImage=V2, canaryImage="", canaryWeight="0"),
    )
    assert [row.number for row in rows] == [1, 2, 3, 4, 5, 6]
    assert [row.weight for row in rows] == [
        "- -> 0%",
        "0% -> 0%",
        "0% -> 5%",
        "5% -> 25%",
        "25% -> 0%",
        "0% -> 0%",
    ]
    assert rows[2].image == f"canary {V2}"
    assert rows[5].image == f"stable {V2}"
    assert rows[0].when == T0 and rows[0].duration == timedelta(seconds=3)


def test_a_failed_update_does_not_move_the_from_weight() -> None:
    rows = rows_of(
        entry(0, "5", canaryImage=V2, canaryWeight="5"),
        entry(1, "to 25, failed", canaryImage=V2, canaryWeight="25", result="failed"),
        entry(2, "to 25 again", canaryImage=V2, canaryWeight="25"),
    )
    assert [row.weight for row in rows] == ["- -> 5%", "5% -> 25%", "5% -> 25%"]
    assert [row.result for row in rows] == ["succeeded", "failed", "succeeded"]


def test_missing_keys_take_the_pulumi_yaml_defaults_and_no_canary_means_zero() -> None:
    rows = rows_of(entry(0, "old update without recorded config"))
    assert rows[0].to_percent == Decimal(0)
    assert rows[0].image == f"stable {project_defaults()['stableImage']}"


def test_an_invalid_weight_is_shown_as_written() -> None:
    rows = rows_of(entry(0, "typo", canaryImage=V2, canaryWeight="2o", result="failed"))
    assert rows[0].to_percent is None
    assert rows[0].weight == "- -> 2o"


def test_refresh_is_left_out_and_destroy_resets_the_weight() -> None:
    rows = rows_of(
        entry(0, "25", canaryImage=V2, canaryWeight="25"),
        entry(1, "", kind="refresh"),
        entry(2, "", kind="destroy"),
        entry(3, "again", stableImage=V1),
    )
    assert [(row.kind, row.weight) for row in rows] == [
        ("update", "- -> 25%"),
        ("destroy", "25% -> -"),
        ("update", "- -> 0%"),
    ]


def test_sub_percent_weights_stay_exact() -> None:
    rows = rows_of(entry(0, "half", canaryImage=V2, canaryWeight="0.5"))
    assert rows[0].to_percent == Decimal("0.5")
    assert row_json(rows[0])["toPercent"] == "0.5"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            {"git.author": "Alice Ops", "git.author.email": "alice@example.com"},
            "Alice Ops (git author)",
        ),
        ({"git.author": "Alice Ops"}, "Alice Ops (git author)"),
        ({"ci.system": "GitHub"}, "CI (GitHub)"),
        ({"exec.kind": "auto.local"}, "unknown"),
    ],
)
def test_without_an_actor_who_comes_from_the_update_metadata(
    environment: dict[str, str], expected: str
) -> None:
    assert updated_by(environment, "deploy") == expected


def test_the_actor_in_the_message_wins_and_leaves_the_message() -> None:
    assert updated_by({"git.author": "Alice Ops", "ci.system": "GitHub"}, "canary 0% -> 5% [by bob]") == "bob"
    rows = rows_of(entry(0, "canary 0% -> 5% [by bob]", canaryImage=V2, canaryWeight="5"))
    assert (rows[0].who, rows[0].message) == ("bob", "canary 0% -> 5%")
    assert row_json(rows[0])["who"] == "bob"


def test_table_has_a_header_and_aligned_columns() -> None:
    rows = rows_of(
        entry(0, "deploy", stableImage=V1, environment={"git.author": "Alice"}),
        entry(1, f"canary 0% -> 5% ({V2})", canaryImage=V2, canaryWeight="5", seconds=75),
    )
    lines = render_table(rows).splitlines()
    assert lines[0].split() == list(TABLE_HEADER)
    assert lines[1].startswith("1  2026-01-02 10:00:00 UTC  Alice (git author)  - -> 0%")
    assert "1m15s" in lines[2] and lines[2].endswith(f"canary 0% -> 5% ({V2})")
    assert lines[1].index("succeeded") == lines[2].index("succeeded")


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0, "0s"), (59, "59s"), (60, "1m00s"), (3725, "62m05s")]
)
def test_format_duration(seconds: int | None, text: str) -> None:
    assert format_duration(None if seconds is None else timedelta(seconds=seconds)) == text


def test_weight_series_has_a_point_per_successful_update_at_its_end() -> None:
    rows = rows_of(
        entry(0, "5", canaryImage=V2, canaryWeight="5"),
        entry(1, "x", canaryImage=V2, canaryWeight="50", result="failed"),
        entry(2, "25", canaryImage=V2, canaryWeight="25"),
    )
    assert weight_series(rows) == [
        (T0 + timedelta(seconds=3), Decimal(5)),
        (T0 + timedelta(minutes=2, seconds=3), Decimal(25)),
    ]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    from canary.cli.timeline import plot

    rows = rows_of(
        entry(0, "5", canaryImage=V2, canaryWeight="5"),
        entry(1, "x", canaryImage=V2, canaryWeight="50", result="failed"),
        entry(2, "25", canaryImage=V2, canaryWeight="25"),
    )
    path = tmp_path / "w.png"
    plot(rows, path, "canary weight")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from canary.cli.timeline import plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageProblem, match=r"gateway-canary\[plot\]"):
        plot([], tmp_path / "w.png", "t")


def test_the_plot_extra_and_the_dev_extra_pin_the_same_matplotlib() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    plot_pins = [r for r in extras["plot"] if r.startswith("matplotlib")]
    assert plot_pins == [r for r in extras["dev"] if r.startswith("matplotlib")]
    assert len(plot_pins) == 1 and "==" in plot_pins[0]
