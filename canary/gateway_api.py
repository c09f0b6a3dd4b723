"""Gateway API (v1, standard channel) constants: apiVersion, kinds, Pulumi type tokens, schema limits.

A route that breaks a schema limit is rejected by the apiserver only after the Deployments rolled out, so the
program checks the limits itself (release/validate.py on the inputs, release/routing.py on what it
rendered). The type tokens are how the Pulumi Kubernetes provider names these objects in stack state; the
operations side finds the release's route in `pulumi stack export` by them.
"""

import json

API_VERSION = "gateway.networking.k8s.io/v1"
GATEWAY_KIND = "Gateway"
ROUTE_KIND = "HTTPRoute"

ROUTE_RESOURCE = "httproute.gateway.networking.k8s.io"
"""The HTTPRoute's resource name for `kubectl get` (unambiguous even if another API defines HTTPRoute)."""
ROUTE_PLURAL = "httproutes"
"""The HTTPRoute's resource in REST paths (/apis/<API_VERSION>/namespaces/<ns>/httproutes/<name>)."""
GATEWAY_RESOURCE = "gateway.gateway.networking.k8s.io"
"""The Gateway's resource name for `kubectl get`."""
GATEWAY_CLASS_RESOURCE = "gatewayclass.gateway.networking.k8s.io"
"""The GatewayClass's resource name for `kubectl get` (cluster-scoped)."""

ROUTE_TYPE = f"kubernetes:{API_VERSION}:{ROUTE_KIND}"
"""Type token of the HTTPRoute in stack state (a CustomResource of that apiVersion and kind)."""

GRPC_ROUTE_KIND = "GRPCRoute"
"""The route of a release with protocol grpc (standard channel since Gateway API v1.1)."""
ROUTE_KINDS = {"http": ROUTE_KIND, "grpc": GRPC_ROUTE_KIND}
"""The route kind of each `protocol`."""
ROUTE_RESOURCES = {ROUTE_KIND: ROUTE_RESOURCE, GRPC_ROUTE_KIND: "grpcroute.gateway.networking.k8s.io"}
"""Each route kind's resource name for `kubectl get`."""
ROUTE_PLURALS = {ROUTE_KIND: ROUTE_PLURAL, GRPC_ROUTE_KIND: "grpcroutes"}
"""Each route kind's resource in REST paths."""
ROUTE_TYPES = {f"kubernetes:{API_VERSION}:{kind}": kind for kind in ROUTE_RESOURCES}
"""Type token in stack state -> route kind: how the operations side finds a release's route of either kind."""
GATEWAY_TYPE = f"kubernetes:{API_VERSION}:{GATEWAY_KIND}"
"""Type token of an owned Gateway in stack state."""

MAX_WEIGHT = 1_000_000
"""Largest backendRef weight Gateway API allows; weights are integers in 0..MAX_WEIGHT."""

MAX_HOSTNAMES = 16
"""HTTPRoute spec.hostnames maxItems."""
MAX_RULES = 16
"""HTTPRoute spec.rules maxItems."""
MAX_BACKEND_REFS = 16
"""HTTPRouteRule backendRefs maxItems."""
GRPC_MAX_MATCHES_PER_RULE = 64
"""GRPCRouteRule matches maxItems (and, as for HTTPRoute, 128 matches across the route's rules)."""
MAX_FILTERS = 16
"""HTTPRouteRule filters maxItems."""
MAX_HEADER_MATCHES = 16
"""HTTPRouteMatch headers maxItems."""
MAX_PARENT_REFS = 32
"""HTTPRoute spec.parentRefs maxItems."""
MAX_MATCHES_PER_RULE = 64
"""HTTPRouteRule matches maxItems."""
MAX_MATCHES = 128
"""Matches across all rules of one HTTPRoute (a CEL rule on the route)."""
MAX_LISTENERS = 64
"""Gateway spec.listeners maxItems."""
MAX_HEADER_NAME = 256
"""HTTPHeaderName maxLength."""
MAX_HEADER_VALUE = 4096
"""HTTPHeaderMatch value maxLength."""


WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
"""The Kubernetes provider's readiness override for custom resources: a JSONPath condition, or a JSON array of
them that must all hold, checked on every watch event until the resource's timeout."""


def current_condition(
    conditions: str, condition_type: str, field: str = "status", value: str = "True"
) -> str:
    """A waitFor expression: the condition `condition_type` in the list at `conditions` has `field` ==
    `value` *for the object's current generation*.

    The naive `{...conditions[?(@.type=="Accepted")].status}=True` is already satisfied by the status the
    controller wrote for the previous spec, right after a weight change; requiring the condition's
    observedGeneration to equal metadata.generation waits until the controller has judged the new spec.
    The provider reads the first match (pulumi-kubernetes pkg/jsonpath Matches), so a route's parents are
    checked through the first status entry that carries the condition; this program's routes have one
    parent.
    """
    return (
        f"jsonpath={{{conditions}[?@.type=='{condition_type}' && "
        f"@.observedGeneration==$.metadata.generation].{field}}}={value}"
    )


def verdict(conditions: str, condition_type: str) -> list[str]:
    """Reason first, then status: the provider stops at the first unmet expression of a list and logs
    what it found there, so while a controller refuses the spec the update's log names its reason
    (`Waiting for {...reason}=Accepted (found "NotAllowedByListeners")`). Gateway API's reason for a True
    condition is the condition's own name (Accepted, ResolvedRefs, Programmed)."""
    return [
        current_condition(conditions, condition_type, "reason", condition_type),
        current_condition(conditions, condition_type),
    ]


def parent_filter(ref: dict[str, object], route_namespace: str) -> str:
    """A JSONPath filter selecting the route status entry of one parentRef (Gateway API echoes each spec
    parentRef in status.parents[].parentRef): by name, namespace (an omitted one is the route's, whether the
    controller echoes it or not), and the sectionName and port when the ref names them. Names are DNS
    subdomains (validated), so they need no quoting."""
    parts = [f"@.parentRef.name=='{ref['name']}'"]
    namespace = ref.get("namespace")
    if namespace is None:
        parts.append(f"(!@.parentRef.namespace || @.parentRef.namespace=='{route_namespace}')")
    else:
        parts.append(f"@.parentRef.namespace=='{namespace}'")
    if ref.get("sectionName") is not None:
        parts.append(f"@.parentRef.sectionName=='{ref['sectionName']}'")
    if ref.get("port") is not None:
        parts.append(f"@.parentRef.port=={ref['port']}")
    return " && ".join(parts)


def route_accepted(parents: list[dict[str, object]], route_namespace: str) -> str:
    """waitFor of an HTTPRoute: ROUTE_ACCEPTED with one parent; with several, the same verdicts for each
    parent's own status entry, so the update waits for every Gateway and a refusal names the one refusing
    (the provider logs the first unmet expression, which carries the parent's name)."""
    if len(parents) <= 1:
        return ROUTE_ACCEPTED
    expressions = []
    for ref in parents:
        conditions = f".status.parents[?{parent_filter(ref, route_namespace)}].conditions"
        expressions += [*verdict(conditions, "Accepted"), *verdict(conditions, "ResolvedRefs")]
    return json.dumps(expressions)


ROUTE_ACCEPTED = json.dumps(
    [
        *verdict(".status.parents[*].conditions", "Accepted"),
        *verdict(".status.parents[*].conditions", "ResolvedRefs"),
    ]
)
"""waitFor of an HTTPRoute: its controller accepted the current generation and resolved its backendRefs."""
GATEWAY_PROGRAMMED = json.dumps(verdict(".status.conditions", "Programmed"))
"""waitFor of a Gateway: its controller programmed the data plane for the current generation."""
