"""Gateway and HTTPRoute specs: the app's rules with the weighted split, header overrides, mirror (pure).

The HTTPRoute is the only object whose spec depends on the canary weight, so moving traffic is one in-place
update of one live object. Its rules, in order:

1. each routeRules entry in its place (canary.release.route_rules; default: one rule, PathPrefix "/"). An
   app rule (no backendRefs of its own) gets the weighted split: stable and canary backendRefs with weights
   from weights.split_weights, plus an optional RequestMirror filter after its own filters copying a percent
   of requests to canary. The canary backendRef stays at weight 0 while the canary exists (rollback and step
   are then one-field changes per rule); at 100 stable stays at weight 0. Without a canary an app rule has
   the single stable backendRef. A rule with its own backendRefs is rendered as written.
2. header overrides (only with a canary and a canaryHeader): per app rule, a twin with the same matches, each
   also matching the header exactly, the same filters and timeouts -> canary only. Gateway API ranks a match
   with more header matches above one with fewer for the same path (and method), so a twin wins over its
   rule whatever the order, and the twins keep the ranking the rules have among themselves.

The app's rules are listed first so that they keep their indices when the canary (and with it the twins)
comes and goes: Envoy Gateway names a rule's Envoy cluster by its index
(`httproute/<ns>/<name>/rule/<i>`), and with the header rule first, deploying or removing a canary moved the
split from rule/0 to rule/1. Under load through the local Envoy, a request routed by the old rule/0 (stable
only) then reached the new rule/0 cluster (the canary) during the switch: a canary answer at weight 0
(tests/integration/test_traffic.py).

Manifests are plain camelCase dicts with empty fields left out and hostnames sorted, so the rendered spec is
deterministic and a no-op `pulumi up` shows no diff.
"""

import json
from typing import Any

from canary.gateway_api import (
    API_VERSION,
    GATEWAY_KIND,
    GATEWAY_PROGRAMMED,
    MAX_BACKEND_REFS,
    MAX_FILTERS,
    MAX_HOSTNAMES,
    MAX_LISTENERS,
    MAX_MATCHES,
    MAX_MATCHES_PER_RULE,
    MAX_RULES,
    ROUTE_KINDS,
    WAIT_FOR_ANNOTATION,
    route_accepted,
)
from canary.names import Track, object_name, route_name
from canary.release.route_rules import header_rule_name, is_app_rule
from canary.release.settings import CanaryHeader, ParentRef, ReleaseSettings
from canary.release.workload import SERVICE_PORT, Manifest
from canary.weights import decimals, split_weights

PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"
"""Pulumi is the one writer of the route: with server-side apply, a hand edit (`kubectl patch`) makes kubectl
the owner of `spec.rules`, and the next apply would fail on the field conflict. Forcing takes the fields back,
so `pulumi up` restores the declared weights instead of refusing."""
HTTP_PORT = 80
HTTPS_PORT = 443


def listeners(args: ReleaseSettings) -> list[Manifest]:
    """Listeners of the owned Gateway: HTTP on 80, plus HTTPS on 443 terminating TLS when a secret is set.

    A listener takes one hostname, so with hostnames there is one HTTP (and HTTPS) listener per hostname,
    named by position in the sorted list; without hostnames one listener per protocol accepts any host.
    """
    hosts: list[str | None] = list(args.hostnames) or [None]
    result: list[Manifest] = []
    for protocol, port in (("HTTP", HTTP_PORT), ("HTTPS", HTTPS_PORT)):
        if protocol == "HTTPS" and args.tls_secret_name is None:
            continue
        for index, host in enumerate(hosts):
            listener: Manifest = {
                "name": protocol.lower() if host is None else f"{protocol.lower()}-{index}",
                "protocol": protocol,
                "port": port,
            }
            if host is not None:
                listener["hostname"] = host
            if protocol == "HTTPS":
                listener["tls"] = {
                    "mode": "Terminate",
                    "certificateRefs": [{"kind": "Secret", "name": args.tls_secret_name}],
                }
            result.append(listener)
    return result


def gateway_manifest(args: ReleaseSettings) -> Manifest:
    """The Gateway the release owns (createGateway), in the release namespace."""
    return {
        "apiVersion": API_VERSION,
        "kind": GATEWAY_KIND,
        "metadata": _metadata(args.gateway_name, args.namespace, _wait_for(args, GATEWAY_PROGRAMMED)),
        "spec": {"gatewayClassName": args.gateway_class_name, "listeners": listeners(args)},
    }


