"""The guardrail pack (policy/) in the real engine: `pulumi preview --policy-pack policy`.

Each policy is shown failing on a deliberately bad object and passing on a good one, read from the engine's
own per-resource verdicts (the streaming JSON events of `pulumi preview --json`: a policyAnalyzeSummaryEvent
per resource lists the policies that passed and failed, a policyEvent carries each violation). The bad
objects live in small projects (tests/integration/projects/policy-*) that are only previewed, never deployed.
The real program passes every policy, and trips the two rules a rollout can reach: a canary at 100%, and a
route without a header override when the team's policy config requires one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    REPO,
    PulumiStack,
    copy_project,
    release_stack,
    set_in_stack_file,
    unique,
)

PACK = REPO / "policy"
PROJECTS = Path(__file__).parent / "projects"
FULL_CANARY = "canary-at-100-needs-promotion"
HEADER = "httproute-header-override"
WORKLOAD_POLICIES = {"readiness-probe", "resource-requests", "pod-security-restricted"}
ROUTE_POLICIES = {"httproute-weights-not-all-zero", HEADER}
STRICT = json.loads((PACK / "strict.json").read_text())
"""policy/strict.json: the stricter team config shipped with the pack (header override required)."""
V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"


def resource_key(urn: str) -> str:
    """`Kind/name` of a resource from its URN (a Deployment and a Service may share a Pulumi name)."""
    if not urn:
        return ""
    *_, qualified_type, name = urn.split("::")
    return f"{qualified_type.split('$')[-1].split(':')[-1]}/{name}"


@dataclass
class Verdicts:
    """What one preview with the pack said, per resource (`Kind/name`) and for the stack."""

    code: int
    output: str
    passed: dict[str, set[str]] = field(default_factory=dict)
    failed: dict[str, set[str]] = field(default_factory=dict)
    stack_passed: set[str] = field(default_factory=set)
    stack_failed: set[str] = field(default_factory=set)
    violations: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(policy, resource name, enforcement level, message)."""

    def messages(self, policy: str, resource: str) -> list[str]:
        return [m for p, r, _, m in self.violations if (p, r) == (policy, resource)]


