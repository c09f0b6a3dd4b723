"""Does live traffic split as the live route says? (pure): the intent, an exact binomial interval, a verdict.

Gateway API implementations pick a backend at random per request in proportion to the weights (Envoy: a
weighted cluster), so N requests at canary share p give a Binomial(N, p) count of canary responses: at 25% of
2,000 requests sigma is about 19, and equality with 500 would fail most honest runs. The check is therefore
the two-sided binomial test of the route's own share: the observed count must lie in the equal-tailed
acceptance region at the chosen confidence (99.9% by default), computed exactly from the binomial tail with
integer arithmetic (math.comb). Not a normal approximation: it is badly off at the sub-percent shares this
project supports (0.5% of 1,000 requests is 5 expected responses, a skewed distribution). A correctly
configured gateway therefore fails the check at most 0.1% of the time; how large N must be for the check to
notice anything at all is `requests_to_detect`.

Weight 0 and 100 need no statistics: the interval collapses to 0..0 or N..N, so one response from the wrong
side fails. Counting is by the `version` a response reports (podinfo's GET /version; a user's app must report
its version the same way), mapped to a track by the image tags of the stack outputs stableImage/canaryImage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from canary.names import Track
from canary.route_state import RouteState
from canary.weights import show_percent

CONFIDENCE = Decimal("0.999")
"""Default confidence: a healthy gateway fails the check once in 1,000 runs."""

VERSION_FIELD = "version"
"""The JSON field of a response body that names the version that answered (podinfo's GET /version)."""
VERSION_PATH = "/version"
"""The path `canary verify` requests at a Gateway's address by default (podinfo's version endpoint)."""


@dataclass(frozen=True)
class Interval:
    """Canary response counts in low..high (inclusive) are consistent with the intended share."""

    low: int
    high: int

    def __contains__(self, count: object) -> bool:
        return isinstance(count, int) and self.low <= count <= self.high

    def mirrored(self, requests: int) -> Interval:
        """The same region counted from the other track: stable responses are requests - canary."""
        return Interval(requests - self.high, requests - self.low)

    def text(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def check_confidence(confidence: Decimal) -> None:
    """Raise ValueError unless 0.5 <= confidence < 1: below one half the "interval" excludes the likeliest
    counts, and at 1 every count passes."""
    if not confidence.is_finite() or not Decimal("0.5") <= confidence < 1:
        raise ValueError(f"confidence {confidence} is not between 0.5 and 1 (for example 0.999)")


def canary_interval(requests: int, share: Fraction, confidence: Decimal = CONFIDENCE) -> Interval:
    """The equal-tailed acceptance region of Binomial(requests, share) at `confidence`, exact.

    low is the largest k with P(X < k) <= alpha/2 and high the smallest k with P(X > k) <= alpha/2
    (alpha = 1 - confidence), so a count outside low..high has probability at most alpha when the gateway
    splits as intended. This is the dual of the Clopper-Pearson interval: the intended share lies inside the
    Clopper-Pearson interval of the observed count exactly when the count lies here (up to ties at exactly
    alpha/2). At share 0 it is 0..0, at share 1 requests..requests.
    """
    check_confidence(confidence)
    if requests < 0:
        raise ValueError(f"requests must be >= 0, not {requests}")
    if not 0 <= share <= 1:
        raise ValueError(f"share {share} is not between 0 and 1")
    if share == 0:
        return Interval(0, 0)
    if share == 1:
        return Interval(requests, requests)
    half = (1 - Fraction(confidence)) / 2
    a, d = share.numerator, share.denominator
    low = _lower_edge(requests, a, d - a, half)
    high = requests - _lower_edge(requests, d - a, a, half)
    return Interval(low, high)


def _lower_edge(n: int, a: int, b: int, half: Fraction) -> int:
    """The largest k with P(X < k) <= half, X ~ Binomial(n, a / (a + b)), 0 < a, b, half < 1/2.

    Probabilities are kept as integers on the scale (a + b) ** n: the term of k is t_k = C(n, k) a^k b^(n-k),
    and neighbouring terms differ by an exact integer factor. Summing the tail from 0 costs n big-integer
    steps (seconds at tens of thousands of requests), so the walk starts at the mode and goes left: below the
    mode the ratio r = t_(j-1) / t_j shrinks further left, so the terms left of j sum to at most
    t_j * r / (1 - r) (a geometric series). Once that bound is below the limit, a scan to the right finds the
    edge; if the bound's slack could still move it, the walk goes one term further left. The result is the
    one an exact sum of every term gives.
    """
    d = a + b
    limit_num, limit_den = half.numerator * d**n, half.denominator

    def within(total: int) -> bool:
        return bool(total * limit_den <= limit_num)

    j = min(n, (n + 1) * a // d)  # a mode
    t_j = math.comb(n, j) * a**j * b ** (n - j)
    front: tuple[int, int, int] | None = None  # (k, S = t_j + ... + t_(k-1), t_k), rest + S within the limit
    while True:
        if j == 0:
            rest: int | None = 0
        elif j * b < (n - j + 1) * a:
            r_num, r_den = j * b, (n - j + 1) * a
            rest = -(-t_j * r_num // (r_den - r_num))  # rounded up: still an upper bound
        else:
            rest = None  # still at or above the mode: no bound yet
        if rest is not None and (front is not None or within(rest)):
            # P(X < k) <= rest + S <= limit. The bound rest + t_j only shrinks as j moves left, so k only
            # moves right.
            k, partial, t = front if front is not None else (j, 0, t_j)
            while k <= n and within(rest + partial + t):
                partial += t
                t = t * (n - k) * a // ((k + 1) * b)
                k += 1
            if k > n:
                raise AssertionError("the whole distribution fits under alpha/2: confidence below 1/2")
            if not within(partial + t):  # P(X < k + 1) >= S + t_k > limit, whatever lies left of j
                return k
            front = (k, partial, t)
        if j == 0:
            raise AssertionError("unreachable: with nothing left of j the edge is exact")
        t_j = t_j * j * b // ((n - j + 1) * a)
        j -= 1
        if front is not None:
            k, partial, t = front
            front = (k, partial + t_j, t)


def requests_to_detect(share: Fraction, confidence: Decimal = CONFIDENCE) -> int:
    """About how many requests it takes before zero canary responses fail the check at this share.

    With fewer, a canary that receives nothing passes too: P(X = 0) = (1 - p)^N must drop below alpha/2,
    so N >= log(alpha/2) / log(1 - p). 0.5% at 99.9% needs about 1,517 requests; 25% needs 27. Advice for
    the user (float arithmetic), not part of the verdict.
    """
    check_confidence(confidence)
    if share <= 0 or share >= 1:
        return 1
    half = (1 - float(confidence)) / 2
    return math.ceil(math.log(half) / math.log1p(-float(share)))


@dataclass(frozen=True)
class Intent:
    """The share of requests the live route sends to the canary, and why."""

    canary_share: Fraction
    reason: str
    by_header: bool = False

    @property
    def canary_percent(self) -> Decimal:
        return Decimal(self.canary_share.numerator) * 100 / Decimal(self.canary_share.denominator)


def header_matches(rule: tuple[str, str], headers: Mapping[str, str]) -> bool:
    """Whether the request headers satisfy a route's Exact header match: names are case-insensitive in HTTP
    and in Gateway API, values are compared exactly."""
    name, value = rule
    return any(key.lower() == name.lower() and sent == value for key, sent in headers.items())


def intent_of(route: RouteState, headers: Mapping[str, str]) -> Intent:
    """What the live route does with requests carrying `headers`: all to the canary when they match its header
    rule (rules with header matches are more specific, so they win over the split), else the weighted split.
    The share comes from the route's integer weights, exactly."""
    if route.header_rule is not None and header_matches(route.header_rule, headers):
        name, value = route.header_rule
        return Intent(
            Fraction(1), f"header '{name}: {value}' matches the route's header rule", by_header=True
        )
    if route.canary_weight is None:
        return Intent(Fraction(0), f"route has one backend (stable {route.stable_weight})")
    share = Fraction(route.canary_weight, route.stable_weight + route.canary_weight)
    reason = (
        f"route weights stable {route.stable_weight} / canary {route.canary_weight} "
        f"(canary {show_percent(route.canary_percent)})"
    )
    if headers and route.header_rule is not None:
        name, value = route.header_rule
        reason += f"; the headers sent do not match the header rule '{name}: {value}'"
    return Intent(share, reason)


def parse_header(text: str) -> tuple[str, str]:
    """A `--header 'Name: value'` argument; raises ValueError naming the problem."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise ValueError(
            f"{text!r} is not a header: write it as 'Name: value' (for example 'x-canary: true')"
        )
    return name, value


def image_tag(image: str) -> str | None:
    """The tag of an image reference (`registry:5000/app:1.1.0` -> `1.1.0`); None without one (a digest)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last and "@" not in image else None


def versions_by_track(stable_image: str, canary_image: str | None) -> dict[str, Track]:
    """Which version string means which track: the image tags, as the app reports its tag as its version
    (podinfo in the local cluster; a user's app must do the same). Raises ValueError when the versions
    cannot tell the tracks apart, since every count would then be meaningless."""
    stable = image_tag(stable_image)
    if stable is None:
        raise ValueError(f"stableImage {stable_image!r} has no tag to recognise its responses by")
    versions: dict[str, Track] = {stable: "stable"}
    if canary_image:
        canary = image_tag(canary_image)
        if canary is None:
            raise ValueError(f"canaryImage {canary_image!r} has no tag to recognise its responses by")
        if canary == stable:
            raise ValueError(
                f"stableImage and canaryImage have the same tag {stable!r}: responses cannot tell them apart"
            )
        versions[canary] = "canary"
    return versions


def gateway_address(gateway: Mapping[str, Any]) -> tuple[str, int]:
    """Where a client reaches a live Gateway: status.addresses[0].value (what a LoadBalancer or the local
    bed publishes) and the port of its first HTTP listener. Raises ValueError when the gateway has no
    address yet (no controller, or not Programmed) or no HTTP listener."""
    name = gateway.get("metadata", {}).get("name", "?")
    addresses = (gateway.get("status") or {}).get("addresses") or []
    if not addresses or not addresses[0].get("value"):
        raise ValueError(
            f"Gateway {name} has no status.addresses yet (is its controller running and the Gateway "
            "Programmed?): pass --url"
        )
    listeners = [
        listener
        for listener in (gateway.get("spec") or {}).get("listeners", [])
        if listener.get("protocol") == "HTTP"
    ]
    if not listeners:
        raise ValueError(f"Gateway {name} has no HTTP listener: pass --url")
    return str(addresses[0]["value"]), int(listeners[0]["port"])


@dataclass(frozen=True)
class Row:
    """One line of the report: a version, its track, its count, what the route intends for that track."""

    version: str
    track: Track | None
    count: int
    intended_percent: Decimal | None
    interval: Interval | None


@dataclass(frozen=True)
class Verdict:
    """The check's outcome: ok, or the reasons it failed; notes never fail it."""

    ok: bool
    reasons: list[str]
    notes: list[str]
    rows: list[Row]
    counted: int
    canary: int
    interval: Interval
    intent: Intent
    confidence: Decimal = field(default=CONFIDENCE)


def judge(
    counts: Mapping[str, int],
    versions: Mapping[str, Track],
    intent: Intent,
    *,
    sent: int,
    wanted: int,
    failures: Mapping[str, int],
    without_version: int,
    confidence: Decimal = CONFIDENCE,
) -> Verdict:
    """Judge one run: `counts` per reported version (successful responses only), `failures` per kind of
    failure (HTTP 503, timeout...), `sent` of `wanted` requests sent within the time bound.

    Fails on: any failed request; requests not sent; responses without a version or of a version that is
    neither track's; header requests that reached stable; a canary count outside the interval. Only
    responses of a known track are counted against the interval.
    """
    tracked = {track: 0 for track in ("stable", "canary")}
    unknown = {}
    for version, count in counts.items():
        if version in versions:
            tracked[versions[version]] += count
        else:
            unknown[version] = count
    counted = tracked["stable"] + tracked["canary"]
    interval = canary_interval(counted, intent.canary_share, confidence)
    level = show_percent(confidence * 100)
    reasons: list[str] = []
    failed = sum(failures.values())
    if failed:
        kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(failures.items(), key=lambda kv: -kv[1]))
        reasons.append(f"{failed} of {sent} requests failed ({kinds})")
    if sent < wanted:
        reasons.append(f"only {sent} of {wanted} requests were sent within the time bound")
    if without_version:
        reasons.append(f"{without_version} responses carried no version")
    for version, count in sorted(unknown.items()):
        known = ", ".join(f"{track} {v}" for v, track in versions.items())
        reasons.append(f"{count} responses from version {version!r}, which is neither track ({known})")
    if counted == 0:
        reasons.append("no response came from either track: nothing to compare with the route")
    elif intent.by_header and tracked["stable"]:
        reasons.append(
            f"{tracked['stable']} of {counted} header requests reached stable, not the canary "
            f"({intent.reason})"
        )
    elif tracked["canary"] not in interval:
        if intent.canary_share == 0:
            reasons.append(
                f"canary answered {tracked['canary']} of {counted} requests; the route sends it none"
            )
        elif intent.canary_share == 1:
            reasons.append(
                f"stable answered {tracked['stable']} of {counted} requests; the route sends it none"
            )
        else:
            reasons.append(
                f"canary answered {tracked['canary']} of {counted} requests "
                f"({show_percent(Decimal(tracked['canary']) * 100 / counted)}), outside the {level} interval "
                f"{interval.text()} for {show_percent(intent.canary_percent)}"
            )
    notes = []
    need = requests_to_detect(intent.canary_share, confidence)
    if 0 < intent.canary_share < 1 and counted and interval.low == 0:
        notes.append(
            f"{counted} responses cannot tell {show_percent(intent.canary_percent)} from 0% at {level} "
            f"(zero canary responses would pass): send {need} or more requests"
        )
    rows = _rows(counts, versions, intent, interval, counted)
    return Verdict(
        not reasons, reasons, notes, rows, counted, tracked["canary"], interval, intent, confidence
    )


def _rows(
    counts: Mapping[str, int], versions: Mapping[str, Track], intent: Intent, interval: Interval, counted: int
) -> list[Row]:
    canary_percent = intent.canary_percent
    intended: dict[Track, tuple[Decimal, Interval]] = {
        "canary": (canary_percent, interval),
        "stable": (Decimal(100) - canary_percent, interval.mirrored(counted)),
    }
    rows = []
    seen = set()
    for version, track in versions.items():
        percent, region = intended[track]
        rows.append(Row(version, track, counts.get(version, 0), percent, region))
        seen.add(version)
    for version in sorted(set(counts) - seen):
        rows.append(Row(version, None, counts[version], None, None))
    return rows
