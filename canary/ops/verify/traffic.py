"""Real requests, bounded: a small load generator, the network-safety guard in front of it, and a tally.

`send(Load(...))` sends exactly N GET requests (stdlib http.client, a fixed pool of threads), each on a
new connection like the article's `curl` loop, and returns one `Result` per request: HTTP status, the
version the JSON body names (podinfo's GET /version answers `{"version": "6.7.1", ...}`), latency and error
text. Everything is bounded: N is at most MAX_REQUESTS, each request gets `timeout` seconds in total (a
watchdog shuts the socket down when a slow server drips its answer), and no request starts after
`time_limit`; requests left then are reported as not sent, never silently dropped.

`TrafficCounter` tallies results (per version, per failure kind, latencies) for anything that judges
traffic: `canary verify` today, metric gates and tests later; gRPC calls too (`Outcome`). `Stream` sends the
same requests in the background while something else happens (a weight change), each one stamped with the
monotonic time it started, paced to at most `rate` per second and bounded like `send` (count and time),
until stopped; `Paced` is that pacing for any call (the gRPC stream of `grpc_versions` uses it).

Network safety: load goes only to loopback, or to an address the local test bed routes into a network
namespace of the project's own, which `scripts/testbed/netcheck.py` of the checkout decides (`ip route get`,
the veth's peer namespace). Every other target, a user's real cluster included, needs an explicit
`allow_any_target` (`canary verify --allow-any-target`). Names are not resolved unless that is given (a DNS
query is traffic too), except `localhost`, which is 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import math
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from canary.ops.errors import TrafficProblem
from canary.ops.verify.split import VERSION_FIELD

MAX_REQUESTS = 20_000
"""Most requests one run sends: enough for a 0.5% split to be checked at 99.9% (about 1,500 are needed)."""
MAX_CONCURRENCY = 64
MAX_BODY = 64 * 1024
"""Bytes of a response body read at most; a version is a few dozen bytes."""
NETCHECK = Path(__file__).resolve().parents[3] / "scripts" / "testbed" / "netcheck.py"
"""The test bed's own check of an address (in a checkout of this project; not in an installed package)."""
NETCHECK_TIMEOUT = 30.0
USER_AGENT = "gateway-canary-verify"


