"""canary.release.pod_template (pure): merging the canary's fields over the app's template, the baseline the
component adds only where the user said nothing, and Pod Security "restricted" checked before anything is
registered."""

from __future__ import annotations

from typing import Any

import pytest

from canary.release.pod_template import merge, restricted_problems, serving_port, with_baseline
from canary.release.validate import ConfigError
from canary.release.workload import container_resources, container_security_context, pod_security_context
from tests.unit.helpers import CANARY, release_settings

LABELS = {"app.kubernetes.io/name": "web", "gateway-canary/track": "canary"}
IMAGE = "registry.example/web:1.1.0"


def render(template: dict[str, Any], app_container: str | None = None) -> dict[str, Any]:
    return with_baseline(
        template,
        labels=LABELS,
        image=IMAGE,
        app_container=app_container,
        container_port=8080,
        health_path="/healthz",
        pod_security=pod_security_context(),
        container_security=container_security_context(),
        resources=container_resources(),
    )


def jvm_template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"team": "payments"}, "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {
                    "name": "web",
                    "command": ["java"],
                    "args": ["-jar", "/app.jar"],
                    "env": [{"name": "JAVA_OPTS", "value": "-Xmx768m"}],
                    "ports": [{"name": "web", "containerPort": 8080}],
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"path": "/live", "port": "web"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}],
                },
                {"name": "proxy", "image": "registry.example/proxy:2"},
            ],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
        },
    }


