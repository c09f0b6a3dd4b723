"""CanaryReleaseArgs: the component's public inputs, one field per stack config key.

The config surface and the library surface are one API: each field's name, camel-cased, is a config key of
Pulumi.yaml (`stable_image` <-> `stableImage`), and both ways in are checked by the same rules
(canary.release.validate) after being put in the form the engine hands config to a program: key -> string.

Fields another resource can produce (images, namespace, Gateway name and namespace, hostnames, TLS material)
are `pulumi.Input`s; the rest are plain, because they decide which objects exist or must be known when the
update is planned. Weights stay plain text percents: moving traffic must remain a one-field change whose
new split is known, and reviewable, at preview time.

Pulumi.yaml is the one place a default lives. A library caller may leave a field out; `DEFAULTS` holds the
same defaults for that case, and tests/unit/test_args.py fails the moment the two disagree.
"""

import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi

from canary.release.keys import RELEASE_KEYS, SECRET_KEYS, config_string


class CanaryReleaseArgs(TypedDict):
    """Inputs of one CanaryRelease (type token `gateway-canary:index:CanaryRelease`)."""

    app_name: NotRequired[str]
    """Name of the app: the HTTPRoute is `<appName>`, the Deployments and Services `<appName>-stable` and
    `<appName>-canary`. A DNS-1035 label of at most 56 characters. Changing it replaces every object."""
    namespace: NotRequired[pulumi.Input[str]]
    """Namespace of every object of the release (a DNS-1123 label)."""
    create_namespace: NotRequired[bool]
    """Create the namespace, labelled to enforce Pod Security Standards "restricted"."""
    stable_image: NotRequired[pulumi.Input[str]]
    """Image of the stable Deployment (a Docker reference, e.g. ghcr.io/org/app:1.2.3)."""
    canary_image: NotRequired[pulumi.Input[str]]
    """Image of the canary Deployment; "" means no canary. An Output always means a canary: whether one
    exists must be known when the update is planned, so it must resolve to an image reference."""
    canary_weight: NotRequired[str]
    """Percent of traffic sent to the canary, as text: 0 to 100 with at most 4 decimal places ("25",
    "0.5"). Must be "0" without a canary."""
    stable_replicas: NotRequired[int]
    """Pods of the stable Deployment (1..1000)."""
    canary_replicas: NotRequired[int]
    """Pods of the canary Deployment (1..1000)."""
    container_port: NotRequired[int]
    """Port the app listens on (1..65535); the Services expose it as port 80."""
    protocol: NotRequired[str]
    """What the app speaks: "http" (an HTTPRoute) or "grpc" (a GRPCRoute; the port named grpc, HTTP/2 to
    the pods, a gRPC health readiness probe)."""
    health_path: NotRequired[str]
    """HTTP path of the readiness probe, starting with "/"."""
    pod_template: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """The app's own pod template (a PodTemplateSpec as a camelCase dict, Pulumi Inputs inside it allowed, or
    a typed `pulumi_kubernetes.core.v1.PodTemplateSpecArgs`), run by both tracks; {} means the built-in
    one-container template. The app container must not set `image` (stable_image and canary_image do)."""
    canary_pod_template: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """Fields merged over pod_template for the canary only (containers by name); {} means none."""
    app_container: NotRequired[str]
    """Name of the container that runs the release's images; "" means the template's first container."""
    autoscaling: NotRequired[Mapping[str, Any]]
    """A HorizontalPodAutoscaler per track (minReplicas, maxReplicas, cpuUtilization, memoryUtilization or
    raw autoscaling/v2 metrics); {} means off. Once on, spec.replicas is the autoscaler's."""
    pod_disruption_budget: NotRequired[Mapping[str, Any]]
    """A PodDisruptionBudget per track: minAvailable or maxUnavailable (pods, or "50%"); {} means none."""
    capacity: NotRequired[Mapping[str, Any]]
    """How pod counts follow the weight: canary "traffic" (default) or "fixed", stable "full" (default) or
    "traffic", settleSeconds (default 5); {} means the defaults (canary.release.capacity)."""
    hostnames: NotRequired[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """Hostnames of the route and of the owned Gateway's listeners (at most 16); empty matches any host."""
    route_rules: NotRequired[Sequence[Mapping[str, Any]]]
    """The app's own HTTPRoute rules (name, matches, filters, timeouts) as Gateway API writes them; each
    rule without backendRefs gets the stable/canary split, the mirror and its own header-override rule, a
    rule with backendRefs is left as written. [] means one rule, PathPrefix "/"."""
    gateway_class_name: NotRequired[str]
    """GatewayClass of the owned Gateway (when createGateway is true)."""
    create_gateway: NotRequired[bool]
    """Own a Gateway in the release namespace (true), or attach to an existing one (false)."""
    gateway_name: NotRequired[pulumi.Input[str]]
    """Gateway the route attaches to; required when createGateway is false, else "" means
    `<appName>-gateway`."""
    gateway_namespace: NotRequired[pulumi.Input[str]]
    """Namespace of an existing Gateway; "" means the release namespace."""
    parent_refs: NotRequired[Sequence[Mapping[str, Any]]]
    """More Gateways the route attaches to (name, namespace, sectionName, port), besides the owned
    Gateway (createGateway true) or instead of gatewayName (createGateway false); [] means none."""
    tls_secret_name: NotRequired[str]
    """TLS Secret for an HTTPS listener on port 443 of the owned Gateway; "" means HTTP only."""
    canary_header: NotRequired[str]
    """Requests carrying this header ("name: value") reach the canary at any weight; "" turns it off."""
    mirror_percent: NotRequired[str]
    """Percent of requests copied to the canary (RequestMirror), as text like canaryWeight; "0" is off."""
    rollout_operator: NotRequired[str]
    """ServiceAccount to create with least-privilege RBAC for moving traffic; "" creates none."""
    rollout_timeout: NotRequired[int]
    """Seconds `pulumi up` waits for a Deployment to become Available, and for the gateway (10..3600)."""
    wait_for_gateway: NotRequired[bool]
    """Wait for the gateway controller to accept the route's current generation (and an owned Gateway to be
    Programmed), up to rolloutTimeout; false for a GatewayClass whose controller writes no status."""
    gateway_features: NotRequired[str]
    """"check": refuse, before anything is sent, a release that needs a Gateway API feature a GatewayClass of
    its Gateways does not list in status.supportedFeatures (or lists nothing while the release needs more
    than Core); "assume": go ahead with a warning when a class lists nothing."""
    tls_cert: NotRequired[pulumi.Input[str]]
    """PEM certificate (chain) for the Secret tlsSecretName, which the release then creates; "" means the
    Secret is managed elsewhere. Pass it as a secret Output."""
    tls_key: NotRequired[pulumi.Input[str]]
    """PEM private key matching tlsCert. Pass it as a secret Output (pulumi.Output.secret); from stack
    config it must be set with `pulumi config set --secret`."""


def camel_case(name: str) -> str:
    """`stable_image` -> `stableImage`: a field's config key (Pulumi's own rule for schema names)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake_case(key: str) -> str:
    """`stableImage` -> `stable_image`: a config key's field."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


FIELDS: tuple[str, ...] = tuple(CanaryReleaseArgs.__annotations__)
"""Every field of CanaryReleaseArgs, in declaration order (camel-cased: canary.release.keys.RELEASE_KEYS)."""

_SCHEMA_TYPES = {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object"}

DEFAULTS: dict[str, Any] = {
    "app_name": "podinfo",
    "namespace": "gateway-canary",
    "create_namespace": True,
    "stable_image": "ghcr.io/stefanprodan/podinfo:6.7.0",
    "canary_image": "",
    "canary_weight": "0",
    "stable_replicas": 2,
    "canary_replicas": 1,
    "container_port": 9898,
    "protocol": "http",
    "health_path": "/readyz",
    "pod_template": {},
    "canary_pod_template": {},
    "app_container": "",
    "autoscaling": {},
    "pod_disruption_budget": {},
    "capacity": {},
    "hostnames": [],
    "route_rules": [],
    "gateway_class_name": "gateway-canary",
    "create_gateway": True,
    "gateway_name": "",
    "gateway_namespace": "",
    "parent_refs": [],
    "tls_secret_name": "",
    "canary_header": "x-canary: true",
    "mirror_percent": "0",
    "rollout_operator": "",
    "rollout_timeout": 600,
    "wait_for_gateway": True,
    "gateway_features": "check",
    "tls_cert": "",
    "tls_key": "",
}
"""Pulumi.yaml's defaults, for library callers who leave a field out (a unit test keeps them equal)."""


def is_known(value: object) -> bool:
    """True when a value is plain data now (no Output or awaitable anywhere in it)."""
    if isinstance(value, list | tuple):
        return all(is_known(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and is_known(item) for key, item in value.items())
    return isinstance(value, str | int | float | bool)


def split_inputs(args: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The args as config: (raw strings of every key known now, inputs still to resolve by key).

    Missing fields take DEFAULTS. Unknown field names are kept under their camel-cased key, so validation
    reports them like a misspelt config key.
    """
    known: dict[str, str] = {}
    pending: dict[str, Any] = {}
    for name, value in {**DEFAULTS, **args}.items():
        key = camel_case(name)
        value = plain_objects(value)
        if is_known(value):
            known[key] = config_string(value)
        else:
            pending[key] = value
    return known, pending


def plain_objects(value: Any) -> Any:
    """`value` with every typed Pulumi input object in it (`pulumi_kubernetes.core.v1.PodTemplateSpecArgs`
    and the like) turned into the camelCase dict it stands for; Outputs inside are kept. The SDK has no
    public way to do this: pulumi._types.input_type_to_dict gives one level with the schema's names."""
    from pulumi import _types

    if _types.is_input_type(type(value)):
        return {key: plain_objects(item) for key, item in _types.input_type_to_dict(value).items()}
    if isinstance(value, Mapping):
        return {key: plain_objects(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_objects(item) for item in value]
    return value


def args_from_config(raw: Mapping[str, str]) -> CanaryReleaseArgs:
    """Stack config (key -> string, already validated) as typed args; secret keys become secret Outputs.

    Only the release's keys are taken (ops-only keys such as canaryPlan stay with the CLI). The types follow
    Pulumi.yaml's declared ones, so `config_string` turns each value back into exactly the string it was.
    """
    args: dict[str, Any] = {}
    for key in RELEASE_KEYS:
        if key not in raw:
            continue
        name, text = snake_case(key), raw[key]
        kind = _field_type(name)
        value: Any
        if kind == "boolean":
            value = text == "true"
        elif kind == "integer":
            value = int(text)
        elif kind in ("array", "object"):
            value = json.loads(text)
        else:
            value = text
        if key in SECRET_KEYS and value:
            value = pulumi.Output.secret(value)
        args[name] = value
    return args  # type: ignore[return-value]


def _field_type(name: str) -> str:
    """The Pulumi.yaml type of a field ("string", "integer", "boolean", "array", "object"), from its
    annotation."""
    return _schema_type(CanaryReleaseArgs.__annotations__[name])


def _schema_type(annotation: Any) -> str:
    """Unwrap NotRequired[...] and pulumi.Input[...] (a Union whose first member is the plain type)."""
    origin = typing.get_origin(annotation)
    if origin is NotRequired:
        return _schema_type(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return _schema_type(typing.get_args(annotation)[0])
    if origin is list or origin is Sequence:
        return "array"
    if origin is dict or origin is Mapping:
        return "object"
    return _SCHEMA_TYPES[annotation]
