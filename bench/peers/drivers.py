"""The three tools driven through one scenario each, the way their users drive them (issue 26).

A driver sets its tool's baseline up (`prepare`: podinfo at the stable image, steady, no canary pod), starts
a release of a canary image the way a user does (`begin`), aborts it the way the tool's docs say (`abort`),
and says when the tool reached its end state (`outcome`, None while it works). `usage` is what the tool's
own processes cost in the meantime: the controller's process group for a peer, the CLI's process trees
(`pulumi`, its plugins, `canary`) for ours.

- gateway-canary: one stack of this project on the local backend (namespace `peer-gateway-canary`), the
  release `pulumi config set canaryImage X && pulumi up`, then `canary run --yes --promote` (the gate on
  the bed's Prometheus); abort: Ctrl-C to the run (SIGINT to its group), then `canary rollback --yes`.
- Flagger: `kubectl set image` on the target Deployment; abort: its `type: rollback` webhook answers 2xx
  (served here on loopback, `RollbackGate`), as the load tester's gate does in Flagger's docs.
- Argo Rollouts (with our stand-in Gateway API plugin): a JSON patch of the Rollout's image; abort: the
  status patch `kubectl argo rollouts abort` sends.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import threading
from pathlib import Path
from typing import Any, Protocol

import yaml

from bench.measure import GroupSampler, Run, Tracked
from bench.peers import manifests, scenario
from bench.peers.controllers import Controller, running
from bench.peers.kube import apply, get, kubectl, wait
from canary.names import route_name
from devtools.pulumi_cli import REPO, private_project, unique

OURS_NS = "peer-gateway-canary"


class Driver(Protocol):
    tool: str
    namespace: str
    route: str
    host: str
    gateway: str

    def prepare(self) -> None: ...
    def begin(self, scenario_name: str) -> None: ...
    def abort(self) -> None: ...
    def outcome(self) -> str | None: ...
    def usage(self) -> tuple[float, float]: ...
    def total(self) -> tuple[float, float]: ...
    def close(self) -> None: ...


def pods_gone(env: dict[str, str], ns: str) -> bool:
    return not kubectl(env, "get", "pods", "-n", ns, "-o", "name")


def clear(env: dict[str, str], ns: str, kinds: str) -> None:
    """Delete every object of `kinds` in `ns` (the Gateway stays: its Envoy and address are kept) and wait
    until no pod is left, so that a run starts from nothing of the one before."""
    kubectl(env, "delete", kinds, "--all", "-n", ns, "--wait=true", "--timeout=120s")
    wait(f"no pods left in {ns}", lambda: pods_gone(env, ns), 180)


def available(env: dict[str, str], name: str, ns: str, replicas: int = scenario.REPLICAS) -> bool:
    status = get(env, "deployment", name, ns).get("status", {})
    return bool(status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas)


def set_rollout_image(env: dict[str, str], ns: str, image: str) -> None:
    """A new revision of the bench's Rollout: a JSON patch of the one field (a merge patch would replace the
    whole containers list, a CRD having no strategic merge, and the new pods would lose their port and
    probe)."""
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
    kubectl(env, "patch", "rollout", manifests.APP, "-n", ns, "--type=json", "-p", json.dumps(patch))


def abort_rollout(env: dict[str, str], ns: str) -> None:
    """Argo's abort: the status patch `kubectl argo rollouts abort` sends."""
    body = json.dumps({"status": {"abort": True}})
    kubectl(
        env, "patch", "rollout", manifests.APP, "-n", ns, "--subresource=status", "--type=merge", "-p", body
    )


class RollbackGate:
    """Flagger's manual rollback, as its docs give it (the load tester's `/rollback/check`): a webhook of
    `type: rollback` that Flagger calls every tick; 2xx rolls the canary back. Served on loopback by the
    bench: closed (403) until `open()`."""

    def __init__(self, port: int) -> None:
        gate = self
        self.is_open = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(200 if gate.is_open else 403)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/rollback/check"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PeerDriver:
    """What Flagger's and Argo's drivers share: a controller's process group sampled while a release runs."""

    tool: str
    namespace: str
    route = manifests.APP
    gateway = manifests.GATEWAY

    def __init__(self, env: dict[str, str], controller: Controller) -> None:
        self.env = env
        pid = running(controller)
        if pid is None:
            raise SystemExit(f"peers: {controller.name} is not running (python -m bench.peers up)")
        self.sampler = GroupSampler(pid)
        self.whole = GroupSampler(pid).start()
        """The controller over the whole bench: it runs, and costs, while the other tools' runs go on."""

    def begin_usage(self) -> None:
        self.sampler = GroupSampler(self.sampler.pgid).start()

    def usage(self) -> tuple[float, float]:
        self.sampler.stop()
        return self.sampler.cpu_seconds, self.sampler.peak_mib

    def total(self) -> tuple[float, float]:
        self.whole.stop()
        return self.whole.cpu_seconds, self.whole.peak_mib

    def close(self) -> None:
        pass


