"""Bad config never reaches the cluster: the program fails before registering anything, naming the key."""

import dataclasses
import runpy
from typing import Any

import pytest

from canary.release.component import CanaryRelease
from canary.release.render import render
from canary.release.validate import ConfigError
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import CANARY, REPO, raw_config, release_settings, set_stack_config

WITH_CANARY = {"canaryImage": CANARY}

BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"canaryWeight": "101"}, "canaryWeight"),
    ({"canaryWeight": "abc", **WITH_CANARY}, "canaryWeight"),
    ({"canaryWeight": "NaN", **WITH_CANARY}, "canaryWeight"),
    ({"canaryWeight": "", **WITH_CANARY}, "canaryWeight"),
    ({"canaryWeight": "-5", **WITH_CANARY}, "canaryWeight"),
    ({"canaryWeight": "0.00001", **WITH_CANARY}, "canaryWeight"),
    ({"canaryWeight": "25"}, "canaryWeight"),
    ({"mirrorPercent": "5"}, "mirrorPercent"),
    ({"mirrorPercent": "150", **WITH_CANARY}, "mirrorPercent"),
    ({"mirrorPercent": "inf", **WITH_CANARY}, "mirrorPercent"),
    ({"stableReplicas": 0}, "stableReplicas"),
    ({"stableReplicas": "two"}, "stableReplicas"),
    ({"canaryReplicas": 0, **WITH_CANARY}, "canaryReplicas"),
    ({"stableImage": "Not An Image"}, "stableImage"),
    ({"stableImage": ""}, "stableImage"),
    ({"canaryImage": "team/App:tag"}, "canaryImage"),
    ({"canaryImage": "app:"}, "canaryImage"),
    ({"hostnames": ["Example.com"]}, "hostnames"),
    ({"hostnames": ["a..example.com"]}, "hostnames"),
    ({"hostnames": ["foo.*.example.com"]}, "hostnames"),
    ({"hostnames": ["x" * 64 + ".example.com"]}, "hostnames"),
    ({"hostnames": [("a" * 63 + ".") * 4 + "com"]}, "hostnames"),
    ({"hostnames": ["10.0.0.1"]}, "hostnames"),
    ({"hostnames": ["a.example.com", "a.example.com"]}, "hostnames"),
    ({"hostnames": [f"h{i}.example.com" for i in range(17)]}, "hostnames"),
    ({"hostnames": "example.com"}, "hostnames"),
    ({"canaryHeader": "x canary: true", **WITH_CANARY}, "canaryHeader"),
    ({"canaryHeader": "x-canary", **WITH_CANARY}, "canaryHeader"),
    ({"canaryHeader": "x-canary:", **WITH_CANARY}, "canaryHeader"),
    ({"canaryHeader": "x-canary: a\tb", **WITH_CANARY}, "canaryHeader"),
    ({"appName": "My_App"}, "appName"),
    ({"appName": "1app"}, "appName"),
    ({"appName": "a" * 57}, "appName"),
    ({"namespace": "Demo"}, "namespace"),
    ({"namespace": "a" * 64}, "namespace"),
    ({"containerPort": 0}, "containerPort"),
    ({"containerPort": 70000}, "containerPort"),
    ({"healthPath": "readyz"}, "healthPath"),
    ({"healthPath": "/ready z"}, "healthPath"),
    ({"createNamespace": "yes"}, "createNamespace"),
    ({"createGateway": False}, "gatewayName"),
    ({"createGateway": False, "gatewayName": "shared", "tlsSecretName": "tls"}, "tlsSecretName"),
    ({"gatewayNamespace": "elsewhere"}, "gatewayNamespace"),
    ({"gatewayClassName": ""}, "gatewayClassName"),
    ({"gatewayName": "Bad_Name"}, "gatewayName"),
    ({"tlsSecretName": "Bad Secret"}, "tlsSecretName"),
    ({"canaryWieght": "25"}, "canaryWieght"),
]


def run_program() -> None:
    runpy.run_path(str(REPO / "__main__.py"), run_name="__pulumi_program__")


@pytest.mark.parametrize(("overrides", "key"), BAD_CONFIGS, ids=[key for _, key in BAD_CONFIGS])
def test_bad_config_names_the_key_and_registers_nothing(
    pulumi_mocks: PulumiMocks, overrides: dict[str, Any], key: str
) -> None:
    raw = raw_config(**overrides)
    set_stack_config(raw)
    with pytest.raises(ConfigError) as caught:
        run_program()
    assert caught.value.keys == [key], caught.value.problems
    message = caught.value.problems[0][1]
    assert message.startswith(f"{key}: ")
    if key in overrides and key != "canaryWieght":
        assert f"{raw[key]!r} is not allowed: " in message
    assert pulumi_mocks.mocks.resources == []


def test_several_problems_reported_in_one_error(pulumi_mocks: PulumiMocks) -> None:
    set_stack_config(raw_config(canaryWeight="abc", containerPort=0, hostnames=["UPPER.example.com"]))
    with pytest.raises(ConfigError) as caught:
        run_program()
    assert sorted(caught.value.keys) == ["canaryWeight", "containerPort", "hostnames"]
    assert pulumi_mocks.mocks.resources == []


def test_render_checks_gateway_api_limits_on_what_it_built() -> None:
    """A second line behind validation: render refuses specs over the apiserver's limits, naming the key."""
    too_many = tuple(f"h{i:02}.example.com" for i in range(17))
    with pytest.raises(ConfigError) as caught:
        render(dataclasses.replace(release_settings(), hostnames=too_many))
    assert "hostnames" in caught.value.keys
    assert "over Gateway API's limit of 16" in str(caught.value)


def test_component_refuses_bad_args_before_registering_itself(pulumi_mocks: PulumiMocks) -> None:
    too_many = [f"h{i:02}.example.com" for i in range(17)]
    with pytest.raises(ConfigError) as caught:
        CanaryRelease("podinfo", {"hostnames": too_many, "stable_replicas": 0})
    assert caught.value.keys == ["stableReplicas", "hostnames"]
    assert "at most 16" in str(caught.value)
    assert pulumi_mocks.mocks.resources == []
