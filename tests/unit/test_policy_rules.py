"""policy.rules: the guardrails as pure functions, on the real program's manifests and on broken copies."""

import copy
from typing import Any

import pytest

from canary.names import track_labels
from canary.release.render import render
from canary.release.workload import pod_template
from policy import rules
from tests.unit.helpers import CANARY, release_settings

DEPLOYMENT = ("apps", "Deployment")


def canary_release(**overrides: Any) -> Any:
    return render(release_settings(canaryImage=CANARY, **overrides))


def good_deployment() -> dict[str, Any]:
    return copy.deepcopy(canary_release().deployments["stable"])


def container(obj: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return first


def service(name: str, track: str | None, namespace: str = "gateway-canary") -> dict[str, Any]:
    labels = track_labels("web", track) if track in ("stable", "canary") else {}  # type: ignore[arg-type]
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def route(*rules_: dict[str, Any], namespace: str = "gateway-canary") -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": namespace}, "spec": {"rules": list(rules_)}}


def split(stable: int | None, canary: int | None) -> dict[str, Any]:
    refs = []
    for name, weight in (("web-stable", stable), ("web-canary", canary)):
        ref: dict[str, Any] = {"name": name, "port": 80}
        if weight is not None:
            ref["weight"] = weight
        refs.append(ref)
    return {"backendRefs": refs}


HEADER_RULE: dict[str, Any] = {
    "matches": [
        {"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "x-canary", "value": "1"}]}
    ],
    "backendRefs": [{"name": "web-canary", "port": 80}],
}


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("kubernetes:apps/v1:Deployment", ("apps", "Deployment")),
        ("kubernetes:core/v1:Pod", ("", "Pod")),
        ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", ("gateway.networking.k8s.io", "HTTPRoute")),
        ("gateway-canary:index:CanaryRelease", ("", "")),
        ("pulumi:pulumi:Stack", ("", "")),
    ],
)
def test_type_kind(token: str, expected: tuple[str, str]) -> None:
    assert rules.type_kind(token) == expected


def test_every_object_the_program_renders_passes_every_rule() -> None:
    for overrides in ({}, {"canaryWeight": "25", "mirrorPercent": "5"}, {"canaryWeight": "0.5"}):
        rendered = canary_release(**overrides)
        for deployment in rendered.deployments.values():
            assert rules.readiness_probe_problems(*DEPLOYMENT, deployment) == []
            assert rules.resource_request_problems(*DEPLOYMENT, deployment) == []
            assert rules.pod_security_problems(*DEPLOYMENT, deployment) == []
        services = list(rendered.services.values())
        assert rules.all_zero_weight_problems(rendered.route) == []
        assert rules.header_override_problems(rendered.route, "x-canary") == []
        assert rules.full_canary_problems(rendered.route, services) == []


def test_missing_readiness_probe_names_the_object_and_container() -> None:
    deployment = good_deployment()
    del container(deployment)["readinessProbe"]
    assert rules.readiness_probe_problems(*DEPLOYMENT, deployment) == [
        "Deployment gateway-canary/podinfo-stable: container 'app' has no readinessProbe "
        "(traffic would reach it before it can serve)"
    ]


