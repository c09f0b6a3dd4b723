"""canary.ops.rollout.rollback.through_pulumi: canaryWeight 0 and a targeted update of the route, watched."""

import time
from typing import Any

import pytest

from canary.ops.core.plan import (
    plan_rollback,
)
from canary.ops.core.state import (
    StackState,
)
from canary.ops.errors import Refused
from canary.ops.rollout.rollback import through_pulumi as rollback
from canary.route_state import RouteState
from tests.unit.ops.fakes import RecordingRelease, config, deployed, live_at


class StoppedWatch:
    """Stands in for RouteWatch: the route is 'seen' at 0% at a fixed time, or never."""

    def __init__(self, seen: float | None, calls: list[tuple[str, Any]]) -> None:
        self.seen, self.calls = seen, calls
        self.on_item: Any = None

    def __enter__(self) -> "StoppedWatch":
        self.calls.append(("watch", None))
        return self

    def __exit__(self, *_: object) -> None:
        self.calls.append(("unwatch", None))

    def wait_for_zero(self, timeout: float) -> float | None:
        return self.seen


class RollbackRelease(RecordingRelease):
    """RecordingRelease plus what rollback reads: targeted up arguments and a live route."""

    def __init__(self, live_percent: str | None) -> None:
        super().__init__()
        self.live = self
        self.live_percent = live_percent

    def up(self, message: str, **options: Any) -> float:
        self.calls.append(("up", (message, options.get("target"), options.get("refresh"))))
        return 0.5

    def route(self, app: str, namespace: str, name: str, kind: str = "HTTPRoute") -> RouteState | None:
        self.calls.append(("read", (namespace, name)))
        return None if self.live_percent is None else live_at(self.live_percent)


def rollback_state(weight: str = "50") -> StackState:
    return StackState(deployed(weight), "urn:route", live_at(weight))


def test_rollback_flow_sets_zero_then_updates_only_the_route_and_watches_it() -> None:
    release = RollbackRelease(live_percent="0")
    change = plan_rollback("dev", config("50"), deployed("50"), live_at("50"))
    assert change is not None
    started = time.monotonic()
    timing = rollback(
        release,  # type: ignore[arg-type]
        change,
        rollback_state(),
        watch_route=lambda *_: StoppedWatch(started + 3600, release.calls),
    )
    assert release.calls == [
        ("set", {"canaryWeight": "0"}),
        ("watch", None),
        ("up", ("rollback canary 50% -> 0%", ["urn:route"], False)),
        ("unwatch", None),
    ]
    assert timing.update_seconds == 0.5 and timing.live_zero_seconds is not None


def test_rollback_flow_reads_the_route_when_the_watch_saw_nothing() -> None:
    """A watch that died (or missed it) is not taken as "not rolled back": the live route is read once."""
    for percent, zero_seen in (("0", True), ("50", False), (None, False)):
        release = RollbackRelease(live_percent=percent)
        change = plan_rollback("dev", config("50"), deployed("50"), live_at("50"))
        assert change is not None
        timing = rollback(
            release,  # type: ignore[arg-type]
            change,
            rollback_state(),
            watch_route=lambda *_, calls=release.calls: StoppedWatch(None, calls),
        )
        assert release.calls[-1] == ("read", ("ns", "web"))
        assert (timing.live_zero_seconds is not None) == zero_seen


def test_rollback_flow_refreshes_when_only_the_live_route_is_off_zero() -> None:
    """Stack and config at 0 but the route edited by hand: the targeted update refreshes first."""
    release = RollbackRelease(live_percent="0")
    change = plan_rollback("dev", config("0"), deployed("0"), live_at("30"))
    assert change is not None and change.from_percent == 0
    rollback(
        release,  # type: ignore[arg-type]
        change,
        rollback_state("0"),
        watch_route=lambda *_: StoppedWatch(time.monotonic(), release.calls),
    )
    assert ("up", ("rollback canary 0% -> 0% (live route was at 30%)", ["urn:route"], True)) in release.calls


def test_rollback_flow_refuses_without_a_route_in_state() -> None:
    release = RollbackRelease(live_percent="0")
    change = plan_rollback("dev", config("50"), deployed("50"), live_at("50"))
    assert change is not None
    with pytest.raises(Refused, match="no HTTPRoute in the state"):
        rollback(release, change, StackState(deployed("50"), None, None))  # type: ignore[arg-type]
    assert release.calls == [], "nothing changed"
