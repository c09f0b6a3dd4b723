"""The guardrails as a pulumi-policy pack: each policy wires one rule of policy/rules.py, all mandatory.

| policy | kind | checks |
|---|---|---|
| readiness-probe | resource | Deployment / StatefulSet / DaemonSet containers have a readinessProbe |
| resource-requests | resource | the same workloads request cpu and memory for every container |
| pod-security-restricted | resource | pods (also in templates) meet Pod Security Standards "restricted" |
| httproute-weights-not-all-zero | resource | no HTTPRoute rule weighs every backend 0 |
| httproute-header-override | resource | a splitting route has a header rule (`requireHeaderOverride`) |
| canary-at-100-needs-promotion | stack | no route sends 100% to the canary (unless `allowFullCanary: true`) |

Configure with `--policy-pack-config FILE` (JSON: {"<policy>": {"<property>": value}}); policy/strict.json
turns the header override requirement on.
"""

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy import rules

PACK_NAME = "gateway-canary-guardrails"

REQUIRE_HEADER_OVERRIDE = "requireHeaderOverride"
HEADER_NAME = "headerName"
ALLOW_FULL_CANARY = "allowFullCanary"

HEADER_OVERRIDE_DEFAULTS: Mapping[str, Any] = {REQUIRE_HEADER_OVERRIDE: False, HEADER_NAME: ""}
FULL_CANARY_DEFAULTS: Mapping[str, Any] = {ALLOW_FULL_CANARY: False}

Rule = Callable[[str, str, Mapping[str, Any]], list[str]]
Applies = Callable[[str, str], bool]


def _resource_policy(name: str, description: str, applies: Applies, rule: Rule) -> ResourceValidationPolicy:
    """A mandatory resource policy running `rule`; kinds it does not apply to are reported not applicable,
    so the engine's per-resource summary lists a policy as passed only where it really checked something."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        group, kind = rules.type_kind(args.resource_type)
        if not applies(group, kind):
            args.not_applicable(f"not checked for {args.resource_type}")
        for problem in rule(group, kind, args.props):
            report_violation(problem, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


def _long_running(group: str, kind: str) -> bool:
    return (group, kind) in rules.LONG_RUNNING_KINDS


def _runs_pods(group: str, kind: str) -> bool:
    return rules.pod_spec(group, kind, {}) is not None


def _route_rule(check: Callable[[Mapping[str, Any]], list[str]]) -> Rule:
    def rule(group: str, kind: str, props: Mapping[str, Any]) -> list[str]:
        return check(props) if rules.is_route(group, kind) else []

    return rule


def _validate_header_override(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = {**HEADER_OVERRIDE_DEFAULTS, **args.get_config()}
    if not config[REQUIRE_HEADER_OVERRIDE]:
        args.not_applicable(f"{REQUIRE_HEADER_OVERRIDE} is false")
    if not rules.is_route(*rules.type_kind(args.resource_type)):
        args.not_applicable(f"not checked for {args.resource_type}")
    for problem in rules.header_override_problems(args.props, str(config[HEADER_NAME])):
        report_violation(problem, None)


def _validate_full_canary(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = {**FULL_CANARY_DEFAULTS, **args.get_config()}
    if config[ALLOW_FULL_CANARY]:
        args.not_applicable(f"{ALLOW_FULL_CANARY} is true")
    kinds = [(rules.type_kind(r.resource_type), r) for r in args.resources]
    services = [r.props for (group, kind), r in kinds if (group, kind) == ("", "Service")]
    for (group, kind), resource in kinds:
        if rules.is_route(group, kind):
            for problem in rules.full_canary_problems(resource.props, services):
                report_violation(problem, resource.urn)


POLICIES: list[Policy] = [
    _resource_policy(
        "readiness-probe",
        "Deployments, StatefulSets and DaemonSets have a readiness probe on every container.",
        _long_running,
        rules.readiness_probe_problems,
    ),
    _resource_policy(
        "resource-requests",
        "Deployments, StatefulSets and DaemonSets request cpu and memory for every container.",
        _long_running,
        rules.resource_request_problems,
    ),
    _resource_policy(
        "pod-security-restricted",
        'Pods and pod templates meet Pod Security Standards "restricted": runAsNonRoot, no privilege '
        "escalation, capabilities drop ALL, seccomp RuntimeDefault, no privileged or host namespaces.",
        _runs_pods,
        rules.pod_security_problems,
    ),
    _resource_policy(
        "httproute-weights-not-all-zero",
        "No HTTPRoute rule gives weight 0 to every backend (the Gateway would answer 500).",
        rules.is_route,
        _route_rule(rules.all_zero_weight_problems),
    ),
    ResourceValidationPolicy(
        name="httproute-header-override",
        description=(
            "When requireHeaderOverride is true, an HTTPRoute that splits traffic has a rule matching a "
            "request header (headerName, any when empty) that sends it to one backend of the split."
        ),
        validate=_validate_header_override,
        config_schema=PolicyConfigSchema(
            properties={
                REQUIRE_HEADER_OVERRIDE: {"type": "boolean", "default": False},
                HEADER_NAME: {"type": "string", "default": ""},
            }
        ),
    ),
    StackValidationPolicy(
        name="canary-at-100-needs-promotion",
        description=(
            "No HTTPRoute sends 100% of traffic to the canary while the stable backend stays at 0: at 100 "
            "the next change is the promotion or a rollback. allowFullCanary: true permits a soak at 100."
        ),
        validate=_validate_full_canary,
        config_schema=PolicyConfigSchema(
            properties={ALLOW_FULL_CANARY: {"type": "boolean", "default": False}}
        ),
    ),
]


def serve() -> None:
    """Serve the pack to the engine (blocks; the engine stops the process)."""
    PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=list(POLICIES))
