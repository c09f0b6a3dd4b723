"""bench/traffic.py's pure parts (when a stamped stream says Envoy switched, the figures, the tables), and the
background Stream of canary.ops.verify.traffic against a real server on 127.0.0.1 (nothing else is
dialled)."""

import time
from typing import Any

import pytest

from bench import traffic as bt
from bench.__main__ import derive, markdown, parse_args
from canary.ops.errors import TrafficProblem
from canary.ops.verify import traffic
from canary.ops.verify.traffic import Load, Stream
from tests.unit.podinfo_server import Podinfo, podinfo

OLD, NEW = "1.1.0", "1.0.0"


def test_served_is_the_first_request_after_the_last_gone_answer() -> None:
    t0 = 100.0
    samples = [
        (99.0, OLD),
        (99.5, NEW),
        (100.1, OLD),
        (100.2, NEW),
        (100.3, OLD),
        (100.35, NEW),
        (100.4, NEW),
    ]
    switch = bt.switch_of(samples, t0, OLD)
    assert switch.last_gone == pytest.approx(0.3)
    assert switch.served == pytest.approx(0.35)
    assert (switch.after, switch.before, switch.failures) == (2, 1, 0)
    assert switch.after_seconds == pytest.approx(0.05)


def test_order_of_the_samples_does_not_matter_and_failures_after_t0_are_counted() -> None:
    samples = [(10.4, NEW), (10.2, None), (9.0, OLD), (10.3, OLD), (9.5, None), (10.5, NEW)]
    switch = bt.switch_of(samples, 10.0, OLD)
    assert switch.served == pytest.approx(0.4)
    assert switch.failures == 1  # the one before t0 is not the rollback's
    assert switch.after == 2


def test_a_failure_after_the_last_gone_answer_is_where_new_requests_start() -> None:
    # A failed request is no evidence of the old split: the new one starts with it, but it is not counted.
    switch = bt.switch_of([(0.0, OLD), (1.0, OLD), (1.1, None), (1.2, NEW)], 0.5, OLD)
    assert switch.served == pytest.approx(0.6)
    assert switch.after == 1


def test_no_request_after_the_last_gone_answer_is_not_served_yet() -> None:
    switch = bt.switch_of([(0.0, NEW), (1.0, OLD)], 0.5, OLD)
    assert switch.served is None and switch.after == 0
    assert not bt.settled(switch)


def test_gone_never_answered() -> None:
    switch = bt.switch_of([(1.0, NEW), (2.0, NEW)], 1.5, OLD)
    assert switch.last_gone is None and switch.before == 0
    assert switch.served == pytest.approx(0.5)


def test_settled_needs_both_the_count_and_the_span() -> None:
    steady = [(0.0, OLD)] + [(0.01 * i, NEW) for i in range(1, 400)]
    assert bt.settled(bt.switch_of(steady, 0.0, OLD), quiet=3.0, requests=200)
    assert not bt.settled(bt.switch_of(steady, 0.0, OLD), quiet=5.0, requests=200)
    assert not bt.settled(bt.switch_of(steady, 0.0, OLD), quiet=3.0, requests=500)


def test_samples_of_keeps_only_2xx_versions() -> None:
    stamped = [
        traffic.Stamped(1.0, traffic.Result(0, 200, OLD, 0.01)),
        traffic.Stamped(2.0, traffic.Result(1, 503, None, 0.01)),
        traffic.Stamped(3.0, traffic.Result(2, None, None, 0.01, "timed out: x")),
    ]
    assert bt.samples_of(stamped) == [(1.0, OLD), (2.0, None), (3.0, None)]
    assert stamped[0].answered == pytest.approx(1.01)


def test_quantile_is_nearest_rank() -> None:
    assert bt.quantile([0.3, 0.1, 0.2, 0.4], 0.5) == 0.2
    assert bt.quantile([0.001 * i for i in range(1, 101)], 0.99) == pytest.approx(0.099)
    assert bt.quantile([], 0.5) is None


def test_version_of_image() -> None:
    assert bt.version_of_image("registry.example/web:1.1.0") == "1.1.0"
    assert bt.version_of_image("localhost:5000/web:2") == "2"


RAW: dict[str, Any] = {
    "methods": {"kubectl": "kubectl patch ...", "pulumi-up": "pulumi up ..."},
    "variants": {"single": "single backend", "split": "header rule + split"},
    "concurrency": 8,
    "seconds": 5.0,
    "rate": 200.0,
    "propagation": [
        {
            "method": "kubectl",
            "apiserver": 0.1,
            "served": 0.3,
            "exited": 0.12,
            "failures": 0,
            "requests": 900,
        },
        {
            "method": "kubectl",
            "apiserver": 0.2,
            "served": 0.5,
            "exited": 0.22,
            "failures": 1,
            "requests": 900,
        },
        {
            "method": "pulumi-up",
            "apiserver": 2.0,
            "served": 2.3,
            "exited": 3.0,
            "failures": 0,
            "requests": 1500,
        },
        {
            "method": "pulumi-up",
            "apiserver": 2.4,
            "served": 2.7,
            "exited": 3.2,
            "failures": 0,
            "requests": 1500,
        },
    ],
    "throughput": [
        {"variant": "single", "rps": 400.0, "p50": 0.01, "p99": 0.03, "requests": 2000, "failed": 0},
        {"variant": "split", "rps": 300.0, "p50": 0.02, "p99": 0.05, "requests": 1500, "failed": 0},
        {"variant": "single", "rps": 420.0, "p50": 0.012, "p99": 0.04, "requests": 2100, "failed": 0},
        {"variant": "split", "rps": 320.0, "p50": 0.022, "p99": 0.06, "requests": 1600, "failed": 2},
    ],
}


