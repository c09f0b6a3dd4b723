"""canary.ops.verify.split: the exact binomial interval, the route's intent, the verdict (pure)."""

import math
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.cli.output import verdict_json
from canary.names import Track
from canary.ops.verify.split import (
    Intent,
    Interval,
    Verdict,
    canary_interval,
    check_confidence,
    gateway_address,
    image_tag,
    intent_of,
    judge,
    parse_header,
    requests_to_detect,
    versions_by_track,
)
from canary.route_state import RouteState
from canary.weights import split_weights
from tests.unit.helpers import percents

VERSIONS: dict[str, Track] = {"6.7.0": "stable", "6.7.1": "canary"}
confidences = st.sampled_from(
    [Decimal("0.5"), Decimal("0.9"), Decimal("0.99"), Decimal("0.999"), Decimal("0.9999")]
)


def brute_interval(n: int, p: Fraction, confidence: Decimal) -> tuple[int, int]:
    """The definition, term by term in exact fractions: largest low with P(X < low) <= alpha/2, smallest
    high with P(X > high) <= alpha/2."""
    half = (1 - Fraction(confidence)) / 2
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low = max(k for k in range(n + 1) if sum(pmf[:k]) <= half)
    high = min(k for k in range(n + 1) if sum(pmf[k + 1 :]) <= half)
    return low, high


def share_of(percent: Decimal) -> Fraction:
    stable, canary = split_weights(percent)
    return Fraction(canary, stable + canary)


@pytest.mark.parametrize(
    ("n", "share", "expected"),
    [
        (2000, Fraction(1, 4), (437, 565)),  # sigma 19.4: about +-3.3 sigma
        (400, Fraction(1, 4), (72, 129)),
        (10_000, Fraction(1, 200), (29, 75)),  # 0.5%
        (100, Fraction(1, 200), (0, 4)),  # too few to tell 0.5% from 0%
        (20_000, Fraction(1, 1_000_000), (0, 1)),  # 0.0001%
        (500, Fraction(0), (0, 0)),  # weight 0: not one canary response
        (500, Fraction(1), (500, 500)),  # weight 100: not one stable response
        (0, Fraction(1, 4), (0, 0)),
    ],
)
def test_interval_examples(n: int, share: Fraction, expected: tuple[int, int]) -> None:
    interval = canary_interval(n, share, Decimal("0.999"))
    assert (interval.low, interval.high) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=60), percents, confidences)
def test_interval_is_the_exact_tail(n: int, percent: Decimal, confidence: Decimal) -> None:
    share = share_of(percent)
    interval = canary_interval(n, share, confidence)
    assert (interval.low, interval.high) == brute_interval(n, share, confidence)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=3000), percents, confidences)
def test_interval_is_symmetric_in_the_tracks(n: int, percent: Decimal, confidence: Decimal) -> None:
    """Counting stable responses instead of canary ones gives the same region, mirrored."""
    share = share_of(percent)
    assert canary_interval(n, 1 - share, confidence) == canary_interval(n, share, confidence).mirrored(n)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=400), percents, percents)
def test_interval_moves_with_the_share(n: int, a: Decimal, b: Decimal) -> None:
    low, high = sorted((share_of(a), share_of(b)))
    first, second = canary_interval(n, low), canary_interval(n, high)
    assert first.low <= second.low and first.high <= second.high


@pytest.mark.parametrize("share", [Fraction(333_333, 1_000_000), Fraction(1, 2), Fraction(1, 200)])
def test_interval_at_the_largest_run_is_quick_and_covers_the_mean(share: Fraction) -> None:
    interval = canary_interval(20_000, share)
    assert interval.low < 20_000 * share < interval.high


def test_a_healthy_split_rarely_fails() -> None:
    """1,000 simulated runs of 2,000 requests at 25% (a seeded Bernoulli draw per request, as Envoy does):
    at 99.9% about one run in a thousand may fail."""
    rng = random.Random(12)
    interval = canary_interval(2000, Fraction(1, 4))
    failed = sum(sum(rng.random() < 0.25 for _ in range(2000)) not in interval for _ in range(1000))
    assert failed <= 4


