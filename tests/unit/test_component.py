"""CanaryRelease wiring under Pulumi mocks: which objects exist per phase, dependencies, outputs."""

import dataclasses
from decimal import Decimal
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.gateway_api import GATEWAY_TYPE as GATEWAY
from canary.gateway_api import ROUTE_TYPE as ROUTE
from canary.release.component import TYPE_TOKEN, CanaryRelease
from canary.release.render import ReleaseManifests, render
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import CANARY, component_args, percents, release_settings

NAMESPACE = "kubernetes:core/v1:Namespace"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"

STABLE_ONLY = {
    (TYPE_TOKEN, "podinfo"),
    (NAMESPACE, "podinfo-namespace"),
    (DEPLOYMENT, "podinfo-stable"),
    (SERVICE, "podinfo-stable"),
    (GATEWAY, "podinfo-gateway"),
    (ROUTE, "podinfo-route"),
}
WITH_CANARY = STABLE_ONLY | {(DEPLOYMENT, "podinfo-canary"), (SERVICE, "podinfo-canary")}


def build(**overrides: Any) -> CanaryRelease:
    return CanaryRelease("podinfo", component_args(**overrides))


def settled(release: CanaryRelease) -> pulumi.Output[list[Any]]:
    """An Output that resolves once the component and every child are registered."""
    children: list[pulumi.Resource] = [
        *release.deployments.values(),
        *release.services.values(),
        *release.autoscalers.values(),
        *release.disruption_budgets.values(),
        release.route,
    ]
    if release.namespace_resource is not None:
        children.append(release.namespace_resource)
    if release.gateway is not None:
        children.append(release.gateway)
    return pulumi.Output.all(release.urn, *[child.urn for child in children])


def registered(pulumi_mocks: PulumiMocks) -> set[tuple[str, str]]:
    return {(r.typ, r.name) for r in pulumi_mocks.mocks.resources}


PHASES = [
    ({}, STABLE_ONLY, "stable", 100, 0),
    ({"canaryImage": CANARY}, WITH_CANARY, "canary deployed, header-only", 100, 0),
    ({"canaryImage": CANARY, "canaryHeader": ""}, WITH_CANARY, "canary 0%", 100, 0),
    ({"canaryImage": CANARY, "canaryWeight": "25"}, WITH_CANARY, "canary 25%", 75, 25),
    ({"canaryImage": CANARY, "canaryWeight": "100"}, WITH_CANARY, "canary 100%", 0, 100),
    ({"canaryImage": CANARY, "canaryWeight": "0.5"}, WITH_CANARY, "canary 0.5%", 99.5, 0.5),
]


@pytest.mark.parametrize(
    ("overrides", "expected", "phase", "stable", "canary"), PHASES, ids=[p[2] for p in PHASES]
)
@pulumi.runtime.test
def test_resources_and_outputs_per_phase(
    pulumi_mocks: PulumiMocks,
    overrides: dict[str, Any],
    expected: set[tuple[str, str]],
    phase: str,
    stable: float,
    canary: float,
) -> pulumi.Output[None]:
    release = build(**overrides)

    def check(values: list[Any]) -> None:
        outputs = dict(zip(release.outputs(), values, strict=True))
        assert registered(pulumi_mocks) == expected
        assert outputs["phase"] == phase
        assert (outputs["stableWeight"], outputs["canaryWeight"]) == (stable, canary)
        assert outputs["stableImage"] == "ghcr.io/stefanprodan/podinfo:6.7.0"
        assert outputs["canaryImage"] == overrides.get("canaryImage", "")
        assert outputs["routeName"] == "podinfo"
        tracks = ["stable", "canary"] if "canaryImage" in overrides else ["stable"]
        assert outputs["serviceNames"] == [f"podinfo-{t}" for t in tracks]
        assert outputs["namespace"] == "gateway-canary"
        assert outputs["gatewayName"] == "podinfo-gateway"

    return pulumi.Output.all(settled(release), *release.outputs().values()).apply(lambda v: check(v[1:]))


