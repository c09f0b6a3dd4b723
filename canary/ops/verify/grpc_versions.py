"""Real gRPC calls, bounded: podinfo's `version.VersionService/Version` counted by version, and the standard
gRPC health check.

`count_versions(target, N, ...)` makes exactly N unary Version calls (grpcio, HTTP/2) and returns one `Call`
per call: its status code (`OK`, `UNAVAILABLE`, ...), the version the answer names, latency and details.
`traffic.TrafficCounter` tallies them like HTTP results (a failure is counted by its status code name).
`CallStream` makes the same calls in the background, paced and stamped (`traffic.Paced`), for a weight change
or a rollback watched call by call.

One channel per run, not per call: Envoy chooses the backend per request, not per downstream connection
(Envoy Gateway puts a rule's weighted backendRefs into one cluster, one locality per backend weighted by its
weight, with locality-weighted load balancing: internal/xds/translator/cluster.go; route-level
`weighted_clusters`, where it uses them, are also picked per request), so calls multiplexed on one HTTP/2
connection are split as separate connections would be, and a new channel per call would measure
connection set-up instead. Each call still carries its own deadline (`timeout`), and no call starts after
`time_limit`; calls left then are not made, and the run says how many.

The messages are built at run time from a FileDescriptorProto (`message_classes`): podinfo's
`pkg/api/grpc/version/version.proto` (package `version`: an empty VersionRequest; VersionResponse with
`version` = 1 and `commit` = 2) and grpc's `grpc/health/v1/health.proto`. No generated code, so no protoc
run and no second protobuf pin: the venv's protobuf is the one pulumi-policy pins.

Network safety is `traffic.check_address`'s: loopback or the test bed's own namespaces, anything else only
with `allow_any_target`. The channel dials the checked address itself (`ipv4:`/`ipv6:` targets: no name
resolution) and ignores proxy variables (`grpc.enable_http_proxy` 0), so the guard's address is the one
dialled.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from canary.ops.errors import TrafficProblem
from canary.ops.verify.traffic import MAX_CONCURRENCY, MAX_REQUESTS, Paced, Stamped, check_address

VERSION_METHOD = "/version.VersionService/Version"
"""podinfo's Version rpc: it answers version.VERSION, the value /version answers over HTTP."""
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
SERVING = "SERVING"
CHANNEL_OPTIONS = (("grpc.enable_http_proxy", 0),)

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_ENUM = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL


def message_classes(file: descriptor_pb2.FileDescriptorProto) -> dict[str, type[Message]]:
    """The message classes of one .proto file described in code, by short name (a private pool: nothing
    registered in protobuf's default pool, so no clash with generated code of the same names)."""
    classes = message_factory.GetMessages([file], pool=descriptor_pool.DescriptorPool())
    return {m.name: classes[f"{file.package}.{m.name}"] for m in file.message_type}


@cache
def version_messages() -> dict[str, type[Message]]:
    """podinfo's VersionRequest and VersionResponse (pkg/api/grpc/version/version.proto)."""
    file = descriptor_pb2.FileDescriptorProto(name="version.proto", package="version", syntax="proto3")
    file.message_type.add(name="VersionRequest")
    response = file.message_type.add(name="VersionResponse")
    response.field.add(name="version", number=1, type=_STRING, label=_OPTIONAL)
    response.field.add(name="commit", number=2, type=_STRING, label=_OPTIONAL)
    return message_classes(file)


