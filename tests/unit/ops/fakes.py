"""Stack states, configs, live routes, history entries and a recording Release, shared by the tests of
the plans (ops/core), the flows and the rollback (ops/rollout) and the CLI's output."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from canary.ops.core.history import HistoryEntry
from canary.ops.core.plan import (
    PreviewReport,
    plan_step,
)
from canary.ops.core.state import (
    Deployed,
)
from canary.ops.rollout.flows import Planned
from canary.route_state import RouteState
from canary.weights import split_weights
from tests.unit.helpers import release_settings

V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"


def plan_of(*percents: int) -> tuple[Decimal, ...]:
    return tuple(Decimal(p) for p in percents)


PLAN = plan_of(5, 25, 50, 100)


def deployed(weight: str = "0", canary: str | None = V2, stable: str = V1) -> Deployed:
    percent = Decimal(weight)
    return Deployed(
        phase=f"canary {weight}%" if canary else "stable",
        canary_percent=percent,
        stable_image=stable,
        canary_image=canary,
        route_name="web",
        namespace="ns",
    )


def config(weight: str = "0", canary: str = V2, **extra: Any):
    return release_settings(
        appName="web", namespace="ns", stableImage=V1, canaryImage=canary, canaryWeight=weight, **extra
    )


def update(result: str = "succeeded", message: str = "m") -> HistoryEntry:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return HistoryEntry("update", result, message, when, when, {}, {}, {})


def live(
    stable: int, canary: int | None, header: tuple[str, str] | None = None, mirror: int = 0
) -> RouteState:
    return RouteState(stable, canary, header, Decimal(mirror), "1", 1)


def live_at(percent: str) -> RouteState:
    """A live route rendered at `percent` to canary (Gateway API weights from the same split)."""
    return live(*split_weights(Decimal(percent)))


def report() -> PreviewReport:
    diff = "Previewing update (dev):\n  ~ weight: 95 => 75\n"
    return PreviewReport("dev", deployed("5"), config("25"), {"update": 1}, diff)


class RecordingRelease:
    """Stands in for canary.ops.pulumi.stack.Release in the flows: records config writes, previews and
    updates."""

    name = "dev"
    local = None  # not a local backend: nothing for the rollback's rendering to remember

    def __init__(self, preview_error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.preview_error = preview_error

    def set_config(self, updates: dict[str, str]) -> str:
        self.calls.append(("set", dict(updates)))
        return "snapshot"

    def restore_config(self, snapshot: str) -> None:
        self.calls.append(("restore", snapshot))

    def preview(self, before: Deployed | None) -> PreviewReport:
        self.calls.append(("preview", None))
        if self.preview_error is not None:
            raise self.preview_error
        return report()

    def up(self, message: str, **_: Any) -> float:
        self.calls.append(("up", message))
        return 1.5

    def last_update(self) -> HistoryEntry:
        self.calls.append(("last_update", None))
        return LAST


LAST = update()
"""The last update every change here was planned from (RecordingRelease answers it)."""


def planned(before: Deployed | None = None) -> Planned:
    return Planned(change(), deployed("5") if before is None else before, LAST)


def change() -> Any:
    return plan_step("dev", config("5"), deployed("5"), update(), canary_plan=PLAN)
