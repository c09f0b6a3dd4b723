"""Traefik, the bed's second Gateway API implementation (issue 25): a 70/30 HTTPRoute split by real Traefik.

Hand-written objects, applied with kubectl (no Pulumi): two podinfo Deployments (`registry.example/x:1.0.0`
and `:1.1.0`; the bed runs a real podinfo per Ready pod), their Services, a Gateway of class `traefik` with
an HTTP listener on port 80 (Traefik's one entryPoint) and an HTTPRoute: `x-canary: true` to the canary
only, every other request 70/30. Traefik (`scripts/cluster.sh up`, one process per bed instance,
scripts/testbed/traefik.py) writes every status; the requests (canary.ops.verify.traffic) go to its address
after the bed's netcheck has vouched for it.

Counts are bounded (requests and seconds) and judged with the exact 99.9% binomial interval of
`canary.ops.verify.split.canary_interval`. Traefik's weighted round robin is deterministic per process
(earliest deadline first), so on a healthy bed the count is at or next to exactly 30%; the interval's power
against a wrong split (its neighbours' intervals are disjoint from it) is asserted. The time from a
`kubectl patch` of the canary weight to 0 until the last canary answer is printed, never asserted (Traefik
applies configuration changes after a throttle; the test waits for events, not for time).

Every `traefik` Gateway shares Traefik's one address and entryPoint, so routes of different Gateways are told
apart only by what they match: each run's route has a hostname of its own namespace (with one fixed hostname,
the route of an earlier run's namespace, still being deleted, answered 503 to this run's requests).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from canary.ops.verify.split import canary_interval
from canary.ops.verify.traffic import Load, Stream, Tally, Target, TrafficCounter, send, target
from scripts.testbed.objects import deployment as app_deployment
from scripts.testbed.objects import service as app_service
from scripts.testbed.traefik import CLASS, CONTROLLER, PORT
from tests.integration.conftest import not_run
from tests.integration.harness import Kube, namespace_with, unique, wait_for
from tests.integration.test_traffic_bed import bed, conditions, dataplane_state, programmed_address

__all__ = ["bed"]  # the traffic bed's own readiness fixture (skips loudly, fails under CI)

ROUTE = "httproute.gateway.networking.k8s.io"
GATEWAY_NAME = "x-gateway"
STABLE, CANARY = "registry.example/x:1.0.0", "registry.example/x:1.1.0"
STABLE_VERSION, CANARY_VERSION = "1.0.0", "1.1.0"
HEADER = {"x-canary": "true"}
REQUESTS = 2000
SHARE = Fraction(3, 10)


def deployment(name: str, image: str, replicas: int) -> dict[str, Any]:
    return app_deployment(
        name,
        image,
        replicas,
        {
            "ports": [{"name": "http", "containerPort": 9898}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9898}, "periodSeconds": 1},
        },
    )


def service(name: str) -> dict[str, Any]:
    return app_service(name, {"name": "http", "port": 80, "targetPort": "http"})


def hostname(namespace: str) -> str:
    """The route's hostname: of its own namespace (Traefik's Gateways share one entryPoint)."""
    return f"x.{namespace}.example"


def objects(host: str) -> list[dict[str, Any]]:
    return [
        deployment("x-stable", STABLE, 2),
        deployment("x-canary", CANARY, 1),
        service("x-stable"),
        service("x-canary"),
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME},
            "spec": {
                "gatewayClassName": CLASS,
                "listeners": [{"name": "http", "protocol": "HTTP", "port": PORT}],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "x"},
            "spec": {
                "parentRefs": [{"name": GATEWAY_NAME}],
                "hostnames": [host],
                "rules": [
                    {
                        "matches": [{"headers": [{"type": "Exact", "name": "x-canary", "value": "true"}]}],
                        "backendRefs": [{"name": "x-canary", "port": 80}],
                    },
                    {
                        "backendRefs": [
                            {"name": "x-stable", "port": 80, "weight": 70},
                            {"name": "x-canary", "port": 80, "weight": 30},
                        ]
                    },
                ],
            },
        },
    ]


def traefik_pid(env: dict[str, str]) -> int | None:
    """Traefik's pid (scripts/cluster.sh writes .cluster/traefik/pid), when that process runs."""
    pidfile = Path(env["KUBECONFIG"]).parent / "traefik" / "pid"
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline")
    return pid if cmdline.exists() and b"kubernetesGateway" in cmdline.read_bytes() else None