def test_derive_medians_data_plane_and_ratios() -> None:
    d = bt.derive(RAW)
    kubectl, up = d["methods"]["kubectl"], d["methods"]["pulumi-up"]
    assert kubectl["served"]["median"] == pytest.approx(0.4)
    assert kubectl["apiserver"]["median"] == pytest.approx(0.15)
    assert kubectl["dataPlane"]["median"] == pytest.approx(0.25)
    assert up["servedVsKubectl"] == pytest.approx(2.5 / 0.4)
    assert up["apiserverVsKubectl"] == pytest.approx(2.2 / 0.15)
    assert (kubectl["failures"], kubectl["requests"]) == (1, 1800)
    split = d["variants"]["split"]
    assert split["rps"]["median"] == 310.0 and split["vsSingle"] == pytest.approx(310 / 410)
    assert split["p50"] == pytest.approx(0.021) and split["failed"] == 2


def test_markdown_has_both_tables() -> None:
    text = bt.markdown(bt.derive(RAW))
    assert (
        "| `kubectl patch ...` | 0.15 s (0.10-0.20) | 0.40 s (0.30-0.50) | +250 ms (+200 to +300) |" in text
    )
    assert "| header rule + split | 310 (300-320) | 0.76x | 21.0 ms | 55.0 ms | 2 / 3100 |" in text
    assert "n=2 per method" in text and "n=2 runs per route" in text


def test_registered_as_a_bench_section() -> None:
    args = parse_args(["--only", "traffic", "--quick"])
    assert args.only == ["traffic"] and args.traffic_rounds == 2 and args.rps_rounds == 1
    assert parse_args([]).traffic_rounds == 5
    with pytest.raises(SystemExit):
        parse_args(["--traffic-methods", "nope"])
    results = {
        "args": {},
        "machine": "m",
        "versions": {},
        "seconds": 1.0,
        "loadAfter": 0.5,
        "derived": derive({"traffic": RAW}),
    }
    assert "## Through the real Envoy" in markdown(results)


@pytest.fixture
def app():
    with podinfo() as server:
        yield server


def test_stream_stamps_every_request_and_stops_when_asked(app: Podinfo) -> None:
    app.version = lambda i: OLD if i < 10 else NEW
    load = Load(traffic.target(app.url), 1000, concurrency=2, timeout=2, time_limit=30)
    started = time.monotonic()
    with Stream(load, rate=100) as stream:
        time.sleep(0.5)
        assert stream.running
    stamped = stream.snapshot()
    assert not stream.running and time.monotonic() - started < 5
    # Paced at 100 per second: about 50 in half a second, never many more.
    assert 20 <= len(stamped) <= 60, len(stamped)
    sent = [s.sent for s in stamped]
    assert sent == sorted(sent) and (sent[-1] - sent[0]) / (len(sent) - 1) >= 0.009
    assert all(s.result.ok for s in stamped)
    switch = bt.switch_of(bt.samples_of(stamped), started, OLD)
    assert switch.before == 0 and switch.after == len(stamped) - 10


def test_stream_is_bounded_in_count_and_time(app: Podinfo) -> None:
    counted = Stream(Load(traffic.target(app.url), 5, concurrency=3, timeout=2, time_limit=30)).start()
    deadline = time.monotonic() + 10
    while counted.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(counted.stop()) == 5
    timed = Stream(Load(traffic.target(app.url), 20_000, concurrency=1, timeout=1, time_limit=0.5), rate=50)
    timed.start()
    time.sleep(1.0)
    assert not timed.running and len(timed.stop()) <= 30
    with pytest.raises(TrafficProblem):
        Stream(Load(traffic.target(app.url), 5), rate=0)


def test_requests_cut_by_the_time_limit_are_not_failures() -> None:
    cut = traffic.Result(1, None, None, 0.2, "timed out: no full answer in 0.2s")
    real = traffic.Result(2, None, None, 5.0, "timed out: no full answer in 5.0s")
    refused = traffic.Result(3, None, None, 0.001, "connection refused")
    assert bt.cut_at_limit(cut, 5.0)
    assert not bt.cut_at_limit(real, 5.0) and not bt.cut_at_limit(refused, 5.0)
    assert not bt.cut_at_limit(traffic.Result(4, 200, OLD, 0.01), 5.0)


def test_the_envoy_rollback_goal_of_issue_13() -> None:
    raw = {**RAW, "methods": {**RAW["methods"], "canary": "canary rollback --yes"}}
    raw["propagation"] = [
        *RAW["propagation"],
        {"method": "canary", "apiserver": 0.3, "served": 0.44, "exited": 2.0, "failures": 0, "requests": 1},
    ]
    goals = derive({"traffic": raw})["goals"]
    assert [g["goal"] for g in goals] == [
        "`canary rollback` until Envoy serves canary 0% within 1.2x of `kubectl patch`"
    ]
    assert goals[0]["measured"] == pytest.approx(1.1) and goals[0]["met"] is True
