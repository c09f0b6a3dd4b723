"""CanaryRelease: wires the rendered specs into resources, sets dependencies, derives outputs from children.

The specs come from the pure modules (render.py and the spec modules it calls); this module only decides
which objects exist, which depends on which, and what the release reports.
"""

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pulumi_kubernetes as kubernetes

from canary.gateway_api import API_VERSION, GATEWAY_KIND, ROUTE_KINDS, ROUTE_RESOURCES
from canary.names import Track
from canary.release import features, live
from canary.release.args import CanaryReleaseArgs, split_inputs
from canary.release.capacity import scale_downs
from canary.release.keys import SECRET_KEYS, config_string
from canary.release.render import ReleaseManifests, render
from canary.release.run_error import as_run_error
from canary.release.settings import ReleaseSettings
from canary.release.validate import PRESENCE_KEYS, ConfigError, parse_config
from canary.release.workload import Manifest, tracks
from canary.route_state import RouteState, route_state
from canary.weights import percent_number

TYPE_TOKEN = "gateway-canary:index:CanaryRelease"

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """The release's settings on the way in: as known now, and as the objects will be rendered."""

    shape: ReleaseSettings
    """Known at construction; decides which objects exist (an Output stands for a value that is present)."""
    public: ReleaseSettings | pulumi.Output[ReleaseSettings]
    """Everything but TLS material, once known: what all but the TLS Secret's data is rendered from."""
    full: ReleaseSettings | pulumi.Output[ReleaseSettings]
    """All of it, TLS material included (secret when that is): the TLS Secret's data only."""


@as_run_error
def resolve_settings(args: Mapping[str, Any]) -> Settings:
    """Validate the args: everything known now at once (raising ConfigError before anything is
    registered), and Output values again when they resolve, with the same rules.

    A bad resolved value fails the update before any object that depends on it is sent: every object
    depends on `public`, and the TLS Secret on `full`.
    """
    known, pending = split_inputs(args)
    shape = parse_config(known, deferred=pending)
    if not pending:
        return Settings(shape, shape, shape)
    present = PRESENCE_KEYS.intersection(pending)

    def resolve(keys: set[str]) -> pulumi.Output[ReleaseSettings]:
        @as_run_error
        def validated(values: dict[str, Any]) -> ReleaseSettings:
            resolved = {key: config_string(value) for key, value in values.items()}
            still = set(pending) - keys
            return parse_config({**known, **resolved}, deferred=still, present=present - still)

        return pulumi.Output.all(**{key: pulumi.Output.from_input(pending[key]) for key in keys}).apply(
            validated
        )

    # Only the TLS Secret's data may depend on key material, so its secrecy never spreads to other objects.
    others = set(pending) - SECRET_KEYS
    public = resolve(others) if others else shape
    return Settings(shape, public, resolve(set(pending)))