@pytest.fixture(scope="module")
def traefik(bed: dict[str, str], kube: Kube) -> dict[str, str]:
    """The bed's Traefik runs and has Accepted its GatewayClass."""
    problems = []
    if shutil.which("traefik", path=bed["PATH"]) is None:
        problems.append("traefik not found on PATH (run `make tools`)")
    if traefik_pid(bed) is None:
        problems.append("no Traefik process of this cluster (.cluster/traefik/pid; run `make cluster-up`)")
    accepted = conditions(kube.get("gatewayclass", CLASS)).get("Accepted", {}).get("status")
    if accepted != "True":
        problems.append(f"GatewayClass {CLASS} not Accepted by Traefik (run `make cluster-up`)")
    if problems:
        not_run("Traefik bed: " + "; ".join(problems))
    return bed


@pytest.fixture(scope="module")
def namespace(traefik: dict[str, str], kube: Kube) -> Iterator[str]:
    with namespace_with(kube, "gc-traefik", lambda ns: objects(hostname(ns))) as ns:
        yield ns


def route_accepted(kube: Kube, namespace: str) -> bool:
    """The route's one parent says Accepted and ResolvedRefs for its current generation, by Traefik."""
    route = kube.get(ROUTE, "x", namespace) or {}
    parents = route.get("status", {}).get("parents", [])
    generation = route.get("metadata", {}).get("generation")
    if len(parents) != 1 or parents[0].get("controllerName") != CONTROLLER:
        return False
    found = {c["type"]: c for c in parents[0].get("conditions", [])}
    return all(
        found.get(kind, {}).get("status") == "True"
        and found.get(kind, {}).get("observedGeneration") == generation
        for kind in ("Accepted", "ResolvedRefs")
    )


@dataclass(frozen=True)
class Through:
    """Traefik's address (netchecked) and the route's hostname."""

    where: Target
    host: str


def count(gateway: Through, requests: int, headers: dict[str, str] | None = None) -> Tally:
    """`requests` GETs /version through Traefik (each on its own connection), tallied by version."""
    load = Load(
        gateway.where, requests, host=gateway.host, headers=headers or {}, concurrency=8, time_limit=240
    )
    run = send(load)
    assert run.not_sent == 0, f"{run.not_sent} of {requests} requests not sent within the time limit"
    return TrafficCounter().extend(run.results).tally()


def settle(gateway: Through, want: set[str], seconds: float = 90) -> None:
    """Until 50 requests in a row succeed and name every version of `want` (Traefik has the route and the
    endpoints, and podinfo runs for the pods), bounded in time."""
    seen: Tally | None = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = (
            TrafficCounter()
            .extend(
                send(Load(gateway.where, 50, host=gateway.host, time_limit=20), probe_first=False).results
            )
            .tally()
        )
        if seen.failed == 0 and set(seen.by_version) == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"Traefik did not serve {sorted(want)} within {seconds}s: last {seen}")


@pytest.fixture(scope="module")
def gateway(traefik: dict[str, str], kube: Kube, namespace: str) -> Through:
    """Traefik's address, port 80, once the Gateway is Programmed, the route Accepted and both versions
    answer."""
    address = programmed_address(kube, namespace, GATEWAY_NAME)
    through = Through(target(f"http://{address}/version"), hostname(namespace))
    wait_for(lambda: route_accepted(kube, namespace), timeout=60, what="the route Accepted by Traefik")
    settle(through, {STABLE_VERSION, CANARY_VERSION})
    return through