def test_requests_to_detect_is_where_zero_stops_passing() -> None:
    for share in (Fraction(1, 200), Fraction(1, 4), Fraction(1, 20), Fraction(1, 1000)):
        need = requests_to_detect(share)
        assert canary_interval(need, share).low >= 1
        assert canary_interval(need - 1, share).low == 0
    assert requests_to_detect(Fraction(1, 200)) == 1517


@pytest.mark.parametrize("bad", [Decimal("1"), Decimal("0.4"), Decimal("NaN"), Decimal("1.5")])
def test_confidence_is_checked(bad: Decimal) -> None:
    with pytest.raises(ValueError, match=r"not between 0\.5 and 1"):
        check_confidence(bad)


def route(
    stable: int, canary: int | None, header: tuple[str, str] | None = ("x-canary", "true")
) -> RouteState:
    return RouteState(stable, canary, header if canary is not None else None, Decimal(0), "1", 2)


def test_intent_of_weights_and_header() -> None:
    assert intent_of(route(75, 25), {}).canary_share == Fraction(1, 4)
    assert intent_of(route(995, 5), {}).canary_percent == Decimal("0.5")
    assert intent_of(route(1, None), {}).canary_share == 0
    by_header = intent_of(route(100, 0), {"X-Canary": "true"})
    assert by_header.canary_share == 1 and by_header.by_header
    assert "matches the route's header rule" in by_header.reason
    other = intent_of(route(75, 25), {"x-canary": "TRUE"})  # values match exactly
    assert other.canary_share == Fraction(1, 4) and not other.by_header
    assert "do not match the header rule 'x-canary: true'" in other.reason
    assert intent_of(route(75, 25, header=None), {"x-canary": "true"}).canary_share == Fraction(1, 4)


