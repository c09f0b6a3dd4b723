"""The toolchain and the local cluster are real: pinned Pulumi, the provider found offline, the Gateway API
CRDs with their CEL validation enforced, and `pulumi up` waiting for a Deployment to become Available."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

from tests.integration.harness import REPO, Kube, PulumiStack, copy_project, run, unique

SMOKE = Path(__file__).parent / "projects" / "smoke"


def pinned(name: str) -> str:
    text = (REPO / "tools" / "versions.env").read_text()
    match = re.search(rf"^{name}=(\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from tools/versions.env"
    return match.group(1)


def test_pulumi_is_the_pinned_build_or_the_ambient_one_make_tools_chose(env: dict[str, str]) -> None:
    """`make tools` builds the pinned CLI, unless a full Pulumi install is already on PATH (then it uses that,
    docs/getting-started.md: the toolchain). Either way the engine must be v3 and not older than the Python
    SDK it runs."""
    version = run(["pulumi", "version"], env).check().stdout.strip()
    if (REPO / ".tools" / "bin" / "pulumi").exists():
        assert version == pinned("PULUMI_VERSION")
        return
    assert shutil.which("pulumi", path=env["PATH"]), "no pulumi on PATH"
    sdk = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(req.split("==")[1] for req in sdk if req.startswith("pulumi=="))
    assert re.fullmatch(r"v3\.\d+\.\d+", version), version
    assert tuple(map(int, version[1:].split("."))) >= tuple(map(int, pin.split("."))), (version, pin)


def test_httproute_crd_is_installed(kube: Kube) -> None:
    crd = kube.get("crd", "httproutes.gateway.networking.k8s.io")
    assert crd is not None, "HTTPRoute CRD missing"
    served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert "v1" in served
    bundle = crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
    assert bundle == pinned("GATEWAY_API_VERSION")


def test_apiserver_enforces_httproute_cel_rules(kube: Kube) -> None:
    """A path match that is not an absolute path breaks a CEL rule of the CRD; the apiserver must say no."""
    bad = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cel-probe, namespace: default}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: "no-leading-slash"}}]
    backendRefs: [{name: svc, port: 80}]
"""
    res = kube.run("apply", "--dry-run=server", "-f", "-", stdin=bad)
    assert res.code != 0, f"apiserver accepted an invalid HTTPRoute: {res.output}"
    assert "must be an absolute path" in res.stderr, res.stderr


def test_stack_with_configmap_goes_up_and_down_offline(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """Plugin acquisition is disabled in the environment, so success proves the provider was found locally."""
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    namespace = unique("smoke")
    stack = PulumiStack(copy_project(SMOKE, tmp_path / "smoke"), unique("it"), env).init()
    try:
        stack.set_config({"namespace": namespace})
        up = stack.up().check()
        assert "Downloading" not in up.output
        cm = kube.get("configmap", "smoke", namespace)
        assert cm is not None and cm["data"] == {"hello": "world"}
        state = json.loads(stack.pulumi("stack", "export").check().stdout)
        providers = [
            r for r in state["deployment"]["resources"] if r["type"] == "pulumi:providers:kubernetes"
        ]
        assert [p["inputs"].get("version") for p in providers] == [pinned("PULUMI_KUBERNETES_VERSION")]

        stack.pulumi("destroy", "--yes", "--skip-preview").check()
        assert kube.get("configmap", "smoke", namespace) is None
    finally:
        stack.destroy()


def test_pulumi_up_returns_after_deployment_is_available(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    namespace = unique("smoke")
    stack = PulumiStack(copy_project(SMOKE, tmp_path / "smoke"), unique("it"), env).init()
    try:
        stack.set_config({"namespace": namespace, "withDeployment": "true"})
        stack.up().check()
        # Read right after `up` returned: the provider's await logic must already have seen it Available.
        dep = kube.get("deployment", "web", namespace)
        assert dep is not None
        conditions = {c["type"]: c["status"] for c in dep["status"].get("conditions", [])}
        assert conditions.get("Available") == "True", dep["status"]
        assert dep["status"].get("readyReplicas") == 1
    finally:
        stack.destroy()
