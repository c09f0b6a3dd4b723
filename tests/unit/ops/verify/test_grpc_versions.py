"""canary.ops.verify.grpc_versions against a real grpcio server on loopback (podinfo's Version rpc and the
standard health service, served from the same run-time descriptors), not a mock of the channel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from canary.ops.errors import TrafficProblem
from canary.ops.verify import grpc_versions
from canary.ops.verify.grpc_versions import Calls, CallStream, count_versions, grpc_target, health
from canary.ops.verify.traffic import TrafficCounter


def version(request: Any, context: grpc.ServicerContext) -> Any:
    """Answers "b" to calls with `x-canary: true`, fails calls with `x-fail`, "a" otherwise."""
    metadata = dict(context.invocation_metadata())
    if "x-fail" in metadata:
        context.abort(grpc.StatusCode.UNAVAILABLE, "no healthy upstream")
    reply = "b" if metadata.get("x-canary") == "true" else "a"
    return grpc_versions.version_messages()["VersionResponse"](version=reply, commit="c0ffee")


USER_AGENTS: list[str] = []


def check(request: Any, context: grpc.ServicerContext) -> Any:
    messages = grpc_versions.health_messages()
    USER_AGENTS.append(str(dict(context.invocation_metadata()).get("user-agent")))
    if request.service not in ("", "podinfo"):
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return messages["HealthCheckResponse"](status=1)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """host:port of a grpcio server with podinfo's VersionService and grpc.health.v1.Health."""
    versions, healths = grpc_versions.version_messages(), grpc_versions.health_messages()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    srv.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "version.VersionService",
                {
                    "Version": grpc.unary_unary_rpc_method_handler(
                        version,
                        request_deserializer=versions["VersionRequest"].FromString,
                        response_serializer=lambda m: m.SerializeToString(),
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health",
                {
                    "Check": grpc.unary_unary_rpc_method_handler(
                        check,
                        request_deserializer=healths["HealthCheckRequest"].FromString,
                        response_serializer=lambda m: m.SerializeToString(),
                    )
                },
            ),
        )
    )
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"127.0.0.1:{port}"
    srv.stop(grace=None)


def test_calls_are_counted_by_the_version_answered_and_metadata_reaches_the_server(server: str) -> None:
    run = count_versions(Calls(grpc_target(server), 40, concurrency=4))
    assert len(run.results) == 40 and run.not_sent == 0
    assert [r.index for r in run.results] == list(range(40))
    assert TrafficCounter().extend(run.results).tally().by_version == {"a": 40}
    canary = count_versions(Calls(grpc_target(server), 10, metadata={"x-canary": "true"}))
    assert TrafficCounter().extend(canary.results).tally().by_version == {"b": 10}


def test_failed_calls_are_tallied_by_status_code(server: str) -> None:
    run = count_versions(Calls(grpc_target(server), 5, metadata={"x-fail": "1"}))
    tally = TrafficCounter().extend(run.results).tally()
    assert tally.failures == {"UNAVAILABLE": 5} and tally.by_version == {}
    assert run.results[0].details == "no healthy upstream"


def test_a_target_that_does_not_answer_is_refused_before_any_call(server: str) -> None:
    with pytest.raises(TrafficProblem, match="does not answer: no HTTP/2 connection within 1s"):
        count_versions(Calls(grpc_target("127.0.0.1:1"), 100, timeout=1))


def test_addresses_are_checked_before_anything_is_sent() -> None:
    with pytest.raises(TrafficProblem, match="not a host:port"):
        grpc_target("127.0.0.1")
    with pytest.raises(TrafficProblem, match="names are not resolved"):
        grpc_target("gateway.example:443")
    assert grpc_target("localhost:9000").channel == "ipv4:127.0.0.1:9000"
    assert grpc_target("[::1]:9000").channel == "ipv6:[::1]:9000"
    with pytest.raises(TrafficProblem, match="requests must be between"):
        Calls(grpc_target("127.0.0.1:9000"), 0)
    with pytest.raises(TrafficProblem, match="lower case"):
        Calls(grpc_target("127.0.0.1:9000"), 1, metadata={"X-Canary": "true"})


def test_the_stream_is_paced_stamped_and_stops(server: str) -> None:
    with CallStream(Calls(grpc_target(server), 20_000, concurrency=2), rate=50) as stream:
        time.sleep(0.5)
    seen = stream.snapshot()
    assert 10 <= len(seen) <= 40, len(seen)
    assert all(s.result.ok and s.result.version == "a" for s in seen)
    assert [s.sent for s in seen] == sorted(s.sent for s in seen)
    assert not stream.running


def test_health_answers_the_serving_status_or_the_calls_code(server: str) -> None:
    assert health(f"ipv4:{server}") == "SERVING"
    assert health(f"ipv4:{server}", "podinfo") == "SERVING"
    assert health(f"ipv4:{server}", "other") == "NOT_FOUND"
    assert health("ipv4:127.0.0.1:1", timeout=2) == "UNAVAILABLE"


def test_health_says_who_asks(server: str) -> None:
    assert health(f"ipv4:{server}", user_agent="kube-probe/test") == "SERVING"
    assert USER_AGENTS[-1].startswith("kube-probe/test "), USER_AGENTS