def test_readiness_is_not_asked_of_init_containers_or_jobs() -> None:
    deployment = good_deployment()
    spec = deployment["spec"]["template"]["spec"]
    spec["initContainers"] = [{"name": "migrate", "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]
    assert rules.readiness_probe_problems(*DEPLOYMENT, deployment) == []
    assert rules.readiness_probe_problems("batch", "Job", {"spec": {"template": {"spec": spec}}}) == []


@pytest.mark.parametrize(
    ("requests", "missing"),
    [(None, "cpu or memory"), ({"cpu": "10m"}, "memory"), ({"memory": "1Mi"}, "cpu"), ({}, "cpu or memory")],
)
def test_missing_requests(requests: dict[str, str] | None, missing: str) -> None:
    deployment = good_deployment()
    resources = container(deployment)["resources"]
    if requests is None:
        del resources["requests"]
    else:
        resources["requests"] = requests
    assert rules.resource_request_problems(*DEPLOYMENT, deployment) == [
        f"Deployment gateway-canary/podinfo-stable: container 'app' sets no resources.requests.{missing}"
    ]


def test_init_containers_need_requests_too() -> None:
    deployment = good_deployment()
    deployment["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate"}]
    assert rules.resource_request_problems(*DEPLOYMENT, deployment) == [
        "Deployment gateway-canary/podinfo-stable: init container 'migrate' sets no resources.requests.cpu "
        "or memory"
    ]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda p, c: c["securityContext"].update(runAsNonRoot=False), "runAsNonRoot must be true"),
        (
            lambda p, c: (p["securityContext"].pop("runAsNonRoot"), c["securityContext"].pop("runAsNonRoot")),
            "runAsNonRoot must be true",
        ),
        (lambda p, c: c["securityContext"].update(runAsUser=0), "runAsUser must not be 0 (root)"),
        (
            lambda p, c: c["securityContext"].pop("allowPrivilegeEscalation"),
            "securityContext.allowPrivilegeEscalation must be false",
        ),
        (lambda p, c: c["securityContext"].update(privileged=True), "securityContext.privileged must not be"),
        (lambda p, c: c["securityContext"].pop("capabilities"), "capabilities.drop must include ALL"),
        (
            lambda p, c: c["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            "capabilities.add may only hold NET_BIND_SERVICE, not ['SYS_ADMIN']",
        ),
        (
            lambda p, c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            "seccompProfile.type must be RuntimeDefault or Localhost (got 'Unconfined')",
        ),
        (
            lambda p, c: (
                p["securityContext"].pop("seccompProfile"),
                c["securityContext"].pop("seccompProfile"),
            ),
            "seccompProfile.type must be RuntimeDefault or Localhost (got None)",
        ),
        (lambda p, c: p.update(hostNetwork=True), "spec.hostNetwork is true"),
    ],
)
def test_each_non_restricted_setting_is_named(breakage: Any, message: str) -> None:
    deployment = good_deployment()
    pod = deployment["spec"]["template"]["spec"]
    breakage(pod, pod["containers"][0])
    problems = rules.pod_security_problems(*DEPLOYMENT, deployment)
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith("Deployment gateway-canary/podinfo-stable: ")


def test_container_settings_override_the_pods_as_kubernetes_does() -> None:
    deployment = good_deployment()
    pod = deployment["spec"]["template"]["spec"]
    del pod["containers"][0]["securityContext"]["seccompProfile"]
    assert rules.pod_security_problems(*DEPLOYMENT, deployment) == []  # the pod's RuntimeDefault applies
    pod["securityContext"]["runAsNonRoot"] = False
    assert rules.pod_security_problems(*DEPLOYMENT, deployment) == []  # the container's true wins
    pod["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p"}
    assert rules.pod_security_problems(*DEPLOYMENT, deployment) == []


def test_pod_security_covers_pods_jobs_and_cronjobs() -> None:
    spec = {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}
    template = {"template": {"spec": spec}}
    for (group, kind), obj in {
        ("", "Pod"): {"metadata": {"name": "p"}, "spec": spec},
        ("batch", "Job"): {"metadata": {"name": "j"}, "spec": template},
        ("batch", "CronJob"): {"metadata": {"name": "cj"}, "spec": {"jobTemplate": {"spec": template}}},
        ("apps", "StatefulSet"): {"metadata": {"name": "s"}, "spec": template},
    }.items():
        problems = rules.pod_security_problems(group, kind, obj)
        assert any("privileged must not be true" in p for p in problems), (kind, problems)
    assert rules.pod_security_problems("", "ConfigMap", {"data": {}}) == []


def test_unrelated_kinds_have_no_workload_problems() -> None:
    for group, kind in (("", "Service"), ("gateway.networking.k8s.io", "HTTPRoute"), ("", "Namespace")):
        assert rules.readiness_probe_problems(group, kind, {}) == []
        assert rules.resource_request_problems(group, kind, {}) == []


def test_all_zero_weights_are_flagged_per_rule() -> None:
    assert rules.all_zero_weight_problems(route(HEADER_RULE, split(0, 0))) == [
        "HTTPRoute gateway-canary/web: rule 1 gives weight 0 to every backend (web-stable, web-canary), "
        "so the Gateway answers all of its requests with HTTP 500"
    ]


@pytest.mark.parametrize(
    "rule",
    [split(0, 1), split(None, 0), split(100, 0), {"filters": [{"type": "RequestRedirect"}]}],
)
def test_a_rule_with_some_weight_or_no_backends_is_fine(rule: dict[str, Any]) -> None:
    assert rules.all_zero_weight_problems(route(rule)) == []


