"""The CanaryRelease component from another Pulumi language: a Pulumi YAML program, on the local cluster.

provider/ serves the Python component to every language (`component_provider_host`, PulumiPlugin.yaml with
runtime python); the YAML program tests/integration/projects/yaml-release declares one
`gateway-canary:index:CanaryRelease`. The walk, in order, on a private copy of that project:

1. `pulumi package add <provider folder>` (the engine runs the provider through our Python language host's
   RunPlugin to read its schema; the YAML host writes the package lock file and links it);
2. `pulumi up` of the YAML program: the engine runs the provider again and the component's children are
   created by the Python code, under the YAML stack;
3. the same settings through the Python program (__main__.py, stack config) in a second namespace, and every
   object the two created is compared, read back with kubectl: same kinds and names, same labels,
   annotations and spec once the namespace name is set aside; the stack outputs are the same;
4. `pulumi destroy` of the YAML stack removes every object.

The provider folder is a private copy of provider/ (its two files, next to a link to the checkout's .venv, so
`virtualenv: ../.venv` still names it): Pulumi YAML's host caches a package's schema in the folder above a
local plugin (`schema-gateway-canary.json`) and trusts it while the plugin folder is not newer, so with the
checkout's own folder a schema cached before the component's args last changed would be used.

Nothing is skipped silently: without pulumi-language-yaml (`make tools`) the test is skipped with the
"integration tests NOT RUN" banner locally and fails under CI=true, like the rest of tests/integration.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import not_run
from tests.integration.harness import (
    REPO,
    ROUTE,
    Kube,
    PulumiStack,
    copy_project,
    gateway_settings,
    is_available,
    release_stack,
    run,
    set_in_stack_file,
    unique,
)

PROJECT = Path(__file__).parent / "projects" / "yaml-release"
PROVIDER = REPO / "provider"
COMPONENT = "gateway-canary:index:CanaryRelease"
APP = "web"
V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"
SETTINGS = {"appName": APP, "stableImage": V1, "canaryImage": V2}
"""The YAML program's config; its canaryWeight is "25", written in the program (see its Pulumi.yaml)."""
PYTHON_SETTINGS = {**SETTINGS, "canaryWeight": "25"}
POD_TEMPLATE = {
    "metadata": {"labels": {"team": "storefront"}},
    "spec": {"containers": [{"name": "web", "env": [{"name": "GREETING", "value": "hello"}]}]},
}
"""The pod template the YAML program declares (its Pulumi.yaml), given to the Python program to compare."""
KINDS = ("namespace", "deployment", "service", ROUTE, "gateway.gateway.networking.k8s.io")


@pytest.fixture(scope="module")
def yaml_env(env: dict[str, str]) -> dict[str, str]:
    """The project environment, once Pulumi YAML's language host is known to be next to pulumi."""
    if shutil.which("pulumi-language-yaml", path=env["PATH"]) is None:
        not_run("pulumi-language-yaml not found on PATH (run `make tools`)")
    return env


