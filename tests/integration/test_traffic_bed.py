"""The real traffic test bed (issue 12): Envoy Gateway programs a real Envoy, which sends requests to podinfo.

A release of the repo's own program with gatewayClassName `eg` goes through real `pulumi up`. Envoy Gateway
(`scripts/cluster.sh up`) writes the Gateway's and the route's status (nothing here or in the program fakes
it); the data-plane supervisor (scripts/testbed) runs the Gateway's Envoy in a namespace of its own and one
podinfo per Ready pod. The requests go from this process to the Gateway's status address on port 80, as a
user's curl to a LoadBalancer address would, after `netcheck` has confirmed that address is routed into the
bed.

Every request loop is bounded in count and in time. The split check here is loose (5 sigma of a binomial);
precise split tests come with `canary verify`.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scripts.testbed.netcheck import UnsafeTarget, check_target
from tests.integration.conftest import not_run
from tests.integration.harness import Kube, PulumiStack, release_stack, wait_for

EG_CLASS = "eg"
EG_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
EG_NAMESPACE = "envoy-gateway-system"
APP = "podinfo"
HOST = "app.example.com"
V1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.7.1"
ROUTE = "httproute.gateway.networking.k8s.io"
GATEWAY = "gateway.gateway.networking.k8s.io"


def conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions", [])}


def dataplane_dir(env: dict[str, str]) -> Path:
    return Path(env["KUBECONFIG"]).parent / "dataplane"


def dataplane_state(env: dict[str, str]) -> dict[str, Any]:
    path = dataplane_dir(env) / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture(scope="module")
def bed(env: dict[str, str], kube: Kube) -> dict[str, str]:
    """The data plane is up: the tools, Envoy Gateway's class Accepted, the supervisor running."""
    problems = [
        f"{tool} not found on PATH (run `make tools`)"
        for tool in ("envoy-gateway", "envoy", "podinfo")
        if shutil.which(tool, path=env["PATH"]) is None
    ]
    if os.geteuid() != 0:
        problems.append("the data plane needs root (network namespaces)")
    if not problems:
        accepted = conditions(kube.get("gatewayclass", EG_CLASS)).get("Accepted", {}).get("status")
        if accepted != "True":
            problems.append(f"GatewayClass {EG_CLASS} not Accepted by Envoy Gateway (run `make cluster-up`)")
        pidfile = dataplane_dir(env) / "pid"
        if not pidfile.exists() or not Path(f"/proc/{pidfile.read_text().strip()}").exists():
            problems.append(f"no data-plane supervisor running ({pidfile}; run `make cluster-up`)")
    if problems:
        not_run("traffic bed: " + "; ".join(problems))
    return env


@dataclass
class Sample:
    """What a bounded request loop saw: versions of the 200s, and every failure (status or error)."""

    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # of the 200s, seconds
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.versions.values()) + len(self.failures)


