"""A change planned from one state is not run on another: apply_change reads the last update again just
before `pulumi up` and refuses (config put back) when it moved (canary.ops.rollout.flows.changed_since)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from canary.ops.core.history import HistoryEntry
from canary.ops.core.plan import plan_step
from canary.ops.errors import Refused
from canary.ops.rollout.flows import Planned, apply_change, changed_since, plan_change
from tests.unit.ops.fakes import PLAN, V2, RecordingRelease, change, config, deployed

T0 = datetime(2026, 1, 2, 10, 0, 0, tzinfo=UTC)


def entry(message: str, minutes: int = 0, result: str = "succeeded") -> HistoryEntry:
    start = T0 + timedelta(minutes=minutes)
    return HistoryEntry("update", result, message, start, start + timedelta(seconds=2), {}, {}, {})


def test_changed_since() -> None:
    planned = entry("canary 0% -> 5% [by alice]")
    assert changed_since(planned, entry("canary 0% -> 5% [by alice]")) is None
    assert changed_since(None, None) is None
    moved = changed_since(planned, entry("canary 5% -> 25% [by bob]", minutes=1))
    assert (
        moved
        == "its last update is now update succeeded 'canary 5% -> 25% [by bob]' of 2026-01-02 10:01:00 UTC"
    )
    assert changed_since(None, entry("deploy")) is not None
    assert changed_since(planned, None) == "its history is gone"


class MovingRelease(RecordingRelease):
    """Someone else's update lands between the plan and the update."""

    def __init__(self, last: HistoryEntry) -> None:
        super().__init__()
        self.last = last

    def last_update(self) -> HistoryEntry:
        self.calls.append(("last_update", None))
        return self.last


def test_a_stack_that_moved_since_the_plan_is_refused_and_the_config_put_back() -> None:
    release = MovingRelease(entry("canary 5% -> 25% by hand", minutes=1))
    with pytest.raises(Refused) as err:
        apply_change(release, Planned(change(), deployed("5"), entry("x")), confirm=lambda r: True)  # type: ignore[arg-type]
    assert "the stack changed after step read it (its last update is now update succeeded" in str(err.value)
    assert "nothing was done" in str(err.value)
    assert [name for name, _ in release.calls] == ["set", "preview", "last_update", "restore"]


def test_an_unchanged_stack_is_updated() -> None:
    same = entry("canary 0% -> 5%")
    release = MovingRelease(same)
    apply_change(release, Planned(change(), deployed("5"), same), confirm=lambda r: True)  # type: ignore[arg-type]
    calls: list[Any] = [name for name, _ in release.calls]
    assert calls == ["set", "preview", "last_update", "up"]


class PlanningRelease(MovingRelease):
    """What plan_change reads: the stack's config, state and last update."""

    def __init__(self, planned_on: HistoryEntry, later: HistoryEntry) -> None:
        super().__init__(planned_on)
        self.later = later

    def config(self) -> Any:
        return config("5")

    def stack_state(self) -> Any:
        return SimpleNamespace(deployed=deployed("5"))

    def set_config(self, updates: dict[str, str]) -> str:
        self.last = self.later  # someone's update lands while this change is previewed
        return super().set_config(updates)


def test_a_change_planned_by_plan_change_carries_the_last_update_it_read() -> None:
    """Every caller (step, promote, run's steps and promote) plans through plan_change, so each gets the
    re-check: the plan remembers the last update it read, and a later one refuses it."""
    release = PlanningRelease(entry("canary 0% -> 5%"), entry("canary 5% -> 50% by hand", minutes=1))
    planned = plan_change(release, functools.partial(plan_step, canary_plan=PLAN), "analysis: pass")  # type: ignore[arg-type]
    assert planned.last == entry("canary 0% -> 5%")
    assert planned.change.message == f"canary 5% -> 25% ({V2}); analysis: pass"
    with pytest.raises(Refused, match="the stack changed after step read it"):
        apply_change(release, planned, confirm=lambda r: True)  # type: ignore[arg-type]
    assert [name for name, _ in release.calls][-3:] == ["preview", "last_update", "restore"]