@pulumi.runtime.test
def test_route_spec_is_the_rendered_route(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    overrides = {"canaryImage": CANARY, "canaryWeight": "25", "mirrorPercent": "10"}
    args = release_settings(**overrides)
    release = CanaryRelease("podinfo", component_args(**overrides))

    def check(_: Any) -> None:
        route = pulumi_mocks.mocks.named(ROUTE, "podinfo-route").inputs
        expected = render(args).route
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert route["metadata"] == expected["metadata"]
        assert route["spec"] == expected["spec"]
        rules = route["spec"]["rules"]
        assert rules[0]["filters"][0]["type"] == "RequestMirror", "the split (with the mirror) comes first"
        assert "headers" in rules[1]["matches"][0]

    return settled(release).apply(check)


@pulumi.runtime.test
def test_service_selectors_match_only_their_own_deployment(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = build(canaryImage=CANARY, canaryWeight="25")

    def check(_: Any) -> None:
        pods = {
            name: r.inputs["spec"]["template"]["metadata"]["labels"]
            for r in pulumi_mocks.mocks.of_type(DEPLOYMENT)
            for name in [r.name]
        }
        for service in pulumi_mocks.mocks.of_type(SERVICE):
            selector = service.inputs["spec"]["selector"]
            matching = [name for name, labels in pods.items() if selector.items() <= labels.items()]
            assert matching == [service.name], f"{service.name} selects {matching}"

    return settled(release).apply(check)


@pulumi.runtime.test
def test_every_namespaced_object_sets_its_namespace(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = build(canaryImage=CANARY, namespace="shop")

    def check(_: Any) -> None:
        for r in pulumi_mocks.mocks.resources:
            if r.typ in (DEPLOYMENT, SERVICE, GATEWAY, ROUTE):
                assert r.inputs["metadata"]["namespace"] == "shop", r.name
            if r.typ == NAMESPACE:
                assert r.inputs["metadata"]["name"] == "shop"

    return settled(release).apply(check)


@pulumi.runtime.test
def test_route_depends_on_deployments_services_and_gateway(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = build(canaryImage=CANARY, canaryWeight="25")

    def check(_: Any) -> None:
        deps = pulumi_mocks.monitor.dependencies[(ROUTE, "podinfo-route")]
        for typ, name in [
            (DEPLOYMENT, "podinfo-stable"),
            (DEPLOYMENT, "podinfo-canary"),
            (SERVICE, "podinfo-stable"),
            (SERVICE, "podinfo-canary"),
            (GATEWAY, "podinfo-gateway"),
        ]:
            assert any(urn.endswith(f"{typ}::{name}") for urn in deps), (
                f"route does not depend on {typ} {name}"
            )

    return settled(release).apply(check)


@pulumi.runtime.test
def test_nothing_but_the_route_depends_on_a_deployment(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = build(canaryImage=CANARY)

    def check(_: Any) -> None:
        for (typ, name), deps in pulumi_mocks.monitor.dependencies.items():
            if typ != ROUTE:
                assert not any(f"{DEPLOYMENT}::" in urn for urn in deps), (
                    f"{typ} {name} depends on a Deployment"
                )

    return settled(release).apply(check)


def depends(pulumi_mocks: PulumiMocks, typ: str, name: str, on_typ: str, on_name: str) -> bool:
    """Whether one registered resource depends on another (by type and name)."""
    return any(urn.endswith(f"{on_typ}::{on_name}") for urn in pulumi_mocks.monitor.dependencies[(typ, name)])


ORDERS = [
    # (capacity, the live route's canary weight, this weight, the Deployments that wait for the route)
    ('{"settleSeconds":0}', None, "25", set()),
    ('{"settleSeconds":0}', 25.0, "50", set()),
    ('{"settleSeconds":0}', 50.0, "25", {"canary"}),
    ('{"settleSeconds":0}', 50.0, "0", {"canary"}),
    ('{"canary":"fixed","settleSeconds":0}', 50.0, "0", set()),
    ('{"stable":"traffic","settleSeconds":0}', 25.0, "50", {"stable"}),
    ('{"stable":"traffic","settleSeconds":0}', 50.0, "25", {"canary"}),
    ('{"stable":"traffic","settleSeconds":0}', 50.0, "50", set()),
]


@pytest.mark.parametrize(("capacity", "last", "weight", "after_route"), ORDERS)
@pulumi.runtime.test
def test_a_deployment_that_scales_down_waits_for_the_route(
    pulumi_mocks: PulumiMocks, capacity: str, last: float | None, weight: str, after_route: set[str]
) -> pulumi.Output[None]:
    """R = 10: a track whose pod count goes down depends on the route (which no longer depends on it); one
    whose count goes up or stays is a dependency of the route, as in a first update."""
    pulumi_mocks.mocks.live_percent = None if last is None else Decimal(str(last))
    release = build(
        canaryImage=CANARY, canaryWeight=weight, stableReplicas="10", capacity=capacity, rolloutTimeout="10"
    )

    def check(_: Any) -> None:
        for track in ("stable", "canary"):
            deployment = f"podinfo-{track}"
            waits = depends(pulumi_mocks, DEPLOYMENT, deployment, ROUTE, "podinfo-route")
            needed = depends(pulumi_mocks, ROUTE, "podinfo-route", DEPLOYMENT, deployment)
            assert (waits, needed) == ((True, False) if track in after_route else (False, True)), track

    return settled(release).apply(check)


@pulumi.runtime.test
def test_children_are_parented_to_the_component(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    other = pulumi.ComponentResource("test:index:Other", "other")
    options = pulumi.ResourceOptions(parent=other)
    release = CanaryRelease("podinfo", component_args(canaryImage=CANARY), options)

    def check(_: Any) -> None:
        for (typ, name), parent in pulumi_mocks.monitor.parents.items():
            if typ.startswith("kubernetes:") and typ != "pulumi:providers:kubernetes":
                assert parent.endswith(f"{TYPE_TOKEN}::podinfo"), f"{typ} {name} has parent {parent}"
        assert pulumi_mocks.monitor.parents[(TYPE_TOKEN, "podinfo")].endswith("test:index:Other::other")

    return settled(release).apply(check)


@pulumi.runtime.test
def test_an_explicit_provider_reaches_every_child(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    provider = kubernetes.Provider("cluster")
    release = CanaryRelease(
        "podinfo", component_args(canaryImage=CANARY), pulumi.ResourceOptions(providers=[provider])
    )

    def check(_: Any) -> None:
        children = [r for r in pulumi_mocks.mocks.resources if r.typ.startswith("kubernetes:")]
        assert len(children) == len(WITH_CANARY) - 1
        for child in children:
            assert "pulumi:providers:kubernetes::cluster::" in (child.provider or ""), child.name

    return settled(release).apply(check)


@pulumi.runtime.test
def test_no_namespace_or_gateway_when_attaching(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = build(
        createNamespace=False, createGateway=False, gatewayName="shared", gatewayNamespace="infra"
    )

    def check(_: Any) -> None:
        assert registered(pulumi_mocks) == {
            (TYPE_TOKEN, "podinfo"),
            (DEPLOYMENT, "podinfo-stable"),
            (SERVICE, "podinfo-stable"),
            (ROUTE, "podinfo-route"),
        }
        route = pulumi_mocks.mocks.named(ROUTE, "podinfo-route").inputs
        assert route["spec"]["parentRefs"] == [{"name": "shared", "namespace": "infra"}]

    return pulumi.Output.all(settled(release), release.gateway_name).apply(check)


def test_a_weight_change_renders_a_different_route_and_nothing_else_with_fixed_capacity() -> None:
    fixed = '{"canary":"fixed"}'
    before = render(release_settings(canaryImage=CANARY, canaryWeight="5", capacity=fixed))
    after = render(release_settings(canaryImage=CANARY, canaryWeight="25", capacity=fixed))
    assert before.route != after.route
    assert before.deployments == after.deployments
    assert before.services == after.services
    assert before.gateway == after.gateway
    assert before.namespace == after.namespace


def without_replicas(rendered: ReleaseManifests) -> ReleaseManifests:
    """The release with the route and every Deployment's spec.replicas left out."""
    deployments = {
        track: {**manifest, "spec": {k: v for k, v in manifest["spec"].items() if k != "replicas"}}
        for track, manifest in rendered.deployments.items()
    }
    return dataclasses.replace(rendered, route={}, deployments=deployments)


@settings(max_examples=50, deadline=None)
@given(percents, percents, st.sampled_from(["traffic", "fixed"]), st.sampled_from(["full", "traffic"]))
def test_a_weight_change_touches_only_the_route_and_replica_counts(
    a: Decimal, b: Decimal, canary_mode: str, stable_mode: str
) -> None:
    """Whatever two percents and capacity modes, every object but the route renders identically apart from
    the Deployments' replica counts (never a pod template: no pod restarts), and with capacity.canary fixed
    and stable full the counts do not move either."""
    capacity = f'{{"canary":"{canary_mode}","stable":"{stable_mode}"}}'
    base = release_settings(
        canaryImage=CANARY, rolloutOperator="bot", mirrorPercent="10", stableReplicas="10", capacity=capacity
    )
    one, other = (render(dataclasses.replace(base, canary_percent=p)) for p in (a, b))
    assert without_replicas(one) == without_replicas(other)
    assert (one.route == other.route) == (a == b)
    if (canary_mode, stable_mode) == ("fixed", "full"):
        assert one.deployments == other.deployments


def test_rollback_keeps_canary_pods_in_the_rendering() -> None:
    at_50 = render(release_settings(canaryImage=CANARY, canaryWeight="50"))
    rolled_back = render(release_settings(canaryImage=CANARY, canaryWeight="0"))
    assert without_replicas(rolled_back) == dataclasses.replace(without_replicas(at_50), route={})
    assert set(rolled_back.deployments) == {"stable", "canary"}
    split = rolled_back.route["spec"]["rules"][0]
    assert [ref.get("weight") for ref in split["backendRefs"]] == [100, 0]


def test_promote_is_config_only() -> None:
    at_100 = render(release_settings(canaryImage=CANARY, canaryWeight="100"))
    promoted = render(release_settings(stableImage=CANARY, canaryImage="", canaryWeight="0"))
    assert set(promoted.deployments) == {"stable"} and set(promoted.services) == {"stable"}
    stable = promoted.deployments["stable"]["spec"]["template"]["spec"]["containers"][0]
    assert stable["image"] == CANARY
    assert promoted.route["spec"]["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"name": "podinfo-stable", "port": 80}],
        }
    ]
    assert promoted.deployments["stable"]["metadata"] == at_100.deployments["stable"]["metadata"]


HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


@pulumi.runtime.test
def test_autoscalers_and_budgets_per_track_and_replicas_left_to_them(
    pulumi_mocks: PulumiMocks,
) -> pulumi.Output[None]:
    release = build(
        canaryImage=CANARY,
        autoscaling={"minReplicas": 2, "maxReplicas": 6, "cpuUtilization": 70},
        podDisruptionBudget={"maxUnavailable": 1},
    )

    def check(_: Any) -> None:
        extra = {(kind, f"podinfo-{track}") for kind in (HPA, PDB) for track in ("stable", "canary")}
        assert registered(pulumi_mocks) == WITH_CANARY | extra
        for resource in pulumi_mocks.mocks.resources:
            if resource.typ == DEPLOYMENT:
                assert "replicas" not in resource.inputs["spec"], resource.name
            if resource.typ == HPA:
                spec = resource.inputs["spec"]
                assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
                assert spec["scaleTargetRef"]["name"] == resource.name
            if resource.typ == PDB:
                assert resource.inputs["spec"]["maxUnavailable"] == 1

    return settled(release).apply(check)
