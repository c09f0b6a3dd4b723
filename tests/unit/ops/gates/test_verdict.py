"""Verdicts (canary.ops.gates.verdict), reading Prometheus answers, the run policy: pure, no server."""

import json
from dataclasses import replace

import pytest

from canary.ops.core.analysis import CustomCheck
from canary.ops.core.settings import parse_ops_settings
from canary.ops.gates.gate import Decision, RunPolicy, window_for
from canary.ops.gates.prometheus import Empty, Failure, Value, interpret
from canary.ops.gates.verdict import Figures, Outcome, judge
from tests.unit.helpers import project_defaults

SETTINGS = parse_ops_settings(project_defaults()).analysis  # minRequests 50, success >= 99 / drop 1, p99


def figures(**overrides: object) -> Figures:
    healthy = {
        "window": 60,
        "canary_requests": Value(300),
        "canary_success": Value(100),
        "canary_p99": Value(4.9),
        "stable_requests": Value(900),
        "stable_success": Value(100),
        "stable_p99": Value(4.9),
    }
    return Figures(**{**healthy, **overrides})  # type: ignore[arg-type]


def test_a_healthy_canary_passes_with_its_numbers() -> None:
    verdict = judge(SETTINGS, figures())
    assert verdict.outcome is Outcome.PASS
    assert verdict.summary() == (
        "pass: canary 300 req, success 100.00%, p99 4.9ms; stable 900 req, success 100.00%, p99 4.9ms; "
        "window 60s"
    )


def test_below_the_absolute_success_rate_fails() -> None:
    verdict = judge(SETTINGS, figures(canary_success=Value(88.5), stable_success=Value(100)))
    assert verdict.outcome is Outcome.FAIL
    assert "success rate 88.50% < min 99%" in verdict.summary()
    assert "more than 1 points below" in verdict.summary()


def test_relative_to_stable_fails_even_above_the_absolute_minimum() -> None:
    s = replace(SETTINGS, success_min=90.0)
    assert judge(s, figures(canary_success=Value(95))).outcome is Outcome.FAIL
    # stable as bad as the canary: the canary is not the problem
    assert judge(s, figures(canary_success=Value(95), stable_success=Value(95.5))).outcome is Outcome.PASS


def test_a_slow_canary_fails_latency() -> None:
    verdict = judge(SETTINGS, figures(canary_p99=Value(497.5)))
    assert verdict.outcome is Outcome.FAIL
    assert "p99 497.5ms vs stable 4.9ms: more than 100ms above" in verdict.summary()


@pytest.mark.parametrize("requests", [Empty(), Value(0), Value(49)], ids=["no series", "zero", "49"])
def test_too_few_canary_requests_is_no_data_never_a_pass(requests: Value | Empty) -> None:
    verdict = judge(SETTINGS, figures(canary_requests=requests))
    assert verdict.outcome is Outcome.NO_DATA
    assert "fewer than minRequests 50" in verdict.summary()


def test_no_data_wins_over_a_bad_rate_that_no_traffic_explains() -> None:
    assert (
        judge(SETTINGS, figures(canary_requests=Empty(), canary_success=Empty())).outcome is Outcome.NO_DATA
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"canary_requests": Failure("Prometheus at http://127.0.0.1:1 unreachable: refused")},
        {"canary_success": Failure("the value is NaN (no valid samples)")},
        {"canary_p99": Empty()},
        {"stable_p99": Failure("timeout")},
    ],
    ids=["unreachable", "nan", "empty", "stable timeout"],
)
def test_an_unreadable_figure_is_an_error(overrides: dict[str, object]) -> None:
    assert judge(SETTINGS, figures(**overrides)).outcome is Outcome.ERROR


def test_at_100_percent_stable_has_no_traffic_and_relative_checks_are_skipped() -> None:
    verdict = judge(SETTINGS, figures(stable_requests=Empty(), stable_success=Empty(), stable_p99=Empty()))
    assert verdict.outcome is Outcome.PASS
    assert {c.name: c.status for c in verdict.checks}["success vs stable"] == "skipped"


def test_nothing_evaluated_is_never_a_pass() -> None:
    off = replace(SETTINGS, success_min=None, p99_max_ms=None)
    verdict = judge(off, figures(stable_requests=Empty()))
    assert verdict.outcome is Outcome.ERROR


def test_custom_checks() -> None:
    s = replace(SETTINGS, queries=(CustomCheck("errors", "q", None, 0.5),))
    assert judge(s, figures(custom=(("errors", Value(0.1)),))).outcome is Outcome.PASS
    failed = judge(s, figures(custom=(("errors", Value(2)),)))
    assert failed.outcome is Outcome.FAIL and "errors 2 outside [-inf, 0.5]" in failed.summary()
    assert judge(s, figures(custom=(("errors", Empty()),))).outcome is Outcome.ERROR


def answer(result: object, kind: str = "vector", status: int = 200) -> object:
    return interpret(
        status, json.dumps({"status": "success", "data": {"resultType": kind, "result": result}}).encode()
    )


def test_reading_prometheus_answers() -> None:
    assert answer([{"metric": {}, "value": [1, "12.5"]}]) == Value(12.5)
    assert answer([]) == Empty()
    assert answer([1, "3"], kind="scalar") == Value(3.0)
    assert isinstance(answer([{"metric": {}, "value": [1, "NaN"]}]), Failure)
    assert isinstance(answer([{"metric": {}, "value": [1, "+Inf"]}]), Failure)
    two = answer([{"metric": {"a": "1"}, "value": [1, "1"]}, {"metric": {"a": "2"}, "value": [1, "2"]}])
    assert isinstance(two, Failure) and "2 series" in two.reason
    assert isinstance(answer([], kind="matrix"), Failure)
    bad = interpret(400, b'{"status":"error","errorType":"bad_data","error":"parse error at char 5"}')
    assert bad == Failure("HTTP 400: bad_data: parse error at char 5")
    assert isinstance(interpret(502, b"<html>bad gateway</html>"), Failure)


def test_the_run_policy() -> None:
    s = replace(SETTINGS, failure_limit=1, error_limit=2, no_data_limit=2, checks_per_step=2)
    policy = RunPolicy(s)
    passed, failed = judge(s, figures()), judge(s, figures(canary_success=Value(50)))
    nodata, error = judge(s, figures(canary_requests=Empty())), judge(s, figures(canary_p99=Empty()))
    assert policy.decide(passed) is Decision.WAIT  # 1 of 2 passes
    assert policy.decide(failed) is Decision.WAIT  # failure 1 of limit 1 tolerated
    assert policy.decide(passed) is Decision.STEP
    policy.stepped()
    assert policy.decide(error) is Decision.WAIT
    assert policy.decide(nodata) is Decision.WAIT  # resets the error streak
    assert policy.decide(error) is Decision.WAIT
    assert policy.decide(error) is Decision.STOP
    assert "errorLimit 2" in policy.why
    assert policy.decide(failed) is Decision.ROLLBACK  # failures are a total, never reset by passes


def test_the_window_never_reaches_before_the_step() -> None:
    assert window_for(SETTINGS, None, 1000.0) == 60
    assert window_for(SETTINGS, 990.0, 1000.0) == 10
    assert window_for(SETTINGS, 100.0, 1000.0) == 60