@cache
def health_messages() -> dict[str, type[Message]]:
    """grpc.health.v1's HealthCheckRequest and HealthCheckResponse (ServingStatus: UNKNOWN 0, SERVING 1,
    NOT_SERVING 2, SERVICE_UNKNOWN 3)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="grpc/health/v1/health.proto", package="grpc.health.v1", syntax="proto3"
    )
    file.message_type.add(name="HealthCheckRequest").field.add(
        name="service", number=1, type=_STRING, label=_OPTIONAL
    )
    response = file.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(("UNKNOWN", SERVING, "NOT_SERVING", "SERVICE_UNKNOWN")):
        status.value.add(name=name, number=number)
    response.field.add(
        name="status",
        number=1,
        type=_ENUM,
        label=_OPTIONAL,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
    )
    return message_classes(file)


@dataclass(frozen=True)
class GrpcTarget:
    """Where calls go: `channel` is the grpcio target of the checked address (`ipv4:10.96.0.5:80`)."""

    host: str
    port: int
    channel: str
    checked: str

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of `host:port` or `[v6]:port`; raises TrafficProblem naming what is wrong."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TrafficProblem(f"{address!r} is not a host:port address for gRPC calls")
    return host, int(port)


def grpc_target(address: str, *, allow_any_target: bool = False) -> GrpcTarget:
    """Parse `address` and decide whether calls may go there (the module's network safety); raises
    TrafficProblem when they may not, before anything is sent."""
    host, port = parse_address(address)
    if allow_any_target:
        return GrpcTarget(host, port, f"{host}:{port}", "not checked (--allow-any-target)")
    connect = "127.0.0.1" if host == "localhost" else host
    checked = check_address(connect)
    ip = ipaddress.ip_address(connect)
    channel = f"ipv6:[{ip}]:{port}" if ip.version == 6 else f"ipv4:{ip}:{port}"
    return GrpcTarget(connect, port, channel, checked)


@dataclass(frozen=True)
class Call:
    """One gRPC call: `code` is the grpc.StatusCode's name (`OK` when answered), latency in seconds."""

    index: int
    code: str
    version: str | None
    latency: float
    details: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def failure(self) -> str | None:
        """The status code's name for tallies (`UNAVAILABLE`, `DEADLINE_EXCEEDED`...); None if ok."""
        return None if self.ok else self.code


@dataclass(frozen=True)
class Calls:
    """What to call: `requests` Version calls to `target`, at most `concurrency` at a time, each with a
    deadline of `timeout` seconds, none started after `time_limit` seconds. `authority` is the HTTP/2
    :authority (a route's hostname; default the address); `metadata` goes with every call (`x-canary`)."""

    target: GrpcTarget
    requests: int
    concurrency: int = 8
    timeout: float = 5.0
    time_limit: float = 120.0
    metadata: Mapping[str, str] = field(default_factory=dict)
    authority: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise TrafficProblem(f"requests must be between 1 and {MAX_REQUESTS}, not {self.requests}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise TrafficProblem(
                f"concurrency must be between 1 and {MAX_CONCURRENCY}, not {self.concurrency}"
            )
        for name, seconds in (("timeout", self.timeout), ("time limit", self.time_limit)):
            if not 0 < seconds <= 3600:
                raise TrafficProblem(f"{name} must be above 0 and at most 3600 seconds, not {seconds}")
        bad = [key for key in self.metadata if key != key.lower() or key.startswith(":")]
        if bad:
            raise TrafficProblem(f"gRPC metadata keys must be lower case and not pseudo-headers: {bad}")


@dataclass(frozen=True)
class CallRun:
    """What `count_versions` did: one call per call made (in index order) and how long it took."""

    calls: Calls
    results: list[Call]
    seconds: float

    @property
    def not_sent(self) -> int:
        return self.calls.requests - len(self.results)


def open_channel(target: GrpcTarget, authority: str | None = None) -> grpc.Channel:
    """A plaintext (h2c) channel to the checked address, proxies ignored."""
    options: list[tuple[str, Any]] = list(CHANNEL_OPTIONS)
    if authority:
        options.append(("grpc.default_authority", authority))
    return grpc.insecure_channel(target.channel, options=options)


def _version_stub(channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable[Message, Message]:
    messages = version_messages()
    return channel.unary_unary(
        VERSION_METHOD,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=messages["VersionResponse"].FromString,
    )


def call_once(
    stub: grpc.UnaryUnaryMultiCallable[Message, Message],
    index: int,
    budget: float,
    metadata: Mapping[str, str],
) -> Call:
    """One Version call with a deadline of `budget` seconds."""
    start = time.monotonic()
    try:
        response = stub(
            version_messages()["VersionRequest"](), timeout=budget, metadata=tuple(metadata.items())
        )
    except grpc.RpcError as err:
        code = err.code() if isinstance(err, grpc.Call) else None
        details = err.details() if isinstance(err, grpc.Call) else str(err)
        name = code.name if code is not None else "UNKNOWN"
        return Call(index, name, None, time.monotonic() - start, details)
    version = str(getattr(response, "version", "")) or None
    return Call(index, "OK", version, time.monotonic() - start)


def count_versions(calls: Calls, *, probe_first: bool = True) -> CallRun:
    """Make the calls on one channel; returns when every call is done or the time limit has passed.

    With `probe_first`, the channel must connect first (HTTP/2 to the target, within `timeout`): a target
    that does not answer raises TrafficProblem instead of N identical failures. Every call is then counted,
    whatever its status: Envoy's own answers (UNAVAILABLE for "no healthy upstream", UNIMPLEMENTED for no
    matching route) are what a split check must see.
    """
    start = time.monotonic()
    deadline = start + calls.time_limit
    results: list[Call] = []
    lock = threading.Lock()
    next_index = 0
    with open_channel(calls.target, calls.authority) as channel:
        stub = _version_stub(channel)
        if probe_first:
            try:
                grpc.channel_ready_future(channel).result(timeout=min(calls.timeout, calls.time_limit))
            except grpc.FutureTimeoutError:
                raise TrafficProblem(
                    f"{calls.target.address} does not answer: no HTTP/2 connection within {calls.timeout:g}s"
                ) from None

        def worker() -> None:
            nonlocal next_index
            while True:
                now = time.monotonic()
                with lock:
                    if next_index >= calls.requests or now >= deadline:
                        return
                    index = next_index
                    next_index += 1
                result = call_once(stub, index, min(calls.timeout, deadline - now), calls.metadata)
                with lock:
                    results.append(result)

        threads = [
            threading.Thread(target=worker, name=f"grpc-{i}", daemon=True)
            for i in range(min(calls.concurrency, calls.requests - next_index))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()) + calls.timeout + 5)
        with lock:
            done = sorted(results, key=lambda r: r.index)
    return CallRun(calls, done, time.monotonic() - start)


class CallStream(Paced[Call]):
    """`calls` made in the background on one channel, each stamped with the monotonic time it started, at
    most `rate` per second (None: as fast as they go), until `stop()`, `calls.requests` calls or
    `calls.time_limit` seconds, as `traffic.Stream` does for HTTP. The channel closes on `stop()`.

        with CallStream(calls, rate=100) as stream:
            ...                        # roll back to 0
        failed = [s for s in stream.snapshot() if not s.result.ok]
    """

    def __init__(self, calls: Calls, rate: float | None = None) -> None:
        self.calls = calls
        self._channel = open_channel(calls.target, calls.authority)
        stub = _version_stub(self._channel)
        super().__init__(
            lambda index, budget: call_once(stub, index, budget, calls.metadata),
            calls=calls.requests,
            concurrency=calls.concurrency,
            timeout=calls.timeout,
            time_limit=calls.time_limit,
            rate=rate,
        )

    def __enter__(self) -> CallStream:
        return self.start()

    def start(self) -> CallStream:
        super().start()
        return self

    def stop(self) -> list[Stamped[Call]]:
        done = super().stop()
        self._channel.close()
        return done


def health(channel_target: str, service: str = "", timeout: float = 1.0, user_agent: str = "") -> str:
    """The serving status (`SERVING`, `NOT_SERVING`, `SERVICE_UNKNOWN`, `UNKNOWN`) the standard health
    service (grpc.health.v1.Health/Check) at `channel_target` (a grpcio target: `ipv4:10.0.0.5:9000`) gives
    `service` ("" is the server as a whole), or the call's status code name when the check itself fails
    (`UNAVAILABLE`, `NOT_FOUND` for a service the server does not know, `UNIMPLEMENTED` without a health
    service); one call within `timeout` seconds, `user_agent` before grpcio's own. Not guarded: a prober's
    check of one pod address (the test bed's kubelet-like readiness probe), not load."""
    messages = health_messages()
    options: list[tuple[str, Any]] = list(CHANNEL_OPTIONS)
    if user_agent:
        options.append(("grpc.primary_user_agent", user_agent))
    with grpc.insecure_channel(channel_target, options=options) as channel:
        check: grpc.UnaryUnaryMultiCallable[Message, Message] = channel.unary_unary(
            HEALTH_METHOD,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=messages["HealthCheckResponse"].FromString,
        )
        try:
            response = check(messages["HealthCheckRequest"](service=service), timeout=timeout)
        except grpc.RpcError as err:
            code = err.code() if isinstance(err, grpc.Call) else None
            return code.name if code is not None else "UNKNOWN"
    status = response.DESCRIPTOR.fields_by_name["status"].enum_type.values_by_number
    number = int(getattr(response, "status", 0))
    return status[number].name if number in status else "UNKNOWN"
