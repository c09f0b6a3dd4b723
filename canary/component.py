"""CanaryRelease: wires the specs into resources, sets dependencies, registers outputs.

The specs come from the pure modules (workload.py, routing.py); this module only decides which objects exist,
which depends on which, and what the release reports.
"""

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes

from canary.access import (
    operator_role_binding_manifest,
    operator_role_manifest,
    operator_service_account_manifest,
    tls_secret_manifest,
)
from canary.config import CanaryReleaseArgs, ConfigError
from canary.routing import gateway_manifest, limit_problems, route_manifest
from canary.weights import percent_number
from canary.workload import (
    Manifest,
    Track,
    deployment_manifest,
    namespace_manifest,
    object_name,
    service_manifest,
    tracks,
)

TYPE_TOKEN = "gateway-canary:index:CanaryRelease"


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


def render(args: CanaryReleaseArgs) -> ReleaseManifests:
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
    )
    problems = limit_problems(rendered.route, rendered.gateway)
    if problems:
        raise ConfigError(problems)
    return rendered


class CanaryRelease(pulumi.ComponentResource):
    """A stable and an optional canary version of one app behind one Gateway API HTTPRoute.

    Children: the Namespace (createNamespace), per track a Deployment and a Service named `<app>-<track>`,
    the Gateway (createGateway) and the HTTPRoute `<app>`. Every child is parented to this component, so an
    explicit Kubernetes provider passed in `opts` (provider= or providers=) reaches all of them; the
    component never builds a provider itself.

    Ordering, all from dependencies rather than from sequencing code:

    - The HTTPRoute depends on both Deployments and both Services. Pulumi waits for a Deployment to be
      Available (pods ready) before it counts as created or updated, so traffic moves to a version only
      once its pods can serve it.
    - Only the HTTPRoute's spec depends on canaryWeight (no weight in any label, annotation or other spec),
      so a weight change, rollback included, is one in-place update of the route; canary pods stay warm.
    - Promote is config, not code: stableImage := canaryImage, canaryImage := "", canaryWeight := 0. The
      stable Deployment rolls to the new image first; the route, which depends on it, is updated to its
      single stable backend only after that rollout completes. The canary Deployment and Service are no
      longer in the program, and Pulumi deletes removed resources at the end of the update, after the route
      stopped referencing them. No extra ordering is needed.

    Validation happens before anything is registered: `args` comes from config.parse_config, and the
    rendered specs are checked against Gateway API limits before this component registers itself.
    """

    phase: pulumi.Output[str]
    """The rollout state in words; see CanaryReleaseArgs.phase."""
    stable_weight: pulumi.Output[int | float]
    """Percent of traffic to stable."""
    canary_weight: pulumi.Output[int | float]
    """Percent of traffic to canary (0 without a canary)."""
    stable_image: pulumi.Output[str]
    canary_image: pulumi.Output[str]
    """The canary image, "" without a canary."""
    route_name: pulumi.Output[str]
    service_names: pulumi.Output[list[str]]
    """Service names, stable first."""
    namespace: pulumi.Output[str]
    gateway_name: pulumi.Output[str]
    """The Gateway the route attaches to (owned or existing)."""

    def __init__(
        self, name: str, args: CanaryReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        rendered = render(args)
        super().__init__(TYPE_TOKEN, name, None, opts)

        self.namespace_resource: kubernetes.core.v1.Namespace | None = None
        scoped: list[pulumi.Resource] = []
        if rendered.namespace is not None:
            self.namespace_resource = kubernetes.core.v1.Namespace(
                f"{name}-namespace", metadata=rendered.namespace["metadata"], opts=self._child()
            )
            scoped.append(self.namespace_resource)

        self.operator_rbac: list[pulumi.CustomResource] = self._operator_rbac(name, rendered, scoped)
        self.tls_secret: kubernetes.core.v1.Secret | None = None
        if rendered.tls_secret is not None:
            secret = rendered.tls_secret
            self.tls_secret = kubernetes.core.v1.Secret(
                f"{name}-tls",
                metadata=secret["metadata"],
                type=secret["type"],
                data=pulumi.Output.secret(secret["data"]),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(scoped), additional_secret_outputs=["data", "stringData"]
                ),
            )

        self.deployments: dict[Track, kubernetes.apps.v1.Deployment] = {}
        self.services: dict[Track, kubernetes.core.v1.Service] = {}
        # How long the provider's await may wait for a Deployment to become Available, and for its Service
        # to select a ready pod: the engine's own timeout, not a field of any object, so changing it
        # changes no live object.
        timeout = f"{args.rollout_timeout}s"
        rollout_timeouts = pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)
        )
        for track in tracks(args):
            deployment = rendered.deployments[track]
            self.deployments[track] = kubernetes.apps.v1.Deployment(
                f"{name}-{track}",
                metadata=deployment["metadata"],
                spec=deployment["spec"],
                opts=pulumi.ResourceOptions.merge(self._child(scoped), rollout_timeouts),
            )
            service = rendered.services[track]
            self.services[track] = kubernetes.core.v1.Service(
                f"{name}-{track}",
                metadata=service["metadata"],
                spec=service["spec"],
                opts=pulumi.ResourceOptions.merge(self._child(scoped), rollout_timeouts),
            )

        self.gateway: kubernetes.apiextensions.CustomResource | None = None
        if rendered.gateway is not None:
            tls = [self.tls_secret] if self.tls_secret is not None else []
            self.gateway = self._custom_resource(f"{name}-gateway", rendered.gateway, [*scoped, *tls])

        route_dependencies: list[pulumi.Resource] = [
            *scoped,
            *self.deployments.values(),
            *self.services.values(),
            *([self.gateway] if self.gateway is not None else []),
        ]
        self.route = self._custom_resource(f"{name}-route", rendered.route, route_dependencies)

        self.phase = pulumi.Output.from_input(args.phase)
        self.stable_weight = pulumi.Output.from_input(percent_number(args.stable_percent))
        self.canary_weight = pulumi.Output.from_input(percent_number(args.canary_weight))
        self.stable_image = pulumi.Output.from_input(args.stable_image)
        self.canary_image = pulumi.Output.from_input(args.canary_image or "")
        self.route_name = pulumi.Output.from_input(str(rendered.route["metadata"]["name"]))
        self.service_names = pulumi.Output.from_input([object_name(args.app_name, t) for t in tracks(args)])
        self.namespace = pulumi.Output.from_input(args.namespace)
        self.gateway_name = pulumi.Output.from_input(args.gateway_name)
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output[Any]]:
        """The release's outputs by their stack-output names (camelCase), for register_outputs and exports."""
        return {
            "phase": self.phase,
            "stableWeight": self.stable_weight,
            "canaryWeight": self.canary_weight,
            "stableImage": self.stable_image,
            "canaryImage": self.canary_image,
            "routeName": self.route_name,
            "serviceNames": self.service_names,
            "namespace": self.namespace,
            "gatewayName": self.gateway_name,
        }

    def _operator_rbac(
        self, name: str, rendered: ReleaseManifests, scoped: list[pulumi.Resource]
    ) -> list[pulumi.CustomResource]:
        """The rollout operator's ServiceAccount, Role and RoleBinding, named `<name>-rollout-operator`."""
        if not rendered.operator_rbac:
            return []
        account, role, binding = rendered.operator_rbac
        child = f"{name}-rollout-operator"
        sa = kubernetes.core.v1.ServiceAccount(
            child,
            metadata=account["metadata"],
            automount_service_account_token=account["automountServiceAccountToken"],
            opts=self._child(scoped),
        )
        rbac_role = kubernetes.rbac.v1.Role(
            child, metadata=role["metadata"], rules=role["rules"], opts=self._child(scoped)
        )
        rbac_binding = kubernetes.rbac.v1.RoleBinding(
            child,
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=self._child([*scoped, sa, rbac_role]),
        )
        return [sa, rbac_role, rbac_binding]

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        """Options for a child: always parented here (nothing the caller passed can replace that)."""
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on or []))

    def _custom_resource(
        self, name: str, manifest: Manifest, depends_on: list[pulumi.Resource]
    ) -> kubernetes.apiextensions.CustomResource:
        """A Gateway API object; metadata.namespace is always explicit, which custom resources need."""
        return kubernetes.apiextensions.CustomResource(
            name,
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=self._child(depends_on),
        )
