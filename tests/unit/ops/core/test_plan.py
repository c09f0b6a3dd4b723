"""canary.ops.core.plan (pure): stepping and its refusals, promote, rollback, messages, summaries."""

from decimal import Decimal

import pytest

from canary.ops.core.plan import (
    check_last_update,
    next_percent,
    plan_promote,
    plan_rollback,
    plan_step,
    pod_order,
    promote_message,
    resource_summary,
    rollback_message,
    step_message,
    traffic_summary,
)
from canary.ops.errors import Refused
from canary.weights import show_percent
from tests.unit.helpers import release_settings
from tests.unit.ops.fakes import PLAN, V1, V2, config, deployed, live, plan_of, update


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


@pytest.mark.parametrize(
    ("capacity", "now", "then", "order"),
    [
        ("{}", "5", "50", "canary 1 -> 5 (Available) before the route -> the route"),
        ("{}", "50", "0", "the route -> after 5 s settle: canary 5 -> 1"),
        ("{}", "5", "25", "canary 1 -> 3 (Available) before the route -> the route"),
        ('{"canary":"fixed"}', "5", "50", ""),
        (
            '{"stable":"traffic","settleSeconds":2}',
            "25",
            "50",
            "canary 3 -> 5 (Available) before the route -> the route -> after 2 s settle: stable 8 -> 5",
        ),
        (
            '{"stable":"traffic"}',
            "100",
            "0",
            "stable 1 -> 10 (Available) before the route -> the route -> after 5 s settle: canary 10 -> 1",
        ),
    ],
)
def test_the_preview_says_which_pods_move_and_when(capacity: str, now: str, then: str, order: str) -> None:
    """R = 10: `canary preview` prints the pod count changes in the order the update makes them."""
    after = release_settings(canaryImage=V2, canaryWeight=then, stableReplicas="10", capacity=capacity)
    assert pod_order(deployed(now), after) == order


def test_no_pod_order_before_a_first_deploy_or_with_autoscaling() -> None:
    after = release_settings(canaryImage=V2, canaryWeight="50", stableReplicas="10")
    assert pod_order(None, after) == ""
    scaled = release_settings(
        canaryImage=V2, canaryWeight="50", autoscaling='{"minReplicas":1,"maxReplicas":5,"cpuUtilization":70}'
    )
    assert pod_order(deployed("5"), scaled) == ""