class CanaryRelease(pulumi.ComponentResource):
    """A stable and an optional canary version of one app behind one Gateway API HTTPRoute.

    Children: the Namespace (createNamespace), per track a Deployment and a Service named `<app>-<track>`
    (and a HorizontalPodAutoscaler and a PodDisruptionBudget of that name with autoscaling and
    podDisruptionBudget), the Gateway (createGateway) and the HTTPRoute `<app>`. Every child is parented
    to this component, so an explicit Kubernetes provider passed in `opts` (provider= or providers=)
    reaches all of them; the component never builds a provider itself.

    Ordering, all from dependencies rather than from sequencing code:

    - The HTTPRoute depends on both Services and on each Deployment whose pod count does not go down in
      this update. Pulumi waits for a Deployment to be Available (pods ready) before it counts as created
      or updated, so traffic moves to a version, or to more of it, only once its pods can serve it.
    - A Deployment whose pod count goes down (capacity follows traffic: canary.release.capacity) depends
      instead on the route, and waits capacity.settleSeconds after the route's update (which waits for the
      gateway's acceptance of the new generation), so pods go only once traffic left them. Which way each
      track goes is decided from the weight the live route carries now (canary.release.live, read in
      previews too); without one (a first update) every Deployment comes first.
    - Only the HTTPRoute's spec and the Deployments' spec.replicas depend on canaryWeight (no weight in any
      label, annotation or pod template), so a weight change, rollback included, updates the route in place
      and at most scales a Deployment; no pod restarts, and with capacity.canary "fixed" and stable "full"
      the route is the only object that changes.
    - Promote is config, not code: stableImage := canaryImage, canaryImage := "", canaryWeight := 0. The
      stable Deployment rolls to the new image first; the route, which depends on it, is updated to its
      single stable backend only after that rollout completes. The canary Deployment and Service are no
      longer in the program, and Pulumi deletes removed resources at the end of the update, after the route
      stopped referencing them. No extra ordering is needed.

    Validation happens before anything is registered (resolve_settings), and the rendered specs are checked
    against Gateway API limits before this component registers itself. The outputs are read from the
    children (the route's name from the route, the weights from its spec, the images from the
    Deployments), so anything that consumes them is ordered after the objects they describe.
    """

    phase: pulumi.Output[str]
    """The rollout state in words: "stable", "canary deployed, header-only", "canary 25%"."""
    stable_weight: pulumi.Output[float]
    """Percent of traffic the route sends to stable (the stack output stableWeight)."""
    canary_weight: pulumi.Output[float]
    """Percent of traffic the route sends to canary, 0 without a canary (the stack output canaryWeight)."""
    stable_image: pulumi.Output[str]
    """The image the stable Deployment runs."""
    canary_image: pulumi.Output[str]
    """The image the canary Deployment runs, "" without a canary."""
    route_name: pulumi.Output[str]
    """Name of the HTTPRoute."""
    service_names: pulumi.Output[list[str]]
    """Names of the Services, stable first."""
    namespace: pulumi.Output[str]
    """Namespace of the release's objects."""
    gateway_name: pulumi.Output[str]
    """The Gateway the route attaches to (owned or existing)."""

    def __init__(
        self,
        name: str,
        args: CanaryReleaseArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        read_live_route: bool = True,
        check_gateway_features: bool = True,
    ) -> None:
        """`read_live_route`: read the live route's weight from the cluster of the default Kubernetes
        provider (canary.release.live) to order pod count changes around the route; False (a program whose
        explicit provider reaches another cluster) orders every Deployment before the route, as in a first
        update. `check_gateway_features`: read the GatewayClasses' supportedFeatures from that cluster and
        refuse a release needing one they lack (canary.release.features), before anything is registered;
        False skips the check (another cluster, as above)."""
        settings = resolve_settings(args)
        shape = settings.shape
        if check_gateway_features:
            _check_gateway_features(shape)
        self._rendered = _rendered(settings.public)
        with_key_material = _rendered(settings.full)
        super().__init__(TYPE_TOKEN, name, None, opts)

        self.namespace_resource: kubernetes.core.v1.Namespace | None = None
        scoped: list[pulumi.Resource] = []
        if shape.create_namespace:
            self.namespace_resource = kubernetes.core.v1.Namespace(
                f"{name}-namespace",
                metadata=self._part(lambda r: _some(r.namespace)["metadata"]),
                opts=self._child(),
            )
            scoped.append(self.namespace_resource)

        self.operator_rbac: list[pulumi.CustomResource] = (
            self._operator_rbac(name, scoped) if shape.rollout_operator is not None else []
        )
        self.tls_secret: kubernetes.core.v1.Secret | None = None
        if shape.tls_cert is not None:
            self.tls_secret = kubernetes.core.v1.Secret(
                f"{name}-tls",
                metadata=self._part(lambda r: _some(r.tls_secret)["metadata"]),
                type=self._part(lambda r: _some(r.tls_secret)["type"]),
                data=pulumi.Output.secret(_part(with_key_material, lambda r: _some(r.tls_secret)["data"])),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(scoped), additional_secret_outputs=["data", "stringData"]
                ),
            )

        self.deployments: dict[Track, kubernetes.apps.v1.Deployment] = {}
        self.services: dict[Track, kubernetes.core.v1.Service] = {}
        self.autoscalers: dict[Track, kubernetes.autoscaling.v2.HorizontalPodAutoscaler] = {}
        self.disruption_budgets: dict[Track, kubernetes.policy.v1.PodDisruptionBudget] = {}
        # How long the provider's await may wait for a Deployment to become Available, for its Service to
        # select a ready pod, and for the gateway's verdict on the route and Gateway (waitForGateway): the
        # engine's own timeout, not a field of any object, so changing it changes no live object.
        timeout = f"{shape.rollout_timeout}s"
        rollout_timeouts = pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)
        )
        downs = pulumi.Output.from_input(settings.public).apply(
            lambda resolved: _scale_downs(resolved, read_live_route)
        )
        deferred: tuple[
            pulumi.Output[list[pulumi.Resource]], Callable[[pulumi.Output[list[pulumi.Resource]]], None]
        ] = pulumi.deferred_output()
        route_done, resolve_route_done = deferred
        for track in tracks(shape):
            self.deployments[track] = kubernetes.apps.v1.Deployment(
                f"{name}-{track}",
                metadata=self._part(_pick("deployments", track, "metadata")),
                spec=self._part(_pick("deployments", track, "spec")),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=_deployment_dependencies(track, downs, scoped, route_done),
                    custom_timeouts=rollout_timeouts.custom_timeouts,
                ),
            )
            self.services[track] = kubernetes.core.v1.Service(
                f"{name}-{track}",
                metadata=self._part(_pick("services", track, "metadata")),
                spec=self._part(_pick("services", track, "spec")),
                opts=pulumi.ResourceOptions.merge(self._child(scoped), rollout_timeouts),
            )
            if shape.autoscaling is not None:
                self.autoscalers[track] = kubernetes.autoscaling.v2.HorizontalPodAutoscaler(
                    f"{name}-{track}",
                    metadata=self._part(_pick("autoscalers", track, "metadata")),
                    spec=self._part(_pick("autoscalers", track, "spec")),
                    opts=self._child(scoped),
                )
            if shape.pod_disruption_budget is not None:
                self.disruption_budgets[track] = kubernetes.policy.v1.PodDisruptionBudget(
                    f"{name}-{track}",
                    metadata=self._part(_pick("disruption_budgets", track, "metadata")),
                    spec=self._part(_pick("disruption_budgets", track, "spec")),
                    opts=self._child(scoped),
                )

        self.gateway: kubernetes.apiextensions.CustomResource | None = None
        if shape.create_gateway:
            tls = [self.tls_secret] if self.tls_secret is not None else []
            self.gateway = self._custom_resource(
                f"{name}-gateway", GATEWAY_KIND, lambda r: _some(r.gateway), [*scoped, *tls], rollout_timeouts
            )

        before_route: list[pulumi.Resource] = [
            *scoped,
            *self.services.values(),
            *([self.gateway] if self.gateway is not None else []),
        ]
        deployments = dict(self.deployments)
        route_dependencies = downs.apply(
            lambda down: [
                *before_route,
                *(deployment for track, deployment in deployments.items() if track not in down[1]),
            ]
        )
        self.route = self._custom_resource(
            f"{name}-route",
            ROUTE_KINDS[shape.protocol],
            lambda r: r.route,
            route_dependencies,
            rollout_timeouts,
        )
        resolve_route_done(_output_of(self.route, "metadata").apply(lambda _: [self.route]))
        self._outputs_from_children(shape.app_name)
        self.register_outputs(self.outputs())

    def _outputs_from_children(self, app_name: str) -> None:
        """Every output is read from the child it describes, never echoed from the inputs."""
        route_metadata = _output_of(self.route, "metadata")
        live: pulumi.Output[RouteState] = pulumi.Output.all(
            route_metadata, _output_of(self.route, "spec")
        ).apply(lambda parts: route_state({"metadata": parts[0], "spec": parts[1]}, app_name))
        self.phase = live.apply(lambda state: state.phase)
        self.stable_weight = live.apply(lambda state: float(percent_number(state.stable_percent)))
        self.canary_weight = live.apply(lambda state: float(percent_number(state.canary_percent)))
        self.stable_image = _image_of(self.deployments["stable"])
        canary = self.deployments.get("canary")
        self.canary_image = _image_of(canary) if canary is not None else pulumi.Output.from_input("")
        self.route_name = route_metadata.apply(lambda meta: _field(meta, "name"))
        self.namespace = route_metadata.apply(lambda meta: _field(meta, "namespace"))
        self.service_names = pulumi.Output.all(
            *[
                _output_of(service, "metadata").apply(lambda meta: _field(meta, "name"))
                for service in self.services.values()
            ]
        )
        if self.gateway is not None:
            self.gateway_name = _output_of(self.gateway, "metadata").apply(lambda meta: _field(meta, "name"))
        else:
            self.gateway_name = _output_of(self.route, "spec").apply(
                lambda spec: str(spec["parentRefs"][0]["name"])
            )

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

    def _part(self, pick: Callable[[ReleaseManifests], T]) -> T | pulumi.Output[T]:
        """One piece of the rendered release (everything but key material)."""
        return _part(self._rendered, pick)

    def _operator_rbac(self, name: str, scoped: list[pulumi.Resource]) -> list[pulumi.CustomResource]:
        """The rollout operator's ServiceAccount, Role and RoleBinding, named `<name>-rollout-operator`."""
        child = f"{name}-rollout-operator"

        def rbac(index: int) -> Callable[[ReleaseManifests], Manifest]:
            return lambda r: r.operator_rbac[index]

        account, role, binding = rbac(0), rbac(1), rbac(2)
        sa = kubernetes.core.v1.ServiceAccount(
            child,
            metadata=self._part(lambda r: account(r)["metadata"]),
            automount_service_account_token=self._part(lambda r: account(r)["automountServiceAccountToken"]),
            opts=self._child(scoped),
        )
        rbac_role = kubernetes.rbac.v1.Role(
            child,
            metadata=self._part(lambda r: role(r)["metadata"]),
            rules=self._part(lambda r: role(r)["rules"]),
            opts=self._child(scoped),
        )
        rbac_binding = kubernetes.rbac.v1.RoleBinding(
            child,
            metadata=self._part(lambda r: binding(r)["metadata"]),
            role_ref=self._part(lambda r: binding(r)["roleRef"]),
            subjects=self._part(lambda r: binding(r)["subjects"]),
            opts=self._child([*scoped, sa, rbac_role]),
        )
        return [sa, rbac_role, rbac_binding]

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        """Options for a child: always parented here (nothing the caller passed can replace that)."""
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on or []))

    def _custom_resource(
        self,
        name: str,
        kind: str,
        pick: Callable[[ReleaseManifests], Manifest],
        depends_on: list[pulumi.Resource] | pulumi.Output[list[pulumi.Resource]],
        timeouts: pulumi.ResourceOptions,
    ) -> kubernetes.apiextensions.CustomResource:
        """A Gateway API object; metadata.namespace is always explicit, which custom resources need.

        apiVersion and kind name the resource type, so they are plain constants, not rendered values.
        """
        return kubernetes.apiextensions.CustomResource(
            name,
            api_version=API_VERSION,
            kind=kind,
            metadata=self._part(lambda r: pick(r)["metadata"]),
            spec=self._part(lambda r: pick(r)["spec"]),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=depends_on, custom_timeouts=timeouts.custom_timeouts
            ),
        )