def test_parse_header() -> None:
    assert parse_header("x-canary: true") == ("x-canary", "true")
    assert parse_header("X-Env:blue:green") == ("X-Env", "blue:green")
    for bad in ("x-canary", ": true", "x canary: true", ""):
        with pytest.raises(ValueError, match="is not a header"):
            parse_header(bad)


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("ghcr.io/stefanprodan/podinfo:6.7.1", "6.7.1"),
        ("registry:5000/app:1.1", "1.1"),
        ("registry:5000/app", None),
        ("app@sha256:" + "0" * 64, None),
        ("nginx", None),
    ],
)
def test_image_tag(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag


def test_versions_by_track() -> None:
    assert versions_by_track("r/podinfo:6.7.0", "r/podinfo:6.7.1") == VERSIONS
    assert versions_by_track("r/podinfo:6.7.0", None) == {"6.7.0": "stable"}
    with pytest.raises(ValueError, match=r"same tag '6\.7\.0'"):
        versions_by_track("a/podinfo:6.7.0", "b/podinfo:6.7.0")
    with pytest.raises(ValueError, match="canaryImage 'r/app' has no tag"):
        versions_by_track("r/app:1", "r/app")


def test_gateway_address() -> None:
    gateway = {
        "metadata": {"name": "web-gateway"},
        "spec": {"listeners": [{"protocol": "HTTPS", "port": 443}, {"protocol": "HTTP", "port": 8080}]},
        "status": {"addresses": [{"type": "IPAddress", "value": "10.96.0.12"}]},
    }
    assert gateway_address(gateway) == ("10.96.0.12", 8080)
    with pytest.raises(ValueError, match=r"Gateway web-gateway has no status\.addresses yet"):
        gateway_address({**gateway, "status": {}})
    with pytest.raises(ValueError, match="no HTTP listener"):
        gateway_address({**gateway, "spec": {"listeners": [{"protocol": "HTTPS", "port": 443}]}})


def quarter() -> Intent:
    return intent_of(route(75, 25), {})


def verdict_of(counts: dict[str, int], intent: Intent | None = None, **kwargs: Any) -> Verdict:
    values: dict[str, Any] = {
        "sent": sum(counts.values()),
        "wanted": sum(counts.values()),
        "failures": {},
        "without_version": 0,
    }
    values.update(kwargs)
    return judge(counts, VERSIONS, intent or quarter(), **values)


def test_a_split_inside_the_interval_passes() -> None:
    verdict = verdict_of({"6.7.0": 1510, "6.7.1": 490})
    assert verdict.ok and verdict.reasons == [] and verdict.notes == []
    assert (verdict.counted, verdict.canary, verdict.interval) == (2000, 490, Interval(437, 565))
    stable, canary = verdict.rows
    assert (stable.version, stable.track, stable.count) == ("6.7.0", "stable", 1510)
    assert stable.intended_percent == Decimal(75)
    assert stable.interval == Interval(1435, 1563) and canary.interval == Interval(437, 565)


def test_a_split_outside_the_interval_fails() -> None:
    verdict = verdict_of({"6.7.0": 1000, "6.7.1": 1000})  # a route patched to 50/50, checked against 25%
    assert not verdict.ok
    assert verdict.reasons == [
        "canary answered 1000 of 2000 requests (50%), outside the 99.9% interval 437-565 for 25%"
    ]


def test_weight_zero_and_hundred_allow_no_response_from_the_other_side() -> None:
    zero = intent_of(route(100, 0), {})
    assert verdict_of({"6.7.0": 999}, zero).ok
    assert verdict_of({"6.7.0": 999, "6.7.1": 1}, zero).reasons == [
        "canary answered 1 of 1000 requests; the route sends it none"
    ]
    full = intent_of(route(0, 100), {})
    assert verdict_of({"6.7.1": 1000}, full).ok
    assert verdict_of({"6.7.0": 1, "6.7.1": 999}, full).reasons == [
        "stable answered 1 of 1000 requests; the route sends it none"
    ]


def test_header_requests_must_all_reach_the_canary() -> None:
    header = intent_of(route(75, 25), {"x-canary": "true"})
    assert verdict_of({"6.7.1": 50}, header).ok
    reasons = verdict_of({"6.7.0": 1, "6.7.1": 49}, header).reasons
    assert reasons == [
        "1 of 50 header requests reached stable, not the canary "
        "(header 'x-canary: true' matches the route's header rule)"
    ]


def test_failures_missing_versions_and_strangers_fail() -> None:
    verdict = verdict_of(
        {"6.7.0": 1500, "6.7.1": 480, "9.9.9": 3},
        sent=2000,
        wanted=2100,
        failures={"HTTP 503": 7, "timed out": 2},
        without_version=8,
    )
    assert not verdict.ok
    assert verdict.reasons == [
        "9 of 2000 requests failed (HTTP 503 x7, timed out x2)",
        "only 2000 of 2100 requests were sent within the time bound",
        "8 responses carried no version",
        "3 responses from version '9.9.9', which is neither track (stable 6.7.0, canary 6.7.1)",
    ]
    assert verdict.rows[-1].track is None and verdict.rows[-1].count == 3
    assert verdict.counted == 1980  # only known tracks are held against the interval


def test_nothing_from_either_track_fails() -> None:
    assert verdict_of({}).reasons == ["no response came from either track: nothing to compare with the route"]


def test_too_few_requests_is_a_note() -> None:
    half_percent = intent_of(route(995, 5), {})
    verdict = verdict_of({"6.7.0": 100}, half_percent)
    assert verdict.ok
    assert verdict.notes == [
        "100 responses cannot tell 0.5% from 0% at 99.9% (zero canary responses would pass): "
        "send 1517 or more requests"
    ]


def test_verdict_json() -> None:
    data = verdict_json(verdict_of({"6.7.0": 1510, "6.7.1": 490}))
    assert data["ok"] is True and data["confidence"] == "99.9"
    assert data["intent"] == {
        "canaryPercent": "25",
        "byHeader": False,
        "reason": "route weights stable 75 / canary 25 (canary 25%)",
    }
    assert data["canaryInterval"] == {"low": 437, "high": 565}
    assert data["versions"][1] == {
        "version": "6.7.1",
        "track": "canary",
        "count": 490,
        "intendedPercent": "25",
        "interval": {"low": 437, "high": 565},
    }