@dataclass(frozen=True)
class Target:
    """Where requests go: `connect` is the address dialled (checked by the guard), `host` the URL's host."""

    scheme: str
    host: str
    port: int
    path: str
    connect: str
    checked: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def parse_url(url: str, default_path: str = "/version") -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of an http(s) URL; an empty path becomes `default_path`.
    Raises TrafficProblem naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TrafficProblem(f"{url!r} is not an http:// or https:// URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TrafficProblem(f"{url!r} has a bad port") from None
    path = parts.path or default_path
    if parts.query:
        path += f"?{parts.query}"
    return parts.scheme, parts.hostname, port, path


def target(url: str, *, allow_any_target: bool = False) -> Target:
    """Parse `url` and decide whether load may go there (see the module's network safety); raises
    TrafficProblem when it may not, before anything is sent."""
    scheme, host, port, path = parse_url(url)
    if allow_any_target:
        return Target(scheme, host, port, path, host, "not checked (--allow-any-target)")
    connect = "127.0.0.1" if host == "localhost" else host
    return Target(scheme, host, port, path, connect, check_address(connect))


def check_address(host: str) -> str:
    """Why load may go to `host` (an IP address): loopback, or the test bed's netcheck says it is routed into
    the project's own namespace. Raises TrafficProblem otherwise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise TrafficProblem(
            f"{host!r} is not an IP address, and names are not resolved without --allow-any-target "
            "(pass the address, or --allow-any-target for a real cluster's gateway)"
        ) from None
    if address.is_loopback:
        return f"{address}: loopback"
    if not NETCHECK.is_file():
        raise TrafficProblem(
            f"{address} is not loopback and there is no test bed check ({NETCHECK}) to vouch for it: "
            "pass --allow-any-target to send to a real cluster's gateway"
        )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "scripts.testbed.netcheck", str(address)],
            cwd=NETCHECK.parents[2],
            capture_output=True,
            text=True,
            timeout=NETCHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TrafficProblem(f"{address}: the test bed check took over {NETCHECK_TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        said = (
            (proc.stderr.strip() or proc.stdout.strip())
            .removeprefix("REFUSED: ")
            .removeprefix(f"{address}: ")
        )
        raise TrafficProblem(
            f"refusing to send load to {address}: {said or 'refused by the test bed check'} "
            "(only loopback and the local test bed; --allow-any-target for a real cluster's gateway)"
        )
    return proc.stdout.strip().removeprefix("ok: ")


@dataclass(frozen=True)
class Result:
    """One request: status None when no HTTP answer came (then `error` says why); latency in seconds."""

    index: int
    status: int | None
    version: str | None
    latency: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer, read in full within its time."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def failure(self) -> str | None:
        """The kind of failure, for tallies: `HTTP 503`, `timed out`, `connection refused`...; None if ok."""
        if self.ok:
            return None
        if self.error is not None:
            return self.error.split(":", 1)[0]
        return f"HTTP {self.status}"


@dataclass(frozen=True)
class Load:
    """What to send: `requests` GETs of `target`, at most `concurrency` at a time, each within `timeout`
    seconds, none started after `time_limit` seconds. `host` overrides the Host header (a route's
    hostname); `headers` are added to every request."""

    target: Target
    requests: int
    concurrency: int = 8
    timeout: float = 5.0
    time_limit: float = 120.0
    headers: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None
    version_field: str = VERSION_FIELD

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


@dataclass(frozen=True)
class Run:
    """What `send` did: one result per request sent (in index order) and how long it took."""

    load: Load
    results: list[Result]
    seconds: float

    @property
    def not_sent(self) -> int:
        return self.load.requests - len(self.results)


def version_of(body: bytes, version_field: str = VERSION_FIELD) -> str | None:
    """The version a JSON body names in `version_field` (a string or a number), else None."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = doc.get(version_field) if isinstance(doc, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    return str(value)


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    if isinstance(err, http.client.RemoteDisconnected):
        return "connection closed: no response"
    if isinstance(err, ssl.SSLError):
        return f"TLS: {err}"
    return f"{type(err).__name__}: {err}"


def request_once(load: Load, index: int, budget: float) -> Result:
    """One GET on a new connection, everything (connect, headers, body) within `budget` seconds."""
    t = load.target
    headers = {
        "Host": load.host or (t.host if t.port in (80, 443) else f"{t.host}:{t.port}"),
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        "Connection": "close",
        **load.headers,
    }
    conn: http.client.HTTPConnection
    if t.scheme == "https":
        conn = http.client.HTTPSConnection(
            t.connect, t.port, timeout=budget, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(t.connect, t.port, timeout=budget)
    expired = threading.Event()
    start = time.monotonic()
    watchdog: threading.Timer | None = None
    try:
        conn.connect()
        sock = conn.sock

        def stop() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(max(0.0, budget - (time.monotonic() - start)), stop)
        watchdog.daemon = True
        watchdog.start()
        conn.request("GET", t.path, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_BODY)
        latency = time.monotonic() - start
        if expired.is_set():
            return Result(
                index, response.status, None, latency, f"timed out: no full answer in {budget:.1f}s"
            )
        return Result(index, response.status, version_of(body, load.version_field), latency)
    except (OSError, http.client.HTTPException) as err:
        text = f"timed out: no full answer in {budget:.1f}s" if expired.is_set() else _describe(err)
        return Result(index, None, None, time.monotonic() - start, text)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        conn.close()


def send(load: Load, *, probe_first: bool = True) -> Run:
    """Send the load; returns when every request is done or the time limit has passed.

    With `probe_first`, the first request goes alone, and when it gets no HTTP answer at all (refused,
    unreachable, timed out) the run stops there: a target that does not answer raises TrafficProblem
    instead of N identical failures.
    """
    start = time.monotonic()
    deadline = start + load.time_limit
    results: list[Result] = []
    lock = threading.Lock()
    next_index = 0
    if probe_first:
        first = request_once(load, 0, min(load.timeout, load.time_limit))
        if first.status is None:
            raise TrafficProblem(f"{load.target.url} does not answer: {first.error}")
        results.append(first)
        next_index = 1

    def worker() -> None:
        nonlocal next_index
        while True:
            now = time.monotonic()
            with lock:
                if next_index >= load.requests or now >= deadline:
                    return
                index = next_index
                next_index += 1
            result = request_once(load, index, min(load.timeout, deadline - now))
            with lock:
                results.append(result)

    threads = [
        threading.Thread(target=worker, name=f"load-{i}", daemon=True)
        for i in range(min(load.concurrency, load.requests - next_index))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + load.timeout + 5)
    with lock:
        done = sorted(results, key=lambda r: r.index)
    return Run(load, done, time.monotonic() - start)


@dataclass(frozen=True)
class Tally:
    """Counts of a set of results: versions of the successful answers, failures by kind, latencies."""

    sent: int
    by_version: dict[str, int]
    without_version: int
    failures: dict[str, int]
    latencies: tuple[float, ...]

    @property
    def ok(self) -> int:
        return sum(self.by_version.values()) + self.without_version

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def error_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) of the latencies, nearest rank; None without any."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile {q} is not between 0 and 1")
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(1, math.ceil(q * len(ordered))) - 1]


class Outcome(Protocol):
    """What a tally reads of one request or call: an HTTP `Result` here, a gRPC call
    (canary.ops.verify.grpc_versions) too."""

    @property
    def latency(self) -> float: ...

    @property
    def version(self) -> str | None: ...

    @property
    def failure(self) -> str | None: ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