class TestTraefikBed:
    def test_1_the_class_is_accepted_and_lists_its_features(
        self, traefik: dict[str, str], kube: Kube
    ) -> None:
        gatewayclass = kube.get("gatewayclass", CLASS)
        assert gatewayclass is not None and gatewayclass["spec"]["controllerName"] == CONTROLLER
        accepted = conditions(gatewayclass)["Accepted"]
        assert accepted["status"] == "True", accepted
        assert accepted["observedGeneration"] == gatewayclass["metadata"]["generation"], accepted
        features = sorted(f["name"] for f in gatewayclass["status"].get("supportedFeatures", []))
        print(f"GatewayClass {CLASS}: {len(features)} supportedFeatures: {', '.join(features)}")
        assert {"Gateway", "HTTPRoute"} <= set(features), features
        # Traefik v3.6 has no RequestMirror: a rule with that filter answers 500 (shared Traefik notes).
        assert "HTTPRouteRequestMirror" not in features, features

    def test_2_the_gateway_is_programmed_with_the_beds_traefik_address(
        self, traefik: dict[str, str], kube: Kube, namespace: str, gateway: Through
    ) -> None:
        beds = dataplane_state(traefik).get("traefik", {})
        where = gateway.where
        assert where.connect == beds.get("address"), (where.connect, beds)
        assert where.port == PORT
        live = kube.get("gateway.gateway.networking.k8s.io", GATEWAY_NAME, namespace)
        assert live is not None
        programmed = conditions(live)["Programmed"]
        assert programmed["status"] == "True", programmed
        assert programmed["observedGeneration"] == live["metadata"]["generation"], programmed
        assert [a["value"] for a in live["status"]["addresses"]] == [where.connect], live["status"]
        assert re.search(r"into gcbed-traefik(-i\d+)?$", where.checked), where.checked
        assert route_accepted(kube, namespace), kube.get(ROUTE, "x", namespace)

    def test_3_requests_split_70_30(self, gateway: Through) -> None:
        tally = count(gateway, REQUESTS)
        interval = canary_interval(REQUESTS, SHARE)
        for neighbour in (Fraction(1, 5), Fraction(2, 5)):
            other = canary_interval(REQUESTS, neighbour)
            assert interval.high < other.low or other.high < interval.low, (neighbour, interval, other)
        print(f"70/30 through Traefik: {dict(tally.by_version)} of {REQUESTS}, interval {interval.text()}")
        assert tally.failures == {} and tally.without_version == 0, tally
        assert set(tally.by_version) == {STABLE_VERSION, CANARY_VERSION}, tally.by_version
        canary = tally.by_version[CANARY_VERSION]
        assert canary in interval, (
            f"{canary} of {REQUESTS} requests on the canary, interval {interval.text()}"
        )

    def test_4_the_canary_header_reaches_only_the_canary(self, gateway: Through) -> None:
        tally = count(gateway, 300, HEADER)
        assert tally.failures == {} and tally.by_version == {CANARY_VERSION: 300}, tally

    def test_5_weight_0_by_kubectl_patch_until_the_last_canary_answer(
        self, kube: Kube, namespace: str, gateway: Through
    ) -> None:
        load = Load(gateway.where, 20_000, concurrency=2, host=gateway.host, timeout=5, time_limit=120)
        with Stream(load, rate=100) as stream:
            wait_for(
                lambda: any(s.result.version == CANARY_VERSION for s in stream.snapshot()),
                timeout=30,
                what="a canary answer before the patch",
            )
            patch = [{"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 0}]
            patched = time.monotonic()
            kube.run("patch", ROUTE, "x", "-n", namespace, "--type=json", "-p", json.dumps(patch)).check()
            returned = time.monotonic()
            wait_for(lambda: route_accepted(kube, namespace), timeout=60, what="weight 0 Accepted by Traefik")
            wait_for(
                lambda: (
                    len(after := [s for s in stream.snapshot() if s.sent > returned]) >= 100
                    and all(s.result.version == STABLE_VERSION for s in after[-100:])
                ),
                timeout=60,
                what="100 answers in a row from the stable after the patch",
            )
        seen = stream.snapshot()
        tally = TrafficCounter().extend([s.result for s in seen]).tally()
        canary = [s for s in seen if s.result.version == CANARY_VERSION]
        assert tally.failures == {}, tally
        assert canary and canary[0].sent < patched, "the canary answered before the patch"
        last = canary[-1]
        after = sum(1 for s in canary if s.sent >= patched)
        print(
            f"weight 30 -> 0 by kubectl patch ({returned - patched:.2f} s): last canary answer "
            f"{last.answered - patched:.2f} s after the patch started ({after} canary answers after it; "
            f"{tally.sent} requests at 100/s)"
        )

    def test_6_every_traefik_gateway_gets_the_same_address(
        self, kube: Kube, namespace: str, gateway: Through
    ) -> None:
        other = unique("gc-traefik-other")
        kube.run("create", "namespace", other).check()
        try:
            kube.run("apply", "-n", other, "-f", "-", stdin=json.dumps(objects(hostname(other))[4])).check()
            assert programmed_address(kube, other, GATEWAY_NAME) == gateway.where.connect
        finally:
            kube.run("delete", "namespace", other, "--wait=false")
