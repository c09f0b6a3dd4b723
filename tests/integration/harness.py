"""Drive the real Pulumi CLI and read the real apiserver, for the integration tests.

Nothing here mocks anything: `PulumiStack` runs the pinned `pulumi` binary against a local file backend, and
`Kube` runs `kubectl` against the cluster in KUBECONFIG. Each test gets its own stack and namespace, so tests
are independent and can be read one at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary.live import json_stream, route_state

REPO = Path(__file__).resolve().parents[2]
ROUTE = "httproute.gateway.networking.k8s.io"


def project_env() -> dict[str, str]:
    """The environment of scripts/env.sh (toolchain on PATH, local backend, offline Pulumi), read from the
    script itself so the tests and the Makefile can never disagree."""
    out = subprocess.run(
        ["bash", "-c", "source scripts/env.sh && env -0"],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={**os.environ},
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return env


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Result:
    """A finished command: its exit code and output, kept for assertion messages."""

    args: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def check(self) -> Result:
        if self.code != 0:
            command = " ".join(self.args)
            raise AssertionError(
                f"{command} exited {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
            )
        return self


def run(args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 600) -> Result:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Result(args, proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Kube:
    """kubectl against the test cluster, returning parsed JSON."""

    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None) -> Result:
        proc = subprocess.run(
            ["kubectl", *args], env=self.env, capture_output=True, text=True, input=stdin, timeout=120
        )
        return Result(["kubectl", *args], proc.returncode, proc.stdout, proc.stderr)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The live object, or None when the apiserver says it does not exist."""
        ns = ["-n", namespace] if namespace else []
        res = self.run("get", kind, name, *ns, "-o", "json")
        if res.code != 0:
            if "NotFound" in res.stderr:
                return None
            res.check()
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    def apply(self, manifest: str) -> Result:
        """`kubectl apply -f -` of a YAML manifest (checked)."""
        return self.run("apply", "-f", "-", stdin=manifest).check()

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        res = self.run("get", kind, "-n", namespace, "-o", "json").check()
        return json.loads(res.stdout)["items"]  # type: ignore[no-any-return]


@dataclass
class PulumiStack:
    """One stack of a Pulumi project directory, on the local file backend, driven through the CLI."""

    project_dir: Path
    name: str
    env: dict[str, str]
    created: bool = field(default=False, init=False)

    def pulumi(self, *args: str, timeout: float = 600) -> Result:
        return run(
            ["pulumi", *args, "--stack", self.name, "--non-interactive"], self.env, self.project_dir, timeout
        )

    def init(self) -> PulumiStack:
        run(["pulumi", "stack", "init", self.name, "--non-interactive"], self.env, self.project_dir).check()
        self.created = True
        return self

    def set_config(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.pulumi("config", "set", key, value).check()

    def set_config_object(self, key: str, value: Any) -> None:
        self.pulumi("config", "set", "--path", key, json.dumps(value)).check()

    def up(self, message: str | None = None) -> Result:
        extra = ["--message", message] if message else []
        return self.pulumi("up", "--yes", "--skip-preview", *extra)

    def preview(self, *args: str) -> Result:
        return self.pulumi("preview", *args)

    def start_up(self) -> subprocess.Popen[str]:
        """`pulumi up` in the background, in its own session (so a kill of its group takes its plugins)."""
        return subprocess.Popen(
            ["pulumi", "up", "--yes", "--skip-preview", "--stack", self.name, "--non-interactive"],
            cwd=self.project_dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.pulumi("stack", "output", "--json").check().stdout)  # type: ignore[no-any-return]

    def history(self) -> list[dict[str, Any]]:
        """Updates, newest first, as `pulumi stack history --json` prints them."""
        res = self.pulumi("stack", "history", "--json", "--show-secrets").check()
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    def destroy(self) -> None:
        if not self.created:
            return
        self.pulumi("destroy", "--yes", "--skip-preview", timeout=300)
        self.pulumi("stack", "rm", "--yes", "--force")


def wait_for(predicate: Callable[[], object], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def is_available(obj: dict[str, Any] | None) -> bool:
    """The object's `Available` condition is True (a Deployment the controller has finished rolling out)."""
    conditions = {c["type"]: c["status"] for c in (obj or {}).get("status", {}).get("conditions", [])}
    return conditions.get("Available") == "True"


def assert_stable_only(kube: Kube, app: str, ns: str, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the stable track is live: its Deployment Available on `image`, no canary Deployment, and the
    route's one rule sends to stable alone. Returns the stable Deployment and the route for more checks."""
    stable = kube.get("deployment", f"{app}-stable", ns)
    assert stable is not None and is_available(stable), stable
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert kube.get("deployment", f"{app}-canary", ns) is None
    route = kube.get(ROUTE, app, ns)
    assert route is not None
    assert [[r["name"] for r in rule["backendRefs"]] for rule in route["spec"]["rules"]] == [
        [f"{app}-stable"]
    ]
    return stable, route


def assert_converged(stack: PulumiStack, kube: Kube, app: str, canary_weight: int) -> None:
    """The live route has the weight, both Deployments are Available, a refreshing preview plans nothing."""
    ns = str(stack.outputs()["namespace"])
    route = kube.get(ROUTE, app, ns)
    assert route is not None
    assert route_state(route, app).canary_weight == canary_weight
    for track in ("stable", "canary"):
        dep = kube.get("deployment", f"{app}-{track}", ns)
        assert dep is not None and dep["status"].get("availableReplicas") == 1, (track, dep and dep["status"])
    stack.preview("--expect-no-changes", "--refresh").check()


def copy_project(src: Path, dst: Path) -> Path:
    """A private copy of a project directory, so stack config files of parallel tests never collide."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("Pulumi.*.yaml", "__pycache__"))
    return dst


def release_project(dst: Path) -> Path:
    """A private copy of the repo's own program (Pulumi.yaml + __main__.py) with the repo's virtualenv
    linked in, so a test's stack config never touches the checkout and tests can run side by side."""
    dst.mkdir(parents=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(REPO / name, dst / name)
    (dst / ".venv").symlink_to(REPO / ".venv")
    return dst


def release_stack(env: dict[str, str], where: Path, prefix: str, config: dict[str, str]) -> PulumiStack:
    """A new stack `<prefix>-...` of the repo's program in `where/project`, with `config` set and nothing
    deployed. The namespace is `gc-<prefix>-...` unless `config` names one."""
    stack = PulumiStack(release_project(where / "project"), unique(prefix), env).init()
    stack.set_config({"namespace": unique(f"gc-{prefix}"), **config})
    return stack


class Watch:
    """Records every watch event of one resource kind in a namespace, in a background `kubectl --watch`.

    Events are ordered by the objects' resourceVersion, which a single etcd hands out from one increasing
    revision counter; the API calls it opaque, and these tests use it only as an ordering witness on the
    local cluster.
    """

    def __init__(self, env: dict[str, str], kind: str, namespace: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._proc = subprocess.Popen(
            ["kubectl", "get", kind, "-n", namespace, "--watch", "--output-watch-events", "-o", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for event in json_stream(self._proc.stdout):
            self.events.append((event["type"], event["object"]))

    def stop(self) -> list[tuple[str, dict[str, Any]]]:
        self._proc.terminate()
        self._proc.wait(timeout=10)
        self._thread.join(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return self.events