@as_run_error
def _check_gateway_features(settings: ReleaseSettings) -> None:
    """Refuse (ConfigError, before anything is registered) a release needing a Gateway API feature that a
    GatewayClass of its Gateways does not list; log what was assumed or could not be read."""
    with _provider_kubectl() as args:
        classes = live.gateway_classes(settings, args, pulumi.log.warn)
    if classes is None:
        return
    verdict = features.judge(features.needs(settings), classes, settings.gateway_features == "assume")
    for warning in verdict.warnings:
        pulumi.log.warn(warning)
    if verdict.problems:
        raise ConfigError(verdict.problems)


@contextlib.contextmanager
def _provider_kubectl() -> Iterator[list[str]]:
    """kubectl's arguments for the default provider's cluster (kubernetes:kubeconfig, kubernetes:context),
    a temporary kubeconfig file removed afterwards."""
    config = pulumi.Config("kubernetes")
    args, written = live.provider_args(config.get("kubeconfig"), config.get("context"))
    try:
        yield args
    finally:
        if written is not None:
            os.unlink(written)


def _scale_downs(settings: ReleaseSettings, read: bool) -> tuple[ReleaseSettings, frozenset[Track]]:
    """The settings with the tracks whose pod count goes down in this update (canary.release.capacity),
    from the weight the live route carries now."""
    previous = None
    if read and settings.autoscaling is None:
        with _provider_kubectl() as args:
            previous = live.live_canary_percent(
                settings.app_name,
                settings.namespace,
                settings.app_name,
                args,
                pulumi.log.warn,
                ROUTE_RESOURCES[ROUTE_KINDS[settings.protocol]],
            )
    return settings, scale_downs(settings, previous)


