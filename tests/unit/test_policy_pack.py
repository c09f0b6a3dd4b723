"""policy.pack: the pulumi-policy wiring of the rules, driven through pulumi_policy's own argument types."""

import json
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from canary.gateway_api import ROUTE_TYPE as ROUTE
from canary.release.render import render
from policy import pack
from tests.unit.helpers import CANARY, REPO, release_settings

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"


def options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def policy(name: str) -> Any:
    found = [p for p in pack.POLICIES if p.name == name]
    assert len(found) == 1, name
    return found[0]


def check_resource(
    name: str, resource_type: str, props: dict[str, Any], config: dict[str, Any] | None = None
) -> list[str] | None:
    """Violations a resource policy reports, or None when it says it does not apply."""
    violations: list[str] = []
    args = ResourceValidationArgs(resource_type, props, f"urn:x::{name}", "r", options(), None, config)
    try:
        policy(name).validate(args, lambda message, urn=None: violations.append(message))
    except Exception as err:
        if type(err).__name__ == "_NotApplicableError":
            return None
        raise
    return violations


def check_stack(resources: list[tuple[str, dict[str, Any]]], config: dict[str, Any] | None = None) -> Any:
    violations: list[tuple[str, str | None]] = []
    objs = [
        PolicyResource(typ, props, f"urn:{i}", f"r{i}", options(), None, None, [], {})
        for i, (typ, props) in enumerate(resources)
    ]
    try:
        policy("canary-at-100-needs-promotion").validate(
            StackValidationArgs(objs, config), lambda message, urn=None: violations.append((message, urn))
        )
    except Exception as err:
        if type(err).__name__ == "_NotApplicableError":
            return None
        raise
    return violations


def release_resources(**overrides: Any) -> list[tuple[str, dict[str, Any]]]:
    rendered = render(release_settings(**overrides))
    return [
        *[(DEPLOYMENT, d) for d in rendered.deployments.values()],
        *[(SERVICE, s) for s in rendered.services.values()],
        (ROUTE, rendered.route),
    ]


def test_the_pack_declares_six_policies_all_mandatory(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(pack, "PolicyPack", lambda **kwargs: seen.update(kwargs))
    pack.serve()
    assert seen["name"] == "gateway-canary-guardrails"
    assert seen["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in seen["policies"]] == [
        "readiness-probe",
        "resource-requests",
        "pod-security-restricted",
        "httproute-weights-not-all-zero",
        "httproute-header-override",
        "canary-at-100-needs-promotion",
    ]
    assert all(p.enforcement_level in (None, EnforcementLevel.MANDATORY) for p in seen["policies"])
    assert isinstance(policy("canary-at-100-needs-promotion"), StackValidationPolicy)
    assert all(isinstance(p, ResourceValidationPolicy) for p in seen["policies"][:5])


def test_policy_pack_yaml_runs_python_from_the_repos_virtualenv() -> None:
    settings = yaml.safe_load((REPO / "policy" / "PulumiPolicy.yaml").read_text())
    assert settings["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    assert (REPO / "policy" / settings["runtime"]["options"]["virtualenv"]).resolve() == REPO / ".venv"


def test_strict_config_names_real_policies_and_properties() -> None:
    strict = json.loads((REPO / "policy" / "strict.json").read_text())
    for name, properties in strict.items():
        schema = policy(name).config_schema
        assert schema is not None and set(properties) <= set(schema.properties), name


def test_config_schema_defaults_are_the_ones_the_code_assumes() -> None:
    header = policy("httproute-header-override").config_schema.properties
    assert {k: v["default"] for k, v in header.items()} == dict(pack.HEADER_OVERRIDE_DEFAULTS)
    full = policy("canary-at-100-needs-promotion").config_schema.properties
    assert {k: v["default"] for k, v in full.items()} == dict(pack.FULL_CANARY_DEFAULTS)


def test_the_programs_resources_pass_and_other_kinds_are_not_applicable() -> None:
    resources = release_resources(canaryImage=CANARY, canaryWeight="25")
    for name in ("readiness-probe", "resource-requests", "pod-security-restricted"):
        for typ, props in resources:
            expected: list[str] | None = [] if typ == DEPLOYMENT else None
            assert check_resource(name, typ, props) == expected, (name, typ)
    route = resources[-1][1]
    assert check_resource("httproute-weights-not-all-zero", ROUTE, route) == []
    assert check_resource("httproute-weights-not-all-zero", SERVICE, resources[-2][1]) is None
    assert check_stack(resources) == []


def test_resource_policies_report_the_rules_messages() -> None:
    deployment = render(release_settings()).deployments["stable"]
    del deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    assert check_resource("readiness-probe", DEPLOYMENT, deployment) == [
        "Deployment gateway-canary/podinfo-stable: container 'app' has no readinessProbe "
        "(traffic would reach it before it can serve)"
    ]
    assert check_resource("pod-security-restricted", DEPLOYMENT, deployment) == [
        "Deployment gateway-canary/podinfo-stable: container 'app': "
        "securityContext.privileged must not be true"
    ]


def test_header_override_applies_only_when_required() -> None:
    route = render(release_settings(canaryImage=CANARY, canaryWeight="10", canaryHeader="")).route
    assert check_resource("httproute-header-override", ROUTE, route) is None
    assert check_resource("httproute-header-override", ROUTE, route, {"requireHeaderOverride": False}) is None
    required = {"requireHeaderOverride": True}
    assert len(check_resource("httproute-header-override", ROUTE, route, required) or []) == 1
    with_header = render(release_settings(canaryImage=CANARY, canaryWeight="10")).route
    assert check_resource("httproute-header-override", ROUTE, with_header, required) == []
    named = {"requireHeaderOverride": True, "headerName": "x-other"}
    assert len(check_resource("httproute-header-override", ROUTE, with_header, named) or []) == 1
    assert check_resource("httproute-header-override", SERVICE, {}, required) is None


def test_full_canary_is_reported_against_the_routes_urn_unless_allowed() -> None:
    resources = release_resources(canaryImage=CANARY, canaryWeight="100")
    violations = check_stack(resources)
    assert [urn for _, urn in violations] == [f"urn:{len(resources) - 1}"]
    assert "sends 100% of traffic to the canary (podinfo-canary)" in violations[0][0]
    assert check_stack(resources, {"allowFullCanary": True}) is None
    assert check_stack(release_resources(stableImage=CANARY)) == []
