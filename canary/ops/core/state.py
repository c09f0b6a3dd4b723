"""What the stack and the cluster say, as plain data: the deployed release, the route in state, drift.

Read once from the stack (outputs, exported state, history) and the apiserver, then handed to the pure
decisions in canary.ops.core.plan; nothing here talks to Pulumi or kubectl itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from canary.gateway_api import ROUTE_KIND, ROUTE_TYPES
from canary.names import Track
from canary.ops.core.history import HistoryEntry
from canary.ops.pulumi.exported import deployments_beside, stack_outputs
from canary.release.settings import ReleaseSettings
from canary.release.validate import ConfigError
from canary.route_state import RouteState, route_state
from canary.weights import format_percent, parse_percent, show_percent


@dataclass(frozen=True)
class Deployed:
    """The rollout state the stack's last successful update left, read from its outputs."""

    phase: str
    canary_percent: Decimal
    stable_image: str
    canary_image: str | None
    route_name: str
    namespace: str
    route_kind: str = ROUTE_KIND
    """HTTPRoute, or GRPCRoute for protocol grpc: the route's type in the state (read_state)."""

    @property
    def stable_percent(self) -> Decimal:
        return Decimal(100) - self.canary_percent

    @property
    def app_name(self) -> str:
        """The app name: the route is named after it (routing.route_name), so the route name is it."""
        return self.route_name


def output_percent(value: object) -> Decimal:
    """A weight stack output (an int, or a float for fractions, see weights.percent_number) as a Decimal."""
    return parse_percent(str(value))


def deployed_from_outputs(outputs: Mapping[str, Any]) -> Deployed | None:
    """The Deployed state from the stack outputs, or None when the stack has none (never deployed)."""
    if "phase" not in outputs:
        return None
    return Deployed(
        phase=str(outputs["phase"]),
        canary_percent=output_percent(outputs.get("canaryWeight", 0)),
        stable_image=str(outputs.get("stableImage", "")),
        canary_image=str(outputs.get("canaryImage") or "") or None,
        route_name=str(outputs["routeName"]),
        namespace=str(outputs["namespace"]),
    )


@dataclass(frozen=True)
class StackState:
    """What the exported stack state says: the deployed release, the route's URN and its last known spec."""

    deployed: Deployed | None
    route_urn: str | None
    route: RouteState | None
    deployment_urns: tuple[str, ...] = ()
    """The release's Deployments (a rollback's update scales them with the route: canary.release.capacity)."""


def read_state(deployment: Mapping[str, Any] | None) -> StackState:
    """Read `pulumi stack export`'s `deployment` section: stack outputs and the route resource (an HTTPRoute
    or a GRPCRoute)."""
    resources: list[dict[str, Any]] = list((deployment or {}).get("resources") or [])
    deployed = deployed_from_outputs(stack_outputs(resources))
    routes = [r for r in resources if r.get("type") in ROUTE_TYPES and not r.get("delete")]
    if deployed is not None:
        named = [r for r in routes if _metadata(r).get("name") == deployed.route_name]
        routes = named or routes
    if not routes:
        return StackState(deployed, None, None, ())
    route = routes[0]
    if deployed is not None:
        deployed = dataclasses.replace(deployed, route_kind=ROUTE_TYPES[route["type"]])
    spec_holder = route.get("outputs") or route.get("inputs") or {}
    app = deployed.app_name if deployed is not None else str(_metadata(route).get("name", ""))
    known = route_state(spec_holder, app) if "spec" in spec_holder else None
    return StackState(deployed, str(route["urn"]), known, deployments_beside(resources, route))


def _metadata(resource: Mapping[str, Any]) -> dict[str, Any]:
    holder = resource.get("outputs") or resource.get("inputs") or {}
    return dict(holder.get("metadata") or {})


@dataclass(frozen=True)
class Replicas:
    """Pods of one live Deployment: ready out of desired."""

    ready: int
    desired: int


def replicas_of(deployment: Mapping[str, Any] | None) -> Replicas | None:
    if deployment is None:
        return None
    status = deployment.get("status") or {}
    return Replicas(int(status.get("readyReplicas", 0)), int(deployment["spec"].get("replicas", 1)))


@dataclass(frozen=True)
class RolloutState:
    """Everything `canary status` shows, read once: config, stack state, last update, live objects."""

    stack: str
    project: str
    config: ReleaseSettings | None
    config_error: ConfigError | None
    state: StackState
    last_update: HistoryEntry | None
    live_route: RouteState | None
    live_error: str | None
    replicas: dict[Track, Replicas | None] = field(default_factory=dict)

    @property
    def deployed(self) -> Deployed | None:
        return self.state.deployed

    @property
    def drift(self) -> list[str]:
        return drift(self.state, self.live_route, self.live_error)

    @property
    def pending(self) -> list[str]:
        return pending(self.config, self.deployed)


def drift(state: StackState, live: RouteState | None, live_error: str | None = None) -> list[str]:
    """Where the live route differs from what the stack says: somebody edited it outside Pulumi."""
    deployed = state.deployed
    if deployed is None or live_error is not None:
        return []
    where = f"{deployed.namespace}/{deployed.route_name}"
    if live is None:
        return [f"DRIFT: live route {where} not found, stack says it exists"]
    found = []
    if live.canary_percent != deployed.canary_percent:
        found.append(
            f"DRIFT: live route sends {show_percent(live.canary_percent)} to canary, "
            f"stack says {show_percent(deployed.canary_percent)}"
        )
    known = state.route
    if known is not None:
        if live.header_rule != known.header_rule:
            found.append(
                f"DRIFT: live route header rule is {_header_text(live.header_rule)}, "
                f"stack says {_header_text(known.header_rule)}"
            )
        if live.mirror_percent != known.mirror_percent:
            found.append(
                f"DRIFT: live route mirrors {show_percent(live.mirror_percent)} to canary, "
                f"stack says {show_percent(known.mirror_percent)}"
            )
    return found


def _header_text(header: tuple[str, str] | None) -> str:
    return "off" if header is None else f"'{header[0]}: {header[1]}'"


def pending(config: ReleaseSettings | None, deployed: Deployed | None) -> list[str]:
    """Config changes not deployed yet (set with `pulumi config set` but no `pulumi up` since)."""
    if config is None or deployed is None:
        return []
    found = []
    if config.canary_percent != deployed.canary_percent:
        before, after = format_percent(deployed.canary_percent), format_percent(config.canary_percent)
        found.append(f"canaryWeight {before} -> {after}")
    if config.stable_image != deployed.stable_image:
        found.append(f"stableImage {deployed.stable_image} -> {config.stable_image}")
    if config.canary_image != deployed.canary_image:
        found.append(f"canaryImage {deployed.canary_image or '(none)'} -> {config.canary_image or '(none)'}")
    return found
