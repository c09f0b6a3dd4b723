"""Security of a real release on the local apiserver: Pod Security Admission, the rollout operator's RBAC
under a real token, and TLS key material that only ever reaches state as ciphertext.

One stack is deployed once (with the guardrail pack on, `pulumi up --policy-pack policy`) with a canary,
`rolloutOperator: rollout-bot`, and tlsCert/tlsKey set with `pulumi config set --secret` from a throwaway
self-signed certificate made by openssl. The tests then read what the apiserver and the state say. They run
in definition order; the operator's update is last but one, the plaintext-key refusal last.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.gateway_api import ROUTE_TYPE
from canary.route_state import route_state
from tests.integration.harness import (
    REPO,
    Kube,
    PulumiStack,
    Result,
    changes,
    is_available,
    release_stack,
    run,
    unique,
)

APP = "web"
OPERATOR = "rollout-bot"
V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
PSS_REJECTION = 'violates PodSecurity "restricted:latest"'


@dataclass
class Release:
    stack: PulumiStack
    namespace: str
    cert: str
    key: str
    workdir: Path


def set_secret(stack: PulumiStack, key: str, value: str, kind: str = "--secret") -> None:
    """`pulumi config set --secret KEY < value`: the value goes in on stdin, never on a command line.
    (Pulumi trims the trailing newline of a value read from stdin.)"""
    proc = subprocess.run(
        ["pulumi", "config", "set", kind, key, "--stack", stack.name, "--non-interactive"],
        cwd=stack.project_dir,
        env=stack.env,
        input=value,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def self_signed(workdir: Path) -> tuple[str, str]:
    """A throwaway EC certificate and key for web.example (valid one day), made by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found: it makes the test certificate")
    key, crt = workdir / "tls.key", workdir / "tls.crt"
    run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=web.example",
        ],
        dict(os.environ),
    ).check()  # fmt: skip
    return crt.read_text(), key.read_text()