class TrafficCounter:
    """A thread-safe running tally of results, for load that runs while something else happens (a weight
    change, a metric gate) as much as for one `send`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent = 0
        self._by_version: dict[str, int] = {}
        self._without_version = 0
        self._failures: dict[str, int] = {}
        self._latencies: list[float] = []

    def add(self, result: Outcome) -> None:
        with self._lock:
            self._sent += 1
            self._latencies.append(result.latency)
            failure = result.failure
            if failure is not None:
                self._failures[failure] = self._failures.get(failure, 0) + 1
            elif result.version is None:
                self._without_version += 1
            else:
                self._by_version[result.version] = self._by_version.get(result.version, 0) + 1

    def extend(self, results: list[OutcomeT]) -> TrafficCounter:
        for result in results:
            self.add(result)
        return self

    def tally(self) -> Tally:
        with self._lock:
            return Tally(
                self._sent,
                dict(self._by_version),
                self._without_version,
                dict(self._failures),
                tuple(self._latencies),
            )


@dataclass(frozen=True)
class Stamped(Generic[OutcomeT]):
    """One request of a `Stream` (or call of another `Paced` load): `sent` is time.monotonic() when it
    started; its latency ends it."""

    sent: float
    result: OutcomeT

    @property
    def answered(self) -> float:
        return self.sent + self.result.latency


class Paced(Generic[OutcomeT]):
    """`call(index, budget)` run in the background, each call stamped: `concurrency` threads, at most `rate`
    calls per second in all (None: as fast as they go), until `stop()`, `calls` calls or `time_limit`
    seconds after `start()`, whichever comes first; `timeout` bounds each call. `Stream` is this for HTTP
    GETs; the gRPC stream (canary.ops.verify.grpc_versions) for gRPC calls."""

    def __init__(
        self,
        call: Callable[[int, float], OutcomeT],
        *,
        calls: int,
        concurrency: int,
        timeout: float,
        time_limit: float,
        rate: float | None = None,
    ) -> None:
        if rate is not None and not 0 < rate <= 10_000:
            raise TrafficProblem(f"rate must be above 0 and at most 10000 per second, not {rate}")
        self.rate = rate
        self._call = call
        self._calls = calls
        self._concurrency = concurrency
        self._timeout = timeout
        self._time_limit = time_limit
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done: list[Stamped[OutcomeT]] = []
        self._threads: list[threading.Thread] = []
        self._next_index = 0
        self._next_slot = 0.0
        self._deadline = 0.0

    def __enter__(self) -> Paced[OutcomeT]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Paced[OutcomeT]:
        if self._threads:
            raise RuntimeError("a Stream starts once")
        now = time.monotonic()
        self._deadline = now + self._time_limit
        self._next_slot = now
        self._threads = [
            threading.Thread(target=self._worker, name=f"stream-{i}", daemon=True)
            for i in range(min(self._concurrency, self._calls))
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _claim(self) -> tuple[int, float] | None:
        """The next call's index and the monotonic time it may start; None when the stream is over."""
        with self._lock:
            now = time.monotonic()
            if self._stop.is_set() or self._next_index >= self._calls or now >= self._deadline:
                return None
            index = self._next_index
            self._next_index += 1
            slot = now
            if self.rate is not None:
                slot = max(now, self._next_slot)
                self._next_slot = slot + 1 / self.rate
            return index, slot

    def _worker(self) -> None:
        while (claimed := self._claim()) is not None:
            index, slot = claimed
            if self._stop.wait(max(0.0, slot - time.monotonic())):
                return
            sent = time.monotonic()
            if sent >= self._deadline:
                return
            result = self._call(index, min(self._timeout, self._deadline - sent))
            with self._lock:
                self._done.append(Stamped(sent, result))

    def snapshot(self) -> list[Stamped[OutcomeT]]:
        """The calls answered (or failed) so far, in the order they started."""
        with self._lock:
            return sorted(self._done, key=lambda s: s.sent)

    def stop(self) -> list[Stamped[OutcomeT]]:
        """No new call starts; waits for those in flight (each within `timeout`); returns them all."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 5)
        return self.snapshot()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)


class Stream(Paced[Result]):
    """`load` sent in the background, each request stamped: `load.concurrency` threads send GETs as `send`
    does (`request_once`), at most `rate` requests per second in all (None: as fast as they go), until
    `stop()`, `load.requests` requests or `load.time_limit` seconds after `start()`, whichever comes first.

        with Stream(load, rate=200) as stream:
            ...                      # change the route
            seen = stream.snapshot() # what answered so far, in start order
        seen = stream.stamped()      # everything, once stopped
    """

    def __init__(self, load: Load, rate: float | None = None) -> None:
        super().__init__(
            lambda index, budget: request_once(load, index, budget),
            calls=load.requests,
            concurrency=load.concurrency,
            timeout=load.timeout,
            time_limit=load.time_limit,
            rate=rate,
        )
        self.load = load

    def __enter__(self) -> Stream:
        return self.start()

    def start(self) -> Stream:
        super().start()
        return self
