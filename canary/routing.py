"""Gateway and HTTPRoute specs: header rule, weighted split, mirror (pure).

The HTTPRoute is the only object whose spec depends on the canary weight, so moving traffic is one in-place
update of one live object. Its rules, in order:

1. header override (only with a canary and a canaryHeader): path prefix "/" plus an exact header match ->
   canary only. Gateway API ranks a match with more header matches above one with fewer for the same path,
   so this wins over the split whatever the order; it is also listed first so the spec reads that way.
2. weighted split: stable and canary backendRefs with weights from weights.split_weights, plus an optional
   RequestMirror filter copying a percent of requests to canary. The canary backendRef stays at weight 0
   while the canary exists (rollback and step are then one-field changes); at 100 stable stays at weight 0.

Without a canary the route has one rule with a single stable backendRef.

Manifests are plain camelCase dicts with empty fields left out and hostnames sorted, so the rendered spec is
deterministic and a no-op `pulumi up` shows no diff.
"""

from typing import Any

from canary.config import (
    MAX_BACKEND_REFS,
    MAX_HOSTNAMES,
    MAX_LISTENERS,
    MAX_MATCHES,
    MAX_MATCHES_PER_RULE,
    MAX_RULES,
    CanaryHeader,
    CanaryReleaseArgs,
)
from canary.weights import decimals, split_weights
from canary.workload import SERVICE_PORT, Manifest, Track, object_name

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"
"""Pulumi is the one writer of the route: with server-side apply, a hand edit (`kubectl patch`) makes kubectl
the owner of `spec.rules`, and the next apply would fail on the field conflict. Forcing takes the fields back,
so `pulumi up` restores the declared weights instead of refusing."""
HTTP_PORT = 80
HTTPS_PORT = 443


def route_name(app_name: str) -> str:
    """Fixed name of the HTTPRoute: the app name itself."""
    return app_name


def listeners(args: CanaryReleaseArgs) -> list[Manifest]:
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


def gateway_manifest(args: CanaryReleaseArgs) -> Manifest:
    """The Gateway the release owns (createGateway), in the release namespace."""
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": args.gateway_name, "namespace": args.namespace},
        "spec": {"gatewayClassName": args.gateway_class_name, "listeners": listeners(args)},
    }


def parent_ref(args: CanaryReleaseArgs) -> Manifest:
    """The route's parentRef: the owned or existing Gateway; its namespace only when it differs."""
    ref: Manifest = {"name": args.gateway_name}
    if args.gateway_namespace != args.namespace:
        ref["namespace"] = args.gateway_namespace
    return ref


def backend_ref(args: CanaryReleaseArgs, track: Track, weight: int | None = None) -> Manifest:
    """A backendRef to a track's Service; weight left out (Gateway API default 1) when None."""
    ref: Manifest = {"name": object_name(args.app_name, track), "port": SERVICE_PORT}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _prefix_match() -> Manifest:
    return {"path": {"type": "PathPrefix", "value": "/"}}


def header_rule(args: CanaryReleaseArgs, header: CanaryHeader) -> Manifest:
    """Requests carrying the canary header go to canary only, at any weight."""
    match = {**_prefix_match(), "headers": [{"type": "Exact", "name": header.name, "value": header.value}]}
    return {"matches": [match], "backendRefs": [backend_ref(args, "canary")]}


def mirror_filter(args: CanaryReleaseArgs) -> Manifest:
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


def split_rule(args: CanaryReleaseArgs) -> Manifest:
    """The default rule: weighted stable/canary split (or stable alone), with the optional mirror."""
    rule: Manifest = {"matches": [_prefix_match()]}
    if not args.has_canary:
        rule["backendRefs"] = [backend_ref(args, "stable")]
        return rule
    stable, canary = split_weights(args.canary_weight)
    rule["backendRefs"] = [backend_ref(args, "stable", stable), backend_ref(args, "canary", canary)]
    if args.mirror_percent > 0:
        rule["filters"] = [mirror_filter(args)]
    return rule


def route_rules(args: CanaryReleaseArgs) -> list[Manifest]:
    """The route's rules in order: header override (when rendered), then the split."""
    header = args.header_route
    rules = [header_rule(args, header)] if header is not None else []
    return [*rules, split_rule(args)]


def route_manifest(args: CanaryReleaseArgs) -> Manifest:
    """The HTTPRoute `<app>` attaching to the Gateway."""
    spec: Manifest = {"parentRefs": [parent_ref(args)]}
    if args.hostnames:
        spec["hostnames"] = sorted(args.hostnames)
    spec["rules"] = route_rules(args)
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {
            "name": route_name(args.app_name),
            "namespace": args.namespace,
            "annotations": {PATCH_FORCE_ANNOTATION: "true"},
        },
        "spec": spec,
    }


def limit_problems(route: Manifest, gateway: Manifest | None) -> list[tuple[str, str]]:
    """Gateway API schema limits the rendered specs break, as (key, message) pairs for ConfigError.

    config.py already bounds the inputs (hostnames); this checks what was actually built, so a future rule
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
