"""The validated settings of one release: what every pure spec function and the component read.

Frozen and plain (no Pulumi types), so specs are pure functions of it and tests build it directly.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from canary.route_state import phase_of


@dataclass(frozen=True)
class CanaryHeader:
    """A request header that routes to canary regardless of weight (exact match)."""

    name: str
    value: str


@dataclass(frozen=True)
class Autoscaling:
    """A HorizontalPodAutoscaler per track (autoscaling/v2)."""

    min_replicas: int
    max_replicas: int
    metrics: tuple[Mapping[str, Any], ...] = field(hash=False)
    """autoscaling/v2 MetricSpecs, as the HPA's spec.metrics lists them."""


@dataclass(frozen=True)
class ParentRef:
    """A Gateway the route attaches to (an HTTPRoute parentRef of kind Gateway)."""

    name: str
    namespace: str
    section_name: str | None = None
    """One listener of the Gateway, by name; None attaches to every listener that allows the route."""
    port: int | None = None
    """The listeners on this port only; None means any port."""


Protocol = Literal["http", "grpc"]
PROTOCOLS: tuple[Protocol, ...] = ("http", "grpc")

CanaryMode = Literal["traffic", "fixed"]
StableMode = Literal["full", "traffic"]
CANARY_MODES: tuple[CanaryMode, ...] = ("traffic", "fixed")
STABLE_MODES: tuple[StableMode, ...] = ("full", "traffic")


@dataclass(frozen=True)
class Capacity:
    """The `capacity` config: how each track's pod count follows the weight (canary.release.capacity)."""

    canary: CanaryMode = "traffic"
    """traffic: the canary runs max(canaryReplicas, ceil(R x w / 100)) pods; fixed: canaryReplicas."""
    stable: StableMode = "full"
    """full: the stable runs R pods whatever the weight; traffic: max(1, ceil(R x (100 - w) / 100))."""
    settle_seconds: int = 5
    """Seconds between the gateway accepting a route that took a track's share away and that track's
    scale-down, for proxies to stop sending to the pods that go."""


@dataclass(frozen=True)
class ReleaseSettings:
    """Validated settings for one CanaryRelease; build it with validate.parse_config.

    Field names are the config keys in snake_case. Optional parts are None or empty rather than "" so the
    component never has to know which string meant "off".
    """

    app_name: str
    """Base of every object name: `<app>` (route), `<app>-stable`, `<app>-canary`."""
    namespace: str
    """Namespace of every object the release creates."""
    create_namespace: bool
    """Create the namespace, labelled for Pod Security Standards "restricted"."""
    stable_image: str
    """Image of the stable Deployment."""
    canary_image: str | None
    """Image of the canary Deployment; None means no canary objects and a single-backend route."""
    canary_percent: Decimal
    """Percent of traffic sent to canary (0..100, up to 4 decimal places); 0 when there is no canary."""
    stable_replicas: int
    """Pods of the stable Deployment."""
    canary_replicas: int
    """Pods of the canary Deployment."""
    container_port: int
    """Port the application listens on."""
    protocol: Protocol
    """What the app speaks: http (an HTTPRoute) or grpc (a GRPCRoute, HTTP/2 to the pods, gRPC readiness)."""
    health_path: str
    """HTTP path of the readiness probe."""
    pod_template: Mapping[str, Any] | None = field(hash=False)
    """The app's own pod template (podTemplate), as given; None means the built-in one-container template."""
    canary_pod_template: Mapping[str, Any] | None = field(hash=False)
    """Fields merged over the template for the canary only (canaryPodTemplate); None means none."""
    app_container: str | None
    """Name of the container that runs the release's images; None means the template's first container."""
    autoscaling: Autoscaling | None
    """A HorizontalPodAutoscaler per track; None means the Deployments run the configured replicas."""
    pod_disruption_budget: Mapping[str, int | str] | None = field(hash=False)
    """The PodDisruptionBudget's spec field per track ({"minAvailable": 2} or {"maxUnavailable": "50%"});
    None means none."""
    capacity: Capacity
    """How each track's pod count follows the weight (canary.release.capacity)."""
    hostnames: tuple[str, ...]
    """Hostnames of the route (and of the owned Gateway's listeners), sorted; empty matches any host."""
    route_rules: tuple[Mapping[str, Any], ...] = field(hash=False)
    """The app's own HTTPRoute rules (routeRules), as given; empty means the one rule PathPrefix "/".
    A rule without backendRefs gets the weighted split (canary.release.routing); one with them is the
    user's, rendered untouched."""
    gateway_class_name: str
    """GatewayClass of the owned Gateway."""
    create_gateway: bool
    """Own a Gateway (True) or attach the route to an existing one (False)."""
    gateway_name: str
    """Name of the Gateway the route attaches to (owned or existing)."""
    gateway_namespace: str
    """Namespace of that Gateway."""
    parents: tuple[ParentRef, ...]
    """Every Gateway the route attaches to, in order: the owned Gateway (createGateway) or the one
    gatewayName names, then parentRefs; with createGateway false and parentRefs set, parentRefs alone."""
    tls_secret_name: str | None
    """Secret with the certificate for the owned Gateway's HTTPS listener; None means HTTP only."""
    canary_header: CanaryHeader | None
    """Header that forces canary; None turns the header rule off."""
    mirror_percent: Decimal
    """Percent of requests copied to canary (RequestMirror); 0 is off."""
    rollout_timeout: int
    """Seconds `pulumi up` waits for a Deployment to become Available, and for the gateway's verdict."""
    wait_for_gateway: bool
    """The route waits for its controller's acceptance of the current generation; an owned Gateway for
    Programmed (pulumi.com/waitFor, see routing.py)."""
    gateway_features: str
    """check or assume (canary.release.features): what a GatewayClass that lists no features is taken to
    support."""
    rollout_operator: str | None
    """ServiceAccount that may move traffic (patch the HTTPRoute) and nothing more; None creates no RBAC."""
    tls_cert: str | None = field(repr=False)
    """PEM certificate (chain) for the Secret `tls_secret_name`; None when the Secret is managed elsewhere."""
    tls_key: str | None = field(repr=False)
    """PEM private key matching tls_cert; kept out of repr so it never lands in a log or a traceback."""

    @property
    def has_canary(self) -> bool:
        """True when a canary Deployment, Service and backend exist."""
        return self.canary_image is not None

    @property
    def header_route(self) -> CanaryHeader | None:
        """The header rule actually rendered: only when there is a canary to route to."""
        return self.canary_header if self.has_canary else None

    @property
    def stable_percent(self) -> Decimal:
        """Percent of traffic sent to stable."""
        return Decimal(100) - self.canary_percent

    @property
    def phase(self) -> str:
        """The rollout state in words (canary.route_state.phase_of), as the rendered route will show it."""
        return phase_of(self.has_canary, self.canary_percent, self.canary_header is not None)
