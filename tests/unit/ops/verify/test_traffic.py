"""canary.ops.verify.traffic against a real HTTP server on 127.0.0.1 (tests/unit/podinfo_server.py): bounded
load,
per-request results, the tally, and the network-safety guard. Nothing here sends to any other address."""

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from canary.ops.errors import TrafficProblem
from canary.ops.verify import traffic
from canary.ops.verify.traffic import Load, Result, TrafficCounter, send, target, version_of
from tests.unit.podinfo_server import Podinfo, podinfo


@pytest.fixture
def app():
    with podinfo() as server:
        yield server


def test_counts_versions_and_sends_the_headers(app: Podinfo) -> None:
    app.version = lambda i: "6.7.1" if i % 4 == 0 else "6.7.0"
    run = send(
        Load(target(app.url), 200, concurrency=4, headers={"x-canary": "true"}, host="app.example.com")
    )
    assert [r.index for r in run.results] == list(range(200)) and run.not_sent == 0
    assert all(r.ok and r.status == 200 and r.error is None and r.latency > 0 for r in run.results)
    tally = TrafficCounter().extend(run.results).tally()
    assert tally.by_version == {"6.7.1": 50, "6.7.0": 150}
    assert (tally.sent, tally.failed, tally.without_version, tally.ok) == (200, 0, 0, 200)
    assert len(app.seen) == 200
    assert {(h["host"], h["x-canary"], h["user-agent"]) for h in app.seen} == {
        ("app.example.com", "true", "gateway-canary-verify")
    }


def test_the_host_header_defaults_to_the_url(app: Podinfo) -> None:
    send(Load(target(app.url), 1))
    assert app.seen[0]["host"] == f"127.0.0.1:{app.port}"


def test_failures_are_results_with_their_status(app: Podinfo) -> None:
    app.status = lambda i: 503 if i % 5 == 1 else 200
    run = send(Load(target(app.url), 50, concurrency=2))
    tally = TrafficCounter().extend(run.results).tally()
    assert tally.failures == {"HTTP 503": 10} and tally.error_rate == 0.2
    failed = [r for r in run.results if not r.ok]
    assert all(r.status == 503 and r.failure == "HTTP 503" for r in failed)


def test_answers_without_a_version_are_counted_apart(app: Podinfo) -> None:
    app.version = lambda i: None if i % 2 else "6.7.0"
    tally = TrafficCounter().extend(send(Load(target(app.url), 10)).results).tally()
    assert tally.by_version == {"6.7.0": 5} and tally.without_version == 5 and tally.failed == 0


def test_a_slow_answer_times_out_within_its_timeout(app: Podinfo) -> None:
    app.delay = 3.0
    start = time.monotonic()
    run = send(Load(target(app.url), 4, concurrency=4, timeout=0.3), probe_first=False)
    assert time.monotonic() - start < 2.0
    assert {r.failure for r in run.results} == {"timed out"}
    assert all(r.status is None for r in run.results)


def test_a_dripping_body_is_cut_off_at_the_timeout(app: Podinfo) -> None:
    """Every byte comes within the socket timeout, so only the watchdog bounds the whole answer."""
    app.drip = 0.05  # a ~60-byte body takes ~3 s
    start = time.monotonic()
    run = send(Load(target(app.url), 2, concurrency=2, timeout=0.5), probe_first=False)
    assert time.monotonic() - start < 2.0
    assert all(r.error is not None and r.error.startswith("timed out") for r in run.results), run.results


def test_no_request_starts_after_the_time_limit(app: Podinfo) -> None:
    app.delay = 0.2
    start = time.monotonic()
    run = send(Load(target(app.url), 1000, concurrency=2, timeout=1.0, time_limit=1.0))
    elapsed = time.monotonic() - start
    assert elapsed < 1.0 + 1.0 + 0.5
    assert 4 <= len(run.results) < 30 and run.not_sent == 1000 - len(run.results)
    assert len(app.seen) == len(run.results)


