"""What a release asks of its gateway, and whether the GatewayClass says it can (pure).

Gateway API splits what a route may ask into Core features (every conformant implementation has them: the
HTTPRoute itself, weighted backendRefs, path and Exact header matches, request header modifiers) and named
Extended ones, which an implementation lists in its GatewayClass's `status.supportedFeatures`. An
implementation that lacks one may still accept the route: Traefik v3.6 answers every request of a rule with
a RequestMirror filter with HTTP 500 while the route's status says Accepted (docs/traefik-notes.md), so a
green `pulumi up` would hide a full outage. The release therefore lists every Extended feature its config
needs (`needs`), each with the config key that asks for it, and refuses before anything is sent when a
GatewayClass it attaches to does not list one (`problems`).

A class that publishes no list (its controller predates supportedFeatures, or no controller runs) says
nothing either way: a release that needs only Core features goes ahead; one that needs an Extended feature is
refused, unless `gatewayFeatures` is "assume" (then it goes ahead with a warning naming what was assumed).
Feature names are Gateway API v1.6's (sigs.k8s.io/gateway-api pkg/features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.release.route_rules import where
from canary.release.settings import ReleaseSettings

GATEWAY_FEATURE_MODES = ("check", "assume")
"""`gatewayFeatures`: check the GatewayClasses' lists (default), or assume what a class does not list."""


@dataclass(frozen=True)
class Need:
    """One Extended feature the release asks of its gateway, and the config key (with its path) asking."""

    feature: str
    key: str


def needs(args: ReleaseSettings) -> list[Need]:
    """Every named feature the release's route needs, once each, in the order its keys are read: the route
    kind (protocol), the mirror (mirrorPercent), the app's rules (routeRules), a parentRef's port."""
    found: list[Need] = [Need("GRPCRoute" if args.protocol == "grpc" else "HTTPRoute", "protocol")]
    if args.mirror_percent > 0:
        found.append(Need("HTTPRouteRequestMirror", "mirrorPercent"))
        if args.mirror_percent < 100:
            found.append(Need("HTTPRouteRequestPercentageMirror", "mirrorPercent"))
    for index, rule in enumerate(args.route_rules):
        found += _rule_needs(where(index, rule), rule, args.protocol)
    for parent in args.parents:
        if parent.port is not None:
            found.append(
                Need("HTTPRouteParentRefPort", f"parentRefs ({parent.namespace}/{parent.name}).port")
            )
    seen: set[str] = set()
    unique = []
    for need in found:
        if need.feature not in seen:
            seen.add(need.feature)
            unique.append(need)
    return unique


