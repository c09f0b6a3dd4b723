"""canary.release.validate: parsing raw stack config, phases, and the Pulumi.yaml schema staying in step."""

from decimal import Decimal

import pulumi
import pytest

from canary.release.run_error import ProgramConfigError, as_run_error
from canary.release.settings import CanaryHeader
from canary.release.stack_config import read_stack_config
from canary.release.validate import CONFIG_KEYS, ConfigError, parse_config
from canary.route_state import PHASE_HEADER_ONLY, PHASE_STABLE
from tests.unit.helpers import (
    CANARY,
    project_defaults,
    project_schema,
    raw_config,
    release_settings,
    set_stack_config,
    stack_file_config,
)


def test_pulumi_yaml_declares_exactly_the_known_keys_in_order() -> None:
    assert tuple(project_schema()) == CONFIG_KEYS


def test_every_key_has_type_description_and_default() -> None:
    allowed_types = {"string", "integer", "boolean", "array", "object"}  # object: analysis (ops-only)
    for key, decl in project_schema().items():
        assert decl["type"] in allowed_types, key
        assert decl.get("description"), key
        assert "default" in decl, key
        if decl["type"] == "array":
            assert "items" in decl, key


def test_percent_keys_are_strings_so_fractions_pass_pulumi_type_checks() -> None:
    schema = project_schema()
    assert schema["canaryWeight"]["type"] == "string"
    assert schema["mirrorPercent"]["type"] == "string"


def test_defaults_parse_to_a_stable_only_release() -> None:
    args = parse_config(project_defaults())
    assert args.app_name == "podinfo"
    assert args.canary_image is None and not args.has_canary
    assert args.canary_percent == 0
    assert args.canary_header == CanaryHeader("x-canary", "true")
    assert args.header_route is None
    assert args.gateway_name == "podinfo-gateway"
    assert args.gateway_namespace == args.namespace
    assert args.tls_secret_name is None
    assert args.phase == PHASE_STABLE


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_parse(stack: str) -> None:
    parse_config({**project_defaults(), **stack_file_config(stack)})


def test_prod_has_https_hostnames_and_three_stable_replicas() -> None:
    args = parse_config({**project_defaults(), **stack_file_config("prod")})
    assert args.stable_replicas == 3
    assert args.tls_secret_name == "podinfo-tls"
    assert args.hostnames == ("podinfo.example.com", "www.podinfo.example.com")


@pytest.mark.parametrize(
    ("overrides", "phase"),
    [
        ({}, PHASE_STABLE),
        ({"canaryImage": CANARY}, PHASE_HEADER_ONLY),
        ({"canaryImage": CANARY, "canaryHeader": ""}, "canary 0%"),
        ({"canaryImage": CANARY, "canaryWeight": "25"}, "canary 25%"),
        ({"canaryImage": CANARY, "canaryWeight": "0.5"}, "canary 0.5%"),
        ({"canaryImage": CANARY, "canaryWeight": "100"}, "canary 100%"),
    ],
)
def test_phase(overrides: dict[str, str], phase: str) -> None:
    assert release_settings(**overrides).phase == phase


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x-canary: true", CanaryHeader("x-canary", "true")),
        ("X-Canary:yes please", CanaryHeader("X-Canary", "yes please")),
        ("x-user-group :  beta ", CanaryHeader("x-user-group", "beta")),
        ("", None),
    ],
)
def test_canary_header_forms(value: str, expected: CanaryHeader | None) -> None:
    assert release_settings(canaryHeader=value).canary_header == expected


def test_header_without_canary_image_is_not_an_error_and_not_rendered() -> None:
    args = release_settings(canaryHeader="x-canary: true")
    assert args.canary_header is not None and args.header_route is None


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx:1.27-alpine",
        "ghcr.io/stefanprodan/podinfo:6.7.0",
        "localhost:5000/team/app:v1",
        "registry.example.com/a/b/c@sha256:" + "a" * 64,
        "app:1.0@sha256:" + "0" * 64,
    ],
)
def test_valid_images(image: str) -> None:
    assert release_settings(canaryImage=image).canary_image == image


@pytest.mark.parametrize(
    "hostnames",
    [["example.com"], ["*.example.com", "a.example.com"], ["a-b.c-d.example"], ["x" * 63 + ".com"]],
)
def test_valid_hostnames_are_sorted(hostnames: list[str]) -> None:
    assert release_settings(hostnames=hostnames).hostnames == tuple(sorted(hostnames))


def test_fractional_weight_and_mirror() -> None:
    args = release_settings(canaryImage=CANARY, canaryWeight="0.5", mirrorPercent="12.25")
    assert args.canary_percent == Decimal("0.5")
    assert args.mirror_percent == Decimal("12.25")


def test_attach_to_existing_gateway() -> None:
    args = release_settings(createGateway=False, gatewayName="shared", gatewayNamespace="infra")
    assert (args.gateway_name, args.gateway_namespace) == ("shared", "infra")


def test_all_problems_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_config(canaryWeight="101", stableReplicas=0, healthPath="readyz"))
    err = caught.value
    assert err.keys == ["canaryWeight", "stableReplicas", "healthPath"]
    assert "3 problems" in str(err)
    assert (
        "canaryWeight: '101' is not allowed: a percent between 0 and 100 (at most 4 decimal places)"
        in str(err)
    )


def test_config_error_is_a_run_error_in_the_program_so_pulumi_prints_it_without_a_traceback() -> None:
    assert issubclass(ProgramConfigError, pulumi.RunError) and issubclass(ProgramConfigError, ConfigError)
    checked = as_run_error(parse_config)
    with pytest.raises(ProgramConfigError) as caught:
        checked(raw_config(canaryWeight="101", stableReplicas=0))
    assert caught.value.keys == ["canaryWeight", "stableReplicas"]
    assert str(caught.value).startswith("invalid stack config (2 problems):")


def test_typo_suggests_the_key() -> None:
    raw = project_defaults()
    raw["canaryWieght"] = "25"
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.problems == [
        ("canaryWieght", "canaryWieght: unknown config key (did you mean canaryWeight?)")
    ]


def test_unknown_key_without_a_close_match_lists_known_keys() -> None:
    raw = {**project_defaults(), "zzz": "1"}
    with pytest.raises(ConfigError, match="known keys are appName, namespace"):
        parse_config(raw)


def test_missing_key_is_named() -> None:
    raw = project_defaults()
    del raw["canaryWeight"]
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.keys == ["canaryWeight"]
    assert "not set" in caught.value.problems[0][1]


def test_a_bad_key_is_reported_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_config(canaryImage="Not An Image", canaryWeight="25", mirrorPercent="5"))
    assert caught.value.keys == ["canaryImage"]


def test_read_stack_config_strips_the_namespace_and_drops_other_namespaces(pulumi_mocks: object) -> None:
    set_stack_config({"canaryWeight": "25"})
    pulumi.runtime.set_config("kubernetes:context", "kind")
    assert read_stack_config("gateway-canary") == {"canaryWeight": "25"}


@pytest.mark.parametrize(
    ("hostnames", "detail"),
    [
        (["ok.example.com", "Bad.example.com"], "; 'Bad.example.com' is not"),
        (["a.example.com", "a.example.com"], "; 'a.example.com' is repeated"),
        ([f"h{i}.example.com" for i in range(17)], "; 17 given"),
        (["a.example.com", 5], "; every entry must be a string"),
    ],
)
def test_hostnames_error_says_which_entry(hostnames: list[object], detail: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_config(hostnames=hostnames))
    assert caught.value.problems[0][1].endswith(detail)