def test_a_target_that_does_not_answer_stops_at_the_probe() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(
        TrafficProblem, match=rf"http://127.0.0.1:{port}/version does not answer: connection refused"
    ):
        send(Load(target(f"http://127.0.0.1:{port}/version"), 100))


def test_version_of() -> None:
    assert version_of(b'{"version": "6.7.1", "hostname": "x"}') == "6.7.1"
    assert version_of(b'{"build": {"v": 1}, "v": 2}', "v") == "2"
    for body in (
        b"",
        b"not json",
        b"[1]",
        b'{"version": ""}',
        b'{"version": null}',
        b'{"version": true}',
        b"\xff",
    ):
        assert version_of(body) is None


def test_load_is_bounded() -> None:
    aim = target("http://127.0.0.1:9/version")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"requests": 0}, "requests must be between 1 and 20000, not 0"),
        ({"requests": -5}, "requests must be between 1 and 20000, not -5"),
        ({"requests": 20_001}, "requests must be between 1 and 20000"),
        ({"requests": 1, "concurrency": 0}, "concurrency must be between 1 and 64"),
        ({"requests": 1, "timeout": 0}, "timeout must be above 0"),
        ({"requests": 1, "time_limit": float("inf")}, "time limit must be above 0 and at most 3600"),
    ]
    for kwargs, message in cases:
        with pytest.raises(TrafficProblem, match=message):
            Load(aim, **kwargs)


def test_counter_is_thread_safe_and_gives_quantiles() -> None:
    counter = TrafficCounter()

    def add(offset: int) -> None:
        for i in range(500):
            counter.add(Result(i, 200, "a" if i % 2 else "b", (offset * 500 + i) / 1000))

    threads = [threading.Thread(target=add, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.add(Result(0, None, None, 0.0, "timed out: no full answer in 5.0s"))
    tally = counter.tally()
    assert tally.by_version == {"a": 1000, "b": 1000} and tally.failures == {"timed out": 1}
    assert tally.latency_quantile(0) == 0.0 and tally.latency_quantile(1) == 1.999
    assert tally.latency_quantile(0.5) == pytest.approx(0.999)
    assert TrafficCounter().tally().latency_quantile(0.5) is None


# The guard. Nothing below sends: target() decides before any socket is opened.


def test_loopback_is_allowed() -> None:
    assert target("http://127.0.0.1:8080/version").checked == "127.0.0.1: loopback"
    assert target("http://[::1]:8080").checked == "::1: loopback"
    local = target("http://localhost:8080")
    assert (local.connect, local.path, local.url) == (
        "127.0.0.1",
        "/version",
        "http://localhost:8080/version",
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://203.0.113.7/version", "not into the bed"),  # routed by the default route
        ("http://10.243.0.1/version", "10.243.0.1: a kwok node address"),  # nothing may dial node addresses
    ],
)
def test_other_addresses_are_refused_by_the_bed_check(url: str, why: str) -> None:
    with pytest.raises(TrafficProblem, match=rf"refusing to send load to .*{why}.*--allow-any-target"):
        target(url)


def test_names_are_not_resolved() -> None:
    with pytest.raises(
        TrafficProblem, match=r"'app\.example\.com' is not an IP address, and names are not resolved"
    ):
        target("http://app.example.com/version")


def test_without_the_bed_check_only_loopback_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traffic, "NETCHECK", Path("/nonexistent/netcheck.py"))
    assert target("http://127.0.0.1/").checked == "127.0.0.1: loopback"
    with pytest.raises(TrafficProblem, match="not loopback and there is no test bed check"):
        target("http://10.96.0.12/version")


def test_any_target_only_when_asked() -> None:
    aim = target("https://gateway.example.com:8443/healthz?x=1", allow_any_target=True)
    assert (aim.scheme, aim.connect, aim.port, aim.path) == (
        "https",
        "gateway.example.com",
        8443,
        "/healthz?x=1",
    )
    assert aim.checked == "not checked (--allow-any-target)"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:80", "http://", "http://127.0.0.1:99999/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(TrafficProblem, match=r"URL with a host|bad port"):
        target(url)
