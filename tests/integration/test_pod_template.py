"""The app's own pod template (podTemplate, canaryPodTemplate, appContainer) through the real engine and
provider on the local apiserver: every field read back from the live Deployments of both tracks, a
refreshing preview that plans nothing, and a bad template refused before anything reaches the cluster.

The namespace, its ServiceAccount, ConfigMap and Secret are made first with kubectl, as a team's platform
would (the pods reference them, and the ServiceAccount admission refuses a pod whose account is missing);
the release attaches to it (createNamespace false) under Pod Security "restricted".
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from tests.integration.harness import (
    REPO,
    Kube,
    PulumiStack,
    is_available,
    release_stack,
    set_in_stack_file,
    unique,
)

APP = "jvm"
V1, V2 = "registry.example/jvm:1.0.0", "registry.example/jvm:1.1.0"

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "payments"}, "annotations": {"example.com/owner": "payments"}},
    "spec": {
        "serviceAccountName": "jvm",
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"team": "payments"}},
            }
        ],
        "containers": [
            {
                "name": "server",
                "command": ["java"],
                "args": ["-jar", "/app/server.jar"],
                "ports": [{"name": "http", "containerPort": 9898}],
                "env": [
                    {"name": "JAVA_OPTS", "value": "-Xmx768m"},
                    {
                        "name": "GREETING",
                        "valueFrom": {"configMapKeyRef": {"name": "jvm-config", "key": "greeting"}},
                    },
                    {
                        "name": "API_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "jvm-secret", "key": "token"}},
                    },
                ],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/jvm", "readOnly": True}],
            },
            {
                "name": "log-shipper",
                "image": "registry.example/log-shipper:2.3",
                "args": ["--path", "/var/log/jvm"],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            },
        ],
        "volumes": [{"name": "config", "configMap": {"name": "jvm-config"}}],
    },
}
CANARY_FIELDS = {
    "spec": {"containers": [{"name": "server", "env": [{"name": "FEATURE_NEW_CHECKOUT", "value": "on"}]}]}
}


def platform(kube: Kube, namespace: str) -> None:
    """What the release's pods reference, made outside the release."""
    kube.run("create", "namespace", namespace).check()
    kube.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted").check()
    kube.apply(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "jvm", "namespace": namespace},
                },
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "jvm-config", "namespace": namespace},
                    "data": {"greeting": "hello", "app.properties": "mode=prod\n"},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "jvm-secret", "namespace": namespace},
                    "stringData": {"token": "not-a-real-token"},
                },
            ]
        )
    )


def templated_stack(env: dict[str, str], kube: Kube, tmp_path: Path) -> tuple[PulumiStack, str]:
    """A new stack of the release in a namespace of the platform's, with TEMPLATE in its stack file."""
    namespace = unique("gc-podtpl")
    platform(kube, namespace)
    stack = release_stack(
        env,
        tmp_path,
        "podtpl",
        {"appName": APP, "namespace": namespace, "createNamespace": "false", "stableImage": V1},
    )
    set_in_stack_file(stack, {"podTemplate": TEMPLATE})
    return stack, namespace


