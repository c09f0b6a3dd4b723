"""What a live HTTPRoute does with traffic (pure): the split rule, its weights, the header rule, the mirror.

One reader for every route this program renders or someone edited by hand, used by the operations side
(status, drift, rollback), the tests and the benchmarks alike.
"""

from __future__ import annotations

from decimal import Decimal

from canary.names import object_name
from canary.records import Record
from canary.weights import canary_percent, format_percent

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import Any

    Manifest = dict[str, Any]

PHASE_STABLE = "stable"
"""No canary: one Deployment, one backend."""
PHASE_HEADER_ONLY = "canary deployed, header-only"
"""Canary running at weight 0; only requests carrying canaryHeader reach it."""


def phase_of(has_canary: bool, canary_percent: Decimal, header_rule: bool) -> str:
    """The rollout state in words, a stack output.

    "stable" (no canary); "canary deployed, header-only" (weight 0, header rule on); "canary 0%"
    (weight 0, no header rule: canary pods warm, no traffic but mirrored requests); "canary N%" for
    0 < N <= 100, e.g. "canary 25%", "canary 0.5%", "canary 100%".
    """
    if not has_canary:
        return PHASE_STABLE
    if canary_percent == 0 and header_rule:
        return PHASE_HEADER_ONLY
    return f"canary {format_percent(canary_percent)}%"


class RouteState(Record):
    """What a live HTTPRoute does with traffic.

    stable_weight / canary_weight are the raw Gateway API weights of the split rule (canary None when the
    route has a single backend); canary_percent is the share they give the canary.
    """

    stable_weight: int
    canary_weight: int | None
    header_rule: tuple[str, str] | None
    mirror_percent: Decimal
    resource_version: str
    generation: int
    refusal: str | None = None
    """The controller's refusal of this generation (refusal_of), or None."""

    @property
    def canary_percent(self) -> Decimal:
        if self.canary_weight is None:
            return Decimal(0)
        return canary_percent(self.stable_weight, self.canary_weight)

    @property
    def stable_percent(self) -> Decimal:
        return Decimal(100) - self.canary_percent

    @property
    def phase(self) -> str:
        """The phase this route puts the release in (see phase_of)."""
        return phase_of(self.canary_weight is not None, self.canary_percent, self.header_rule is not None)


def _weight(ref: Manifest) -> int:
    # Gateway API defaults an omitted weight to 1.
    return int(ref.get("weight", 1))


VERDICT_CONDITIONS = ("Accepted", "ResolvedRefs")
"""The route conditions a controller gives its verdict in, per parent (Gateway API HTTPRoute status)."""
TRANSIENT_REASONS = frozenset({"Pending"})
"""A False condition with one of these reasons is not a verdict yet (the controller has not finished)."""


def refusal_of(route: Manifest) -> str | None:
    """The controller's refusal of the route's *current* generation, as "Accepted=False, Reason: message",
    or None when no parent refuses it (accepted, or not judged yet).

    Only conditions whose observedGeneration is the route's metadata.generation count: a refusal of an
    earlier spec says nothing about this one.
    """
    generation = route.get("metadata", {}).get("generation")
    for parent in route.get("status", {}).get("parents", []):
        for condition in parent.get("conditions", []):
            if (
                condition.get("type") in VERDICT_CONDITIONS
                and condition.get("status") == "False"
                and condition.get("observedGeneration") == generation
                and condition.get("reason") not in TRANSIENT_REASONS
            ):
                message = str(condition.get("message") or "").strip()
                verdict = f"{condition['type']}=False, {condition.get('reason')}"
                return f"{verdict}: {message}" if message else verdict
    return None


def split_rule_indices(route: Manifest, app_name: str) -> list[int]:
    """Indices of the route's split rules: every rule that sends to the stable Service (the app's rules, each
    with the weighted stable/canary split or stable alone; all carry the same weights). The header-override
    twins send to the canary alone and are not among them.

    The one definition of "the split rules", for reading the route (route_state) and for anything that must
    address their weights by JSON path (the article's `kubectl patch`, once per rule).
    """
    stable_name = object_name(app_name, "stable")
    return [
        index
        for index, rule in enumerate(_rules(route))
        if stable_name in (ref.get("name") for ref in rule.get("backendRefs", []))
    ]


def split_rule_index(route: Manifest, app_name: str) -> int | None:
    """Index of the route's first split rule (split_rule_indices), whose weights route_state reads; None
    when the route has none."""
    indices = split_rule_indices(route, app_name)
    return indices[0] if indices else None


def header_rule_of(route: Manifest, app_name: str) -> tuple[str, str] | None:
    """(name, value) of the header override: a rule matching a header whose only backend is the canary; the
    canary header is its first header match (canary.release.routing.header_rule)."""
    canary_name = object_name(app_name, "canary")
    for rule in _rules(route):
        headers = _headers(rule)
        if headers and [ref.get("name") for ref in rule.get("backendRefs", [])] == [canary_name]:
            return (headers[0]["name"], headers[0]["value"])
    return None


def route_state(route: Manifest, app_name: str) -> RouteState:
    """Interpret a live HTTPRoute rendered by this program (or edited by hand) for `app_name`."""
    stable_name, canary_name = object_name(app_name, "stable"), object_name(app_name, "canary")
    stable_weight, canary_weight = 0, None
    mirror = Decimal(0)
    index = split_rule_index(route, app_name)
    if index is not None:
        rule = _rules(route)[index]
        refs = {ref["name"]: ref for ref in rule.get("backendRefs", [])}
        stable_weight = _weight(refs[stable_name])
        if canary_name in refs:
            canary_weight = _weight(refs[canary_name])
        mirror = _mirror_percent(rule)
    meta = route.get("metadata", {})
    return RouteState(
        stable_weight=stable_weight,
        canary_weight=canary_weight,
        header_rule=header_rule_of(route, app_name),
        mirror_percent=mirror,
        resource_version=str(meta.get("resourceVersion", "")),
        generation=int(meta.get("generation", 0)),
        refusal=refusal_of(route),
    )


def _rules(route: Manifest) -> list[Manifest]:
    return list(route.get("spec", {}).get("rules", []))


def _headers(rule: Manifest) -> list[Manifest]:
    return [h for m in rule.get("matches", []) for h in m.get("headers", [])]


def _mirror_percent(rule: Manifest) -> Decimal:
    """The percent a RequestMirror filter of the rule copies (percent, fraction, or all when neither)."""
    for f in rule.get("filters", []):
        if f.get("type") == "RequestMirror":
            spec = f["requestMirror"]
            if "percent" in spec:
                return Decimal(spec["percent"])
            if "fraction" in spec:
                frac = spec["fraction"]
                return Decimal(frac["numerator"]) * 100 / Decimal(frac.get("denominator", 100))
            return Decimal(100)
    return Decimal(0)
