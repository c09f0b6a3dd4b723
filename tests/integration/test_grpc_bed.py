"""gRPC through the test bed: a GRPCRoute split 75/25 by real Envoy, counted by real gRPC calls.

Hand-written objects, applied with kubectl (no Pulumi): two Deployments whose container port is named `grpc`
(the bed runs podinfo's gRPC server there, `scripts/testbed/apps.py`) with a `readinessProbe.grpc` (the bed
asks it with the standard health check before the pod turns Ready), their Services (port appProtocol
`kubernetes.io/h2c`), a Gateway of class `eg` with an HTTP listener (Envoy Gateway attaches GRPCRoutes to
HTTP and HTTPS listeners), and a GRPCRoute: `x-canary: true` metadata to the canary only, every other call
75/25. Envoy Gateway writes every status; the calls (canary.ops.verify.grpc_versions, grpcio over h2c) go to
the Gateway's address after the bed's netcheck has vouched for it.

Each count is bounded (calls and seconds) and judged with the exact 99.9% binomial interval of
`canary.ops.verify.split.canary_interval`, as test_traffic.py judges HTTP. As there, the split is not a coin
flip per call (Envoy Gateway's locality weights; 2,000 calls at 25% gave exactly 500 canary calls here), so
the check passes comfortably on a healthy bed; its power against a wrong split (the neighbouring shares'
intervals are disjoint from it) is asserted. A rollback to weight 0 under a paced call stream fails no call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest

from canary.ops.errors import TrafficProblem
from canary.ops.verify.grpc_versions import (
    SERVING,
    Calls,
    CallStream,
    GrpcTarget,
    count_versions,
    grpc_target,
    health,
)
from canary.ops.verify.split import canary_interval
from canary.ops.verify.traffic import Tally, TrafficCounter
from scripts.testbed.apps import LISTENING
from scripts.testbed.objects import deployment as app_deployment
from scripts.testbed.objects import service as app_service
from tests.integration.harness import (
    Kube,
    before_rollback,
    namespace_with,
    wait_for,
)
from tests.integration.test_traffic_bed import bed, conditions, dataplane_state, programmed_address

__all__ = ["bed"]  # the traffic bed's own readiness fixture (skips loudly, fails under CI)

EG_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
GRPCROUTE = "grpcroute.gateway.networking.k8s.io"
STABLE = "registry.example/podinfo:6.0.0-grpc-a"
CANARY = "registry.example/podinfo:6.0.0-grpc-b"
STABLE_VERSION, CANARY_VERSION = "6.0.0-grpc-a", "6.0.0-grpc-b"
HOST = "grpc.example.com"
PORT = 9000
HEADER = {"x-canary": "true"}
CALLS = 2000
"""Calls per split count: the 99.9% interval at 25% is about 25% +- 3.2 points, disjoint from 12.5% and
50%."""

SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment(name: str, image: str, replicas: int, service: str = "") -> dict[str, Any]:
    """A Deployment serving gRPC on a port named `grpc`, Ready once its health check says SERVING."""
    probe: dict[str, Any] = {"port": PORT}
    if service:
        probe["service"] = service
    return app_deployment(
        name,
        image,
        replicas,
        {
            "ports": [{"name": "grpc", "containerPort": PORT}],
            "readinessProbe": {"grpc": probe, "periodSeconds": 1},
            "securityContext": SECURITY,
        },
    )


def service(name: str) -> dict[str, Any]:
    return app_service(
        name, {"name": "grpc", "port": PORT, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c"}
    )


def backend(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": PORT}
    if weight is not None:
        ref["weight"] = weight
    return ref


def objects() -> list[dict[str, Any]]:
    return [
        deployment("grpc-stable", STABLE, 2),
        deployment("grpc-canary", CANARY, 1),
        # Its probe asks for a service podinfo does not serve: NOT_FOUND, so the pod must never turn Ready.
        deployment("grpc-unready", STABLE, 1, service="no-such-service"),
        service("grpc-stable"),
        service("grpc-canary"),
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "grpc-gateway"},
            "spec": {
                "gatewayClassName": "eg",
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GRPCRoute",
            "metadata": {"name": "grpc"},
            "spec": {
                "parentRefs": [{"name": "grpc-gateway"}],
                "hostnames": [HOST],
                "rules": [
                    {
                        "matches": [{"headers": [{"type": "Exact", "name": "x-canary", "value": "true"}]}],
                        "backendRefs": [backend("grpc-canary")],
                    },
                    {"backendRefs": [backend("grpc-stable", 75), backend("grpc-canary", 25)]},
                ],
            },
        },
    ]


@pytest.fixture(scope="module")
def namespace(bed: dict[str, str], kube: Kube) -> Iterator[str]:
    with namespace_with(kube, "gc-grpc", lambda _: objects()) as ns:
        yield ns


def available(kube: Kube, name: str, namespace: str) -> bool:
    dep = kube.get("deployment", name, namespace) or {}
    want = dep.get("spec", {}).get("replicas")
    return bool(want) and dep.get("status", {}).get("availableReplicas") == want


def route_accepted(kube: Kube, namespace: str) -> bool:
    """Every parent of the GRPCRoute says Accepted and ResolvedRefs for its current generation, written by
    Envoy Gateway."""
    route = kube.get(GRPCROUTE, "grpc", namespace) or {}
    parents = route.get("status", {}).get("parents", [])
    generation = route.get("metadata", {}).get("generation")
    return bool(parents) and all(
        parent.get("controllerName") == EG_CONTROLLER
        and all(
            c.get("status") == "True" and c.get("observedGeneration") == generation
            for c in parent.get("conditions", [])
            if c.get("type") in ("Accepted", "ResolvedRefs")
        )
        and {"Accepted", "ResolvedRefs"} <= {c.get("type") for c in parent.get("conditions", [])}
        for parent in parents
    )


@pytest.fixture(scope="module")
def gateway(kube: Kube, namespace: str) -> GrpcTarget:
    """The Gateway's address, port 80, once programmed, routed into the bed (netcheck) and serving both
    versions over gRPC."""
    where = gateway_target(kube, namespace, "grpc-gateway")
    for name in ("grpc-stable", "grpc-canary"):
        wait_for(lambda n=name: available(kube, n, namespace), timeout=90, what=f"{name} Available")
    wait_for(lambda: route_accepted(kube, namespace), timeout=60, what="the GRPCRoute Accepted")
    settle(where, {STABLE_VERSION, CANARY_VERSION})
    return where


def gateway_target(kube: Kube, namespace: str, name: str) -> GrpcTarget:
    """Gateway `name`'s address, port 80, once programmed and routed into the bed (netcheck)."""
    address = programmed_address(kube, namespace, name)
    refused: list[str] = []

    def routed() -> GrpcTarget | None:
        try:
            return grpc_target(f"{address}:80")
        except TrafficProblem as err:
            refused[:] = [str(err)]
            return None

    wait_for(routed, timeout=60, what=f"the bed's route to {address} (netcheck: {refused})")
    where = grpc_target(f"{address}:80")
    assert "into gcbed-gw-" in where.checked, where.checked
    return where


