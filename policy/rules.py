"""The guardrails as pure functions: Kubernetes objects (as Pulumi passes them to a policy) -> problems.

Each check takes plain mappings, the way a policy sees a resource's properties (`apiVersion`, `kind`,
`metadata`, `spec`, camelCase), and returns a list of messages, empty when the object passes. Nothing here
imports pulumi_policy, so the rules are tested with plain pytest; policy/pack.py wires them into policies.

Properties arrive as read-only proxies (Mapping / Sequence, not dict / list), so the checks only use those
interfaces.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from canary.names import TRACK_LABEL

Obj = Mapping[str, Any]

GATEWAY_GROUP = "gateway.networking.k8s.io"

LONG_RUNNING_KINDS = frozenset({("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet")})
"""Workloads that serve traffic: they need readiness probes and resource requests."""

POD_TEMPLATE_KINDS = LONG_RUNNING_KINDS | {("apps", "ReplicaSet"), ("batch", "Job")}
"""Kinds whose pods come from spec.template (CronJob and bare Pods are handled separately)."""

SECCOMP_ALLOWED = ("RuntimeDefault", "Localhost")
"""Seccomp profile types Pod Security Standards "restricted" accepts."""

CAPABILITIES_ALLOWED_TO_ADD = ("NET_BIND_SERVICE",)
"""The only capability "restricted" lets a container add back after dropping ALL."""


def type_kind(resource_type: str) -> tuple[str, str]:
    """(API group, kind) of a Pulumi Kubernetes type token: `kubernetes:apps/v1:Deployment` ->
    ("apps", "Deployment"); the core group is "" (`kubernetes:core/v1:Pod` -> ("", "Pod"))."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return "", ""
    group = parts[1].rsplit("/", 1)[0]
    return ("" if group == "core" else group), parts[2]


def describe(kind: str, obj: Obj) -> str:
    """`Kind namespace/name` for messages, as far as the metadata says."""
    metadata = _mapping(obj.get("metadata"))
    name = metadata.get("name") or "?"
    namespace = metadata.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def pod_spec(group: str, kind: str, obj: Obj) -> Obj | None:
    """The pod spec a workload object runs, or None when the kind runs no pods."""
    spec = _mapping(obj.get("spec"))
    if (group, kind) == ("", "Pod"):
        return spec
    if (group, kind) in POD_TEMPLATE_KINDS:
        return _mapping(_mapping(spec.get("template")).get("spec"))
    if (group, kind) == ("batch", "CronJob"):
        job = _mapping(_mapping(spec.get("jobTemplate")).get("spec"))
        return _mapping(_mapping(job.get("template")).get("spec"))
    return None


def containers(spec: Obj, *, init: bool = True) -> list[tuple[str, Obj]]:
    """(label, container) for each container of a pod spec, init containers first when asked."""
    keys = ("initContainers", "containers") if init else ("containers",)
    found: list[tuple[str, Obj]] = []
    for key in keys:
        for index, container in enumerate(_sequence(spec.get(key))):
            container = _mapping(container)
            what = "init container" if key == "initContainers" else "container"
            found.append((f"{what} {container.get('name') or index!r}", container))
    return found


def readiness_probe_problems(group: str, kind: str, obj: Obj) -> list[str]:
    """Every container of a long-running workload has a readinessProbe.

    Without one a pod counts as ready as soon as it starts, so the Deployment is Available (and Pulumi moves
    traffic to it) before the app can serve.
    """
    if (group, kind) not in LONG_RUNNING_KINDS:
        return []
    spec = pod_spec(group, kind, obj) or {}
    what = describe(kind, obj)
    return [
        f"{what}: {label} has no readinessProbe (traffic would reach it before it can serve)"
        for label, container in containers(spec, init=False)
        if not container.get("readinessProbe")
    ]


