"""CanaryReleaseArgs as a library: one API with the config keys, one validation path, one schema for all."""

import json
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.component import ComponentProvider

from canary.gateway_api import ROUTE_TYPE as ROUTE
from canary.release.args import (
    DEFAULTS,
    FIELDS,
    args_from_config,
    camel_case,
    snake_case,
    split_inputs,
)
from canary.release.component import TYPE_TOKEN, CanaryRelease
from canary.release.keys import OPS_KEYS, RELEASE_KEYS, config_string
from canary.release.validate import CONFIG_KEYS, ConfigError
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import (
    CANARY,
    PROJECT,
    project_defaults,
    project_schema,
    raw_config,
    stack_file_config,
)
from tests.unit.test_main import EXPORTS

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INPUTS = {
    "namespace",
    "stableImage",
    "canaryImage",
    "hostnames",
    "gatewayName",
    "gatewayNamespace",
    "podTemplate",
    "canaryPodTemplate",
    "tlsCert",
    "tlsKey",
}
"""The fields another resource can produce: pulumi.Input. Every other field is plain."""


def schema() -> dict[str, Any]:
    """The component's schema exactly as component_provider_host serves it to other languages."""
    provider = ComponentProvider([CanaryRelease], PROJECT, version="0.0.0")
    assert provider.schema is not None
    spec: dict[str, Any] = json.loads(provider.schema)["resources"][TYPE_TOKEN]
    return spec


def test_fields_are_the_release_keys_of_pulumi_yaml_in_order() -> None:
    declared = tuple(project_schema())
    assert tuple(key for key in declared if key not in OPS_KEYS) == RELEASE_KEYS
    assert declared == CONFIG_KEYS
    # canary.release.keys spells the keys out (no Pulumi import there): they are the fields, camel-cased.
    assert tuple(camel_case(name) for name in FIELDS) == RELEASE_KEYS
    assert all(snake_case(camel_case(name)) == name for name in FIELDS)


def test_library_defaults_are_pulumi_yamls() -> None:
    """Pulumi.yaml is the one place a default lives; the library's copy must say exactly the same."""
    schema_ = project_schema()
    assert {camel_case(name): value for name, value in DEFAULTS.items()} == {
        key: schema_[key]["default"] for key in RELEASE_KEYS
    }


def test_a_changed_default_would_be_caught() -> None:
    """Guards the comparison above: a dict with one default off does not compare equal."""
    changed = {**DEFAULTS, "stable_replicas": DEFAULTS["stable_replicas"] + 1}
    schema_ = project_schema()
    assert {camel_case(n): v for n, v in changed.items()} != {k: schema_[k]["default"] for k in RELEASE_KEYS}


def test_the_schema_other_languages_see() -> None:
    spec = schema()
    inputs, outputs = spec["inputProperties"], spec["properties"]
    assert list(inputs) == list(RELEASE_KEYS)
    assert {key for key, prop in inputs.items() if not prop.get("plain")} == INPUTS
    assert not spec.get("requiredInputs"), "every input has a default"
    assert {key: prop["type"] for key, prop in inputs.items()} == {
        key: project_schema()[key]["type"] for key in RELEASE_KEYS
    }
    assert sorted(outputs) == sorted(EXPORTS) == sorted(spec["required"])
    assert outputs["canaryWeight"]["type"] == outputs["stableWeight"]["type"] == "number"
    undocumented = [key for key, prop in {**inputs, **outputs}.items() if not prop.get("description")]
    assert undocumented == []


@pytest.mark.parametrize("stack", ["defaults", "dev", "prod"])
def test_config_round_trips_through_the_args(stack: str) -> None:
    """Stack config -> args -> the strings validation reads: every value comes back as it was."""
    raw = project_defaults() if stack == "defaults" else {**project_defaults(), **stack_file_config(stack)}
    known, pending = split_inputs(args_from_config(raw))
    assert set(pending) <= {"tlsCert", "tlsKey"}, "only key material becomes an Output (a secret)"
    assert known == {key: raw[key] for key in RELEASE_KEYS if key not in pending}


def test_config_string_is_how_the_engine_passes_config() -> None:
    assert [config_string(v) for v in (True, False, 2, "0.5", ["a", "b"], [])] == [
        "true",
        "false",
        "2",
        "0.5",
        '["a","b"]',
        "[]",
    ]


def test_plain_args_are_checked_at_construction_with_the_config_messages(pulumi_mocks: PulumiMocks) -> None:
    with pytest.raises(ConfigError) as caught:
        CanaryRelease("podinfo", {"canary_weight": "25", "container_port": 0, "stable_image": "Not An Image"})
    assert caught.value.keys == ["stableImage", "containerPort", "canaryWeight"]
    assert "canaryWeight: '25' is not allowed: 0 while canaryImage is empty" in str(caught.value)
    assert pulumi_mocks.mocks.resources == []