def preview_with_pack(stack: PulumiStack, config: dict[str, Any] | None = None) -> Verdicts:
    args = ["--policy-pack", str(PACK), "--json"]
    if config is not None:
        path = stack.project_dir / f"policy-config-{unique('c')}.json"
        path.write_text(json.dumps(config))
        args += ["--policy-pack-config", str(path)]
    stack.env = {**stack.env, "PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "1"}
    res = stack.preview(*args)
    verdicts = Verdicts(res.code, res.output)
    for line in res.stdout.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if "policyAnalyzeSummaryEvent" in event:
            summary = event["policyAnalyzeSummaryEvent"]
            name = resource_key(summary["resourceUrn"])
            verdicts.passed[name] = set(summary.get("passed", []))
            verdicts.failed[name] = set(summary.get("failed", []))
        elif "policyAnalyzeStackSummaryEvent" in event:
            summary = event["policyAnalyzeStackSummaryEvent"]
            verdicts.stack_passed = set(summary.get("passed", []))
            verdicts.stack_failed = set(summary.get("failed", []))
        elif "policyEvent" in event:
            violation = event["policyEvent"]
            name = resource_key(violation.get("resourceUrn", ""))
            verdicts.violations.append(
                (violation["policyName"], name, violation["enforcementLevel"], violation["message"])
            )
    assert verdicts.passed, f"no policy verdicts in the preview output:\n{res.output[-3000:]}"
    return verdicts


@pytest.fixture(scope="module")
def test_project(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    stacks: list[PulumiStack] = []

    def make(name: str) -> PulumiStack:
        project = copy_project(PROJECTS / name, tmp_path_factory.mktemp(name) / name)
        stack = PulumiStack(project, unique("policy"), dict(env)).init()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.pulumi("stack", "rm", "--yes", "--force")


@pytest.fixture(scope="module")
def workloads(test_project) -> Verdicts:
    return preview_with_pack(test_project("policy-workloads"))


@pytest.fixture(scope="module")
def routes_stack(test_project) -> PulumiStack:
    return test_project("policy-routes")


@pytest.fixture(scope="module")
def routes(routes_stack: PulumiStack) -> Verdicts:
    return preview_with_pack(routes_stack)


@pytest.fixture(scope="module")
def routes_strict(routes_stack: PulumiStack) -> Verdicts:
    """The team's stricter config: the header override required, a soak at 100% allowed."""
    return preview_with_pack(
        routes_stack,
        {
            HEADER: {"requireHeaderOverride": True, "headerName": "x-canary"},
            FULL_CANARY: {"allowFullCanary": True},
        },
    )


def test_a_violation_fails_the_preview_and_is_mandatory(workloads: Verdicts, routes: Verdicts) -> None:
    for verdicts in (workloads, routes):
        assert verdicts.code != 0, verdicts.output[-2000:]
        assert verdicts.violations
        assert {level for _, _, level, _ in verdicts.violations} == {"mandatory"}
    assert "gateway-canary-guardrails" in workloads.output


def test_the_compliant_deployment_passes_every_workload_policy(workloads: Verdicts) -> None:
    assert workloads.passed["Deployment/good"] == WORKLOAD_POLICIES
    assert workloads.failed["Deployment/good"] == set()


def test_readiness_probe(workloads: Verdicts) -> None:
    assert workloads.failed["Deployment/no-probe"] == {"readiness-probe"}
    assert workloads.messages("readiness-probe", "Deployment/no-probe") == [
        "Deployments, StatefulSets and DaemonSets have a readiness probe on every container.\n"
        "Deployment policy-workloads/no-probe: container 'app' has no readinessProbe "
        "(traffic would reach it before it can serve)\n"
    ]


def test_resource_requests(workloads: Verdicts) -> None:
    assert workloads.failed["Deployment/no-requests"] == {"resource-requests"}
    (message,) = workloads.messages("resource-requests", "Deployment/no-requests")
    assert "container 'app' sets no resources.requests.cpu or memory" in message


def test_pod_security_restricted_on_a_deployment_and_a_pod(workloads: Verdicts) -> None:
    assert workloads.failed["Deployment/root"] == {"pod-security-restricted"}
    assert workloads.passed["Deployment/root"] == {"readiness-probe", "resource-requests"}
    root = " ".join(workloads.messages("pod-security-restricted", "Deployment/root"))
    for problem in (
        "runAsNonRoot must be true",
        "runAsUser must not be 0",
        "allowPrivilegeEscalation must be false",
        "capabilities.drop must include ALL",
        "seccompProfile.type must be RuntimeDefault or Localhost (got 'Unconfined')",
    ):
        assert problem in root, root
    # A bare Pod is checked too; readiness and requests are asked of long-running workloads only.
    assert workloads.failed["Pod/privileged-pod"] == {"pod-security-restricted"}
    assert workloads.passed["Pod/privileged-pod"] == set()
    pod = " ".join(workloads.messages("pod-security-restricted", "Pod/privileged-pod"))
    assert "privileged must not be true" in pod and "spec.hostNetwork is true" in pod


def test_httproute_weights_not_all_zero(routes: Verdicts) -> None:
    assert "httproute-weights-not-all-zero" in routes.passed["HTTPRoute/good"]
    assert routes.failed["HTTPRoute/all-zero"] == {"httproute-weights-not-all-zero"}
    (message,) = routes.messages("httproute-weights-not-all-zero", "HTTPRoute/all-zero")
    assert "rule 1 gives weight 0 to every backend (web-stable, web-canary)" in message


def test_canary_at_100_needs_promotion(routes: Verdicts, routes_strict: Verdicts) -> None:
    assert routes.stack_failed == {FULL_CANARY}
    assert [r for p, r, _, _ in routes.violations if p == FULL_CANARY] == ["HTTPRoute/full-canary"]
    (message,) = routes.messages(FULL_CANARY, "HTTPRoute/full-canary")
    assert "sends 100% of traffic to the canary (web-canary) and none to web-stable: promote" in message
    # allowFullCanary: true turns the stack policy off (the engine lists it as neither passed nor failed).
    assert FULL_CANARY not in routes_strict.stack_failed | routes_strict.stack_passed
    assert not routes_strict.messages(FULL_CANARY, "HTTPRoute/full-canary")


def test_header_override_only_when_required(routes: Verdicts, routes_strict: Verdicts) -> None:
    # Off by default: not applicable anywhere.
    assert all(HEADER not in routes.passed[name] | routes.failed[name] for name in routes.passed)
    assert routes.failed["HTTPRoute/no-header"] == set()
    # Required by the team's config: the route without one fails, the others pass.
    assert routes_strict.failed["HTTPRoute/no-header"] == {HEADER}
    (message,) = routes_strict.messages(HEADER, "HTTPRoute/no-header")
    assert (
        "splits traffic between web-stable, web-canary but has no rule matching a 'x-canary' header"
        in message
    )
    for name in ("HTTPRoute/good", "HTTPRoute/full-canary", "HTTPRoute/all-zero"):
        assert HEADER in routes_strict.passed[name], name
    assert routes_strict.code != 0  # all-zero still fails


# The real program (Pulumi.yaml + __main__.py of the repo), previewed with the pack.


@pytest.fixture(scope="module")
def release(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    config = {"appName": "web", "namespace": unique("gc-policy"), "stableReplicas": "1"}
    stack = release_stack(dict(env), tmp_path_factory.mktemp("policy-release"), "pp", config)
    yield stack
    stack.pulumi("stack", "rm", "--yes", "--force")


def configure(stack: PulumiStack, **rollout: str) -> None:
    """Set every rollout key at once (these defaults, then `rollout`), so no test depends on another's."""
    values = {
        "stableImage": V1,
        "canaryImage": "",
        "canaryWeight": "0",
        "mirrorPercent": "0",
        "gatewayFeatures": "check",
        "canaryHeader": "x-canary: true",
        **rollout,
    }
    stack.pulumi(
        "config", "set-all", *[f"--plaintext={key}={value}" for key, value in values.items()]
    ).check()


@pytest.mark.parametrize(
    ("rollout", "deployments"),
    [
        ({}, ["web-stable"]),
        ({"canaryImage": V2}, ["web-stable", "web-canary"]),
        # The no-data-plane class lists no supportedFeatures: mirroring is taken on trust (gatewayFeatures).
        (
            {"canaryImage": V2, "canaryWeight": "25", "mirrorPercent": "5", "gatewayFeatures": "assume"},
            ["web-stable", "web-canary"],
        ),
    ],
    ids=["stable", "header-only", "25%"],
)
def test_the_real_program_passes_every_policy(
    release: PulumiStack, rollout: dict[str, str], deployments: list[str]
) -> None:
    configure(release, **rollout)
    verdicts = preview_with_pack(release, STRICT)
    assert verdicts.code == 0, verdicts.output[-3000:]
    assert verdicts.violations == []
    assert not any(verdicts.failed.values()) and not verdicts.stack_failed
    for name in deployments:
        assert verdicts.passed[f"Deployment/{name}"] == WORKLOAD_POLICIES
    assert verdicts.passed["HTTPRoute/web-route"] == ROUTE_POLICIES
    assert verdicts.stack_passed == {FULL_CANARY}


def apps_template(sidecar_probe: dict[str, Any] | None) -> dict[str, Any]:
    """The app's own template: its container with its own resources and probe, and a log shipper whose
    resources and security context the component fills in (canary.release.pod_template)."""
    sidecar: dict[str, Any] = {"name": "log-shipper", "image": "registry.example/log-shipper:2.3"}
    if sidecar_probe is not None:
        sidecar["readinessProbe"] = sidecar_probe
    return {
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "env": [{"name": "MODE", "value": "prod"}],
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                },
                sidecar,
            ]
        }
    }


