"""Drive the real Pulumi CLI and read the real apiserver, for the integration tests.

Nothing here mocks anything: `PulumiStack` runs the pinned `pulumi` binary against a local file backend, and
`Kube` runs `kubectl` against the cluster in KUBECONFIG. Each test gets its own stack and namespace, so tests
are independent and can be read one at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.ops.kube.kubectl import LiveReader
from canary.ops.kube.kubectl import Watch as KubeWatch
from canary.route_state import route_state
from devtools.pulumi_cli import NO_CHANGE, CliStack, private_project, unique
from devtools.pulumi_cli import REPO as REPO
from devtools.pulumi_cli import changes as changes
from devtools.pulumi_cli import project_env as project_env


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

    def check(self, what: str | None = None) -> Result:
        if self.code != 0:
            command = what or " ".join(self.args)
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
        """The live object, or None when the apiserver says it does not exist (the product's own reader)."""
        return LiveReader(self.env).get(kind, name, namespace)

    def apply(self, manifest: str) -> Result:
        """`kubectl apply -f -` of a YAML manifest (checked)."""
        return self.run("apply", "-f", "-", stdin=manifest).check()

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        res = self.run("get", kind, "-n", namespace, "-o", "json").check()
        return json.loads(res.stdout)["items"]  # type: ignore[no-any-return]


class PulumiStack(CliStack[Result]):
    """One stack of a project directory, driven through the CLI (devtools.pulumi_cli), each command's
    outcome a Result for assertion messages."""

    def __init__(self, project_dir: Path, name: str, env: dict[str, str]) -> None:
        super().__init__(project_dir, name, env, lambda argv, env, cwd: run(argv, env, cwd))

    def pulumi(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Result:
        return run(self.argv(*args), {**self.env, **(env or {})}, self.project_dir, timeout)

    def set_config_object(self, key: str, value: Any) -> None:
        self.pulumi("config", "set", "--path", key, json.dumps(value)).check()

    def up(self, message: str | None = None) -> Result:
        extra = ["--message", message] if message else []
        return self.pulumi("up", "--yes", "--skip-preview", *extra)

    def preview(self, *args: str) -> Result:
        return self.pulumi("preview", *args)

    def start_up(self) -> subprocess.Popen[str]:
        """`pulumi up` in the background, in its own session (so a kill of its group takes its plugins)."""
        return start_in_session(self.argv("up", "--yes", "--skip-preview"), self.env, self.project_dir)

    def history(self, *flags: str) -> list[dict[str, Any]]:
        """Updates, newest first, secrets shown (tests check what was recorded)."""
        return super().history("--show-secrets", *flags)


WAITING_FOR_PODS = "Waiting for app ReplicaSet to be available"
"""pulumi-kubernetes' status line while its Deployment await waits for the new ReplicaSet's pods."""
ROLLOUT_COMPLETE = "Deployment initialization complete"
"""pulumi-kubernetes' status line when its Deployment await concludes that the rollout is done."""


def planned_changes(stack: PulumiStack) -> list[tuple[str, str, tuple[str, ...]]]:
    """(operation, resource type, changed properties) of every step `pulumi preview --json` plans that
    changes something (reads and no-ops left out): what a reviewer of the update sees."""
    steps = json.loads(stack.preview("--json", "--diff").check().stdout).get("steps", [])
    return [
        (
            step["op"],
            step["urn"].split("::")[-2].split("$")[-1],
            tuple(sorted(step.get("detailedDiff") or {})),
        )
        for step in steps
        if step["op"] not in NO_CHANGE
    ]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, theirs...), read from /proc: what a kill of `pid`'s group can
    orphan (Pulumi starts its plugins in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_all(pids: list[int]) -> None:
    """SIGKILL each process still running (a pid gone already is fine)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_in_session(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """A command in the background in a session of its own (a signal to its group reaches its children, as a
    terminal's Ctrl-C does, and a kill of the group takes them), stdout and stderr together on one pipe, no
    terminal on stdin."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


class Running:
    """A command in the background, in its own session (so a signal to its group reaches its children, as a
    terminal's Ctrl-C does), whose output (stdout and stderr together) a thread reads line by line, so a
    test can wait for what the command says instead of guessing from the cluster."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], cwd: Path) -> Running:
        return cls(start_in_session(argv, env, cwd))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_for_line(self, *texts: str, timeout: float = 120) -> str | None:
        """The first line holding every one of `texts`, or None when the command ends first."""

        def holding(line: str) -> str | None:
            return line if all(text in line for text in texts) else None

        return self.wait_for(holding, timeout, f"a line holding {texts}")

    def wait_for(self, found: Callable[[str], str | None], timeout: float, what: str) -> str | None:
        """The first non-None `found(line)` of the output so far or to come, or None when the command ends
        first; `timeout` seconds without either fail the test, naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = self.proc.poll() is not None
            for line in list(self._lines):
                result = found(line)
                if result is not None:
                    return result
            if ended:
                self._reader.join(timeout=10)
                return None
            time.sleep(0.02)
        raise AssertionError(f"{timeout:.0f} s without {what}:\n{self.output}")

    def finish(self, timeout: float = 600) -> str:
        """Waits for the command to end; its whole output."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.output

    def interrupt(self, timeout: float = 300) -> str:
        """One Ctrl-C to the command's process group (as a terminal sends it), then finish."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        return self.finish(timeout)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


class RunningUpdate(Running):
    """A `pulumi up` in the background (PulumiStack.start_up)."""

    def __init__(self, stack: PulumiStack) -> None:
        super().__init__(stack.start_up())
        self.finished_before = 0
        """start_stuck_update: how many updates of the same intent ended (succeeded) before this one."""

    def wait_for_status(self, resource: str, *texts: str, timeout: float = 120) -> str | None:
        """The first of `texts` the engine prints on a line about `resource` (a Deployment's name), or None
        when the update ends first."""

        def status(line: str) -> str | None:
            if f"Deployment {resource} " not in line:
                return None
            return next((text for text in texts if text in line), None)

        return self.wait_for(status, timeout, f"any of {texts} for {resource}")


def start_stuck_update(
    stack: PulumiStack, deployment: str, config: dict[str, str], attempts: int = 3
) -> RunningUpdate:
    """`pulumi up` of `config`, whose canaryImage contains "never-ready" (the local cluster never readies
    its pods), returned once the provider says it waits for the pods of `deployment`: an update that stays
    stuck until rolloutTimeout.

    pulumi-kubernetes 4.25.0's Deployment await sometimes takes an event of the patched Deployment that the
    controller has not observed yet (its status still the previous rollout's: Available,
    NewReplicaSetAvailable, the old revision) for a finished rollout, and the update succeeds at once
    (docs/provider-notes.md). Such an update is let finish and the next never-ready image tried, up to
    `attempts` times (each one more entry in the stack's history)."""
    seen: list[str] = []
    for attempt in range(attempts):
        image = config["canaryImage"] + (f"-{attempt}" if attempt else "")
        stack.set_config({**config, "canaryImage": image})
        update = RunningUpdate(stack)
        status = update.wait_for_status(deployment, WAITING_FOR_PODS, ROLLOUT_COMPLETE)
        if status == WAITING_FOR_PODS:
            update.finished_before = attempt
            return update
        seen.append(update.finish())
        print(f"{deployment}: the provider took the rollout of {image} for done ({status}); trying again")
    raise AssertionError(f"no update stayed stuck in {attempts} tries:\n" + "\n".join(seen))


CANARY = str(REPO / ".venv" / "bin" / "canary")
"""The `canary` console script of the checkout's virtualenv."""


def canary_argv(stack: PulumiStack, *args: str, command: list[str] | None = None) -> list[str]:
    return [*(command or [CANARY]), *args, "--cwd", str(stack.project_dir), "--stack", stack.name]


def start_canary(stack: PulumiStack, *args: str) -> Running:
    """The CLI on `stack` in the background (Running), with no terminal on stdin."""
    return Running.start(canary_argv(stack, *args), stack.env, stack.project_dir)


def canary(stack: PulumiStack, *args: str, command: list[str] | None = None) -> Result:
    """Run the CLI on `stack`, with no terminal on stdin (so nothing can wait for an answer)."""
    argv = canary_argv(stack, *args, command=command)
    proc = subprocess.run(
        argv, env=stack.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


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
    """A private copy of the repo's own program (devtools.pulumi_cli.private_project)."""
    return private_project(dst)


NO_DATA_PLANE_CLASS = "gateway-canary"
"""The GatewayClass no controller claims (Pulumi.yaml's default): nothing writes route or Gateway status."""


def gateway_settings(config: dict[str, str]) -> dict[str, str]:
    """What a release on `config`'s GatewayClass needs: on the no-data-plane class nothing will ever accept
    the route, so `pulumi up` must not wait for the gateway's verdict (waitForGateway false)."""
    if config.get("gatewayClassName", NO_DATA_PLANE_CLASS) == NO_DATA_PLANE_CLASS:
        return {"waitForGateway": "false"}
    return {}


def set_in_stack_file(stack: PulumiStack, values: dict[str, Any]) -> None:
    """Objects (podTemplate, ...) written into Pulumi.<stack>.yaml, as a team keeps them under version control
    (`pulumi config set` takes one path at a time)."""
    path = Path(stack.project_dir) / f"Pulumi.{stack.name}.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    doc.setdefault("config", {}).update({f"gateway-canary:{key}": value for key, value in values.items()})
    path.write_text(yaml.safe_dump(doc))


def release_stack(env: dict[str, str], where: Path, prefix: str, config: dict[str, str]) -> PulumiStack:
    """A new stack `<prefix>-...` of the repo's program in `where/project`, with `config` set and nothing
    deployed. The namespace is `gc-<prefix>-...` unless `config` names one; on the no-data-plane class the
    update does not wait for a gateway verdict (gateway_settings)."""
    stack = PulumiStack(release_project(where / "project"), unique(prefix), env).init()
    stack.set_config({"namespace": unique(f"gc-{prefix}"), **gateway_settings(config), **config})
    return stack


class Watch:
    """Records every watch event of one resource kind in a namespace (canary.ops.kube.kubectl.Watch with
    events).

    Events are ordered by the objects' resourceVersion, which a single etcd hands out from one increasing
    revision counter; the API calls it opaque, and these tests use it only as an ordering witness on the
    local cluster.
    """

    def __init__(self, env: dict[str, str], kind: str, namespace: str) -> None:
        self._watch = KubeWatch(kind, namespace, events=True, env=env)

    def stop(self) -> list[tuple[str, dict[str, Any]]]:
        return [(event["type"], event["object"]) for _, event in self._watch.stop()]


@contextmanager
def namespace_with(kube: Kube, prefix: str, items: Callable[[str], list[dict[str, Any]]]) -> Iterator[str]:
    """A new namespace `<prefix>-...` holding the objects `items(namespace)` (applied as one List), deleted
    afterwards."""
    ns = unique(prefix)
    kube.run("create", "namespace", ns).check()
    try:
        listed = {"kind": "List", "apiVersion": "v1", "items": items(ns)}
        kube.run("apply", "-n", ns, "-f", "-", stdin=json.dumps(listed)).check()
        yield ns
    finally:
        kube.run("delete", "namespace", ns, "--wait=false")


def shared_gateway(kube: Kube, namespace: str, allowed: str) -> None:
    """A platform team's Gateway `shared` of class eg in `namespace`; `allowed` (Same, All) says which
    namespaces' routes its listener admits."""
    kube.apply(
        f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: shared, namespace: {namespace}}}
spec:
  gatewayClassName: eg
  listeners:
  - {{name: http, protocol: HTTP, port: 80, allowedRoutes: {{namespaces: {{from: {allowed}}}}}}}
"""
    ).check()


def route_accepted_by(kube: Kube, resource: str, name: str, namespace: str, parents: int) -> dict[str, Any]:
    """The live route (`resource`: an HTTPRoute's or a GRPCRoute's), once each of its `parents` reports
    Accepted and ResolvedRefs True at its current generation, read back from the apiserver (bounded)."""

    def judged() -> dict[str, Any] | None:
        route = kube.get(resource, name, namespace) or {}
        generation = route.get("metadata", {}).get("generation")
        verdicts = [
            {c["type"]: (c["status"], c.get("observedGeneration")) for c in parent.get("conditions", [])}
            for parent in route.get("status", {}).get("parents", [])
        ]
        good = ("True", generation)
        ok = len(verdicts) == parents and all(
            v.get("Accepted") == good and v.get("ResolvedRefs") == good for v in verdicts
        )
        return route if ok else None

    wait_for(judged, 90, f"every one of {parents} parents to accept {resource} {namespace}/{name}")
    route = judged()
    assert route is not None
    return route


def before_rollback(seen: Sequence[Any], canary: str, calls: int = 100) -> bool:
    """A stream (its stamped results) ready for a rollback to be timed: `calls` made, the canary among the
    answers; waited for as an event rather than a fixed delay."""
    return len(seen) >= calls and any(s.result.version == canary for s in seen)
