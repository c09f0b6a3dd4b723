"""canary.ops state and plan (pure): stepping and its refusals, messages, drift, summaries, markdown."""

import io
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from canary.cli.output import render_markdown
from canary.gateway_api import ROUTE_TYPE
from canary.ops.core.history import HistoryEntry
from canary.ops.core.plan import (
    PreviewReport,
    check_last_update,
    next_percent,
    plan_promote,
    plan_rollback,
    plan_step,
    promote_message,
    resource_summary,
    rollback_message,
    step_message,
    traffic_summary,
)
from canary.ops.core.state import (
    STACK_TYPE,
    Deployed,
    StackState,
    deployed_from_outputs,
    drift,
    pending,
    read_state,
    replicas_of,
)
from canary.ops.errors import PulumiFailed, Refused
from canary.ops.kube.kubectl import json_stream
from canary.ops.pulumi.deadline import Stop
from canary.ops.pulumi.stack import op_counts, project_defaults
from canary.ops.rollout.flows import Planned, RefusalJudge, apply_change
from canary.ops.rollout.rollback import through_pulumi as rollback
from canary.release.render import render
from canary.route_state import RouteState, route_state
from canary.weights import show_percent, split_weights
from tests.unit.helpers import REPO, release_settings
from tests.unit.helpers import project_defaults as helper_defaults

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


# --- plan stepping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "expected"),
    [("0", "5"), ("0.5", "5"), ("5", "25"), ("10", "25"), ("25", "50"), ("50", "100"), ("100", None)],
)
def test_next_percent_is_the_first_plan_step_above_the_current_one(
    current: str, expected: str | None
) -> None:
    result = next_percent(PLAN, Decimal(current))
    assert result == (None if expected is None else Decimal(expected))


@pytest.mark.parametrize(("before", "after"), [("0", "5"), ("5", "25"), ("25", "50"), ("50", "100")])
def test_step_walks_the_default_plan(before: str, after: str) -> None:
    change = plan_step("dev", config(before), deployed(before), update(), canary_plan=PLAN)
    assert change.updates == {"canaryWeight": after}
    assert change.message == f"canary {before}% -> {after}% ({V2})"
    assert (change.from_percent, change.to_percent) == (Decimal(before), Decimal(after))


def test_step_follows_a_custom_plan() -> None:
    change = plan_step("prod", config("0"), deployed("0"), None, canary_plan=plan_of(1, 5, 25, 50, 100))
    assert change.updates == {"canaryWeight": "1"}


def test_step_refuses_at_100_and_says_promote() -> None:
    with pytest.raises(Refused, match=r"already gets 100% of traffic.*canary promote"):
        plan_step("dev", config("100"), deployed("100"), update(), canary_plan=PLAN)


def test_step_refuses_at_the_last_step_of_a_shorter_plan() -> None:
    with pytest.raises(Refused, match=r"canary is at 50%, the last step of canaryPlan \[5, 50\]"):
        plan_step("dev", config("50"), deployed("50"), update(), canary_plan=plan_of(5, 50))


def test_step_refuses_without_a_canary() -> None:
    with pytest.raises(Refused, match=r"no canary is deployed \(canaryImage is empty\)"):
        plan_step("dev", config("0", canary=""), deployed("0", canary=None), update(), canary_plan=PLAN)


def test_step_refuses_a_canary_image_that_is_not_deployed_yet() -> None:
    with pytest.raises(Refused, match=r"canary registry.example/web:1.1.0 is not deployed yet.*no canary"):
        plan_step("dev", config("0"), deployed("0", canary=None), update(), canary_plan=PLAN)


def test_step_refuses_after_a_failed_update() -> None:
    with pytest.raises(Refused, match=r"refusing to step: the last update .*'to 50'\) failed"):
        plan_step("dev", config("25"), deployed("25"), update("failed", "to 50"), canary_plan=PLAN)


