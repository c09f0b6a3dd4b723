"""`canary verify` on the real traffic bed: the console command, a release of class `eg` (Envoy Gateway and a
real Envoy), podinfo answering for the pods. Requests go to the Gateway's status address only after the test
bed's netcheck vouched for it (canary.ops.verify.traffic); nothing here passes --allow-any-target.

One stack, in order: 25% passes; the header reaches the canary on every request; a route patched by hand fails
(the live split is not the stack's); back to the stack's split; 0% sends nothing to the canary; 0.5% over
3,000 requests passes (about 1,500 are needed before zero canary answers would fail it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from canary.gateway_api import GATEWAY_RESOURCE, ROUTE_RESOURCE
from canary.ops.errors import TrafficProblem
from canary.ops.verify.split import gateway_address
from canary.ops.verify.traffic import Load, TrafficCounter, send, target
from canary.route_state import split_rule_index
from tests.integration.harness import Kube, PulumiStack, Result, release_stack, wait_for
from tests.integration.test_traffic_bed import bed  # noqa: F401  (the fixture: the data plane is up)

APP = "vfy"
HOST = "app.example.com"
V1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.7.1"


def canary_verify(stack: PulumiStack, *args: str) -> Result:
    argv = [
        sys.executable,
        "-m",
        "canary",
        "verify",
        *args,
        "--cwd",
        str(stack.project_dir),
        "--stack",
        stack.name,
    ]
    proc = subprocess.run(
        argv, env=stack.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


def verified(stack: PulumiStack, *args: str) -> dict[str, Any]:
    result = canary_verify(stack, *args, "--json")
    assert result.stdout, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    print(
        f"canary verify {' '.join(args)}: exit {result.code}, {data.get('versions')}, {data.get('reasons')}"
    )
    return {**data, "exit": result.code}


def accepted(kube: Kube, namespace: str) -> bool:
    """Envoy Gateway accepted the route's current generation on every parent."""
    route = kube.get(ROUTE_RESOURCE, APP, namespace) or {}
    generation = route.get("metadata", {}).get("generation")
    parents = route.get("status", {}).get("parents", [])
    return bool(parents) and all(
        any(
            c["type"] == "Accepted" and c["status"] == "True" and c.get("observedGeneration") == generation
            for c in parent.get("conditions", [])
        )
        for parent in parents
    )


def settle(url: str, want: set[str], header: dict[str, str] | None = None) -> None:
    """Until 40 requests in a row succeed and every version in `want` answered (Envoy has the new route and
    its endpoints): bounded by 90 s, 40 requests a round."""

    def steady() -> bool:
        try:
            run = send(
                Load(
                    target(url), 40, concurrency=4, timeout=2, time_limit=10, host=HOST, headers=header or {}
                )
            )
        except TrafficProblem:
            return False
        tally = TrafficCounter().extend(run.results).tally()
        return tally.failed == 0 and tally.sent == 40 and want <= set(tally.by_version)

    wait_for(steady, timeout=90, what=f"Envoy serving {sorted(want)} steadily at {url}")


@pytest.fixture(scope="module")
def release(bed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulumiStack]:  # noqa: F811
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("verify"),
        "vfy",
        {
            "appName": APP,
            "stableImage": V1,
            "canaryImage": V2,
            "canaryWeight": "25",
            "gatewayClassName": "eg",
        },
    )
    stack.pulumi("config", "set", "--path", "hostnames[0]", HOST).check()
    try:
        stack.up().check()
        yield stack
    finally:
        stack.destroy()


@pytest.fixture(scope="module")
def url(release: PulumiStack, kube: Kube) -> str:
    namespace = str(release.outputs()["namespace"])

    def address() -> tuple[str, int] | None:
        try:
            return gateway_address(kube.get(GATEWAY_RESOURCE, f"{APP}-gateway", namespace) or {})
        except ValueError:
            return None

    wait_for(lambda: address() is not None, timeout=90, what="the Gateway's address from Envoy Gateway")
    wait_for(lambda: accepted(kube, namespace), timeout=60, what="the route Accepted by Envoy Gateway")
    found = address()
    assert found is not None
    gateway_url = f"http://{found[0]}/version" if found[1] == 80 else f"http://{found[0]}:{found[1]}/version"
    settle(gateway_url, {"6.7.0", "6.7.1"})
    return gateway_url