def test_the_users_fields_win_and_the_baseline_fills_only_the_gaps() -> None:
    rendered = render(jvm_template())
    web, proxy = rendered["spec"]["containers"]
    assert rendered["metadata"]["labels"] == {"team": "payments", **LABELS}
    assert rendered["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert web["image"] == IMAGE and proxy["image"] == "registry.example/proxy:2"
    assert web["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert proxy["resources"] == container_resources(), "a sidecar without resources gets the baseline"
    assert web["ports"] == [{"name": "web", "containerPort": 8080}]
    assert web["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    assert web["securityContext"] == container_security_context()
    assert "automountServiceAccountToken" not in rendered["spec"], "a service account keeps its token"
    assert restricted_problems(rendered, "podTemplate") == []


def test_a_users_own_readiness_probe_and_security_settings_are_kept() -> None:
    template = jvm_template()
    web = template["spec"]["containers"][0]
    web["readinessProbe"] = {"tcpSocket": {"port": "web"}}
    web["securityContext"] = {"runAsUser": 1000, "readOnlyRootFilesystem": True}
    rendered = render(template)["spec"]["containers"][0]
    assert rendered["readinessProbe"] == {"tcpSocket": {"port": "web"}}
    assert rendered["securityContext"] == {
        **container_security_context(),
        "runAsUser": 1000,
        "readOnlyRootFilesystem": True,
    }


def test_the_app_container_is_chosen_by_name() -> None:
    rendered = render(jvm_template(), app_container="proxy")["spec"]["containers"]
    assert rendered[1]["image"] == IMAGE and "image" not in jvm_template()["spec"]["containers"][0]
    assert rendered[1]["ports"][0]["containerPort"] == 8080, "the app container gets the containerPort"


def test_canary_fields_merge_by_container_name_and_key() -> None:
    over = {
        "metadata": {"annotations": {"canary": "yes"}},
        "spec": {"containers": [{"name": "web", "env": [{"name": "FEATURE_X", "value": "on"}]}]},
    }
    merged = merge(jvm_template(), over)
    web = merged["spec"]["containers"][0]
    assert web["env"] == [{"name": "JAVA_OPTS", "value": "-Xmx768m"}, {"name": "FEATURE_X", "value": "on"}]
    assert web["command"] == ["java"] and len(merged["spec"]["containers"]) == 2
    assert merged["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "canary": "yes"}
    replaced = merge(jvm_template(), {"spec": {"containers": [{"name": "web", "args": ["-jar", "/b.jar"]}]}})
    assert replaced["spec"]["containers"][0]["args"] == ["-jar", "/b.jar"], "other lists are replaced whole"
    assert jvm_template()["spec"]["containers"][0]["env"] == [{"name": "JAVA_OPTS", "value": "-Xmx768m"}]


def test_a_template_restricted_refuses_is_named_field_by_field() -> None:
    template = jvm_template()
    template["spec"]["hostNetwork"] = True
    template["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}})
    template["spec"]["containers"][1]["securityContext"] = {
        "privileged": True,
        "allowPrivilegeEscalation": True,
        "capabilities": {"add": ["NET_ADMIN"]},
        "runAsUser": 0,
    }
    problems = restricted_problems(render(template), "podTemplate")
    assert any(p.startswith("podTemplate.spec.hostNetwork: True is not allowed") for p in problems), problems
    assert any(p.startswith("podTemplate.spec.volumes[1].hostPath:") for p in problems)
    for field in ("privileged", "allowPrivilegeEscalation", "capabilities.add", "runAsUser"):
        assert any(
            p.startswith(f"podTemplate.spec.containers[1].securityContext.{field}:") for p in problems
        ), (
            field,
            problems,
        )
    assert all('Pod Security "restricted"' in p for p in problems)


def test_the_serving_port_is_http_else_the_first() -> None:
    assert (
        serving_port({"ports": [{"name": "admin", "containerPort": 9}, {"name": "http", "containerPort": 8}]})
        == "http"
    )
    assert serving_port({"ports": [{"name": "web", "containerPort": 8080}]}) == "web"
    assert serving_port({"ports": [{"containerPort": 8080}]}) == 8080


def problems_of(**config: Any) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        release_settings(canaryImage=CANARY, **config)
    return [message for _, message in refused.value.problems]


def test_a_template_that_sets_the_app_image_is_refused_naming_the_field() -> None:
    template = {"spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0.0"}]}}
    assert problems_of(podTemplate=template) == [
        "podTemplate.spec.containers[0].image: 'registry.example/web:1.0.0' is not allowed: the app "
        "container's image is set by stableImage and canaryImage (one place sets the version); remove it"
    ]
    canary_image = {"spec": {"containers": [{"name": "web", "image": "x:1"}]}}
    assert problems_of(podTemplate=jvm_template(), canaryPodTemplate=canary_image)[0].startswith(
        "canaryPodTemplate.spec.containers[0].image: 'x:1' is not allowed"
    )


def test_the_app_container_must_exist_and_every_container_have_a_name() -> None:
    assert problems_of(podTemplate=jvm_template(), appContainer="api") == [
        "appContainer: 'api' is not allowed: the name of a container of podTemplate: 'web', 'proxy'"
    ]
    assert problems_of(podTemplate={"spec": {"containers": []}})[0].startswith(
        "podTemplate.spec.containers: [] is not allowed: a list of at least one container"
    )
    assert problems_of(podTemplate={"spec": {"containers": [{"image": "x"}]}})[0].startswith(
        "podTemplate.spec.containers[0].name: None is not allowed"
    )
    assert problems_of(podTemplate="not a template")[0].startswith(
        "podTemplate: 'not a template' is not allowed"
    )
    assert problems_of(appContainer="web")[0].startswith(
        "appContainer: 'web' is not allowed: \"\" while podTemplate"
    )


def test_pod_security_problems_are_refused_before_anything_is_registered() -> None:
    privileged = {"spec": {"containers": [{"name": "proxy", "securityContext": {"privileged": True}}]}}
    problems = problems_of(podTemplate=jvm_template(), canaryPodTemplate=privileged)
    assert problems == [
        "canaryPodTemplate.spec.containers[1].securityContext.privileged: True is not allowed under Pod "
        'Security "restricted": no privileged containers (with canaryPodTemplate merged over it)'
    ]


def test_a_canary_can_differ_without_a_template_of_its_own() -> None:
    extra = {"spec": {"containers": [{"name": "app", "env": [{"name": "FEATURE", "value": "on"}]}]}}
    args = release_settings(canaryImage=CANARY, canaryPodTemplate=extra)
    assert args.pod_template is None and args.canary_pod_template == extra