def test_step_refuses_during_an_update() -> None:
    with pytest.raises(Refused, match="still in progress"):
        plan_step("dev", config("25"), deployed("25"), update("in-progress"), canary_plan=PLAN)


def test_step_refuses_when_config_has_an_undeployed_weight() -> None:
    with pytest.raises(Refused, match=r"canaryWeight 50 but the last update deployed 25"):
        plan_step("dev", config("50"), deployed("25"), update(), canary_plan=PLAN)


def test_step_refuses_a_stack_never_deployed() -> None:
    with pytest.raises(Refused, match="no deployed release yet"):
        plan_step("dev", config("0"), None, None, canary_plan=PLAN)


def test_check_last_update_accepts_success_and_no_history() -> None:
    check_last_update(None, "step")
    check_last_update(update(), "step")


def test_promote_sets_three_keys_in_one_change() -> None:
    change = plan_promote("dev", config("100"), deployed("100"), update())
    assert change.updates == {"stableImage": V2, "canaryImage": "", "canaryWeight": "0"}
    assert change.message == f"promote {V2}"


def test_promote_turns_the_mirror_off_too() -> None:
    """mirrorPercent > 0 without a canary is invalid config, so promote must clear it as well."""
    change = plan_promote("dev", config("50", mirrorPercent="10"), deployed("50"), update())
    assert change.updates["mirrorPercent"] == "0"


def test_promote_refuses_after_a_failed_update_and_without_a_canary() -> None:
    with pytest.raises(Refused, match="refusing to promote: the last update"):
        plan_promote("dev", config("100"), deployed("100"), update("failed"))
    with pytest.raises(Refused, match="no canary is deployed"):
        plan_promote("dev", config("0", canary=""), deployed("0", canary=None), update())


def test_rollback_sets_the_weight_to_zero_even_after_a_failed_update() -> None:
    change = plan_rollback("dev", config("50"), deployed("50"), live(50, 50))
    assert change is not None
    assert change.updates == {"canaryWeight": "0"}
    assert change.message == "rollback canary 50% -> 0%"


def test_rollback_notes_a_live_weight_that_differs_from_the_stack() -> None:
    change = plan_rollback("dev", config("0"), deployed("0"), live(70, 30))
    assert change is not None
    assert change.message == "rollback canary 0% -> 0% (live route was at 30%)"


def test_rollback_has_nothing_to_do_at_zero_everywhere() -> None:
    assert plan_rollback("dev", config("0"), deployed("0"), live(100, 0)) is None


def test_rollback_refuses_without_a_canary() -> None:
    with pytest.raises(Refused, match="nothing to roll back"):
        plan_rollback("dev", config("0", canary=""), deployed("0", canary=None), live(1, None))


# --- messages ---------------------------------------------------------------------------------------------


def test_messages_read_as_a_rollout_log() -> None:
    assert step_message(Decimal(5), Decimal(25), V2) == f"canary 5% -> 25% ({V2})"
    assert step_message(Decimal("0.5"), Decimal(5), V2) == f"canary 0.5% -> 5% ({V2})"
    assert rollback_message(Decimal(50)) == "rollback canary 50% -> 0%"
    assert rollback_message(Decimal(50), Decimal(50)) == "rollback canary 50% -> 0%"
    assert promote_message(V2) == f"promote {V2}"


@pytest.mark.parametrize(
    ("percent", "text"),
    [
        (Decimal(25), "25%"),
        (Decimal("0.5000"), "0.5%"),
        (Decimal("0.0001"), "0.0001%"),
        (Decimal(2) * 100 / Decimal(3), "~66.6667%"),
    ],
)
def test_show_percent(percent: Decimal, text: str) -> None:
    assert show_percent(percent) == text


# --- drift and pending config -----------------------------------------------------------------------------


def state_of(weight: str = "50", header: tuple[str, str] | None = ("x-canary", "true")) -> StackState:
    return StackState(deployed(weight), "urn:route", live(100 - int(weight), int(weight), header))