class TestVerify:
    def test_the_split_at_25_percent_passes(self, release: PulumiStack, url: str) -> None:
        data = verified(release, "--requests", "2000")
        assert data["exit"] == 0 and data["ok"] is True, data
        assert data["target"]["url"] == url and "into gcbed-gw-" in data["target"]["checked"]
        assert data["target"]["host"] == HOST
        assert data["sent"] == 2000 and data["counted"] == 2000 and data["failures"] == {}
        low, high = data["canaryInterval"]["low"], data["canaryInterval"]["high"]
        assert (low, high) == (437, 565) and low <= data["canaryCount"] <= high

    def test_the_header_reaches_the_canary_on_every_request(self, release: PulumiStack, url: str) -> None:
        data = verified(release, "--requests", "300", "--header", "x-canary: true")
        assert data["exit"] == 0 and data["intent"]["byHeader"] is True, data
        assert data["canaryCount"] == 300

    def test_a_route_patched_by_hand_fails(self, release: PulumiStack, kube: Kube, url: str) -> None:
        namespace = str(release.outputs()["namespace"])
        route = kube.get(ROUTE_RESOURCE, APP, namespace)
        assert route is not None
        index = split_rule_index(route, APP)
        patch = [
            {"op": "replace", "path": f"/spec/rules/{index}/backendRefs/0/weight", "value": 50},
            {"op": "replace", "path": f"/spec/rules/{index}/backendRefs/1/weight", "value": 50},
        ]
        kube.run(
            "patch", ROUTE_RESOURCE, APP, "-n", namespace, "--type=json", "-p", json.dumps(patch)
        ).check()
        wait_for(lambda: accepted(kube, namespace), timeout=60, what="the patched route Accepted")
        settle(url, {"6.7.0", "6.7.1"})
        data = verified(release, "--requests", "1000")
        assert data["exit"] == 1 and data["ok"] is False, data
        assert any("the live route sends 50% to canary, the stack says 25%" in r for r in data["reasons"]), (
            data
        )
        release.pulumi("up", "--yes", "--skip-preview", "--refresh").check()
        wait_for(lambda: accepted(kube, namespace), timeout=60, what="the restored route Accepted")
        settle(url, {"6.7.0", "6.7.1"})
        data = verified(release, "--requests", "1000")
        assert data["exit"] == 0, data

    def test_weight_zero_sends_nothing_to_the_canary(
        self, release: PulumiStack, kube: Kube, url: str
    ) -> None:
        release.set_config({"canaryWeight": "0"})
        release.up().check()
        namespace = str(release.outputs()["namespace"])
        wait_for(lambda: accepted(kube, namespace), timeout=60, what="the route at 0% Accepted")
        settle(url, {"6.7.0"})
        data = verified(release, "--requests", "1000")
        assert (
            data["exit"] == 0 and data["canaryCount"] == 0 and data["canaryInterval"] == {"low": 0, "high": 0}
        )
        header = verified(release, "--requests", "100", "--header", "x-canary: true")
        assert header["exit"] == 0 and header["canaryCount"] == 100, header

    def test_half_a_percent_over_3000_requests(self, release: PulumiStack, kube: Kube, url: str) -> None:
        release.set_config({"canaryWeight": "0.5"})
        release.up().check()
        namespace = str(release.outputs()["namespace"])
        wait_for(lambda: accepted(kube, namespace), timeout=60, what="the route at 0.5% Accepted")
        settle(url, {"6.7.0"})
        data = verified(release, "--requests", "3000")
        assert data["exit"] == 0 and data["notes"] == [], data
        assert data["canaryInterval"]["low"] >= 1  # zero canary answers would have failed
