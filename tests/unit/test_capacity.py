"""canary.release.capacity: pod counts per weight and mode, which tracks scale down, the invariant check,
and the `capacity` key's validation."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.release.capacity import invariant_problems, pods_for, replicas, scale_downs, scale_steps
from canary.release.validate import ConfigError
from tests.unit.helpers import CANARY, percents, release_settings

WALK = ["0", "5", "25", "50", "100"]


def counts(capacity: str, full: int = 10) -> list[tuple[int, int]]:
    """(stable, canary) pods at each weight of the walk."""
    found = []
    for weight in WALK:
        s = release_settings(
            canaryImage=CANARY, canaryWeight=weight, stableReplicas=str(full), capacity=capacity
        )
        found.append((replicas(s, "stable"), replicas(s, "canary")))
    return found


def test_counts_per_mode_along_the_walk() -> None:
    """R = 10, canaryReplicas 1 (Argo Rollouts' own example: canary 1/3/5/10 with dynamic stable 10/8/5/0,
    where ours keeps one stable pod at 100%)."""
    assert counts("{}") == [(10, 1), (10, 1), (10, 3), (10, 5), (10, 10)]
    assert counts('{"stable":"traffic"}') == [(10, 1), (10, 1), (8, 3), (5, 5), (1, 10)]
    assert counts('{"canary":"fixed"}') == [(10, 1)] * 5
    assert counts('{"canary":"fixed","stable":"traffic"}') == [(10, 1), (10, 1), (8, 1), (5, 1), (1, 1)]


def test_the_article_s_fleet_of_three() -> None:
    """The article's 3 stable pods: at 100% the canary runs 3, not the article's 1."""
    assert counts("{}", full=3) == [(3, 1), (3, 1), (3, 1), (3, 2), (3, 3)]


def test_canary_replicas_is_a_floor() -> None:
    s = release_settings(canaryImage=CANARY, canaryWeight="5", stableReplicas="10", canaryReplicas="4")
    assert replicas(s, "canary") == 4


def test_pods_for_rounds_up_and_needs_none_at_zero() -> None:
    assert [pods_for(10, Decimal(p)) for p in ("0", "0.0001", "5", "25", "100")] == [0, 1, 1, 3, 10]


@settings(max_examples=200, deadline=None)
@given(percents, st.integers(min_value=1, max_value=50), st.sampled_from(["full", "traffic"]))
def test_every_mode_sizes_a_track_for_its_share(percent: Decimal, full: int, stable: str) -> None:
    """The counts the release renders never break the invariant they are checked against."""
    settings_now = release_settings(
        canaryImage=CANARY,
        canaryWeight=str(percent),
        stableReplicas=str(full),
        capacity=f'{{"stable":"{stable}"}}',
    )
    ready = {track: replicas(settings_now, track) for track in ("stable", "canary")}
    shares = {"stable": Decimal(100) - percent, "canary": percent}
    assert invariant_problems(full, shares, ready) == []


def test_invariant_problems_name_the_track_its_share_and_its_pods() -> None:
    shares = {"stable": Decimal(30), "canary": Decimal(70)}
    assert invariant_problems(3, shares, {"stable": 3, "canary": 1}) == [
        "canary carries 70% with 1 ready pods (needs 3)"
    ]
    assert invariant_problems(3, {"canary": Decimal(0)}, {}) == []


@pytest.mark.parametrize(
    ("capacity", "last", "weight", "down"),
    [
        ("{}", None, "50", set()),
        ("{}", "25", "50", set()),
        ("{}", "50", "0", {"canary"}),
        ("{}", "50", "50", set()),
        ('{"canary":"fixed"}', "50", "0", set()),
        ('{"stable":"traffic"}', "0", "50", {"stable"}),
        ('{"stable":"traffic"}', "100", "0", {"canary"}),
    ],
)
def test_scale_downs(capacity: str, last: str | None, weight: str, down: set[str]) -> None:
    s = release_settings(canaryImage=CANARY, canaryWeight=weight, stableReplicas="10", capacity=capacity)
    assert scale_downs(s, None if last is None else Decimal(last)) == down


def test_no_order_with_autoscaling() -> None:
    """The autoscalers own the counts: the release changes none, so none waits for the route."""
    s = release_settings(
        canaryImage=CANARY,
        canaryWeight="0",
        autoscaling='{"minReplicas":1,"maxReplicas":5,"cpuUtilization":70}',
    )
    assert scale_downs(s, Decimal(50)) == frozenset()


def test_scale_steps_put_scale_ups_before_the_route_and_downs_after() -> None:
    s = release_settings(
        canaryImage=CANARY, canaryWeight="50", stableReplicas="10", capacity='{"stable":"traffic"}'
    )
    steps = [(step.track, step.before, step.after, step.after_route) for step in scale_steps(s, Decimal(25))]
    assert steps == [("canary", 3, 5, False), ("stable", 8, 5, True)]
    assert scale_steps(s, Decimal(50)) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"canary":"half"}', "capacity.canary: 'half' is not allowed: one of 'traffic', 'fixed'"),
        ('{"stable":1}', "capacity.stable: 1 is not allowed: one of 'full', 'traffic'"),
        ('{"settleSeconds":-1}', "capacity.settleSeconds: -1 is not allowed: an integer from 0 to 600"),
        ('{"settle":5}', "capacity.settle: unknown field (known: canary, stable, settleSeconds)"),
        ('"traffic"', "capacity: '\"traffic\"' is not allowed: an object such as"),
    ],
)
def test_bad_capacity_names_the_field_and_what_is_allowed(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        release_settings(capacity=value)
    assert caught.value.keys == ["capacity"]
    assert message in str(caught.value)


def test_stable_traffic_is_refused_with_autoscaling() -> None:
    with pytest.raises(ConfigError, match=r"capacity\.stable: 'traffic' is not allowed with autoscaling"):
        release_settings(
            capacity='{"stable":"traffic"}',
            autoscaling='{"minReplicas":1,"maxReplicas":5,"cpuUtilization":70}',
        )