def test_no_drift_when_the_live_route_matches() -> None:
    assert drift(state_of("50"), live(50, 50, ("x-canary", "true"))) == []


def test_drift_names_the_live_and_the_stack_weight() -> None:
    assert drift(state_of("50"), live(20, 80, ("x-canary", "true"))) == [
        "DRIFT: live route sends 80% to canary, stack says 50%"
    ]


def test_drift_in_header_and_mirror() -> None:
    found = drift(state_of("50"), live(50, 50, None, mirror=10))
    assert found == [
        "DRIFT: live route header rule is off, stack says 'x-canary: true'",
        "DRIFT: live route mirrors 10% to canary, stack says 0%",
    ]


def test_drift_when_the_route_is_gone_and_none_when_unreadable() -> None:
    assert drift(state_of("50"), None) == ["DRIFT: live route ns/web not found, stack says it exists"]
    assert drift(state_of("50"), None, "connection refused") == []


def test_pending_lists_undeployed_config() -> None:
    assert pending(config("25"), deployed("5")) == ["canaryWeight 5 -> 25"]
    assert pending(config("0", canary=""), deployed("0")) == [f"canaryImage {V2} -> (none)"]
    assert pending(config("5"), deployed("5")) == []


# --- summaries and markdown -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"update": 1}, "1 resource updated"),
        ({"update": 2, "same": 7}, "2 resources updated"),
        ({"delete": 2, "update": 1, "create": 1}, "1 resource created, 1 updated, 2 deleted"),
        ({"same": 9}, "no resource changes"),
        ({}, "no resource changes"),
    ],
)
def test_resource_summary(changes: dict[str, int], text: str) -> None:
    assert resource_summary(changes) == text


def test_traffic_summary_of_a_step() -> None:
    summary = traffic_summary(deployed("5"), config("25"), {"update": 1})
    assert summary == "canary 5% -> 25%, stable 95% -> 75%, 1 resource updated"


def test_traffic_summary_of_a_promote() -> None:
    after = release_settings(appName="web", namespace="ns", stableImage=V2)
    summary = traffic_summary(deployed("100"), after, {"update": 2, "delete": 2})
    assert summary == (
        f"canary 100% -> 0%, stable 0% -> 100%, stable image {V1} -> {V2}, canary {V2} removed, "
        "2 resources updated, 2 deleted"
    )


def test_traffic_summary_of_a_new_canary_and_of_a_first_update() -> None:
    assert traffic_summary(deployed("0", canary=None), config("0"), {"create": 2, "update": 1}) == (
        f"traffic unchanged (canary 0%, stable 100%), canary {V2} deployed, 2 resources created, 1 updated"
    )
    assert traffic_summary(None, config("0", canary="")) == f"first update: stable 100% ({V1})"


def report() -> PreviewReport:
    diff = "Previewing update (dev):\n  ~ weight: 95 => 75\n"
    return PreviewReport("dev", deployed("5"), config("25"), {"update": 1}, diff)


def test_markdown_for_a_pull_request_comment() -> None:
    text = render_markdown(report())
    lines = text.splitlines()
    assert lines[0] == "### Canary preview: stack `dev`"
    assert "**canary 5% -> 25%, stable 95% -> 75%, 1 resource updated**" in lines
    assert "| canary weight | 5% | 25% |" in lines
    assert "| stable weight | 95% | 75% |" in lines
    assert f"| canary image | `{V2}` | `{V2}` |" in lines
    assert "| phase | canary 5% | canary 25% |" in lines
    start = lines.index("```diff")
    assert lines[start + 1 : start + 3] == ["Previewing update (dev):", "  ~ weight: 95 => 75"]
    assert lines[start + 3] == "```"
    assert text.endswith("</details>\n")


