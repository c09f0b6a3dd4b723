"""canary.release.workload: labels, pod template, Deployments and Services (pure)."""

from typing import Any

import pytest

from canary.names import NAME_LABEL, TRACK_LABEL, Track, object_name, track_labels
from canary.release.validate import ConfigError
from canary.release.workload import (
    POD_SECURITY_LABELS,
    autoscaler_manifest,
    deployment_manifest,
    disruption_budget_manifest,
    namespace_manifest,
    pod_template,
    service_manifest,
    tracks,
)
from tests.unit.helpers import CANARY, release_settings


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_object_names_are_fixed() -> None:
    assert object_name("podinfo", "stable") == "podinfo-stable"
    assert object_name("podinfo", "canary") == "podinfo-canary"


def test_tracks_follow_the_canary_image() -> None:
    assert tracks(release_settings()) == ("stable",)
    assert tracks(release_settings(canaryImage=CANARY)) == ("stable", "canary")


def test_track_labels_differ_only_in_track() -> None:
    stable, canary = track_labels("podinfo", "stable"), track_labels("podinfo", "canary")
    assert stable == {NAME_LABEL: "podinfo", TRACK_LABEL: "stable"}
    assert canary == {NAME_LABEL: "podinfo", TRACK_LABEL: "canary"}


def test_labels_are_the_same_for_selector_template_and_service() -> None:
    args = release_settings(canaryImage=CANARY)
    for track in tracks(args):
        deployment, service = deployment_manifest(args, track), service_manifest(args, track)
        labels = track_labels(args.app_name, track)
        assert deployment["metadata"]["labels"] == labels
        assert deployment["spec"]["selector"] == {"matchLabels": labels}
        assert deployment["spec"]["template"]["metadata"]["labels"] == labels
        assert service["spec"]["selector"] == labels


def test_selectors_never_overlap() -> None:
    args = release_settings(canaryImage=CANARY)
    pods = {t: deployment_manifest(args, t)["spec"]["template"]["metadata"]["labels"] for t in tracks(args)}
    for track in tracks(args):
        selector = service_manifest(args, track)["spec"]["selector"]
        deployment_selector = deployment_manifest(args, track)["spec"]["selector"]["matchLabels"]
        for other, labels in pods.items():
            assert selects(selector, labels) == (other == track)
            assert selects(deployment_selector, labels) == (other == track)


def test_deployments_and_services_set_name_and_namespace() -> None:
    args = release_settings(canaryImage=CANARY, namespace="shop")
    for track in tracks(args):
        for manifest in (deployment_manifest(args, track), service_manifest(args, track)):
            assert manifest["metadata"]["name"] == f"podinfo-{track}"
            assert manifest["metadata"]["namespace"] == "shop"


def test_images_and_replicas_per_track() -> None:
    args = release_settings(canaryImage=CANARY, stableReplicas=3, canaryReplicas=2)
    stable, canary = deployment_manifest(args, "stable"), deployment_manifest(args, "canary")
    assert stable["spec"]["replicas"] == 3
    assert canary["spec"]["replicas"] == 2
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == args.stable_image
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == CANARY