class Client:
    """HTTP/1.1 keep-alive requests to one address (Envoy picks a backend per request, not per connection)."""

    def __init__(self, address: str) -> None:
        check_target(address)  # raises UnsafeTarget unless routed into the bed (or loopback)
        self.address = address
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def version(self, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """(status, version or error text) of one GET /version."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.address, 80, timeout=5)
        try:
            self.conn.request("GET", "/version", headers={"Host": HOST, **(headers or {})})
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as err:
            self.conn.close()
            self.conn = None
            return 0, f"{type(err).__name__}: {err}"
        if resp.status != 200:
            return resp.status, body[:200].decode(errors="replace")
        return 200, str(json.loads(body)["version"])

    def sample(self, count: int, seconds: float, headers: dict[str, str] | None = None) -> Sample:
        """`count` requests, or as many as fit in `seconds`."""
        out = Sample()
        started = time.monotonic()
        for _ in range(count):
            if time.monotonic() - started > seconds:
                break
            sent = time.monotonic()
            status, text = self.version(headers)
            if status == 200:
                out.versions[text] += 1
                out.latencies.append(time.monotonic() - sent)
            else:
                out.failures.append(f"{status} {text}")
        out.seconds = time.monotonic() - started
        return out

    def settle(self, want: set[str], seconds: float = 90, streak: int = 30) -> Sample:
        """Wait until `streak` requests in a row succeed and every version in `want` has answered (Envoy has
        the route and the endpoints, and podinfo runs for the pods). Returns everything seen meanwhile."""
        seen = Sample()
        started, run = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            status, text = self.version()
            if status == 200:
                seen.versions[text] += 1
                run += 1
                if run >= streak and want <= set(seen.versions):
                    break
            else:
                seen.failures.append(f"{status} {text}")
                run = 0
                time.sleep(0.2)
        seen.seconds = time.monotonic() - started
        assert run >= streak and want <= set(seen.versions), (
            f"Envoy did not serve {sorted(want)} steadily within {seconds}s: {seen.versions}, "
            f"last failures {seen.failures[-5:]}"
        )
        return seen


def route_accepted(kube: Kube, namespace: str) -> bool:
    """Every parent of the route says Accepted and ResolvedRefs for the route's current generation, written by
    Envoy Gateway."""
    route = kube.get(ROUTE, APP, namespace) or {}
    parents = route.get("status", {}).get("parents", [])
    generation = route.get("metadata", {}).get("generation")
    if not parents:
        return False
    for parent in parents:
        found = {c["type"]: c for c in parent.get("conditions", [])}
        if parent.get("controllerName") != EG_CONTROLLER:
            return False
        for kind in ("Accepted", "ResolvedRefs"):
            cond = found.get(kind, {})
            if cond.get("status") != "True" or cond.get("observedGeneration") != generation:
                return False
    return True


@pytest.fixture(scope="module")
def release(
    bed: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiStack]:
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("bed"),
        "bed",
        {"appName": APP, "stableImage": V1, "gatewayClassName": EG_CLASS, "stableReplicas": "2"},
    )
    stack.pulumi("config", "set", "--path", "hostnames[0]", HOST).check()
    try:
        yield stack
    finally:
        stack.destroy()


@pytest.fixture(scope="module")
def namespace(release: PulumiStack) -> str:
    release.up().check()
    return str(release.outputs()["namespace"])


def programmed_address(kube: Kube, namespace: str, gateway_name: str = f"{APP}-gateway") -> str:
    """The Gateway's status address, once Envoy Gateway has Programmed it."""
    wait_for(
        lambda: (
            conditions(kube.get(GATEWAY, gateway_name, namespace)).get("Programmed", {}).get("status")
            == "True"
        ),
        timeout=90,
        what="the Gateway Programmed by Envoy Gateway",
    )
    gateway = kube.get(GATEWAY, gateway_name, namespace)
    assert gateway is not None
    return str(gateway["status"]["addresses"][0]["value"])


@pytest.fixture(scope="module")
def client(kube: Kube, namespace: str) -> Iterator[Client]:
    """A client of the Gateway's address, once Envoy Gateway has programmed the Gateway."""
    client = Client(programmed_address(kube, namespace))
    try:
        yield client
    finally:
        client.close()


class TestTrafficBed:
    def test_gateway_and_route_status_come_from_envoy_gateway(
        self, kube: Kube, namespace: str, client: Client
    ) -> None:
        gateway = kube.get(GATEWAY, f"{APP}-gateway", namespace)
        assert gateway is not None
        programmed = conditions(gateway)["Programmed"]
        assert programmed["observedGeneration"] == gateway["metadata"]["generation"], programmed
        # The address is the ClusterIP of the envoy Service Envoy Gateway made for this Gateway.
        services = kube.run(
            "get", "service", "-n", EG_NAMESPACE, "-o", "json",
            "-l", f"gateway.envoyproxy.io/owning-gateway-name={APP}-gateway,"
            f"gateway.envoyproxy.io/owning-gateway-namespace={namespace}",
        ).check()  # fmt: skip
        ips = [s["spec"]["clusterIP"] for s in json.loads(services.stdout)["items"]]
        assert ips == [client.address], (ips, gateway["status"])
        wait_for(
            lambda: route_accepted(kube, namespace), timeout=60, what="the route Accepted by Envoy Gateway"
        )

    def test_the_address_is_routed_into_the_bed_and_node_addresses_are_refused(
        self, kube: Kube, client: Client
    ) -> None:
        assert re.search(r"into gcbed-gw-\d+(-i\d+)?$", check_target(client.address)), check_target(
            client.address
        )
        nodes = json.loads(kube.run("get", "nodes", "-o", "json").check().stdout)["items"]
        addresses = [
            a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"
        ]
        assert addresses and not any(a.startswith("192.0.2.") for a in addresses), addresses
        for address in addresses:
            with pytest.raises(UnsafeTarget, match="node address"):
                check_target(address)

    def test_stable_answers_with_its_tag(self, bed: dict[str, str], client: Client, namespace: str) -> None:
        client.settle({"6.7.0"})
        sample = client.sample(200, seconds=60)
        assert sample.failures == [] and sample.versions == Counter({"6.7.0": 200}), sample
        pods = [p for p in dataplane_state(bed).get("pods", []) if p["namespace"] == namespace]
        assert sorted(p["version"] for p in pods) == ["6.7.0", "6.7.0"], pods

    def test_canary_at_25_percent_gets_about_a_quarter(
        self, release: PulumiStack, kube: Kube, client: Client, namespace: str
    ) -> None:
        release.set_config({"canaryImage": V2, "canaryWeight": "25"})
        release.up().check()
        wait_for(
            lambda: route_accepted(kube, namespace), timeout=60, what="the new route generation Accepted"
        )
        client.settle({"6.7.0", "6.7.1"})
        n, p = 2000, 0.25
        sample = client.sample(n, seconds=120)
        print(f"25% canary: {dict(sample.versions)} in {sample.total} requests, {sample.seconds:.1f}s")
        assert sample.failures == [] and sample.total == n, sample.failures[:10]
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(sample.versions["6.7.1"] - n * p) <= 5 * sigma, sample.versions
        assert set(sample.versions) == {"6.7.0", "6.7.1"}, sample.versions

    def test_the_canary_header_always_reaches_the_canary(self, client: Client) -> None:
        sample = client.sample(200, seconds=60, headers={"x-canary": "true"})
        assert sample.failures == [] and sample.versions == Counter({"6.7.1": 200}), sample

    def test_faulty_and_slow_images_fail_a_third_and_add_latency(
        self, bed: dict[str, str], release: PulumiStack, kube: Kube, client: Client, namespace: str
    ) -> None:
        """The test hooks: a canary image containing `faulty` and `slow` (docs/getting-started.md: the local
        cluster)."""
        image = "registry.example/podinfo:faulty-slow-1"
        release.set_config({"canaryImage": image})
        release.up().check()
        wait_for(
            lambda: route_accepted(kube, namespace), timeout=60, what="the new route generation Accepted"
        )
        header = {"x-canary": "true"}
        wait_for(
            lambda: client.version(header) == (200, "faulty-slow-1"),
            timeout=60,
            what="the new canary answering through Envoy",
        )
        sample = client.sample(60, seconds=90, headers=header)
        print(f"faulty+slow canary: {dict(sample.versions)}, failures {Counter(sample.failures)}")
        assert set(sample.versions) == {"faulty-slow-1"}, sample.versions
        assert {f.split()[0] for f in sample.failures} <= {"400", "409", "500"}, sample.failures
        # One in three fails (expected 20 of 60): far outside 5..45 only with probability < 1e-4.
        assert 5 <= len(sample.failures) <= 45 and sample.total == 60, sample
        assert min(sample.latencies) >= 0.1, sorted(sample.latencies)[:5]
        pods = [
            p for p in dataplane_state(bed)["pods"] if p["namespace"] == namespace and "canary" in p["pod"]
        ]
        assert [p["hooks"] for p in pods] == [["faulty", "slow"]], pods

    def test_destroy_stops_the_gateways_envoy_and_the_pods_processes(
        self, bed: dict[str, str], release: PulumiStack, namespace: str
    ) -> None:
        release.pulumi("destroy", "--yes", "--skip-preview").check()

        def gone() -> bool:
            state = dataplane_state(bed)
            gateways = [g for g in state.get("gateways", []) if g["gateway"] == f"{namespace}/{APP}-gateway"]
            pods = [p for p in state.get("pods", []) if p["namespace"] == namespace]
            return not gateways and not pods

        wait_for(gone, timeout=60, what="the supervisor to stop the release's Envoy and podinfo processes")