def _deployment_dependencies(
    track: Track,
    downs: pulumi.Output[tuple[ReleaseSettings, frozenset[Track]]],
    scoped: list[pulumi.Resource],
    route_done: pulumi.Output[list[pulumi.Resource]],
) -> pulumi.Output[list[pulumi.Resource]]:
    """What a track's Deployment waits for: the namespace and such, or, when its pod count goes down, the
    route's update and then the settle time (never slept in a preview)."""

    async def settled(route: list[pulumi.Resource], seconds: int) -> list[pulumi.Resource]:
        if not pulumi.runtime.is_dry_run():
            await asyncio.sleep(seconds)
        return [*scoped, *route]

    def dependencies(
        down: tuple[ReleaseSettings, frozenset[Track]],
    ) -> list[pulumi.Resource] | pulumi.Output[list[pulumi.Resource]]:
        settings, tracks_down = down
        if track not in tracks_down:
            return list(scoped)
        return route_done.apply(lambda route: settled(route, settings.capacity.settle_seconds))

    return downs.apply(dependencies)


def _rendered(
    settings: ReleaseSettings | pulumi.Output[ReleaseSettings],
) -> ReleaseManifests | pulumi.Output[ReleaseManifests]:
    """Render now when the settings are known (a limit problem raises before anything is registered)."""
    checked = as_run_error(render)
    return checked(settings) if isinstance(settings, ReleaseSettings) else settings.apply(checked)


