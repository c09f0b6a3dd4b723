"""A gRPC release end to end (#24): `protocol: grpc` through the real engine, provider, apiserver, Envoy
Gateway and Envoy, to podinfo's real gRPC servers, counted by the version each one reports.

The program renders a GRPCRoute (the weighted split, the header override as a gRPC metadata match), the
Services' port `grpc` with appProtocol kubernetes.io/h2c, and pods that turn Ready only by the gRPC health
check (the bed asks `readinessProbe.grpc` as a kubelet would). `canary verify` makes real Version calls; a
fast rollback under a paced call stream fails no call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest

from canary.gateway_api import GRPC_ROUTE_KIND, ROUTE_RESOURCES
from canary.ops.gates.run import GRPC_UNREADABLE
from canary.ops.verify.grpc_versions import Calls, CallStream, GrpcTarget
from canary.ops.verify.split import canary_interval
from canary.ops.verify.traffic import TrafficCounter
from canary.route_state import route_state
from tests.integration.harness import (
    Kube,
    PulumiStack,
    before_rollback,
    canary,
    release_stack,
    route_accepted_by,
    set_in_stack_file,
    wait_for,
)
from tests.integration.test_grpc_bed import HOST, count, gateway_target, settle
from tests.integration.test_traffic_bed import bed

__all__ = ["bed"]  # the traffic bed's own readiness fixture (skips loudly, fails under CI)

APP = "rpc"
V1, V2 = "registry.example/rpc:2.0.0", "registry.example/rpc:2.1.0"
STABLE_VERSION, CANARY_VERSION = "2.0.0", "2.1.0"
GRPCROUTE = ROUTE_RESOURCES[GRPC_ROUTE_KIND]
CALLS = 2000
"""Version calls per split count: the 99.9% interval at 25% is disjoint from 12.5% and 50% (asserted)."""


@dataclass
class Release:
    stack: PulumiStack
    kube: Kube
    namespace: str = ""
    gateway: GrpcTarget | None = None


def judged_route(kube: Kube, namespace: str) -> dict[str, Any]:
    """The live GRPCRoute once its parent reports Accepted and ResolvedRefs at its current generation."""
    return route_accepted_by(kube, GRPCROUTE, APP, namespace, 1)


@pytest.fixture(scope="class")
def grpc_release(
    bed: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("grpc"),
        "grpc",
        {
            "appName": APP,
            "stableImage": V1,
            "canaryImage": V2,
            "canaryWeight": "25",
            "stableReplicas": "2",
            "gatewayClassName": "eg",
            "protocol": "grpc",
            # GRPCRoute is beyond the HTTP profile's Core, and Envoy Gateway v1.9 lists no supportedFeatures.
            "gatewayFeatures": "assume",
        },
    )
    set_in_stack_file(stack, {"hostnames": [HOST]})
    try:
        yield Release(stack, kube)
    finally:
        stack.destroy()


class TestGrpcRelease:
    def test_1_pulumi_up_renders_a_grpc_route_and_waits_for_its_verdict(self, grpc_release: Release) -> None:
        release = grpc_release
        release.stack.up(message="a gRPC canary at 25%").check()
        release.namespace = str(release.stack.outputs()["namespace"])
        route = judged_route(release.kube, release.namespace)
        assert route["kind"] == "GRPCRoute"
        state = route_state(route, APP)
        assert (state.stable_weight, state.canary_weight, state.header_rule) == (75, 25, ("x-canary", "true"))
        service = release.kube.get("service", f"{APP}-canary", release.namespace) or {}
        assert service["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
        deployment = release.kube.get("deployment", f"{APP}-canary", release.namespace) or {}
        app = deployment["spec"]["template"]["spec"]["containers"][0]
        assert app["readinessProbe"]["grpc"]["port"] == 9898 and "httpGet" not in app["readinessProbe"]
        assert app["ports"][0]["name"] == "grpc"
        assert deployment["status"].get("availableReplicas") == 1
        release.gateway = gateway_target(release.kube, release.namespace, f"{APP}-gateway")
        settle(release.gateway, {STABLE_VERSION, CANARY_VERSION})

    def test_2_the_split_lands_in_its_interval_and_metadata_reaches_the_canary(
        self, grpc_release: Release
    ) -> None:
        assert grpc_release.gateway is not None, "test_1 deploys the release"
        interval = canary_interval(CALLS, Fraction(1, 4))
        for other in (Fraction(1, 8), Fraction(1, 2)):
            near = canary_interval(CALLS, other)
            assert interval.high < near.low or near.high < interval.low, (interval, near)
        tally = count(grpc_release.gateway, CALLS)
        print(f"\ngRPC at 25%: {tally.by_version} of {tally.sent}")
        assert tally.failed == 0, tally
        assert interval.low <= tally.by_version.get(CANARY_VERSION, 0) <= interval.high, (tally, interval)
        header = count(grpc_release.gateway, 300, {"x-canary": "true"})
        assert header.by_version == {CANARY_VERSION: 300}, header

    def test_3_canary_verify_makes_real_version_calls(self, grpc_release: Release) -> None:
        verified = canary(grpc_release.stack, "verify", "-n", "400", "--json")
        report = json.loads(verified.stdout)
        assert verified.code == 0 and report["ok"], verified.output
        assert report["target"]["url"].startswith("grpc://") and report["target"]["url"].endswith(
            "/version.VersionService/Version"
        )
        header = canary(grpc_release.stack, "verify", "-n", "50", "--header", "x-canary: true")
        assert header.code == 0 and "PASS: all 50 header requests reached the canary" in header.stdout

    def test_4_the_metric_gates_say_what_they_cannot_read(self, grpc_release: Release) -> None:
        grpc_release.stack.pulumi(
            "config", "set", "--path", "analysis.prometheusUrl", "http://127.0.0.1:9"
        ).check()
        refused = canary(grpc_release.stack, "analyze")
        assert refused.code == 1 and GRPC_UNREADABLE in refused.stderr.replace("\n", " "), refused.output

    def test_5_a_fast_rollback_under_a_call_stream_fails_no_call(self, grpc_release: Release) -> None:
        assert grpc_release.gateway is not None
        calls = Calls(grpc_release.gateway, 20_000, concurrency=2, authority=HOST, timeout=5, time_limit=180)
        with CallStream(calls, rate=100) as stream:
            wait_for(  # the stream runs and the canary answers before the rollback (an event, not a delay)
                lambda: before_rollback(stream.snapshot(), CANARY_VERSION),
                timeout=60,
                what="100 calls in the stream, the canary among their answers",
            )
            canary(grpc_release.stack, "rollback", "--yes").check()
            wait_for(
                lambda: not [s for s in stream.snapshot()[-100:] if s.result.version != STABLE_VERSION],
                timeout=60,
                what="100 calls in a row on the stable",
            )
        seen = stream.snapshot()
        tally = TrafficCounter().extend([s.result for s in seen]).tally()
        print(f"\ngRPC rollback under {len(seen)} calls: {tally.by_version}, failures {tally.failures}")
        assert tally.failures == {}, tally
        assert tally.by_version.get(CANARY_VERSION, 0) > 0, f"the canary served before the rollback: {tally}"
        route = judged_route(grpc_release.kube, grpc_release.namespace)
        assert route_state(route, APP).canary_weight == 0
        status = canary(grpc_release.stack, "status")
        assert status.code == 0 and "canary 0%" in status.stdout, status.output
        grpc_release.stack.preview("--expect-no-changes", "--refresh").check()