def parent_ref(args: ReleaseSettings, parent: ParentRef) -> Manifest:
    """One parentRef of the route: the Gateway's name, its namespace only when it differs from the route's,
    and the listener (sectionName, port) when one is named."""
    ref: Manifest = {"name": parent.name}
    if parent.namespace != args.namespace:
        ref["namespace"] = parent.namespace
    if parent.section_name is not None:
        ref["sectionName"] = parent.section_name
    if parent.port is not None:
        ref["port"] = parent.port
    return ref


def parent_refs(args: ReleaseSettings) -> list[Manifest]:
    """Every parentRef of the route, in the order ReleaseSettings.parents gives."""
    return [parent_ref(args, parent) for parent in args.parents]


def backend_ref(args: ReleaseSettings, track: Track, weight: int | None = None) -> Manifest:
    """A backendRef to a track's Service; weight left out (Gateway API default 1) when None."""
    ref: Manifest = {"name": object_name(args.app_name, track), "port": SERVICE_PORT}
    if weight is not None:
        ref["weight"] = weight
    return ref


DEFAULT_RULE: Manifest = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
"""The app's one HTTP rule when routeRules is empty: every path (Gateway API's own default, written out)."""
GRPC_DEFAULT_RULE: Manifest = {}
"""The app's one gRPC rule when routeRules is empty: a GRPCRoute rule without matches matches every call."""


def default_rule(args: ReleaseSettings) -> Manifest:
    return GRPC_DEFAULT_RULE if args.protocol == "grpc" else DEFAULT_RULE


def app_rules(args: ReleaseSettings) -> list[Manifest]:
    """The rules as the user wrote them (routeRules), or the default one; copies, free to change."""
    given = args.route_rules or (default_rule(args),)
    return [json.loads(json.dumps(rule)) for rule in given]


def header_rule(args: ReleaseSettings, header: CanaryHeader, rule: Manifest | None = None) -> Manifest:
    """The header-override twin of an app rule (default: the default rule): the same matches, each also
    matching the canary header (for gRPC, a metadata match), the same filters and timeouts, and the canary
    as the only backend, so requests carrying the header reach the canary at any weight and get the same
    treatment as the rest.

    The canary header is each match's first header match (route_state reads it there). A twin has one more
    header match than its rule, which Gateway API ranks above the rule itself for the same path."""
    twin: Manifest = json.loads(json.dumps(default_rule(args) if rule is None else rule))
    wanted = {"type": "Exact", "name": header.name, "value": header.value}
    matches = twin.get("matches") or default_rule(args).get("matches") or [{}]
    twin["matches"] = [{**match, "headers": [dict(wanted), *match.get("headers", [])]} for match in matches]
    if "name" in twin:
        twin["name"] = header_rule_name(twin["name"])
    twin["backendRefs"] = [backend_ref(args, "canary")]
    return twin


def mirror_filter(args: ReleaseSettings) -> Manifest:
    """RequestMirror copying mirrorPercent of requests to canary (responses of the copies are dropped).

    Whole percents use `percent` (standard since Gateway API v1.3); fractions use `fraction`, exact by the
    same scaling as the weights: 0.5 -> 5/1000.
    """
    mirror: Manifest = {"backendRef": backend_ref(args, "canary")}
    if decimals(args.mirror_percent) == 0:
        mirror["percent"] = int(args.mirror_percent)
    else:
        rest, numerator = split_weights(args.mirror_percent)
        mirror["fraction"] = {"numerator": numerator, "denominator": rest + numerator}
    return {"type": "RequestMirror", "requestMirror": mirror}


def split_rule(args: ReleaseSettings, rule: Manifest | None = None) -> Manifest:
    """An app rule (default: the default rule) with the weighted stable/canary split (or stable alone) and
    the optional mirror after the rule's own filters; its name, matches and timeouts as written."""
    split: Manifest = json.loads(json.dumps(default_rule(args) if rule is None else rule))
    if not args.has_canary:
        split["backendRefs"] = [backend_ref(args, "stable")]
        return split
    stable, canary = split_weights(args.canary_percent)
    split["backendRefs"] = [backend_ref(args, "stable", stable), backend_ref(args, "canary", canary)]
    if args.mirror_percent > 0:
        split["filters"] = [*split.get("filters", []), mirror_filter(args)]
    return split