def _part(
    rendered: ReleaseManifests | pulumi.Output[ReleaseManifests], pick: Callable[[ReleaseManifests], T]
) -> T | pulumi.Output[T]:
    """One piece of a rendered release: plain when it was rendered now, else an Output of it."""
    if isinstance(rendered, ReleaseManifests):
        return pick(rendered)
    return rendered.apply(pick)


def _some(manifest: Manifest | None) -> Manifest:
    """A manifest the release's shape says exists (validation keeps shape and resolved settings in step)."""
    assert manifest is not None, "the resolved settings render an object the known settings did not"
    return manifest


def _pick(objects: str, track: Track, part: str) -> Callable[[ReleaseManifests], Any]:
    """Picks one part of one track's rendered object of a kind (`objects`: a per-track field of
    ReleaseManifests; a named function, bound per track)."""

    def pick(rendered: ReleaseManifests) -> Any:
        manifests: dict[Track, Manifest] = getattr(rendered, objects)
        return manifests[track][part]

    return pick


def _output_of(resource: pulumi.Resource, name: str) -> pulumi.Output[Any]:
    """An output property of an untyped resource (a CustomResource keeps its properties as attributes)."""
    value: pulumi.Output[Any] = getattr(resource, name)
    return value


def _field(obj: Any, name: str) -> str:
    """A text field of a resource's output (see _get)."""
    return str(_get(obj, name))


def _image_of(deployment: pulumi.Resource) -> pulumi.Output[str]:
    """The image of the Deployment's one container, as the provider reports it."""

    def image(spec: Any) -> str:
        pod = _get(_get(spec, "template"), "spec")
        return _field(_get(pod, "containers")[0], "image")

    return _output_of(deployment, "spec").apply(image)


def _get(obj: Any, name: str) -> Any:
    """A field of a resource's output: a dict for untyped resources, an output class for typed ones."""
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)
