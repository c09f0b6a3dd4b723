"""Every object of one release, rendered from its settings as plain manifests (pure).

The component registers exactly these; tests, the policy pack's tests and the operations side's fast paths
render the same way, so nothing ever hand-builds a release object that could drift from the program.
"""

from dataclasses import dataclass, field

from canary.names import Track
from canary.release.access import (
    operator_role_binding_manifest,
    operator_role_manifest,
    operator_service_account_manifest,
    tls_secret_manifest,
)
from canary.release.routing import gateway_manifest, limit_problems, route_manifest
from canary.release.settings import ReleaseSettings
from canary.release.validate import ConfigError
from canary.release.workload import (
    Manifest,
    autoscaler_manifest,
    deployment_manifest,
    disruption_budget_manifest,
    namespace_manifest,
    service_manifest,
    tracks,
)


@dataclass(frozen=True)
class ReleaseManifests:
    """Every object one release consists of, rendered as manifests; None or absent when not created."""

    namespace: Manifest | None
    deployments: dict[Track, Manifest]
    services: dict[Track, Manifest]
    gateway: Manifest | None
    route: Manifest
    operator_rbac: list[Manifest] = field(default_factory=list)
    """ServiceAccount, Role and RoleBinding of the rollout operator (rolloutOperator), else empty."""
    tls_secret: Manifest | None = None
    """The TLS Secret built from tlsCert and tlsKey, else None (the Secret is managed elsewhere)."""
    autoscalers: dict[Track, Manifest] = field(default_factory=dict)
    """A HorizontalPodAutoscaler per track (autoscaling), else empty."""
    disruption_budgets: dict[Track, Manifest] = field(default_factory=dict)
    """A PodDisruptionBudget per track (podDisruptionBudget), else empty."""


def render(args: ReleaseSettings) -> ReleaseManifests:
    """Render the release (pure), raising ConfigError if the specs break a Gateway API limit."""
    rendered = ReleaseManifests(
        namespace=namespace_manifest(args.namespace) if args.create_namespace else None,
        deployments={track: deployment_manifest(args, track) for track in tracks(args)},
        services={track: service_manifest(args, track) for track in tracks(args)},
        gateway=gateway_manifest(args) if args.create_gateway else None,
        route=route_manifest(args),
        operator_rbac=[
            operator_service_account_manifest(args),
            operator_role_manifest(args),
            operator_role_binding_manifest(args),
        ]
        if args.rollout_operator is not None
        else [],
        tls_secret=tls_secret_manifest(args) if args.tls_cert is not None else None,
        autoscalers={track: autoscaler_manifest(args, track) for track in tracks(args)}
        if args.autoscaling is not None
        else {},
        disruption_budgets={track: disruption_budget_manifest(args, track) for track in tracks(args)}
        if args.pod_disruption_budget is not None
        else {},
    )
    problems = limit_problems(args, rendered.route, rendered.gateway)
    if problems:
        raise ConfigError(problems)
    return rendered
