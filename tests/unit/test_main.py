"""The Pulumi program (__main__.py) under mocks, fed the Pulumi.yaml defaults as the engine would."""

import runpy
from typing import Any

import pulumi
import pytest

from canary.gateway_api import ROUTE_TYPE
from canary.release.component import CanaryRelease
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import CANARY, REPO, project_defaults, raw_config, set_stack_config, stack_file_config

EXPORTS = [
    "phase",
    "stableWeight",
    "canaryWeight",
    "stableImage",
    "canaryImage",
    "routeName",
    "serviceNames",
    "namespace",
    "gatewayName",
]


def run_program(raw: dict[str, str]) -> CanaryRelease:
    set_stack_config(raw)
    program = runpy.run_path(str(REPO / "__main__.py"), run_name="__pulumi_program__")
    release = program["release"]
    assert isinstance(release, CanaryRelease)
    return release


def exports() -> dict[str, Any]:
    stack = pulumi.runtime.get_root_resource()
    assert stack is not None
    outputs: dict[str, Any] = stack.outputs  # type: ignore[attr-defined]
    return outputs


@pulumi.runtime.test
def test_defaults_export_a_stable_release(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = run_program(project_defaults())
    names = list(exports())

    def check(values: list[Any]) -> None:
        outputs = dict(zip(EXPORTS, values, strict=True))
        assert outputs == {
            "phase": "stable",
            "stableWeight": 100,
            "canaryWeight": 0,
            "stableImage": "ghcr.io/stefanprodan/podinfo:6.7.0",
            "canaryImage": "",
            "routeName": "podinfo",
            "serviceNames": ["podinfo-stable"],
            "namespace": "gateway-canary",
            "gatewayName": "podinfo-gateway",
        }
        assert {r.typ for r in pulumi_mocks.mocks.resources} >= {
            "gateway-canary:index:CanaryRelease",
            "kubernetes:apps/v1:Deployment",
            ROUTE_TYPE,
        }

    assert set(EXPORTS) <= set(names)
    return pulumi.Output.all(release.urn, release.route.urn, *[exports()[n] for n in EXPORTS]).apply(
        lambda v: check(v[2:])
    )


@pulumi.runtime.test
def test_a_canary_step_is_exported(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = run_program(raw_config(canaryImage=CANARY, canaryWeight="25"))

    def check(values: list[Any]) -> None:
        phase, stable, canary, image, services = values
        assert (phase, stable, canary, image) == ("canary 25%", 75, 25, CANARY)
        assert services == ["podinfo-stable", "podinfo-canary"]

    wanted = ["phase", "stableWeight", "canaryWeight", "canaryImage", "serviceNames"]
    return pulumi.Output.all(release.route.urn, *[exports()[n] for n in wanted]).apply(lambda v: check(v[1:]))


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pulumi.runtime.test
def test_stack_files_run(pulumi_mocks: PulumiMocks, stack: str) -> pulumi.Output[None]:
    release = run_program({**project_defaults(), **stack_file_config(stack)})

    def check(namespace: str) -> None:
        deployment = pulumi_mocks.mocks.named("kubernetes:apps/v1:Deployment", "podinfo-stable")
        expected = {"dev": 3, "prod": 3}[stack]
        assert deployment.inputs["spec"]["replicas"] == expected
        assert namespace == {"dev": "gateway-canary", "prod": "podinfo"}[stack]

    return pulumi.Output.all(release.route.urn, release.namespace).apply(lambda v: check(v[1]))


@pulumi.runtime.test
def test_program_ignores_other_namespaces(pulumi_mocks: PulumiMocks) -> pulumi.Output[str]:
    raw = {f"gateway-canary:{key}": value for key, value in project_defaults().items()}
    pulumi.runtime.set_all_config({**raw, "kubernetes:context": "kind-dev"})
    program = runpy.run_path(str(REPO / "__main__.py"), run_name="__pulumi_program__")
    assert program["args"]["app_name"] == "podinfo"
    return program["release"].urn