def test_an_unknown_field_is_named_like_a_misspelt_key(pulumi_mocks: PulumiMocks) -> None:
    with pytest.raises(ConfigError, match=r"stableImg: unknown config key \(did you mean stableImage\?\)"):
        CanaryRelease("podinfo", {"stable_img": "app:1"})  # type: ignore[typeddict-unknown-key]


@pulumi.runtime.test
def test_an_output_image_from_another_resource_reaches_the_deployment(
    pulumi_mocks: PulumiMocks,
) -> pulumi.Output[None]:
    build = pulumi.CustomResource("test:index:Build", "build", {"image": CANARY})
    image: pulumi.Output[str] = build.image  # type: ignore[attr-defined]
    release = CanaryRelease("podinfo", {"canary_image": image, "canary_weight": "25"})

    def check(values: list[Any]) -> None:
        stable_image, canary_image, canary_weight = values
        deployment = pulumi_mocks.mocks.named(DEPLOYMENT, "podinfo-canary").inputs
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == CANARY
        assert (stable_image, canary_image, canary_weight) == (DEFAULTS["stable_image"], CANARY, 25)
        route = pulumi_mocks.mocks.named(ROUTE, "podinfo-route").inputs
        assert [ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]] == [75, 25]

    return pulumi.Output.all(release.stable_image, release.canary_image, release.canary_weight).apply(check)


def test_a_bad_output_value_fails_before_its_objects_are_sent(pulumi_mocks: PulumiMocks) -> None:
    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        release = CanaryRelease("podinfo", {"stable_image": pulumi.Output.from_input("Not An Image")})
        return release.urn

    with pytest.raises(ConfigError, match=r"stableImage: 'Not An Image' is not allowed: an image reference"):
        program()
    kinds = {r.typ for r in pulumi_mocks.mocks.resources}
    assert kinds == {TYPE_TOKEN}, "only the component registered; none of its objects was sent"


def test_an_output_canary_image_must_resolve_to_an_image(pulumi_mocks: PulumiMocks) -> None:
    """An Output canaryImage means a canary (the objects are planned before it resolves), so "" is refused."""

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        return CanaryRelease("podinfo", {"canary_image": pulumi.Output.from_input("")}).urn

    with pytest.raises(
        ConfigError, match=r"canaryImage: '' is not allowed: a value, since it was given as an Output"
    ):
        program()


def test_the_combined_rules_wait_for_an_output(pulumi_mocks: PulumiMocks) -> None:
    """gatewayNamespace must equal namespace for an owned Gateway: with namespace an Output, the rule is
    checked once it resolves (and not guessed at construction)."""

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        release = CanaryRelease(
            "podinfo", {"namespace": pulumi.Output.from_input("apps"), "gateway_namespace": "infra"}
        )
        return release.urn

    with pytest.raises(
        ConfigError, match=r"gatewayNamespace: 'infra' is not allowed: '' or the release namespace"
    ):
        program()


@pulumi.runtime.test
def test_outputs_depend_on_the_children_they_describe(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    """A consumer of routeName is ordered after the route, of stableImage after the Deployment."""
    release = CanaryRelease("podinfo", {"canary_image": CANARY})

    async def dependencies() -> dict[str, set[pulumi.Resource]]:
        return {
            "routeName": await release.route_name.resources(),
            "canaryWeight": await release.canary_weight.resources(),
            "stableImage": await release.stable_image.resources(),
            "serviceNames": await release.service_names.resources(),
            "gatewayName": await release.gateway_name.resources(),
        }

    def check(found: dict[str, set[pulumi.Resource]]) -> None:
        assert release.route in found["routeName"]
        assert release.route in found["canaryWeight"]
        assert release.deployments["stable"] in found["stableImage"]
        assert set(release.services.values()) <= found["serviceNames"]
        assert release.gateway in found["gatewayName"]

    found: pulumi.Output[dict[str, set[pulumi.Resource]]] = pulumi.Output.from_input(dependencies())
    return found.apply(check)


def test_raw_config_helper_agrees_with_the_args_path() -> None:
    raw = raw_config(canaryImage=CANARY, canaryWeight="0.5", hostnames=["b.example.com", "a.example.com"])
    known, _ = split_inputs(args_from_config(raw))
    assert known["hostnames"] == '["b.example.com","a.example.com"]'
    assert known["canaryWeight"] == "0.5"
