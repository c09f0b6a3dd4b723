"""The built-in checks' PromQL (canary.ops.gates.queries), evaluated by the real Prometheus engine with
`promtool test rules` on synthetic series shaped like podinfo's http_request_duration_seconds.

No cluster: promtool (Debian's prometheus package, scripts/ensure-prometheus.sh) is the only tool needed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.ops.gates import queries
from tests.integration.conftest import not_run

CANARY = queries.Selector("shop", "web", "canary")
STABLE = queries.Selector("shop", "web", "stable")
WINDOW = 60
AT = "100s"  # samples every 1s from 0s: the 60s window is full of samples


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        not_run("promtool not found (run `make tools`: scripts/ensure-prometheus.sh)")
    return found


def series(
    sel: queries.Selector, status: str, per_second: int, buckets: dict[str, int]
) -> list[dict[str, str]]:
    """A podinfo-like histogram of one status: `per_second` requests/s; `buckets`: le -> requests/s."""
    labels = f'namespace="{sel.namespace}",app="{sel.app}",track="{sel.track}",status="{status}",path="/"'
    out = [{"series": f"{queries.METRIC}_count{{{labels}}}", "values": f"0+{per_second}x120"}]
    for le, rate in {**buckets, "+Inf": per_second}.items():
        out.append({"series": f'{queries.METRIC}_bucket{{{labels},le="{le}"}}', "values": f"0+{rate}x120"})
    return out


def expect(expr: str, value: float | None) -> dict[str, Any]:
    samples = [] if value is None else [{"labels": "{}", "value": value}]
    return {"expr": expr, "eval_time": AT, "exp_samples": samples}


def run_promtool(
    promtool: str, tmp_path: Path, inputs: list[dict[str, str]], tests: list[dict[str, Any]]
) -> None:
    doc = {
        "rule_files": [],
        "evaluation_interval": "1s",
        "tests": [{"interval": "1s", "input_series": inputs, "promql_expr_test": tests}],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


FAST = {"0.005": 10}  # every request within 5 ms


def test_a_healthy_canary_and_stable(promtool: str, tmp_path: Path) -> None:
    inputs = [*series(CANARY, "200", 10, FAST), *series(STABLE, "200", 30, FAST)]
    inputs += series(STABLE, "500", 0, {})  # a 5xx series that never counts up
    run_promtool(
        promtool,
        tmp_path,
        inputs,
        [
            expect(queries.requests(CANARY, WINDOW), 600),  # 10/s over 60 s
            expect(queries.requests(STABLE, WINDOW), 1800),
            expect(queries.success_rate(CANARY, WINDOW), 100),  # no 5xx series at all: 100, not nothing
            expect(queries.success_rate(STABLE, WINDOW), 100),
            expect(queries.p99_ms(CANARY, WINDOW), 4.95),  # 99% of the first bucket (0, 5ms]
        ],
    )


def test_a_faulty_canary_counts_only_5xx_as_failures(promtool: str, tmp_path: Path) -> None:
    inputs = [
        *series(CANARY, "200", 6, {"0.005": 6}),
        *series(CANARY, "500", 2, {"0.005": 2}),
        *series(CANARY, "409", 2, {"0.005": 2}),  # podinfo --random-error also answers 400 and 409
        *series(STABLE, "200", 10, FAST),
    ]
    run_promtool(
        promtool,
        tmp_path,
        inputs,
        [
            expect(queries.requests(CANARY, WINDOW), 600),
            expect(queries.success_rate(CANARY, WINDOW), 80),
            expect(queries.success_rate(STABLE, WINDOW), 100),  # the canary's errors are not stable's
        ],
    )


def test_a_canary_failing_every_request_reads_zero_not_no_result(promtool: str, tmp_path: Path) -> None:
    run_promtool(
        promtool, tmp_path, series(CANARY, "503", 5, FAST), [expect(queries.success_rate(CANARY, WINDOW), 0)]
    )


def test_a_slow_canary_p99(promtool: str, tmp_path: Path) -> None:
    slow = {"0.005": 0, "0.1": 0, "0.25": 0, "0.5": 10}  # every request in (250 ms, 500 ms]
    run_promtool(
        promtool,
        tmp_path,
        [*series(CANARY, "200", 10, slow), *series(STABLE, "200", 10, FAST)],
        [expect(queries.p99_ms(CANARY, WINDOW), 497.5), expect(queries.p99_ms(STABLE, WINDOW), 4.95)],
    )


def test_no_traffic_is_no_result_for_every_figure(promtool: str, tmp_path: Path) -> None:
    """Only another release and stable have series: the canary's figures are empty (the client reads an
    empty request count as 0 requests: no data)."""
    other = queries.Selector("shop", "other", "canary")
    run_promtool(
        promtool,
        tmp_path,
        [*series(other, "200", 10, FAST), *series(STABLE, "200", 10, FAST)],
        [
            expect(queries.requests(CANARY, WINDOW), None),
            expect(queries.success_rate(CANARY, WINDOW), None),
            expect(queries.p99_ms(CANARY, WINDOW), None),
        ],
    )


def test_traffic_that_stopped_before_the_window_is_not_counted(promtool: str, tmp_path: Path) -> None:
    """Requests that stopped at 30s: a 60s window at 100s sees none of them (stale samples vouch for
    nothing)."""
    labels = 'namespace="shop",app="web",track="canary",status="200",path="/"'
    stopped = [{"series": f"{queries.METRIC}_count{{{labels}}}", "values": "0+10x30 300x90"}]
    run_promtool(promtool, tmp_path, stopped, [expect(queries.requests(CANARY, WINDOW), 0)])


def test_a_custom_query_with_placeholders(promtool: str, tmp_path: Path) -> None:
    query = (
        'sum(rate(http_request_duration_seconds_count{namespace="{namespace}", track="{track}"}[{window}]))'
    )
    run_promtool(
        promtool,
        tmp_path,
        [*series(CANARY, "200", 10, FAST), *series(STABLE, "200", 30, FAST)],
        [expect(queries.custom(query, CANARY, WINDOW), 10)],
    )