def route_rules(args: ReleaseSettings) -> list[Manifest]:
    """The route's rules in order: each routeRules entry in place (an app rule with the split, the user's
    own as written), then the header-override twins of the app rules (when the override is rendered); see
    the module."""
    rules = app_rules(args)
    rendered = [split_rule(args, rule) if is_app_rule(rule) else rule for rule in rules]
    header = args.header_route
    if header is not None:
        rendered += [header_rule(args, header, rule) for rule in rules if is_app_rule(rule)]
    return rendered


def route_manifest(args: ReleaseSettings) -> Manifest:
    """The route `<app>` attaching to its Gateways: an HTTPRoute, or a GRPCRoute for protocol grpc."""
    parents = parent_refs(args)
    spec: Manifest = {"parentRefs": parents}
    if args.hostnames:
        spec["hostnames"] = sorted(args.hostnames)
    spec["rules"] = route_rules(args)
    return {
        "apiVersion": API_VERSION,
        "kind": ROUTE_KINDS[args.protocol],
        "metadata": _metadata(
            route_name(args.app_name),
            args.namespace,
            {PATCH_FORCE_ANNOTATION: "true", **_wait_for(args, route_accepted(parents, args.namespace))},
        ),
        "spec": spec,
    }


def _wait_for(args: ReleaseSettings, expressions: str) -> dict[str, str]:
    """The waitFor annotation when the release waits for the gateway (waitForGateway), else none.

    Only metadata changes with it, so turning the wait on or off moves no traffic (an annotation does not
    bump the route's generation)."""
    return {WAIT_FOR_ANNOTATION: expressions} if args.wait_for_gateway else {}


def _metadata(name: str, namespace: str, annotations: dict[str, str]) -> Manifest:
    """Object metadata with the namespace always explicit (custom resources need it), no empty fields."""
    metadata: Manifest = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def limit_problems(args: ReleaseSettings, route: Manifest, gateway: Manifest | None) -> list[tuple[str, str]]:
    """Gateway API schema limits the rendered specs break, as (key, message) pairs for ConfigError.

    validate.py bounds each input (hostnames, each routeRules entry); this checks what was actually built,
    where inputs add up (the header-override twins, the mirror filter), naming the rule it concerns.
    """
    key = "routeRules" if args.route_rules else f"{ROUTE_KINDS[args.protocol]} spec.rules"
    spec: dict[str, Any] = route["spec"]
    rules: list[Manifest] = spec["rules"]
    twins = len(rules) - len(app_rules(args))
    doubled = f" ({twins} of them header-override twins: canaryHeader '' turns them off)" if twins else ""
    counts = [
        ("hostnames", "hostnames: renders", "route hostnames", len(spec.get("hostnames", [])), MAX_HOSTNAMES),
        (key, f"{key}: renders", f"rules{doubled}", len(rules), MAX_RULES),
        (key, f"{key}: renders", f"matches in all{doubled}", _match_count(rules), MAX_MATCHES),
    ]
    for index, rule in enumerate(rules):
        at = f"{key}: {ROUTE_KINDS[args.protocol]} spec.rules[{index}]" + (
            f" ({rule['name']!r})" if "name" in rule else ""
        )
        counts.append(
            (key, f"{at} renders", "backendRefs", len(rule.get("backendRefs", [])), MAX_BACKEND_REFS)
        )
        counts.append((key, f"{at} renders", "matches", len(rule.get("matches", [])), MAX_MATCHES_PER_RULE))
        counts.append(
            (key, f"{at} renders", "filters (the mirror included)", len(rule.get("filters", [])), MAX_FILTERS)
        )
    if gateway is not None:
        listeners_count = len(gateway["spec"]["listeners"])
        counts.append(
            ("hostnames", "hostnames: renders", "Gateway listeners", listeners_count, MAX_LISTENERS)
        )
    return [
        (key, f"{where} {count} {what}, over Gateway API's limit of {limit}")
        for key, where, what, count, limit in counts
        if count > limit
    ]


def _match_count(rules: list[Manifest]) -> int:
    """Matches across the rules, a rule without any counting as Gateway API's one default match."""
    return sum(len(rule.get("matches") or [{}]) for rule in rules)