def settle(where: GrpcTarget, want: set[str], seconds: float = 90) -> None:
    """Until 100 calls in a row succeed and name every version of `want` (Envoy has the route and the
    endpoints), bounded in time."""
    seen: Tally | None = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            run = count_versions(Calls(where, 100, authority=HOST, timeout=2, time_limit=20))
        except TrafficProblem:
            time.sleep(0.5)
            continue
        seen = TrafficCounter().extend(run.results).tally()
        if seen.failed == 0 and set(seen.by_version) == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"Envoy did not serve {sorted(want)} over gRPC within {seconds}s: last {seen}")


def count(where: GrpcTarget, calls: int, metadata: dict[str, str] | None = None) -> Tally:
    run = count_versions(
        Calls(where, calls, concurrency=8, authority=HOST, metadata=metadata or {}, timeout=5, time_limit=120)
    )
    assert run.not_sent == 0, f"{run.not_sent} of {calls} calls not made within the time limit"
    return TrafficCounter().extend(run.results).tally()


class TestGrpcBed:
    def test_1_pods_are_ready_by_their_grpc_health_check_and_the_route_accepted(
        self, bed: dict[str, str], kube: Kube, namespace: str, gateway: GrpcTarget
    ) -> None:
        route = kube.get(GRPCROUTE, "grpc", namespace)
        assert route is not None and route_accepted(kube, namespace), route and route.get("status")
        pods = [p for p in dataplane_state(bed).get("pods", []) if p["namespace"] == namespace]
        versions = sorted(p["version"] for p in pods if p["pod"].startswith(("grpc-stable", "grpc-canary")))
        assert versions == [STABLE_VERSION, STABLE_VERSION, CANARY_VERSION], pods
        assert all(p["address"].endswith(f":{PORT}") for p in pods), pods
        # The pod whose probe names a service podinfo does not serve runs podinfo but never turns Ready.
        unready = [p for p in kube.list("pod", namespace) if p["metadata"]["name"].startswith("grpc-unready")]
        assert len(unready) == 1, [p["metadata"]["name"] for p in unready]
        pod = unready[0]
        assert any(p["pod"] == pod["metadata"]["name"] for p in pods), "its podinfo should run"
        assert conditions(pod).get("Ready", {}).get("status") != "True", pod["status"]
        assert (pod["metadata"].get("annotations") or {}).get(LISTENING) != "true", pod["metadata"]
        # Asked directly on the pod's address (the bed routes the pod CIDR), its server is SERVING and only
        # the probe's service is unknown to it: the probe, not the process, holds the pod back.
        address = f"ipv4:{pod['status']['podIP']}:{PORT}"
        assert health(address, "") == SERVING and health(address, "podinfo") == SERVING
        assert health(address, "no-such-service") == "NOT_FOUND"

    def test_2_calls_split_75_25(self, gateway: GrpcTarget) -> None:
        tally = count(gateway, CALLS)
        interval = canary_interval(CALLS, Fraction(1, 4))
        for neighbour in (Fraction(1, 8), Fraction(1, 2)):
            other = canary_interval(CALLS, neighbour)
            assert interval.high < other.low or other.high < interval.low, (neighbour, interval, other)
        assert tally.failures == {} and tally.without_version == 0, tally
        assert set(tally.by_version) <= {STABLE_VERSION, CANARY_VERSION}, tally.by_version
        canary = tally.by_version.get(CANARY_VERSION, 0)
        assert canary in interval, f"{canary} of {CALLS} calls on the canary, interval {interval.text()}"

    def test_3_metadata_x_canary_reaches_only_the_canary(self, gateway: GrpcTarget) -> None:
        tally = count(gateway, 300, HEADER)
        assert tally.failures == {} and tally.by_version == {CANARY_VERSION: 300}, tally

    def test_4_rollback_to_0_fails_no_call(self, kube: Kube, namespace: str, gateway: GrpcTarget) -> None:
        calls = Calls(gateway, 20_000, concurrency=2, authority=HOST, timeout=5, time_limit=120)
        with CallStream(calls, rate=100) as stream:
            wait_for(  # the stream runs and the canary answers before the rollback (an event, not a delay)
                lambda: before_rollback(stream.snapshot(), CANARY_VERSION),
                timeout=60,
                what="100 calls in the stream, the canary among their answers",
            )
            patch = [{"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 0}]
            kube.run(
                "patch", GRPCROUTE, "grpc", "-n", namespace, "--type=json", "-p", json.dumps(patch)
            ).check()
            wait_for(lambda: route_accepted(kube, namespace), timeout=60, what="weight 0 Accepted")
            wait_for(
                lambda: not [s for s in stream.snapshot()[-100:] if s.result.version != STABLE_VERSION],
                timeout=60,
                what="100 calls in a row on the stable",
            )
        seen = stream.snapshot()
        tally = TrafficCounter().extend([s.result for s in seen]).tally()
        assert tally.failures == {}, tally
        assert tally.by_version.get(CANARY_VERSION, 0) > 0, f"the canary served before the rollback: {tally}"
        assert tally.sent >= 200, tally