def test_header_override_present_or_not_needed() -> None:
    assert rules.header_override_problems(route(HEADER_RULE, split(75, 25))) == []
    assert rules.header_override_problems(route(HEADER_RULE, split(75, 25)), "X-Canary") == []
    single = {"backendRefs": [{"name": "web-stable", "port": 80}]}
    assert rules.header_override_problems(route(single), "x-canary") == []


def test_header_override_missing() -> None:
    assert rules.header_override_problems(route(split(90, 10))) == [
        "HTTPRoute gateway-canary/web splits traffic between web-stable, web-canary but has no rule matching "
        "a header that sends requests to one of them (set the canaryHeader config key)"
    ]


def test_header_override_must_use_the_named_header_and_one_backend_of_the_split() -> None:
    other_header = copy.deepcopy(HEADER_RULE)
    other_header["matches"][0]["headers"][0]["name"] = "x-debug"
    assert rules.header_override_problems(route(other_header, split(90, 10)), "x-canary") != []
    assert rules.header_override_problems(route(other_header, split(90, 10))) == []
    elsewhere = copy.deepcopy(HEADER_RULE)
    elsewhere["backendRefs"] = [{"name": "somewhere-else", "port": 80}]
    assert rules.header_override_problems(route(elsewhere, split(90, 10))) != []
    both = copy.deepcopy(HEADER_RULE)
    both["backendRefs"] = split(50, 50)["backendRefs"]
    assert rules.header_override_problems(route(both, split(90, 10))) != []


def test_full_canary_is_flagged_using_the_services_track_labels() -> None:
    services = [service("web-stable", "stable"), service("web-canary", "canary")]
    assert rules.full_canary_problems(route(HEADER_RULE, split(0, 100)), services) == [
        "HTTPRoute gateway-canary/web: rule 1 sends 100% of traffic to the canary (web-canary) and none to "
        "web-stable: promote (stableImage := canaryImage, canaryImage := '') or roll back"
    ]
    for stable, canary in ((100, 0), (1, 99), (50, 50)):
        assert rules.full_canary_problems(route(split(stable, canary)), services) == []


def test_the_real_program_at_100_is_flagged_and_after_promote_is_not() -> None:
    at_100 = canary_release(canaryWeight="100")
    assert len(rules.full_canary_problems(at_100.route, list(at_100.services.values()))) == 1
    promoted = render(release_settings(stableImage=CANARY))
    assert rules.full_canary_problems(promoted.route, list(promoted.services.values())) == []


def test_full_canary_labels_win_over_names_and_names_are_the_fallback() -> None:
    # Labels say which is the canary, whatever the names.
    relabelled = [service("web-stable", "canary"), service("web-canary", "stable")]
    assert rules.full_canary_problems(route(split(0, 100)), relabelled) == []
    assert rules.full_canary_problems(route(split(100, 0)), relabelled) != []
    # Services outside the stack (or another namespace): a `-canary` name suffix decides.
    assert rules.full_canary_problems(route(split(0, 100)), []) != []
    elsewhere = [service("web-stable", "canary", "other"), service("web-canary", "stable", "other")]
    assert rules.full_canary_problems(route(split(0, 100)), elsewhere) != []
    # No canary backend at all: nothing to promote.
    plain = {"backendRefs": [{"name": "a", "port": 80, "weight": 0}, {"name": "b", "port": 80, "weight": 1}]}
    assert rules.full_canary_problems(route(plain), []) == []


def test_rules_accept_read_only_mappings_and_sequences() -> None:
    """Policies get props as read-only proxies (Mapping/Sequence, not dict/list)."""
    from types import MappingProxyType

    def freeze(value: Any) -> Any:
        if isinstance(value, dict):
            return MappingProxyType({k: freeze(v) for k, v in value.items()})
        if isinstance(value, list):
            return tuple(freeze(v) for v in value)
        return value

    deployment = good_deployment()
    del container(deployment)["readinessProbe"]
    assert len(rules.readiness_probe_problems(*DEPLOYMENT, freeze(deployment))) == 1
    assert len(rules.pod_security_problems(*DEPLOYMENT, freeze(deployment))) == 0
    assert len(rules.all_zero_weight_problems(freeze(route(split(0, 0))))) == 1


def test_pod_template_of_the_program_is_the_compliant_reference() -> None:
    template = pod_template(release_settings(), "stable")
    obj = {"metadata": {"name": "x"}, "spec": {"template": template}}
    assert rules.pod_security_problems(*DEPLOYMENT, obj) == []