def resource_request_problems(group: str, kind: str, obj: Obj) -> list[str]:
    """Every container (init containers too) of a long-running workload requests cpu and memory.

    Requests are what the scheduler places pods by; without them a canary can land on a full node and
    starve the stable pods beside it.
    """
    if (group, kind) not in LONG_RUNNING_KINDS:
        return []
    spec = pod_spec(group, kind, obj) or {}
    what = describe(kind, obj)
    problems = []
    for label, container in containers(spec):
        requests = _mapping(_mapping(container.get("resources")).get("requests"))
        missing = [resource for resource in ("cpu", "memory") if not requests.get(resource)]
        if missing:
            problems.append(f"{what}: {label} sets no resources.requests.{' or '.join(missing)}")
    return problems


def pod_security_problems(group: str, kind: str, obj: Obj) -> list[str]:
    """The pods meet Pod Security Standards "restricted" in the fields the apiserver checks.

    Per container, with the container's securityContext overriding the pod's where Kubernetes does:
    runAsNonRoot true and runAsUser not 0; allowPrivilegeEscalation false (explicitly: the default is true);
    not privileged; capabilities drop ALL and add nothing but NET_BIND_SERVICE; seccompProfile RuntimeDefault
    or Localhost. And no host namespaces. Checking this at preview stops a bad manifest before the
    apiserver's Pod Security Admission would refuse its pods, which for a Deployment happens only after the
    update, in the ReplicaSet's events, while the rollout hangs.
    """
    spec = pod_spec(group, kind, obj)
    if spec is None:
        return []
    what = describe(kind, obj)
    pod_context = _mapping(spec.get("securityContext"))
    problems = [
        f"{what}: spec.{field} is true (host namespaces are not allowed)"
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(field) is True
    ]
    for label, container in containers(spec):
        context = _mapping(container.get("securityContext"))

        def effective(field: str, context: Obj = context) -> Any:
            return context[field] if context.get(field) is not None else pod_context.get(field)

        found = []
        if effective("runAsNonRoot") is not True:
            found.append("runAsNonRoot must be true (container or pod securityContext)")
        if effective("runAsUser") == 0:
            found.append("runAsUser must not be 0 (root)")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append("securityContext.allowPrivilegeEscalation must be false")
        if context.get("privileged") is True:
            found.append("securityContext.privileged must not be true")
        capabilities = _mapping(context.get("capabilities"))
        if "ALL" not in [str(c) for c in _sequence(capabilities.get("drop"))]:
            found.append("securityContext.capabilities.drop must include ALL")
        added = [str(c) for c in _sequence(capabilities.get("add")) if c not in CAPABILITIES_ALLOWED_TO_ADD]
        if added:
            found.append(f"securityContext.capabilities.add may only hold NET_BIND_SERVICE, not {added}")
        seccomp = _mapping(effective("seccompProfile")).get("type")
        if seccomp not in SECCOMP_ALLOWED:
            found.append(f"seccompProfile.type must be RuntimeDefault or Localhost (got {seccomp!r})")
        problems.extend(f"{what}: {label}: {problem}" for problem in found)
    return problems


def is_route(group: str, kind: str) -> bool:
    return (group, kind) == (GATEWAY_GROUP, "HTTPRoute")


def backend_weights(rule: Obj) -> list[tuple[str, int]]:
    """(backend name, weight) of a route rule; Gateway API's default weight is 1."""
    refs = [_mapping(ref) for ref in _sequence(rule.get("backendRefs"))]
    return [(str(ref.get("name")), int(ref.get("weight", 1))) for ref in refs]


def route_rules(route: Obj) -> list[Obj]:
    return [_mapping(rule) for rule in _sequence(_mapping(route.get("spec")).get("rules"))]


