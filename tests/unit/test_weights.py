"""canary.weights: exact percent -> weight pairs, never all zero."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.gateway_api import MAX_WEIGHT
from canary.weights import (
    PERCENT_RULE,
    canary_percent,
    format_percent,
    parse_percent,
    percent_number,
    split_weights,
)
from tests.unit.helpers import percents


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        ("0", (100, 0)),
        ("5", (95, 5)),
        ("10", (90, 10)),
        ("25", (75, 25)),
        ("100", (0, 100)),
        ("0.5", (995, 5)),
        ("12.5", (875, 125)),
        ("12.50", (875, 125)),
        ("0.0001", (999_999, 1)),
        ("99.9999", (1, 999_999)),
    ],
)
def test_split_weights_examples(percent: str, expected: tuple[int, int]) -> None:
    assert split_weights(parse_percent(percent)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "abc", "NaN", "nan", "inf", "Infinity", "-1", "-0", "+5", "1e1", "100.0001", "101", "0.00001", " 5"],
)
def test_parse_percent_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="a percent between 0 and 100"):
        parse_percent(text)


def test_parse_percent_is_exact() -> None:
    assert parse_percent("0.3") == Decimal("0.3")
    assert parse_percent("100.0000") == Decimal(100)


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-1"), Decimal("0.00001")])
def test_split_weights_rejects(bad: Decimal) -> None:
    with pytest.raises(ValueError, match=PERCENT_RULE.replace("(", r"\(").replace(")", r"\)")):
        split_weights(bad)


@given(st.integers(min_value=0, max_value=100))
def test_integer_percents_are_readable_pairs(percent: int) -> None:
    assert split_weights(Decimal(percent)) == (100 - percent, percent)


@given(percents)
def test_never_all_zero_and_within_gateway_limit(percent: Decimal) -> None:
    stable, canary = split_weights(percent)
    assert stable >= 0 and canary >= 0
    assert 0 < stable + canary <= MAX_WEIGHT


@given(percents)
def test_ratio_is_exact(percent: Decimal) -> None:
    stable, canary = split_weights(percent)
    assert Decimal(canary) / Decimal(stable + canary) == percent / 100
    assert canary_percent(stable, canary) == percent


@given(percents, percents)
def test_monotone_in_canary_weight(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    s_low, c_low = split_weights(low)
    s_high, c_high = split_weights(high)
    assert Decimal(c_low) / (s_low + c_low) <= Decimal(c_high) / (s_high + c_high)


@given(percents)
def test_format_round_trips(percent: Decimal) -> None:
    assert parse_percent(format_percent(percent)) == percent


def test_format_and_number() -> None:
    assert format_percent(Decimal("100")) == "100"
    assert format_percent(Decimal("0.50")) == "0.5"
    assert percent_number(Decimal("25")) == 25 and isinstance(percent_number(Decimal("25")), int)
    assert percent_number(Decimal("0.5")) == 0.5


@pytest.mark.parametrize(("stable", "canary"), [(0, 0), (-1, 5), (5, -1)])
def test_canary_percent_rejects_no_split(stable: int, canary: int) -> None:
    with pytest.raises(ValueError, match="do not split traffic"):
        canary_percent(stable, canary)