def live_template(kube: Kube, namespace: str, track: str) -> dict[str, Any]:
    deployment = kube.get("deployment", f"{APP}-{track}", namespace)
    assert deployment is not None and is_available(deployment), deployment
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def test_the_apps_template_runs_on_both_tracks_as_written(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    stack, namespace = templated_stack(env, kube, tmp_path)
    stack.up("stable from the app's own template").check()
    stack.set_config({"canaryImage": V2, "canaryWeight": "25"})
    set_in_stack_file(stack, {"canaryPodTemplate": CANARY_FIELDS})
    stack.up("canary 25% with one more env var").check()

    for track, image in (("stable", V1), ("canary", V2)):
        template = live_template(kube, namespace, track)
        spec = template["spec"]
        server, shipper = spec["containers"]
        assert template["metadata"]["labels"]["team"] == "payments"
        assert template["metadata"]["labels"]["gateway-canary/track"] == track
        assert template["metadata"]["annotations"] == {"example.com/owner": "payments"}
        assert spec["serviceAccountName"] == "jvm" and "automountServiceAccountToken" not in spec
        assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
        assert spec["volumes"][0]["configMap"]["name"] == "jvm-config"
        assert (server["name"], server["image"], server["command"], server["args"]) == (
            "server",
            image,
            ["java"],
            ["-jar", "/app/server.jar"],
        )
        env_names = [e["name"] for e in server["env"]]
        expected = ["JAVA_OPTS", "GREETING", "API_TOKEN"] + (
            ["FEATURE_NEW_CHECKOUT"] if track == "canary" else []
        )
        assert env_names == expected
        assert server["env"][1]["valueFrom"]["configMapKeyRef"]["name"] == "jvm-config"
        assert server["env"][2]["valueFrom"]["secretKeyRef"]["name"] == "jvm-secret"
        assert server["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
        assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
        assert server["volumeMounts"] == [{"name": "config", "mountPath": "/etc/jvm", "readOnly": True}]
        assert server["securityContext"]["runAsNonRoot"] is True
        assert shipper["image"] == "registry.example/log-shipper:2.3"
        assert shipper["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    stack.preview("--refresh", "--expect-no-changes").check("nothing to change after a refresh")


def test_a_template_that_sets_the_app_image_changes_nothing(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    stack, namespace = templated_stack(env, kube, tmp_path)
    stack.up().check()
    before = kube.get("deployment", f"{APP}-stable", namespace)
    assert before is not None

    bad = copy.deepcopy(TEMPLATE)
    bad["spec"]["containers"][0]["image"] = "registry.example/jvm:9.9.9"
    bad["spec"]["containers"][1]["securityContext"] = {"privileged": True}
    set_in_stack_file(stack, {"podTemplate": bad})
    result = stack.up()
    assert result.code != 0, result.output
    assert (
        "podTemplate.spec.containers[0].image: 'registry.example/jvm:9.9.9' is not allowed" in result.output
    )
    assert "podTemplate.spec.containers[1].securityContext.privileged: True is not allowed" in result.output
    assert "Traceback" not in result.output
    after = kube.get("deployment", f"{APP}-stable", namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_the_pods_own_readiness_probe_holds_the_canary_back(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """The bed asks each pod's own readinessProbe before it turns Ready: a canary whose probe fails (podinfo's
    /status/503 answers 503) never does, so `pulumi up` fails at rolloutTimeout and the route never moves;
    the probe fixed, the next `pulumi up` moves it."""
    stack, namespace = templated_stack(env, kube, tmp_path)
    stack.up().check()
    failing = {"readinessProbe": {"httpGet": {"path": "/status/503", "port": "http"}, "periodSeconds": 1}}
    set_in_stack_file(stack, {"canaryPodTemplate": {"spec": {"containers": [{"name": "server", **failing}]}}})
    stack.set_config({"canaryImage": V2, "canaryWeight": "25", "rolloutTimeout": "20"})
    result = stack.up("a canary that never passes its probe")
    assert result.code != 0, result.output
    canary = kube.get("deployment", f"{APP}-canary", namespace)
    assert canary is not None and not is_available(canary), canary and canary.get("status")
    pods = [
        p
        for p in kube.list("pods", namespace)
        if p["metadata"]["labels"].get("gateway-canary/track") == "canary"
    ]
    assert pods and all(p["status"].get("phase") == "Running" for p in pods), pods
    assert all(
        c.get("status") != "True"
        for p in pods
        for c in p["status"].get("conditions", [])
        if c["type"] == "Ready"
    )
    route = kube.get(ROUTE, APP, namespace)
    assert route is not None
    assert all(
        ref["name"] == f"{APP}-stable"
        for rule in route["spec"]["rules"]
        for ref in rule.get("backendRefs", [])
    ), "the route moved to a canary that is not ready"

    set_in_stack_file(stack, {"canaryPodTemplate": {}})
    # The default rolloutTimeout again: only the failing update is bounded at 20 s.
    stack.pulumi("config", "rm", "rolloutTimeout").check()
    stack.up("the canary with the template's own probe").check()
    canary = kube.get("deployment", f"{APP}-canary", namespace)
    assert canary is not None and is_available(canary)


BEFORE_POD_TEMPLATES = "7ecd112a987197e2ac9b344ad5d5888d8b6ee5bb"
"""The last commit before podTemplate: its program made the stacks teams run today."""


def test_a_stack_made_before_pod_templates_sees_no_change(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """A stack deployed by the program as it was before podTemplate (its own canary package, from git),
    then previewed with refresh by today's program: nothing to change (no template means today's objects)."""
    stack = release_stack(
        env, tmp_path, "before", {"appName": APP, "stableImage": V1, "canaryImage": V2, "canaryWeight": "25"}
    )
    project = Path(stack.project_dir)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BEFORE_POD_TEMPLATES, "canary", "__main__.py", "Pulumi.yaml"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(project)], input=archive.stdout, check=True)
    assert not (project / "canary" / "release" / "pod_template.py").exists(), "the old program"
    stack.up("deployed by the program before podTemplate").check()

    shutil.rmtree(project / "canary")  # today's package (the virtualenv's) from here on
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(REPO / name, project / name)
    stack.preview("--refresh", "--expect-no-changes").check("today's program changes nothing")