def all_zero_weight_problems(route: Obj) -> list[str]:
    """No rule of an HTTPRoute has backends that all weigh 0.

    Gateway API answers every request of such a rule with a 500: it is an outage written as config (a rule
    without backendRefs, e.g. a redirect, is fine).
    """
    what = describe("HTTPRoute", route)
    problems = []
    for index, rule in enumerate(route_rules(route)):
        weights = backend_weights(rule)
        if weights and sum(weight for _, weight in weights) == 0:
            names = ", ".join(name for name, _ in weights)
            problems.append(
                f"{what}: rule {index} gives weight 0 to every backend ({names}), so the Gateway answers "
                "all of its requests with HTTP 500"
            )
    return problems


def split_backends(route: Obj) -> list[str]:
    """Names of the backends a route splits traffic between (rules with two or more backendRefs)."""
    names: list[str] = []
    for rule in route_rules(route):
        weights = backend_weights(rule)
        if len(weights) >= 2:
            names.extend(name for name, _ in weights if name not in names)
    return names


def header_override_problems(route: Obj, header_name: str = "") -> list[str]:
    """A route that splits traffic also has a header override: a rule matching a request header (named
    `header_name`, any header when empty) that sends everything to one backend of the split.

    That rule is how a team tests a canary by hand at any weight, including 0. A route with no split (no
    canary) needs none.
    """
    split = split_backends(route)
    if not split:
        return []
    for rule in route_rules(route):
        headers = [
            str(_mapping(header).get("name", ""))
            for match in _sequence(rule.get("matches"))
            for header in _sequence(_mapping(match).get("headers"))
        ]
        if header_name:
            headers = [name for name in headers if name.lower() == header_name.lower()]
        targets = {name for name, weight in backend_weights(rule) if weight > 0}
        if headers and len(targets) == 1 and targets <= set(split):
            return []
    header = f"a {header_name!r} header" if header_name else "a header"
    return [
        f"{describe('HTTPRoute', route)} splits traffic between {', '.join(split)} but has no rule matching "
        f"{header} that sends requests to one of them (set the canaryHeader config key)"
    ]


def canary_backends(route: Obj, services: Iterable[Obj]) -> set[str]:
    """Backends of a route that are canaries: Services in the route's namespace labelled
    `gateway-canary/track: canary`, or, for a backend whose Service is not among `services`, a name
    ending in `-canary`."""
    namespace = _mapping(route.get("metadata")).get("namespace")
    tracks: dict[str, str | None] = {}
    for service in services:
        metadata = _mapping(service.get("metadata"))
        if metadata.get("namespace") == namespace and metadata.get("name"):
            tracks[str(metadata["name"])] = _mapping(metadata.get("labels")).get(TRACK_LABEL)
    canaries = set()
    for rule in route_rules(route):
        for name, _ in backend_weights(rule):
            known = name in tracks
            if (known and tracks[name] == "canary") or (not known and name.endswith("-canary")):
                canaries.add(name)
    return canaries


def full_canary_problems(route: Obj, services: Iterable[Obj]) -> list[str]:
    """No split rule sends 100% of its traffic to canary backends while a stable backend stays at 0.

    100% is a hand-over point, not a place to stay: all traffic then runs on the canary's (usually smaller)
    Deployment, while the stable one idles at full size on the old image. The next change should be the
    promotion (stableImage := canaryImage, canaryImage := "") or a rollback.
    """
    canaries = canary_backends(route, services)
    if not canaries:
        return []
    what = describe("HTTPRoute", route)
    problems = []
    for index, rule in enumerate(route_rules(route)):
        weights = backend_weights(rule)
        to_canary = sum(weight for name, weight in weights if name in canaries)
        stable = [name for name, _ in weights if name not in canaries]
        to_stable = sum(weight for name, weight in weights if name not in canaries)
        if stable and to_canary > 0 and to_stable == 0:
            problems.append(
                f"{what}: rule {index} sends 100% of traffic to the canary "
                f"({', '.join(sorted(canaries & {n for n, _ in weights}))}) and none to "
                f"{', '.join(stable)}: promote (stableImage := canaryImage, canaryImage := '') or roll back"
            )
    return problems


def _mapping(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else ()
