"""canary.ops.rollout.flows: set config, preview, ask, update; and the judge that stops an update the gateway
refused."""

from typing import Any

import pytest

from canary.ops.core.plan import (
    PreviewReport,
)
from canary.ops.errors import PulumiFailed, Refused
from canary.ops.pulumi.deadline import Stop
from canary.ops.rollout.flows import RefusalJudge, apply_change
from tests.unit.ops.fakes import V2, RecordingRelease, planned, report


def test_apply_change_previews_asks_then_updates_with_the_message() -> None:
    release = RecordingRelease()
    asked: list[PreviewReport] = []

    def confirm(shown: PreviewReport) -> bool:
        asked.append(shown)
        return True

    applied = apply_change(release, planned(), confirm=confirm)  # type: ignore[arg-type]
    assert release.calls == [
        ("set", {"canaryWeight": "25"}),
        ("preview", None),
        ("last_update", None),
        ("up", f"canary 5% -> 25% ({V2})"),
    ]
    assert asked == [report()] and applied.update_seconds == 1.5


def test_apply_change_declined_puts_the_config_back_and_refuses() -> None:
    release = RecordingRelease()
    with pytest.raises(Refused, match="not confirmed: nothing changed"):
        apply_change(release, planned(), confirm=lambda r: False)  # type: ignore[arg-type]
    assert [name for name, _ in release.calls] == ["set", "preview", "restore"]


def test_apply_change_failing_preview_puts_the_config_back() -> None:
    release = RecordingRelease(preview_error=PulumiFailed("pulumi preview", "boom"))
    with pytest.raises(PulumiFailed):
        apply_change(release, planned(), confirm=lambda r: True)  # type: ignore[arg-type]
    assert [name for name, _ in release.calls] == ["set", "preview", "restore"]


def judged_route(generation: int, observed: int) -> dict[str, Any]:
    condition = {
        "type": "Accepted",
        "status": "False",
        "reason": "NoMatchingParent",
        "observedGeneration": observed,
    }
    return {"metadata": {"generation": generation}, "status": {"parents": [{"conditions": [condition]}]}}


def test_refusal_judge_ignores_the_route_as_it_was_and_stops_on_a_refusal_of_the_new_spec() -> None:
    stop = Stop()
    judge = RefusalJudge(stop)
    judge(
        judged_route(4, 4)
    )  # listed first: the route before this update (refused earlier) is not this verdict
    assert not stop.is_set()
    judge(judged_route(5, 4))  # the new spec, the controller has not caught up: a stale verdict
    assert not stop.is_set()
    judge(judged_route(5, 5))
    assert stop.is_set() and stop.why.startswith("Accepted=False, NoMatchingParent")
