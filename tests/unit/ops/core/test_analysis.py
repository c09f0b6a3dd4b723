"""The `analysis` key: defaults from Pulumi.yaml, field-wise merging, and a named problem per bad field."""

import runpy
from typing import Any

import pytest

from canary.ops.core.analysis import CustomCheck
from canary.ops.core.settings import parse_ops_settings
from canary.release.component import CanaryRelease
from canary.release.validate import ConfigError
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import REPO, project_defaults, raw_config, set_stack_config


def analysis(value: Any) -> Any:
    return parse_ops_settings(raw_config(analysis=value), project_defaults()).analysis


def problems(value: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_ops_settings(raw_config(analysis=value), project_defaults())
    return caught.value


def test_the_declared_defaults() -> None:
    a = parse_ops_settings(project_defaults()).analysis
    assert (a.prometheus_url, a.interval, a.window, a.min_requests) == ("", 30, 60, 50)
    assert (a.success_min, a.success_max_drop, a.p99_max_ms, a.p99_max_increase_ms) == (99, 1, 500, 100)
    assert (a.failure_limit, a.error_limit, a.no_data_limit, a.queries) == (0, 3, 10, ())


def test_a_partial_object_keeps_the_declared_default_of_every_other_field() -> None:
    a = analysis({"interval": 2, "successRate": {"min": 95}, "prometheusUrl": "http://127.0.0.1:29090/"})
    assert (a.interval, a.window, a.success_min, a.success_max_drop) == (2, 60, 95, 1)
    assert a.prometheus_url == "http://127.0.0.1:29090"


def test_numbers_given_as_strings_as_pulumi_config_set_path_stores_decimals() -> None:
    a = analysis({"interval": "5", "successRate": {"maxDrop": "0.5"}, "timeout": "1.5"})
    assert (a.interval, a.success_max_drop, a.timeout) == (5, 0.5, 1.5)


def test_null_turns_a_threshold_or_a_whole_check_off() -> None:
    a = analysis({"successRate": {"maxDrop": None}, "latencyP99": None})
    assert (a.success_min, a.success_max_drop, a.p99_max_ms, a.p99_max_increase_ms) == (99, None, None, None)


def test_custom_queries() -> None:
    query = 'sum(rate(x{namespace="{namespace}", track="{track}"}[{window}]))'
    a = analysis({"queries": [{"name": "x-rate", "query": query, "max": 5}]})
    assert a.queries == (CustomCheck("x-rate", query, None, 5.0),)


BAD: list[tuple[Any, str, str]] = [
    ({"interval": 0}, "analysis.interval", "analysis.interval: 0 is not allowed: a whole number in 1..3600"),
    ({"interval": 2.5}, "analysis.interval", "analysis.interval: 2.5 is not allowed: a whole number"),
    ({"minRequests": "many"}, "analysis.minRequests", 'analysis.minRequests: "many" is not allowed'),
    ({"prometheusUrl": "localhost:9090"}, "analysis.prometheusUrl", "an http:// or https:// URL"),
    (
        {"successRate": {"min": 101}},
        "analysis.successRate.min",
        "analysis.successRate.min: 101 is not allowed: a percent",
    ),
    ({"successRate": {"mni": 1}}, "analysis.successRate.mni", "unknown field (did you mean min?)"),
    ({"latencyP99": {"maxMs": 0}}, "analysis.latencyP99.maxMs", "milliseconds above 0, or null (off)"),
    ({"latencyP99": 5}, "analysis.latencyP99", "analysis.latencyP99: 5 is not allowed: an object with maxMs"),
    ({"intervall": 5}, "analysis.intervall", "analysis.intervall: unknown field (did you mean interval?)"),
    ({"failureLimit": -1}, "analysis.failureLimit", "a whole number in 0..1000"),
    ({"errorLimit": True}, "analysis.errorLimit", "analysis.errorLimit: true is not allowed"),
    ({"queries": {}}, "analysis.queries", "a JSON array of {name, query, min, max} objects"),
    ({"queries": [{"name": "a", "query": "up"}]}, "analysis.queries[0]", "a min or a max (or both)"),
    ({"queries": [{"name": "A b", "query": "up", "max": 1}]}, "analysis.queries[0].name", "lowercase"),
    (
        {"queries": [{"name": "a", "query": "up{pod='{pods}'}", "max": 1}]},
        "analysis.queries[0].query",
        "unknown placeholder {pods}; known: {namespace}, {app}, {track}, {window}",
    ),
    (
        {"queries": [{"name": "a", "query": "up", "min": 2, "max": 1}]},
        "analysis.queries[0].min",
        "at most max",
    ),
    ("fast", "analysis", "analysis: 'fast' is not allowed: a JSON object"),
]


@pytest.mark.parametrize(("value", "path", "message"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_field_is_named_with_its_path_value_and_rule(value: Any, path: str, message: str) -> None:
    error = problems(value)
    assert error.keys == [path]
    assert message in str(error)


def test_every_problem_is_reported_at_once_with_the_rest_of_the_config() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ops_settings(
            raw_config(canaryPlan=[50, 5], analysis={"interval": 0, "window": 0, "successRate": {"min": -1}}),
            project_defaults(),
        )
    assert caught.value.keys == [
        "canaryPlan",
        "analysis.interval",
        "analysis.window",
        "analysis.successRate.min",
    ]


def test_without_the_declared_defaults_a_partial_object_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ops_settings(raw_config(analysis={"interval": 2}))
    assert "analysis.window: not set: Pulumi.yaml declares its default" in str(caught.value)


def test_the_program_accepts_and_ignores_analysis(pulumi_mocks: PulumiMocks) -> None:
    """analysis is the CLI's: even a bad one is not `pulumi up`'s to refuse."""
    set_stack_config(raw_config(analysis={"interval": 0}))
    program = runpy.run_path(str(REPO / "__main__.py"), run_name="__pulumi_program__")
    assert isinstance(program["release"], CanaryRelease)
    assert "analysis" not in program["args"]