def test_the_pack_checks_what_the_apps_own_template_renders(release: PulumiStack) -> None:
    """The guardrails run on the Deployments a pod template renders to: a sidecar without a readiness probe
    (the component adds one to the app's container only) is named; given one, every policy passes."""
    configure(release, canaryImage=V2, canaryWeight="25")
    try:
        set_in_stack_file(release, {"podTemplate": apps_template(None)})
        flagged = preview_with_pack(release, STRICT)
        set_in_stack_file(release, {"podTemplate": apps_template({"tcpSocket": {"port": 24224}})})
        verdicts = preview_with_pack(release, STRICT)
    finally:
        set_in_stack_file(release, {"podTemplate": {}})
    assert flagged.code != 0
    assert {
        (policy, name) for policy, name, _, message in flagged.violations if "'log-shipper'" in message
    } == {
        ("readiness-probe", "Deployment/web-stable"),
        ("readiness-probe", "Deployment/web-canary"),
    }, flagged.violations
    assert verdicts.code == 0, verdicts.output[-3000:]
    assert verdicts.violations == []
    for name in ("web-stable", "web-canary"):
        assert verdicts.passed[f"Deployment/{name}"] == WORKLOAD_POLICIES


def test_the_real_program_without_header_fails_when_the_team_requires_one(release: PulumiStack) -> None:
    configure(release, canaryImage=V2, canaryWeight="10", canaryHeader="")
    assert preview_with_pack(release).code == 0
    verdicts = preview_with_pack(release, STRICT)
    assert verdicts.code != 0
    assert verdicts.failed["HTTPRoute/web-route"] == {HEADER}
    (message,) = verdicts.messages(HEADER, "HTTPRoute/web-route")
    assert "set the canaryHeader config key" in message


def test_the_real_program_at_100_must_be_promoted(release: PulumiStack) -> None:
    configure(release, canaryImage=V2, canaryWeight="100")
    verdicts = preview_with_pack(release)
    assert verdicts.code != 0
    assert verdicts.stack_failed == {FULL_CANARY}
    assert [(p, r) for p, r, _, _ in verdicts.violations] == [(FULL_CANARY, "HTTPRoute/web-route")]
    assert preview_with_pack(release, {FULL_CANARY: {"allowFullCanary": True}}).code == 0
    # Promote: stable takes the canary image, the canary goes away; the pack is satisfied again.
    configure(release, stableImage=V2)
    promoted = preview_with_pack(release)
    assert promoted.code == 0, promoted.output[-2000:]
    assert promoted.stack_passed == {FULL_CANARY}