def objects(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    """Every object of the release in `namespace` (the Namespace itself included), by `kind/name`, reduced to
    what the program decides (labels, annotations, spec), with the namespace name replaced by `<ns>`."""
    found: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        if kind == "namespace":
            live = kube.get("namespace", namespace)
            items = [live] if live else []
        else:
            items = kube.list(kind, namespace)
        for obj in items:
            meta = obj["metadata"]
            kept = {
                "labels": meta.get("labels", {}),
                "annotations": meta.get("annotations", {}),
                "spec": obj.get("spec", {}),
            }
            if kind == "service":
                # Allocated by the apiserver, not by the program.
                for field in ("clusterIP", "clusterIPs"):
                    kept["spec"].pop(field, None)
            text = json.dumps(kept, sort_keys=True).replace(namespace, "<ns>")
            found[f"{kind.split('.')[0]}/{meta['name'].replace(namespace, '<ns>')}"] = json.loads(text)
    return found


def split_weights(route: dict[str, Any]) -> dict[str, int]:
    """Backend name -> Gateway API weight of the route's weighted rule (the one without header matches)."""
    rules = [r for r in route["spec"]["rules"] if not any(m.get("headers") for m in r.get("matches", []))]
    assert len(rules) == 1, route["spec"]["rules"]
    return {ref["name"]: ref["weight"] for ref in rules[0]["backendRefs"]}


@pytest.fixture(scope="class")
def release(yaml_env: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory):
    """The YAML stack (not yet deployed) and its namespace; destroyed at the end whatever happened."""
    where = tmp_path_factory.mktemp("yaml-release")
    project = copy_project(PROJECT, where / "project")
    (where / "provider").mkdir()
    for name in ("PulumiPlugin.yaml", "__main__.py"):
        shutil.copy(PROVIDER / name, where / "provider" / name)
    (where / ".venv").symlink_to(REPO / ".venv")
    namespace = unique("gc-yaml")
    stack = PulumiStack(project, unique("yaml"), yaml_env)
    yield stack, namespace
    stack.destroy()
    kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


@pytest.mark.usefixtures("release")
class TestReleaseFromYaml:
    def test_1_package_add_records_the_provider(self, release) -> None:
        stack, _ = release
        provider = stack.project_dir.parent / "provider"
        res = run(["pulumi", "package", "add", str(provider)], stack.env, stack.project_dir).check()
        assert "Added package gateway-canary" in res.output, res.output
        project = yaml.safe_load((stack.project_dir / "Pulumi.yaml").read_text())
        assert project["packages"] == {"gateway-canary": str(provider)}
        version = (
            run(
                [
                    str(REPO / ".venv/bin/python"),
                    "-c",
                    "import importlib.metadata as m; print(m.version('gateway-canary'))",
                ],
                stack.env,
            )
            .check()
            .stdout.strip()
        )
        lock = stack.project_dir / "sdks" / "gateway-canary" / f"gateway-canary-{version}.yaml"
        assert yaml.safe_load(lock.read_text()) == {
            "packageDeclarationVersion": 1,
            "name": "gateway-canary",
            "version": version,
        }

    def test_2_up_creates_the_release_through_the_component(self, release, kube: Kube) -> None:
        stack, ns = release
        stack.init()
        stack.set_config({"namespace": ns, **gateway_settings(SETTINGS), **SETTINGS})
        stack.up(message="yaml release").check()

        # The objects are the component's children, registered by the Python provider under the YAML stack.
        state = json.loads(stack.pulumi("stack", "export").check().stdout)
        resources = state["deployment"]["resources"]
        (component,) = [r for r in resources if r["type"] == COMPONENT]
        children = {r["type"].split(":")[-1] for r in resources if r.get("parent") == component["urn"]}
        assert {"Namespace", "Deployment", "Service", "Gateway", "HTTPRoute"} <= children, children

        for track, image in (("stable", V1), ("canary", V2)):
            dep = kube.get("deployment", f"{APP}-{track}", ns)
            assert dep is not None and is_available(dep), (track, dep and dep.get("status"))
            container = dep["spec"]["template"]["spec"]["containers"][0]
            assert (container["name"], container["image"]) == ("web", image), "the YAML program's podTemplate"
            assert container["env"] == [{"name": "GREETING", "value": "hello"}]
            assert dep["spec"]["template"]["metadata"]["labels"]["team"] == "storefront"
            assert kube.get("service", f"{APP}-{track}", ns) is not None
        assert kube.get("gateway.gateway.networking.k8s.io", f"{APP}-gateway", ns) is not None
        route = kube.get(ROUTE, APP, ns)
        assert route is not None
        total = sum(split_weights(route).values())
        assert {k: v * 100 / total for k, v in split_weights(route).items()} == {
            f"{APP}-stable": 75,
            f"{APP}-canary": 25,
        }

        assert stack.outputs() == {
            "phase": "canary 25%",
            "stableWeight": 75,
            "canaryWeight": 25,
            "stableImage": V1,
            "canaryImage": V2,
            "routeName": APP,
            "serviceNames": [f"{APP}-stable", f"{APP}-canary"],
            "namespace": ns,
            "gatewayName": f"{APP}-gateway",
        }

    def test_3_same_objects_and_outputs_as_the_python_program(
        self, release, env: dict[str, str], kube: Kube, tmp_path: Path
    ) -> None:
        stack, ns = release
        python = release_stack(env, tmp_path, "pyrel", PYTHON_SETTINGS)
        set_in_stack_file(python, {"podTemplate": POD_TEMPLATE})
        try:
            python.up(message="python release").check()
            python_ns = str(python.outputs()["namespace"])
            from_yaml, from_python = objects(kube, ns), objects(kube, python_ns)
            assert (
                sorted(from_yaml)
                == sorted(from_python)
                == sorted(
                    [
                        "namespace/<ns>",
                        f"deployment/{APP}-stable",
                        f"deployment/{APP}-canary",
                        f"service/{APP}-stable",
                        f"service/{APP}-canary",
                        f"httproute/{APP}",
                        f"gateway/{APP}-gateway",
                    ]
                )
            )
            for key in from_yaml:
                assert from_yaml[key] == from_python[key], key
            assert {**python.outputs(), "namespace": ns} == stack.outputs()
        finally:
            python.destroy()

    def test_4_destroy_removes_every_object(self, release, kube: Kube) -> None:
        stack, ns = release
        stack.pulumi("destroy", "--yes", "--skip-preview").check()
        for kind, name in (
            ("deployment", f"{APP}-stable"),
            ("deployment", f"{APP}-canary"),
            ("service", f"{APP}-stable"),
            ("service", f"{APP}-canary"),
            (ROUTE, APP),
            ("gateway.gateway.networking.k8s.io", f"{APP}-gateway"),
        ):
            assert kube.get(kind, name, ns) is None, (kind, name)
        namespace = kube.get("namespace", ns)
        assert namespace is None or namespace["status"].get("phase") == "Terminating"