class FlaggerDriver(PeerDriver):
    tool = scenario.FLAGGER

    def __init__(self, env: dict[str, str], controller: Controller, namespace: str, gate_port: int) -> None:
        super().__init__(env, controller)
        self.namespace, self.host = namespace, manifests.host("flagger")
        self.gate = RollbackGate(gate_port)

    def phase(self) -> str:
        return str(get(self.env, "canary", manifests.APP, self.namespace).get("status", {}).get("phase", ""))

    def prepare(self) -> None:
        self.gate.close()
        clear(self.env, self.namespace, "canaries.flagger.app,deployments,services,httproutes")
        apply(self.env, manifests.flagger_objects(self.namespace, self.gate.url))
        wait("Flagger's Canary Initialized", lambda: self.phase() == "Initialized")
        wait(
            "podinfo-primary Available",
            lambda: available(self.env, f"{manifests.APP}-primary", self.namespace),
        )

    def begin(self, scenario_name: str) -> None:
        self.begin_usage()
        image = scenario.canary_image(scenario_name)
        kubectl(
            self.env,
            "set",
            "image",
            f"deployment/{manifests.APP}",
            f"{manifests.APP}={image}",
            "-n",
            self.namespace,
        )

    def abort(self) -> None:
        self.gate.open()

    def outcome(self) -> str | None:
        phase = self.phase()
        return {"Succeeded": "promoted", "Failed": "rolled back"}.get(phase)

    def close(self) -> None:
        self.gate.stop()


class ArgoDriver(PeerDriver):
    tool = scenario.ARGO

    def __init__(self, env: dict[str, str], controller: Controller, namespace: str, prometheus: str) -> None:
        super().__init__(env, controller)
        self.namespace, self.host, self.prometheus = namespace, manifests.host("argo"), prometheus
        self.stable_hash = ""

    def status(self) -> dict[str, Any]:
        return dict(get(self.env, "rollout", manifests.APP, self.namespace).get("status", {}))

    def prepare(self) -> None:
        clear(
            self.env,
            self.namespace,
            "rollouts.argoproj.io,analysisruns.argoproj.io,analysistemplates.argoproj.io,services,httproutes",
        )
        apply(self.env, manifests.argo_objects(self.namespace, manifests.argo_steps(), self.prometheus))
        wait("Argo's Rollout Healthy", lambda: self.status().get("phase") == "Healthy")
        want = {f"{manifests.APP}-stable": 100, f"{manifests.APP}-canary": 0}
        wait(
            f"Argo's route at {want}",
            lambda: (
                manifests.backend_weights(get(self.env, "httproute", manifests.APP, self.namespace)) == want
            ),
        )
        self.stable_hash = str(self.status().get("stableRS", ""))

    def begin(self, scenario_name: str) -> None:
        self.begin_usage()
        set_rollout_image(self.env, self.namespace, scenario.canary_image(scenario_name))

    def abort(self) -> None:
        abort_rollout(self.env, self.namespace)

    def outcome(self) -> str | None:
        status = self.status()
        current = status.get("currentPodHash")
        if not current or current == self.stable_hash:
            return None  # the controller has not seen the new revision yet
        if status.get("abort"):
            return "aborted" if status.get("phase") == "Degraded" else None
        if status.get("phase") == "Healthy" and status.get("stableRS") == current:
            return "promoted"
        return None