def test_rolling_update_keeps_capacity() -> None:
    strategy = deployment_manifest(release_settings(), "stable")["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_pod_template_probe_port_and_resources() -> None:
    template = pod_template(
        release_settings(stableImage="nginx:1", containerPort=8080, healthPath="/healthz"), "stable"
    )
    container = template["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


BEFORE_POD_TEMPLATES = {
    "metadata": {"labels": {"app.kubernetes.io/name": "a", "gateway-canary/track": "canary"}},
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "app",
                "image": CANARY,
                "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "http"},
                    "periodSeconds": 5,
                    "failureThreshold": 3,
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "128Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        ],
    },
}
"""The canary's pod template as the release rendered it before podTemplate existed (written out by hand from
that version's workload.pod_template): a stack without a template must keep exactly these objects."""


def test_without_a_template_the_pod_template_and_service_are_as_before() -> None:
    args = release_settings(appName="a", canaryImage=CANARY)
    assert pod_template(args, "canary") == BEFORE_POD_TEMPLATES
    assert service_manifest(args, "canary")["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_the_apps_own_template_runs_on_both_tracks_with_their_images() -> None:
    template = {
        "metadata": {"labels": {"team": "payments"}},
        "spec": {"containers": [{"name": "web", "ports": [{"name": "web", "containerPort": 8080}]}]},
    }
    canary_fields = {"spec": {"containers": [{"name": "web", "env": [{"name": "FEATURE", "value": "on"}]}]}}
    args = release_settings(
        appName="a", canaryImage=CANARY, podTemplate=template, canaryPodTemplate=canary_fields
    )
    stable, canary = pod_template(args, "stable"), pod_template(args, "canary")
    assert stable["spec"]["containers"][0]["image"] == args.stable_image
    assert canary["spec"]["containers"][0]["image"] == CANARY
    assert "env" not in stable["spec"]["containers"][0]
    assert canary["spec"]["containers"][0]["env"] == [{"name": "FEATURE", "value": "on"}]
    assert stable["metadata"]["labels"] == {"team": "payments", **track_labels("a", "stable")}
    assert service_manifest(args, "stable")["spec"]["ports"][0]["targetPort"] == "web"


def restricted_violations(pod_spec: dict[str, Any]) -> list[str]:
    """The Pod Security Standards "restricted" checks that apply to these pods."""
    problems = []
    pod = pod_spec.get("securityContext", {})
    if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile")
    for container in pod_spec["containers"]:
        ctx = container.get("securityContext", {})
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append("allowPrivilegeEscalation")
        if ctx.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append("capabilities")
        if ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            problems.append("runAsNonRoot")
        if ctx.get("runAsUser", pod.get("runAsUser")) in (0, None):
            problems.append("runAsUser")
        if ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append("container seccompProfile")
        if ctx.get("privileged"):
            problems.append("privileged")
    return problems


@pytest.mark.parametrize("track", ["stable", "canary"])
def test_pods_meet_restricted_pod_security(track: Track) -> None:
    args = release_settings(canaryImage=CANARY)
    spec = deployment_manifest(args, track)["spec"]["template"]["spec"]
    assert restricted_violations(spec) == []


def test_namespace_enforces_restricted() -> None:
    manifest = namespace_manifest("shop")
    assert manifest["metadata"]["name"] == "shop"
    assert manifest["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert manifest["metadata"]["labels"] == POD_SECURITY_LABELS


def test_service_exposes_port_80_to_the_named_container_port() -> None:
    service = service_manifest(release_settings(), "stable")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_workload_does_not_depend_on_weight_header_or_mirror_with_fixed_capacity() -> None:
    fixed = '{"canary":"fixed"}'
    base = release_settings(canaryImage=CANARY, capacity=fixed)
    variants = [
        release_settings(canaryImage=CANARY, canaryWeight="25", capacity=fixed),
        release_settings(
            canaryImage=CANARY, canaryWeight="100", canaryHeader="", mirrorPercent="10", capacity=fixed
        ),
    ]
    for other in variants:
        for track in tracks(base):
            assert deployment_manifest(other, track) == deployment_manifest(base, track)
            assert service_manifest(other, track) == service_manifest(base, track)


def test_stable_deployment_does_not_change_when_a_canary_is_added() -> None:
    assert deployment_manifest(release_settings(), "stable") == deployment_manifest(
        release_settings(canaryImage=CANARY, canaryWeight="5"), "stable"
    )


def test_autoscalers_and_budgets_per_track() -> None:
    args = release_settings(
        appName="a",
        canaryImage=CANARY,
        autoscaling={"minReplicas": 2, "maxReplicas": 5, "cpuUtilization": 70, "memoryUtilization": 80},
        podDisruptionBudget={"minAvailable": "50%"},
    )
    hpa = autoscaler_manifest(args, "canary")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "a-canary",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }
    pdb = disruption_budget_manifest(args, "stable")
    assert pdb["spec"] == {"minAvailable": "50%", "selector": {"matchLabels": track_labels("a", "stable")}}
    assert "replicas" not in deployment_manifest(args, "stable")["spec"], "the autoscaler owns spec.replicas"
    assert deployment_manifest(release_settings(), "stable")["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"autoscaling": {"minReplicas": 3, "maxReplicas": 2, "cpuUtilization": 50}},
            "autoscaling.maxReplicas: 2 is not allowed: at least minReplicas (3)",
        ),
        (
            {"autoscaling": {"minReplicas": 1, "maxReplicas": 2}},
            "autoscaling: {'minReplicas': 1, 'maxReplicas': 2} is not allowed: cpuUtilization",
        ),
        (
            {"autoscaling": {"minReplicas": 0, "maxReplicas": 2, "cpuUtilization": 50}},
            "autoscaling.minReplicas: 0 is not allowed: an integer from 1 to 1000",
        ),
        ({"autoscaling": {"minReplicas": 1, "maxReplicas": 2, "cpu": 50}}, "autoscaling.cpu: unknown field"),
        (
            {"autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metrics": [{"pods": {}}]}},
            "autoscaling.metrics: [{'pods': {}}] is not allowed",
        ),
        (
            {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}},
            'podDisruptionBudget: \'{"minAvailable":1,"maxUnavailable":1}\' is not allowed: exactly one',
        ),
        (
            {"podDisruptionBudget": {"maxUnavailable": "half"}},
            "podDisruptionBudget.maxUnavailable: 'half' is not allowed",
        ),
    ],
)
def test_bad_autoscaling_and_budgets_are_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        release_settings(**config)
    assert any(m.startswith(message) for _, m in refused.value.problems), refused.value.problems
