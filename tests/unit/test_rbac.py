"""The rollout operator's least-privilege RBAC: config key, pure manifests, and wiring under Pulumi mocks."""

from typing import Any

import pulumi
import pytest

from canary.release.access import (
    operator_role_binding_manifest,
    operator_role_manifest,
    operator_service_account_manifest,
)
from canary.release.component import CanaryRelease
from canary.release.render import render
from canary.release.validate import ConfigError, parse_config
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import CANARY, component_args, project_schema, raw_config, release_settings

SA = "kubernetes:core/v1:ServiceAccount"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
NAMESPACE = "kubernetes:core/v1:Namespace"


def test_rollout_operator_is_declared_off_by_default() -> None:
    decl = project_schema()["rolloutOperator"]
    assert (decl["type"], decl["default"]) == ("string", "")
    assert release_settings().rollout_operator is None
    assert render(release_settings()).operator_rbac == []


@pytest.mark.parametrize("name", ["rollout-bot", "ci.deployer", "a"])
def test_valid_operator_names(name: str) -> None:
    assert release_settings(rolloutOperator=name).rollout_operator == name


@pytest.mark.parametrize("name", ["Rollout", "bot_1", "-bot", "default", "x" * 254, "a b"])
def test_invalid_operator_names_are_named_with_what_is_allowed(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_config(rolloutOperator=name))
    assert caught.value.keys == ["rolloutOperator"]
    message = caught.value.problems[0][1]
    assert message.startswith(f"rolloutOperator: {name!r} is not allowed: '' (no RBAC) or a ServiceAccount")
    assert "other than 'default'" in message


def test_role_reads_three_kinds_and_patches_only_the_release_route() -> None:
    role = operator_role_manifest(release_settings(appName="web", namespace="shop", rolloutOperator="bot"))
    assert role["metadata"]["name"] == "web-rollout-operator"
    assert role["metadata"]["namespace"] == "shop"
    assert role["kind"] == "Role", "a Role (namespaced), never a ClusterRole"
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": ["httproutes"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": ["httproutes"],
            "resourceNames": ["web"],
            "verbs": ["patch"],
        },
    ]


def test_no_rule_writes_anything_but_the_named_route() -> None:
    role = operator_role_manifest(release_settings(rolloutOperator="bot"))
    for rule in role["rules"]:
        writes = set(rule["verbs"]) - {"get", "list", "watch"}
        if writes:
            assert writes == {"patch"} and rule["resources"] == ["httproutes"]
            assert rule["resourceNames"] == ["podinfo"], "patch must be limited to the release's route"
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_service_account_and_binding() -> None:
    args = release_settings(namespace="shop", rolloutOperator="bot")
    account = operator_service_account_manifest(args)
    assert account["metadata"]["name"] == "bot" and account["metadata"]["namespace"] == "shop"
    assert account["automountServiceAccountToken"] is False
    binding = operator_role_binding_manifest(args)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "podinfo-rollout-operator",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "bot", "namespace": "shop"}]


def test_rbac_does_not_depend_on_the_weight() -> None:
    """A weight change must still touch only the route."""
    at = [render(release_settings(canaryImage=CANARY, canaryWeight=w, rolloutOperator="bot")) for w in "05"]
    assert at[0].operator_rbac == at[1].operator_rbac


@pulumi.runtime.test
def test_component_registers_the_rbac_in_the_namespace(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = CanaryRelease("podinfo", component_args(rolloutOperator="bot"))

    def check(_: Any) -> None:
        names = {(r.typ, r.name) for r in pulumi_mocks.mocks.resources}
        assert {(SA, "podinfo-rollout-operator"), (ROLE, "podinfo-rollout-operator")} <= names
        assert (BINDING, "podinfo-rollout-operator") in names
        role = pulumi_mocks.mocks.named(ROLE, "podinfo-rollout-operator")
        assert role.inputs["rules"][-1]["verbs"] == ["patch"]
        binding_deps = pulumi_mocks.monitor.dependencies[(BINDING, "podinfo-rollout-operator")]
        for typ in (NAMESPACE, SA, ROLE):
            assert any(f"{typ}::" in urn for urn in binding_deps), f"RoleBinding does not depend on {typ}"
        for typ in (SA, ROLE):
            assert any(
                f"{NAMESPACE}::" in urn
                for urn in pulumi_mocks.monitor.dependencies[(typ, "podinfo-rollout-operator")]
            )
            assert pulumi_mocks.monitor.parents[(typ, "podinfo-rollout-operator")].endswith("::podinfo")

    return pulumi.Output.all(release.urn, *[r.urn for r in release.operator_rbac]).apply(check)


@pulumi.runtime.test
def test_no_rbac_by_default(pulumi_mocks: PulumiMocks) -> pulumi.Output[None]:
    release = CanaryRelease("podinfo", component_args())

    def check(_: Any) -> None:
        assert not [r for r in pulumi_mocks.mocks.resources if r.typ in (SA, ROLE, BINDING)]

    return pulumi.Output.all(release.urn, release.route.urn).apply(check)