class OursDriver:
    """gateway-canary: a stack of this project, driven by `pulumi` and the `canary` CLI as a user would."""

    tool = scenario.OURS

    def __init__(self, env: dict[str, str], workdir: Path, prometheus: str) -> None:
        self.env = env
        self.app = manifests.APP
        self.namespace = OURS_NS
        self.route = route_name(self.app)
        self.gateway = f"{self.app}-gateway"
        self.host = manifests.host("gateway-canary")
        self.stack = unique("peer-ours")
        self.project = private_project(workdir / self.stack)
        self.runs: list[Run] = []
        """The commands of the current release (from `begin`)."""
        self.every_run: list[Run] = []
        """Every command this driver ran (baselines included), for the whole bench's figure."""
        self._thread: threading.Thread | None = None
        self._current: Tracked | None = None
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._exit: int | None = None
        self._error = ""
        init = ["pulumi", "stack", "init", self.stack, "--non-interactive"]
        Tracked(init, self.env, self.project).wait(120).check("pulumi stack init")
        self.write_config(prometheus)

    def write_config(self, prometheus: str) -> None:
        """The stack's settings, written as the stack file (the same as `pulumi config set --path` each)."""
        analysis = {
            "prometheusUrl": prometheus,
            "interval": scenario.INTERVAL_SECONDS,
            "window": scenario.WINDOW_SECONDS,
            "minRequests": 1,
            "checksPerStep": 1,
            "successRate": {"min": scenario.SUCCESS_MIN_PERCENT, "maxDrop": None},
            "latencyP99": {"maxMs": scenario.P99_MAX_MS, "maxIncreaseMs": None},
            "failureLimit": scenario.FAILED_CHECKS - 1,
        }
        config = {
            "appName": self.app,
            "namespace": self.namespace,
            "stableImage": scenario.STABLE_IMAGE,
            "stableReplicas": scenario.REPLICAS,
            "canaryReplicas": 1,
            "canaryImage": "",
            "canaryWeight": 0,
            "canaryPlan": list(scenario.PLAN),
            "gatewayClassName": manifests.GATEWAY_CLASS,
            "waitForGateway": True,
            "hostnames": [self.host],
            "analysis": analysis,
        }
        doc = {"config": {f"gateway-canary:{k}": v for k, v in config.items()}}
        (self.project / f"Pulumi.{self.stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def pulumi(self, *args: str) -> Run:
        argv = ["pulumi", *args, "--stack", self.stack, "--non-interactive"]
        run = Tracked(argv, self.env, self.project).wait(900)
        self.every_run.append(run)
        return run

    def prepare(self) -> None:
        """Back to the stable image with no canary (a `pulumi up`), and no canary pod left."""
        for key, value in (
            ("stableImage", scenario.STABLE_IMAGE),
            ("canaryImage", ""),
            ("canaryWeight", "0"),
        ):
            self.pulumi("config", "set", key, value).check(f"config set {key}")
        self.pulumi("up", "--yes", "--skip-preview").check("pulumi up (baseline)")
        wait(
            "no canary pod",
            lambda: (
                not kubectl(
                    self.env,
                    "get",
                    "pods",
                    "-n",
                    self.namespace,
                    "-l",
                    "gateway-canary/track=canary",
                    "-o",
                    "name",
                )
            ),
        )
        self.runs, self._exit = [], None
        self._aborted.clear()

    def _track(self, argv: list[str], cwd: Path, session: bool = False) -> Run:
        with self._lock:
            self._current = Tracked(argv, self.env, cwd, new_session=session)
        run = self._current.wait(1800)
        self.runs.append(run)
        self.every_run.append(run)
        return run

    def _release(self, image: str) -> None:
        try:
            self._steps(image)
        except SystemExit as failed:  # a command failed: the run reports it as its outcome
            self._exit, self._error = -1, str(failed).splitlines()[0]

    def _steps(self, image: str) -> None:
        base = ["--stack", self.stack, "--non-interactive"]
        self._track(["pulumi", "config", "set", "canaryImage", image, *base], self.project).check()
        self._track(["pulumi", "up", "--yes", "--skip-preview", *base], self.project).check("deploy canary")
        canary = str(REPO / ".venv" / "bin" / "canary")
        where = ["--stack", self.stack, "--cwd", str(self.project)]
        run = self._track([canary, "run", "--yes", "--promote", *where], self.project, session=True)
        self._exit = run.code
        if self._aborted.is_set():
            rollback = self._track([canary, "rollback", "--yes", *where], self.project)
            self._exit = 100 + rollback.code  # 100: the rollback after an abort succeeded

    def begin(self, scenario_name: str) -> None:
        image = scenario.canary_image(scenario_name)
        self._thread = threading.Thread(target=self._release, args=(image,), daemon=True)
        self._thread.start()

    def abort(self) -> None:
        """Ctrl-C to `canary run` (SIGINT to its process group, as a terminal sends it); the release thread
        then runs `canary rollback --yes`."""
        self._aborted.set()
        with self._lock:
            current = self._current
        if current is not None and current.args[1:2] == ["run"]:
            current.interrupt(signal.SIGINT)

    def outcome(self) -> str | None:
        if self._thread is None or self._thread.is_alive():
            return None
        if self._error:
            return f"failed: {self._error}"
        return {0: "promoted", 1: "rolled back", 100: "aborted"}.get(self._exit or 0, f"exit {self._exit}")

    def usage(self) -> tuple[float, float]:
        return sum(r.cpu for r in self.runs), max((r.peak_total_mib for r in self.runs), default=0.0)

    def total(self) -> tuple[float, float]:
        runs = self.every_run
        return sum(r.cpu for r in runs), max((r.peak_total_mib for r in runs), default=0.0)

    def close(self) -> None:
        with contextlib.suppress(SystemExit):
            self.pulumi("destroy", "--yes", "--skip-preview").check("pulumi destroy")
            self.pulumi("stack", "rm", "--yes").check("pulumi stack rm")