def _rule_needs(at: str, rule: Mapping[str, Any], protocol: str) -> list[Need]:
    found: list[Need] = []
    if "name" in rule:
        kind = "GRPCRoute" if protocol == "grpc" else "HTTPRoute"
        found.append(Need(f"{kind}NamedRouteRule", f"{at}.name"))
    for i, match in enumerate(rule.get("matches") or []):
        if protocol == "http" and "method" in match:
            found.append(Need("HTTPRouteMethodMatching", f"{at}.matches[{i}].method"))
        if "queryParams" in match:
            found.append(Need("HTTPRouteQueryParamMatching", f"{at}.matches[{i}].queryParams"))
    mirrors = 0
    for i, entry in enumerate(rule.get("filters") or []):
        here = f"{at}.filters[{i}]"
        kind = entry.get("type")
        if kind == "ResponseHeaderModifier":
            found.append(Need("HTTPRouteResponseHeaderModification", here))
        elif kind == "URLRewrite":
            rewrite = entry.get("urlRewrite") or {}
            if "path" in rewrite:
                found.append(Need("HTTPRoutePathRewrite", f"{here}.urlRewrite.path"))
            if "hostname" in rewrite:
                found.append(Need("HTTPRouteHostRewrite", f"{here}.urlRewrite.hostname"))
        elif kind == "RequestRedirect":
            redirect = entry.get("requestRedirect") or {}
            for field, feature in (
                ("path", "HTTPRoutePathRedirect"),
                ("port", "HTTPRoutePortRedirect"),
                ("scheme", "HTTPRouteSchemeRedirect"),
            ):
                if field in redirect:
                    found.append(Need(feature, f"{here}.requestRedirect.{field}"))
            if redirect.get("statusCode") in (303, 307, 308):
                code = redirect["statusCode"]
                found.append(Need(f"HTTPRoute{code}RedirectStatusCode", f"{here}.requestRedirect.statusCode"))
        elif kind == "RequestMirror":
            mirrors += 1
            found.append(Need("HTTPRouteRequestMirror", here))
            mirror = entry.get("requestMirror") or {}
            if "percent" in mirror or "fraction" in mirror:
                found.append(Need("HTTPRouteRequestPercentageMirror", here))
        elif kind == "CORS":
            found.append(Need("HTTPRouteCORS", here))
    if mirrors > 1:
        found.append(Need("HTTPRouteRequestMultipleMirrors", f"{at}.filters"))
    timeouts = rule.get("timeouts") or {}
    if "request" in timeouts:
        found.append(Need("HTTPRouteRequestTimeout", f"{at}.timeouts.request"))
    if "backendRequest" in timeouts:
        found.append(Need("HTTPRouteBackendTimeout", f"{at}.timeouts.backendRequest"))
    return found


CORE = frozenset({"HTTPRoute", "Gateway"})
"""Features every conformant implementation of the HTTP profile has: a class that lists nothing is taken to
have these, and only these."""


def supported_features(gateway_class: Mapping[str, Any]) -> frozenset[str] | None:
    """The names a GatewayClass lists in status.supportedFeatures (objects with `name` since v1.2, plain
    strings before), or None when it lists none."""
    listed = (gateway_class.get("status") or {}).get("supportedFeatures") or []
    names = {str(f["name"]) if isinstance(f, dict) else str(f) for f in listed}
    return frozenset(names) or None


@dataclass(frozen=True)
class Verdict:
    """What the check found: problems refuse the release (nothing is sent), warnings are logged."""

    problems: list[tuple[str, str]]
    warnings: list[str]


def judge(wanted: Sequence[Need], classes: Mapping[str, frozenset[str] | None], assume: bool) -> Verdict:
    """Hold the needs against each GatewayClass the route attaches through (`classes`: class name -> its
    listed features, None when it lists none). A class that lists features and lacks a need is a problem
    naming the feature, the class and the key; a class listing nothing is a problem for every need beyond
    Core unless `assume`, then one warning."""
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    for name, listed in classes.items():
        if listed is None:
            unknown = [need for need in wanted if need.feature not in CORE]
            if unknown and assume:
                said = ", ".join(f"{need.feature} ({need.key})" for need in unknown)
                warnings.append(
                    f"GatewayClass {name!r} lists no supportedFeatures; assumed (gatewayFeatures: assume): "
                    + said
                )
            elif unknown:
                problems += [
                    (
                        _top_key(need.key),
                        f"{need.key}: needs the Gateway API feature {need.feature}, and GatewayClass "
                        f"{name!r} lists no supportedFeatures to say it has it: leave it out, or set "
                        "gatewayFeatures to 'assume' to go ahead anyway",
                    )
                    for need in unknown
                ]
            continue
        problems += [
            (
                _top_key(need.key),
                f"{need.key}: needs the Gateway API feature {need.feature}, which GatewayClass {name!r} "
                "does not list in status.supportedFeatures (its gateway could accept the route and not serve "
                "it as asked): leave it out, or attach to a class that supports it",
            )
            for need in wanted
            if need.feature not in listed
        ]
    return Verdict(problems, warnings)


def _top_key(key: str) -> str:
    """The config key a need's path starts with: `routeRules[0] ('api').timeouts.request` -> routeRules."""
    for mark in ("[", ".", " "):
        key = key.split(mark, 1)[0]
    return key
