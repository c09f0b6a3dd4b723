"""Gateway and HTTPRoute specs: header rule, weighted split, mirror (pure).

The HTTPRoute is the only object whose spec depends on the canary weight, so moving traffic is one in-place
update of one live object. Its rules, in order:

1. weighted split: stable and canary backendRefs with weights from weights.split_weights, plus an optional
   RequestMirror filter copying a percent of requests to canary. The canary backendRef stays at weight 0
   while the canary exists (rollback and step are then one-field changes); at 100 stable stays at weight 0.
   Without a canary this rule has the single stable backendRef.
2. header override (only with a canary and a canaryHeader): path prefix "/" plus an exact header match ->
   canary only. Gateway API ranks a match with more header matches above one with fewer for the same path,
   so this wins over the split whatever the order.

The split is listed first so that it keeps its index when the canary (and with it the header rule) comes
and goes: Envoy Gateway names a rule's Envoy cluster by its index (`httproute/<ns>/<name>/rule/<i>`), and
with the header rule first, deploying or removing a canary moved the split from rule/0 to rule/1. Under
load through the local Envoy, a request routed by the old rule/0 (stable only) then reached the new rule/0
cluster (the canary) during the switch: a canary answer at weight 0 (tests/integration/test_traffic.py).

Manifests are plain camelCase dicts with empty fields left out and hostnames sorted, so the rendered spec is
deterministic and a no-op `pulumi up` shows no diff.
"""

from typing import Any

from canary.gateway_api import (
    API_VERSION,
    GATEWAY_KIND,
    GATEWAY_PROGRAMMED,
    MAX_BACKEND_REFS,
    MAX_HOSTNAMES,
    MAX_LISTENERS,
    MAX_MATCHES,
    MAX_MATCHES_PER_RULE,
    MAX_RULES,
    ROUTE_ACCEPTED,
    ROUTE_KIND,
    WAIT_FOR_ANNOTATION,
)
from canary.names import Track, object_name, route_name
from canary.release.settings import CanaryHeader, ReleaseSettings
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


def parent_ref(args: ReleaseSettings) -> Manifest:
    """The route's parentRef: the owned or existing Gateway; its namespace only when it differs."""
    ref: Manifest = {"name": args.gateway_name}
    if args.gateway_namespace != args.namespace:
        ref["namespace"] = args.gateway_namespace
    return ref


def backend_ref(args: ReleaseSettings, track: Track, weight: int | None = None) -> Manifest:
    """A backendRef to a track's Service; weight left out (Gateway API default 1) when None."""
    ref: Manifest = {"name": object_name(args.app_name, track), "port": SERVICE_PORT}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _prefix_match() -> Manifest:
    return {"path": {"type": "PathPrefix", "value": "/"}}


def header_rule(args: ReleaseSettings, header: CanaryHeader) -> Manifest:
    """Requests carrying the canary header go to canary only, at any weight."""
    match = {**_prefix_match(), "headers": [{"type": "Exact", "name": header.name, "value": header.value}]}
    return {"matches": [match], "backendRefs": [backend_ref(args, "canary")]}


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


def split_rule(args: ReleaseSettings) -> Manifest:
    """The default rule: weighted stable/canary split (or stable alone), with the optional mirror."""
    rule: Manifest = {"matches": [_prefix_match()]}
    if not args.has_canary:
        rule["backendRefs"] = [backend_ref(args, "stable")]
        return rule
    stable, canary = split_weights(args.canary_percent)
    rule["backendRefs"] = [backend_ref(args, "stable", stable), backend_ref(args, "canary", canary)]
    if args.mirror_percent > 0:
        rule["filters"] = [mirror_filter(args)]
    return rule


def route_rules(args: ReleaseSettings) -> list[Manifest]:
    """The route's rules in order: the split, then the header override (when rendered); see the module."""
    header = args.header_route
    return [split_rule(args), *([header_rule(args, header)] if header is not None else [])]


def route_manifest(args: ReleaseSettings) -> Manifest:
    """The HTTPRoute `<app>` attaching to the Gateway."""
    spec: Manifest = {"parentRefs": [parent_ref(args)]}
    if args.hostnames:
        spec["hostnames"] = sorted(args.hostnames)
    spec["rules"] = route_rules(args)
    return {
        "apiVersion": API_VERSION,
        "kind": ROUTE_KIND,
        "metadata": _metadata(
            route_name(args.app_name),
            args.namespace,
            {PATCH_FORCE_ANNOTATION: "true", **_wait_for(args, ROUTE_ACCEPTED)},
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


def limit_problems(route: Manifest, gateway: Manifest | None) -> list[tuple[str, str]]:
    """Gateway API schema limits the rendered specs break, as (key, message) pairs for ConfigError.

    validate.py already bounds the inputs (hostnames); this checks what was actually built, so a future rule
    or listener cannot slip past the apiserver's limits unnoticed.
    """
    spec: dict[str, Any] = route["spec"]
    rules: list[Manifest] = spec["rules"]
    counts = [
        ("hostnames", "route hostnames", len(spec.get("hostnames", [])), MAX_HOSTNAMES),
        ("HTTPRoute spec.rules", "rules", len(rules), MAX_RULES),
        (
            "HTTPRoute spec.rules",
            "matches in all",
            sum(len(r.get("matches", [])) for r in rules),
            MAX_MATCHES,
        ),
    ]
    for index, rule in enumerate(rules):
        where = f"HTTPRoute spec.rules[{index}]"
        counts.append((where, "backendRefs", len(rule["backendRefs"]), MAX_BACKEND_REFS))
        counts.append((where, "matches", len(rule.get("matches", [])), MAX_MATCHES_PER_RULE))
    if gateway is not None:
        counts.append(("hostnames", "Gateway listeners", len(gateway["spec"]["listeners"]), MAX_LISTENERS))
    return [
        (key, f"{key}: renders {count} {what}, over Gateway API's limit of {limit}")
        for key, what, count, limit in counts
        if count > limit
    ]
