"""Every rollout phase through real `pulumi config set ... && pulumi up`, read back from the apiserver.

The walk follows the reference article: steady state, canary deployed header-only (weight 0), 5 -> 25 -> 50,
rollback to 0, 100, promote. Each step asserts what the live objects look like and that exactly one resource
(the HTTPRoute) changed, in place: the guarantee of capacity.canary "fixed" (with the default "traffic", a
step may also scale a Deployment: test_capacity.py holds that one). The class shares one stack, so its tests
run in order and build on each other (pytest keeps definition order); a failure makes the later steps fail
too.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.gateway_api import ROUTE_TYPE
from canary.route_state import RouteState, route_state
from tests.integration.harness import (
    Kube,
    PulumiStack,
    Watch,
    assert_stable_only,
    changes,
    is_available,
    planned_changes,
    release_stack,
    unique,
)

APP = "web"
V1 = "registry.example/web:1.0.0"
V2 = "registry.example/web:1.1.0"


def live_route(kube: Kube, namespace: str, name: str = APP) -> RouteState:
    route = kube.get(ROUTE, name, namespace)
    assert route is not None, f"HTTPRoute {namespace}/{name} not found"
    return route_state(route, APP)


def changes_of_last_update(stack: PulumiStack) -> dict[str, int]:
    latest = stack.history()[0]
    assert latest["result"] == "succeeded", latest
    return changes(latest)


def planned_steps(stack: PulumiStack) -> list[tuple[str, str]]:
    """(operation, resource type) of every step `pulumi preview` plans that changes something."""
    return [(op, kind) for op, kind, _ in planned_changes(stack)]


def versions(kube: Kube, namespace: str) -> dict[str, str]:
    """resourceVersion of every Deployment and Service in the namespace."""
    found = {}
    for kind in ("deployment", "service"):
        for obj in kube.list(kind, namespace):
            found[f"{kind}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
    return found


@pytest.fixture(scope="class")
def walk(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    namespace = unique("gc-walk")
    config = {"appName": APP, "namespace": namespace, "stableImage": V1}
    stack = release_stack(
        env, tmp_path_factory.mktemp("walk"), "walk", {**config, "stableReplicas": "2", "canaryReplicas": "1"}
    )
    stack.pulumi("config", "set", "--path", "capacity.canary", "fixed").check()
    yield stack, namespace
    stack.destroy()


@pytest.mark.usefixtures("walk")
class TestRolloutWalk:
    def test_1_steady_state_has_one_backend(self, walk, kube: Kube) -> None:
        stack, ns = walk
        stack.up(message="deploy stable").check()
        assert_stable_only(kube, APP, ns, V1)
        assert stack.outputs()["phase"] == "stable"

    def test_2_canary_deployed_header_only(self, walk, kube: Kube) -> None:
        stack, ns = walk
        stack.set_config({"canaryImage": V2})
        stack.up(message="canary deployed, header-only").check()
        canary = kube.get("deployment", f"{APP}-canary", ns)
        assert canary is not None and is_available(canary)
        route = kube.get(ROUTE, APP, ns)
        assert route is not None
        header = route["spec"]["rules"][1]
        assert header["matches"][0]["headers"] == [{"type": "Exact", "name": "x-canary", "value": "true"}]
        assert [r["name"] for r in header["backendRefs"]] == [f"{APP}-canary"]
        state = route_state(route, APP)
        assert (state.stable_weight, state.canary_weight) == (100, 0)
        assert stack.outputs()["canaryWeight"] == 0

    @pytest.mark.parametrize("weight", [5, 25, 50])
    def test_3_each_step_updates_only_the_route(self, walk, kube: Kube, weight: int) -> None:
        stack, ns = walk
        self._step_to(stack, kube, ns, weight)

    def test_5_rollback_touches_only_the_route_and_keeps_canary_warm(self, walk, kube: Kube) -> None:
        stack, ns = walk
        self._step_to(stack, kube, ns, 0)
        canary = kube.get("deployment", f"{APP}-canary", ns)
        assert canary is not None and is_available(canary), "canary pods must stay warm after rollback"
        pods = kube.run("get", "pods", "-n", ns, "-l", "gateway-canary/track=canary", "-o", "name").check()
        assert pods.stdout.strip(), "no canary pods after rollback"

    def test_6_full_canary_keeps_stable_backend_at_zero(self, walk, kube: Kube) -> None:
        stack, ns = walk
        self._step_to(stack, kube, ns, 100)
        state = live_route(kube, ns)
        assert (state.stable_weight, state.canary_weight) == (0, 100)

    def test_7_promote_orders_operations_safely(self, walk, env: dict[str, str], kube: Kube) -> None:
        stack, ns = walk
        watches = {kind: Watch(env, kind, ns) for kind in ("deployments", "services", ROUTE)}
        try:
            stack.set_config({"stableImage": V2, "canaryImage": "", "canaryWeight": "0"})
            stack.up(message=f"promote {V2}").check()
        finally:
            events = {kind: w.stop() for kind, w in watches.items()}

        stable = kube.get("deployment", f"{APP}-stable", ns)
        assert stable is not None and is_available(stable)
        assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == V2
        assert kube.get("deployment", f"{APP}-canary", ns) is None
        assert kube.get("service", f"{APP}-canary", ns) is None
        route = kube.get(ROUTE, APP, ns)
        assert route is not None
        assert [[r["name"] for r in rule["backendRefs"]] for rule in route["spec"]["rules"]] == [
            [f"{APP}-stable"]
        ]

        def rv(obj: dict[str, Any]) -> int:
            return int(obj["metadata"]["resourceVersion"])

        stable_done = min(
            rv(o)
            for t, o in events["deployments"]
            if o["metadata"]["name"] == f"{APP}-stable"
            and o["spec"]["template"]["spec"]["containers"][0]["image"] == V2
            and o["status"].get("observedGeneration", 0) >= o["metadata"]["generation"]
            and o["status"].get("updatedReplicas") == o["spec"]["replicas"]
            and o["status"].get("availableReplicas") == o["spec"]["replicas"]
            and o["status"].get("replicas") == o["spec"]["replicas"]
        )
        route_single = min(
            rv(o)
            for t, o in events[ROUTE]
            if t == "MODIFIED"
            and all(
                ref["name"] != f"{APP}-canary" for rule in o["spec"]["rules"] for ref in rule["backendRefs"]
            )
        )
        canary_dep_deleted = min(
            rv(o)
            for t, o in events["deployments"]
            if t == "DELETED" and o["metadata"]["name"] == f"{APP}-canary"
        )
        canary_svc_deleted = min(
            rv(o)
            for t, o in events["services"]
            if t == "DELETED" and o["metadata"]["name"] == f"{APP}-canary"
        )
        assert stable_done < route_single, "route changed before the stable rollout completed"
        assert route_single < canary_dep_deleted, (
            "canary Deployment deleted while the route still referenced it"
        )
        assert route_single < canary_svc_deleted, "canary Service deleted while the route still referenced it"
        assert stack.outputs()["phase"] == "stable"

    def test_8_history_has_one_entry_per_step_with_its_weight(self, walk) -> None:
        stack, _ = walk
        history = list(reversed(stack.history()))  # oldest first
        weights = [h["config"].get("gateway-canary:canaryWeight", {}) for h in history]
        messages = [h.get("message", "") for h in history]
        assert messages == [
            "deploy stable",
            "canary deployed, header-only",
            "canary 0% -> 5%",
            "canary 5% -> 25%",
            "canary 25% -> 50%",
            "canary 50% -> 0%",
            "canary 0% -> 100%",
            f"promote {V2}",
        ]
        values = [w.get("value") if isinstance(w, dict) else w for w in weights]
        assert values == ["0", "0", "5", "25", "50", "0", "100", "0"], weights

    @staticmethod
    def _step_to(stack: PulumiStack, kube: Kube, ns: str, weight: int) -> None:
        before = live_route(kube, ns)
        objects_before = versions(kube, ns)
        previous = before.canary_percent
        stack.set_config({"canaryWeight": str(weight)})

        # What a CI reviewer sees: the preview plans one in-place update of the route and nothing else.
        assert planned_steps(stack) == [("update", ROUTE_TYPE)]
        diff = stack.preview("--diff").check().stdout
        assert "weight" in diff and "image" not in diff, diff

        stack.up(message=f"canary {previous:f}% -> {weight}%".replace(".0%", "%")).check()
        after = live_route(kube, ns)
        assert (after.stable_weight, after.canary_weight) == (100 - weight, weight)
        assert after.canary_percent == Decimal(weight)
        assert after.generation == before.generation + 1, "route must be updated in place, not replaced"
        assert changes_of_last_update(stack) == {"update": 1}
        assert versions(kube, ns) == objects_before, "a weight step changed a Deployment or Service"


def test_mirror_and_sub_percent_weight_round_trip(env: dict[str, str], kube: Kube, tmp_path: Path) -> None:
    """0.5% is accepted by the apiserver's own validation and read back exactly; the mirror filter carries
    its percent."""
    ns = unique("gc-mirror")
    stack = release_stack(
        env,
        tmp_path,
        "mirror",
        {
            "appName": APP,
            "namespace": ns,
            "stableImage": V1,
            "canaryImage": V2,
            "stableReplicas": "1",
            "canaryWeight": "0.5",
            "mirrorPercent": "10",
            "gatewayFeatures": "assume",  # the no-data-plane class lists no supportedFeatures
        },
    )
    try:
        stack.up().check()
        route = kube.get(ROUTE, APP, ns)
        assert route is not None
        state = route_state(route, APP)
        assert (state.stable_weight, state.canary_weight) == (995, 5)
        assert state.canary_percent == Decimal("0.5")
        split = route["spec"]["rules"][0]
        assert [f["type"] for f in split["filters"]] == ["RequestMirror"]
        mirror = split["filters"][0]["requestMirror"]
        assert mirror["percent"] == 10
        assert mirror["backendRef"]["name"] == f"{APP}-canary"
        assert state.mirror_percent == Decimal(10)
        assert stack.outputs()["canaryWeight"] == 0.5
    finally:
        stack.destroy()


def test_existing_gateway_mode_attaches_to_a_gateway_outside_the_stack(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    shared_ns, ns = unique("gc-infra"), unique("gc-app")
    kube.run("create", "namespace", shared_ns).check()
    kube.apply(
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: shared, namespace: {shared_ns}}}
spec:
  gatewayClassName: gateway-canary
  listeners:
  - {{name: http, protocol: HTTP, port: 80, allowedRoutes: {{namespaces: {{from: All}}}}}}
""",
    )
    stack = release_stack(
        env,
        tmp_path,
        "attach",
        {
            "appName": APP,
            "namespace": ns,
            "stableImage": V1,
            "stableReplicas": "1",
            "createGateway": "false",
            "gatewayName": "shared",
            "gatewayNamespace": shared_ns,
        },
    )
    try:
        stack.up().check()
        route = kube.get(ROUTE, APP, ns)
        assert route is not None
        assert route["spec"]["parentRefs"][0]["name"] == "shared"
        assert route["spec"]["parentRefs"][0]["namespace"] == shared_ns
        assert kube.list("gateways.gateway.networking.k8s.io", ns) == []
    finally:
        stack.destroy()
        kube.run("delete", "namespace", shared_ns, "--wait=false")


def test_route_has_no_status_without_a_gateway_controller(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """The local cluster runs no Gateway controller, so nobody sets Accepted; we check that nothing fakes it.
    (A data plane is future work: see docs/getting-started.md, 'The local cluster, and what it cannot
    show'.)"""
    ns = unique("gc-status")
    stack = release_stack(
        env, tmp_path, "status", {"appName": APP, "namespace": ns, "stableImage": V1, "stableReplicas": "1"}
    )
    try:
        stack.up().check()
        route = kube.get(ROUTE, APP, ns)
        assert route is not None
        assert route.get("status", {}).get("parents", []) == []
        gateway = kube.get("gateways.gateway.networking.k8s.io", f"{APP}-gateway", ns)
        assert gateway is not None
        conditions = {c["type"]: c["status"] for c in gateway.get("status", {}).get("conditions", [])}
        assert conditions.get("Programmed") != "True"
    finally:
        stack.destroy()