@pytest.fixture(scope="module")
def release(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("security")
    cert, key = self_signed(workdir)
    namespace = unique("gc-sec")
    stack = release_stack(
        dict(env),
        workdir,
        "sec",
        {
            "appName": APP,
            "namespace": namespace,
            "stableImage": V1,
            "canaryImage": V2,
            "stableReplicas": "1",
            "rolloutOperator": OPERATOR,
            "tlsSecretName": f"{APP}-tls",
        },
    )
    try:
        set_secret(stack, "tlsCert", cert)
        set_secret(stack, "tlsKey", key)
        stack.pulumi("up", "--yes", "--skip-preview", "--policy-pack", str(REPO / "policy")).check()
        yield Release(stack, namespace, cert, key, workdir)
    finally:
        stack.destroy()


# Pod Security Admission


def test_namespace_enforces_pod_security_restricted(release: Release, kube: Kube) -> None:
    ns = kube.get("namespace", release.namespace)
    assert ns is not None
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"


def test_admission_admitted_our_pods(release: Release, kube: Kube) -> None:
    for track in ("stable", "canary"):
        deployment = kube.get("deployment", f"{APP}-{track}", release.namespace)
        assert deployment is not None and is_available(deployment), f"{APP}-{track} is not Available"
    pods = kube.list("pods", release.namespace)
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["status"]["phase"] == "Running", pod["metadata"]["name"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_admission_rejects_a_privileged_root_pod(release: Release, kube: Kube) -> None:
    bad = ["run", "intruder", "--image=registry.example/debug:1", "--privileged", "--restart=Never"]
    res = kube.run(*bad, "-n", release.namespace)
    assert res.code != 0, f"a privileged pod was admitted: {res.output}"
    assert "Forbidden" in res.stderr and PSS_REJECTION in res.stderr, res.stderr
    assert 'container "intruder" must not set securityContext.privileged=true' in res.stderr
    assert "runAsNonRoot != true" in res.stderr
    # Control: the same pod passes admission where no Pod Security label is set: the label refused it.
    assert kube.run(*bad, "-n", "default", "--dry-run=server").code == 0


def test_admission_stops_a_non_compliant_deployment_at_its_pods(release: Release, kube: Kube) -> None:
    """A Deployment object itself is admitted (with a warning); its ReplicaSet can create no pod."""
    res = kube.run(
        "create", "deployment", "rooty", "--image=registry.example/debug:1", "-n", release.namespace
    )
    assert res.code == 0, res.output
    assert "would violate PodSecurity" in res.stderr, res.stderr
    events: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(PSS_REJECTION in e for e in events):
        time.sleep(1)
        listed = kube.run(
            "get", "events", "-n", release.namespace, "--field-selector=reason=FailedCreate", "-o", "json"
        )
        events = [e["message"] for e in json.loads(listed.check().stdout)["items"]]
    kube.run("delete", "deployment", "rooty", "-n", release.namespace, "--wait=false")
    assert any("rooty" in e and PSS_REJECTION in e for e in events), events
    assert kube.list("pods", release.namespace) and all(
        not p["metadata"]["name"].startswith("rooty") for p in kube.list("pods", release.namespace)
    )


# TLS material from secret config


def secret_needles(release: Release) -> dict[str, str]:
    """Strings that would betray the key (or the certificate) in plaintext or base64."""
    key_body = [line for line in release.key.splitlines() if line and not line.startswith("-----")]
    cert_body = [line for line in release.cert.splitlines() if line and not line.startswith("-----")]
    return {
        "key PEM": release.key.strip(),
        "key body line": key_body[0],
        "key last line": key_body[-1],
        "key base64": base64.b64encode(release.key.encode()).decode()[:48],
        "key base64 (stripped)": base64.b64encode(release.key.strip().encode()).decode()[:48],
        "cert body line": cert_body[1],
        "cert base64": base64.b64encode(release.cert.encode()).decode()[:48],
    }


def test_state_and_stack_file_hold_only_ciphertext(release: Release, env: dict[str, str]) -> None:
    exported = release.stack.pulumi("stack", "export").check().stdout
    stack_file = (release.stack.project_dir / f"Pulumi.{release.stack.name}.yaml").read_text()
    history = release.stack.pulumi("stack", "history", "--json").check().stdout
    backend = Path(env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi"
    at_rest = {
        str(path): path.read_text(errors="replace")
        for path in backend.rglob("*")
        if path.is_file() and f"/gateway-canary/{release.stack.name}" in str(path)
    }
    assert any("/stacks/" in path for path in at_rest), sorted(at_rest)
    for what, needle in secret_needles(release).items():
        assert needle not in exported, f"{what} in `pulumi stack export`"
        assert needle not in stack_file, f"{what} in Pulumi.<stack>.yaml"
        assert needle not in history, f"{what} in stack history"
        for path, text in at_rest.items():
            assert needle not in text, f"{what} in {path}"

    config = yaml.safe_load(stack_file)["config"]
    for key in ("tlsCert", "tlsKey"):
        assert set(config[f"gateway-canary:{key}"]) == {"secure"}, key
    secret = next(
        r for r in json.loads(exported)["deployment"]["resources"] if r["type"] == "kubernetes:core/v1:Secret"
    )
    for side in ("inputs", "outputs"):
        data = secret[side]["data"]
        assert data.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270", (
            side,
            data,
        )
        assert set(data) == {"4dabf18193072939515e22adb298388d", "ciphertext"}, side


def test_live_secret_has_the_certificate_and_key(release: Release, kube: Kube) -> None:
    secret = kube.get("secret", f"{APP}-tls", release.namespace)
    assert secret is not None
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == release.cert.rstrip("\n")
    assert base64.b64decode(secret["data"]["tls.key"]).decode() == release.key.rstrip("\n")
    gateway = kube.get("gateways.gateway.networking.k8s.io", f"{APP}-gateway", release.namespace)
    assert gateway is not None
    https = [listener for listener in gateway["spec"]["listeners"] if listener["protocol"] == "HTTPS"]
    assert https[0]["tls"]["certificateRefs"][0]["name"] == f"{APP}-tls"


# The rollout operator, as a real identity


@pytest.fixture(scope="module")
def operator(release: Release, env: dict[str, str]) -> dict[str, str]:
    """The environment of a person or CI job holding only the operator's token: a kubeconfig with the same
    server, CA and context name as the cluster's, and a token from `kubectl create token`."""
    ns = release.namespace
    token = (
        run(["kubectl", "create", "token", OPERATOR, "-n", ns, "--duration=15m"], env).check().stdout.strip()
    )
    config = json.loads(
        run(["kubectl", "config", "view", "--minify", "--raw", "--flatten", "-o", "json"], env).check().stdout
    )
    config["users"] = [{"name": OPERATOR, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = OPERATOR
    path = release.workdir / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return {**env, "KUBECONFIG": str(path)}


def as_operator(operator: dict[str, str], *args: str) -> Result:
    return run(["kubectl", *args], operator)


def test_the_token_is_the_service_accounts(release: Release, operator: dict[str, str]) -> None:
    whoami = json.loads(as_operator(operator, "auth", "whoami", "-o", "json").check().stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{release.namespace}:{OPERATOR}"


CAN = [
    ("get", "deployments"),
    ("list", "deployments"),
    ("watch", "deployments"),
    ("get", "services"),
    ("list", "services"),
    ("get", "httproutes.gateway.networking.k8s.io"),
    ("list", "httproutes.gateway.networking.k8s.io"),
    ("watch", "httproutes.gateway.networking.k8s.io"),
    ("patch", f"httproutes.gateway.networking.k8s.io/{APP}"),
]
CANNOT = [
    ("patch", f"deployments/{APP}-stable"),
    ("update", "deployments"),
    ("create", "deployments"),
    ("delete", "deployments"),
    ("patch", "services"),
    ("delete", "services"),
    ("patch", "httproutes.gateway.networking.k8s.io/another-route"),
    ("update", f"httproutes.gateway.networking.k8s.io/{APP}"),
    ("create", "httproutes.gateway.networking.k8s.io"),
    ("delete", f"httproutes.gateway.networking.k8s.io/{APP}"),
    ("patch", "gateways.gateway.networking.k8s.io"),
    ("get", "secrets"),
    ("list", "pods"),
    ("create", "pods"),
    ("create", "serviceaccounts/token"),
    ("create", "rolebindings"),
    ("patch", "roles"),
]


def test_can_i_matrix(release: Release, operator: dict[str, str]) -> None:
    def can(verb: str, resource: str, *where: str) -> str:
        res = as_operator(operator, "auth", "can-i", verb, resource, *where)
        return res.stdout.strip()

    ns = ["-n", release.namespace]
    wrong = {
        f"{verb} {resource}": can(verb, resource, *ns)
        for verb, resource in CAN
        if can(verb, resource, *ns) != "yes"
    }
    assert wrong == {}, f"the operator lacks: {wrong}"
    wrong = {
        f"{verb} {resource}": can(verb, resource, *ns)
        for verb, resource in CANNOT
        if can(verb, resource, *ns) != "no"
    }
    assert wrong == {}, f"the operator may: {wrong}"
    # Nothing anywhere else: the same reads and the route patch in another namespace, or cluster-wide.
    for verb, resource in CAN:
        assert can(verb, resource, "-n", "default") == "no", f"{verb} {resource} in default"
        assert can(verb, resource, "--all-namespaces") == "no", f"{verb} {resource} cluster-wide"
    assert can("list", "namespaces") == "no"


def urn_of(stack: PulumiStack, resource_type: str, name: str) -> str:
    resources = json.loads(stack.pulumi("stack", "export").check().stdout)["deployment"]["resources"]
    (urn,) = [r["urn"] for r in resources if r["type"] == resource_type and r["urn"].endswith(f"::{name}")]
    return urn


def test_operator_moves_traffic_with_a_targeted_update(
    release: Release, operator: dict[str, str], kube: Kube
) -> None:
    stack, ns = release.stack, release.namespace
    before = {
        kind: {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in kube.list(kind, ns)}
        for kind in ("deployments", "services", "secrets")
    }
    route_urn = urn_of(stack, ROUTE_TYPE, f"{APP}-route")
    stack.set_config({"canaryWeight": "25"})
    as_op = PulumiStack(stack.project_dir, stack.name, operator)  # not `created`: never destroyed through it
    as_op.pulumi("up", "--target", route_urn, "--yes", "--message", "operator: canary 0% -> 25%").check()

    route = kube.get(ROUTE, APP, ns)
    assert route is not None
    state = route_state(route, APP)
    assert (state.stable_weight, state.canary_weight) == (75, 25)
    latest = stack.history()[0]
    assert latest["result"] == "succeeded" and latest["message"] == "operator: canary 0% -> 25%"
    assert changes(latest) == {"update": 1}
    after = {
        kind: {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in kube.list(kind, ns)}
        for kind in ("deployments", "services", "secrets")
    }
    assert after == before, "the operator's update touched something besides the route"


def test_operator_cannot_change_a_deployment(release: Release, operator: dict[str, str], kube: Kube) -> None:
    stack, ns = release.stack, release.namespace
    patched = as_operator(
        operator, "patch", "deployment", f"{APP}-stable", "-n", ns, "-p", '{"spec":{"replicas":3}}'
    )
    assert patched.code != 0 and "Forbidden" in patched.stderr, patched.output
    assert 'cannot patch resource "deployments"' in patched.stderr

    deployment_urn = urn_of(stack, DEPLOYMENT_TYPE, f"{APP}-stable")
    stack.set_config({"stableImage": "registry.example/web:1.0.1"})
    try:
        as_op = PulumiStack(stack.project_dir, stack.name, operator)
        res = as_op.pulumi("up", "--target", deployment_urn, "--yes", "--skip-preview")
        assert res.code != 0, res.output[-2000:]
        assert (
            f'User "system:serviceaccount:{ns}:{OPERATOR}" cannot patch resource "deployments"' in res.output
        )
    finally:
        stack.set_config({"stableImage": V1})
    live = kube.get("deployment", f"{APP}-stable", ns)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert live["spec"]["replicas"] == 1


def test_operator_cannot_touch_a_route_in_another_namespace(
    release: Release, operator: dict[str, str], kube: Kube
) -> None:
    other = unique("gc-other")
    kube.run("create", "namespace", other).check()
    try:
        kube.apply(
            f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {APP}, namespace: {other}}}
spec:
  rules:
  - backendRefs: [{{name: {APP}-stable, port: 80}}]
""",
        )
        for args in (
            ["get", ROUTE, APP, "-n", other],
            [
                "patch",
                ROUTE,
                APP,
                "-n",
                other,
                "--type=merge",
                "-p",
                '{"metadata":{"labels":{"owned":"no"}}}',
            ],
            ["get", "deployments", "-n", other],
        ):
            res = as_operator(operator, *args)
            assert res.code != 0 and "Forbidden" in res.stderr, (args, res.output)
            assert f'in the namespace "{other}"' in res.stderr
    finally:
        kube.run("delete", "namespace", other, "--wait=false")


def test_a_plaintext_key_is_refused_before_anything_is_registered(release: Release) -> None:
    """The program refuses a tlsKey that is not a secret, and the error does not repeat it."""
    stack = release.stack
    set_secret(stack, "tlsKey", release.key, kind="--plaintext")
    # Positive control for the ciphertext test: a plaintext key is visible in the stack file at once.
    plaintext_file = (stack.project_dir / f"Pulumi.{stack.name}.yaml").read_text()
    assert secret_needles(release)["key body line"] in plaintext_file
    try:
        res = stack.preview()
        assert res.code != 0
        assert (
            "tlsKey: (value not shown) is not allowed: a secret: "
            "set it with `pulumi config set --secret tlsKey`" in res.output
        )
        for what, needle in secret_needles(release).items():
            assert needle not in res.output, f"{what} in the error output"
    finally:
        set_secret(stack, "tlsKey", release.key)
