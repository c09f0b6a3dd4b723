"""Percent -> Gateway API backend weights, exact and never all zero.

Gateway API weights are integers in 0..1,000,000 and traffic is split in proportion to them, so a percent
with up to four decimal places is exactly representable: 0.5% becomes 995/5 of 1000. Integer percents keep
the readable pair a human expects in `kubectl get httproute -o yaml` (90/10, never 900000/100000).

Percents are parsed with Decimal from the config string, never through float: 0.1 + 0.2 must stay 0.3 when it
becomes a weight.
"""

import re
from decimal import Decimal

MAX_DECIMALS = 4
"""Decimal places a percent may have: 100 * 10**4 is MAX_WEIGHT, the finest split the API can express."""

PERCENT_RULE = f"a percent between 0 and 100 (at most {MAX_DECIMALS} decimal places)"
"""What a percent may be, for error messages that name a config key."""

_PERCENT_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_percent(text: str) -> Decimal:
    """Parse a percent such as "25" or "0.5" exactly; raise ValueError(PERCENT_RULE) for anything else.

    Only plain decimal notation is accepted: no sign, exponent, NaN, infinity or surrounding text, so the
    value a user typed is the value that reaches the route.
    """
    if not _PERCENT_TEXT.fullmatch(text):
        raise ValueError(PERCENT_RULE)
    percent = Decimal(text)
    check_percent(percent)
    return percent


def check_percent(percent: Decimal) -> None:
    """Raise ValueError(PERCENT_RULE) unless percent is finite, within 0..100 and has at most 4 decimals."""
    if (
        not percent.is_finite()
        or not Decimal(0) <= percent <= Decimal(100)
        or decimals(percent) > MAX_DECIMALS
    ):
        raise ValueError(PERCENT_RULE)


def decimals(percent: Decimal) -> int:
    """Number of significant decimal places: 25 -> 0, 12.50 -> 1, 0.0625 -> 4."""
    exponent = percent.normalize().as_tuple().exponent
    assert isinstance(exponent, int), "only finite decimals have decimal places"
    return max(0, -exponent)


def split_weights(percent: Decimal) -> tuple[int, int]:
    """Return (stable, canary) weights that send exactly `percent` of traffic to canary.

    The pair sums to 100 * 10**d, where d is the number of decimal places of `percent`, so integer percents
    give (100 - p, p) and the sum never exceeds MAX_WEIGHT. At 100 the stable weight is 0 rather than the
    backend being dropped: rolling back is then a one-field change. The sum is never 0, which Gateway API
    would treat as "no backend" (HTTP 500).
    """
    check_percent(percent)
    scale = 10 ** decimals(percent)
    canary = int(percent * scale)
    return 100 * scale - canary, canary


def canary_percent(stable: int, canary: int) -> Decimal:
    """Inverse of split_weights: the percent of traffic a (stable, canary) weight pair sends to canary.

    Used to read a live route back as a percent. Raises ValueError when both weights are zero or one is
    negative, since such a route sends no traffic anywhere a percent could describe.
    """
    if stable < 0 or canary < 0 or stable + canary == 0:
        raise ValueError(f"weights ({stable}, {canary}) do not split traffic")
    return Decimal(canary) * 100 / Decimal(stable + canary)


def format_percent(percent: Decimal) -> str:
    """Render a percent the way a user would type it: 25, 0.5, 100 (no exponent, no trailing zeros)."""
    return f"{percent.normalize():f}"


def percent_number(percent: Decimal) -> int | float:
    """A percent as a JSON-friendly number for stack outputs: int when whole, float otherwise."""
    if percent == percent.to_integral_value():
        return int(percent)
    return float(percent)


def show_percent(percent: Decimal) -> str:
    """A percent for people: exact when it has at most 4 decimals (as config allows), else rounded, "~"."""
    if decimals(percent) <= 4:
        return f"{format_percent(percent)}%"
    return f"~{format_percent(percent.quantize(Decimal('0.0001')))}%"