def test_markdown_fence_outlasts_backticks_in_the_diff() -> None:
    tricky = PreviewReport("dev", None, config("0"), {"create": 9}, "a ``` b\n")
    text = render_markdown(tricky)
    assert "````diff" in text and "| phase | (not deployed) | canary deployed, header-only |" in text


# --- reading the stack ------------------------------------------------------------------------------------


def outputs(**overrides: Any) -> dict[str, Any]:
    return {
        "phase": "canary 0.5%",
        "canaryWeight": 0.5,
        "stableWeight": 99.5,
        "stableImage": V1,
        "canaryImage": V2,
        "routeName": "web",
        "namespace": "ns",
        **overrides,
    }


def test_deployed_from_outputs_reads_weights_exactly() -> None:
    found = deployed_from_outputs(outputs())
    assert found is not None
    assert found.canary_percent == Decimal("0.5") and found.stable_percent == Decimal("99.5")
    assert found.app_name == "web"
    no_canary = deployed_from_outputs(outputs(canaryImage="", canaryWeight=0))
    assert no_canary is not None and no_canary.canary_image is None
    assert deployed_from_outputs({}) is None


def test_read_state_finds_outputs_and_the_route_urn() -> None:
    route = render(config("25")).route
    urn = f"urn:pulumi:dev::gateway-canary::gateway-canary:index:CanaryRelease${ROUTE_TYPE}::web-route"
    deployment = {
        "resources": [
            {"urn": "urn:stack", "type": STACK_TYPE, "outputs": outputs(canaryWeight=25, phase="canary 25%")},
            {"urn": "urn:other", "type": "kubernetes:apps/v1:Deployment", "outputs": {}},
            {"urn": urn, "type": ROUTE_TYPE, "parent": "urn:component", "outputs": route},
        ]
    }
    state = read_state(deployment)
    assert state.route_urn == urn
    assert state.deployed is not None and state.deployed.canary_percent == Decimal(25)
    assert state.route == route_state(route, "web")
    assert state.route is not None and (state.route.stable_weight, state.route.canary_weight) == (75, 25)


def test_read_state_of_an_empty_stack() -> None:
    assert read_state(None) == StackState(None, None, None)
    assert read_state({"resources": []}) == StackState(None, None, None)


def test_replicas_of_a_live_deployment() -> None:
    dep = {"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}
    found = replicas_of(dep)
    assert found is not None and (found.ready, found.desired) == (2, 3)
    fresh = replicas_of({"spec": {"replicas": 1}, "status": {}})
    assert fresh is not None and fresh.ready == 0
    assert replicas_of(None) is None


def test_op_counts_takes_enum_or_string_keys() -> None:
    from pulumi.automation import OpType

    assert op_counts({OpType.UPDATE: 1, "same": 3}) == {"update": 1, "same": 3}
    assert op_counts(None) == {}


def test_json_stream_splits_pretty_printed_documents() -> None:
    docs = [{"a": 1, "b": {"c": [1, 2]}}, {"a": 2}]
    text = "".join(json.dumps(d, indent=4) + "\n" for d in docs)
    assert list(json_stream(io.StringIO(text))) == docs


def test_project_defaults_are_pulumi_yamls_in_the_engines_form() -> None:
    """Spelled out rather than recomputed: how the engine hands each kind of value to a program (booleans
    lowercase, arrays as compact JSON). tests/integration/test_toolchain_smoke.py checks the real engine."""
    defaults = project_defaults(Path(REPO / "Pulumi.yaml"))
    assert set(defaults) == set(helper_defaults())
    assert {
        key: defaults[key] for key in ("createNamespace", "canaryPlan", "hostnames", "stableReplicas")
    } == {
        "createNamespace": "true",
        "canaryPlan": "[5,25,50,100]",
        "hostnames": "[]",
        "stableReplicas": "2",
    }


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

    def route(self, app: str, namespace: str, name: str) -> RouteState | None:
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
