"""The data-plane supervisor: keeps one real Envoy per `eg` Gateway and one podinfo per Ready pod running.

Started by `scripts/cluster.sh up` (as root, in its own session), stopped by `down` with SIGTERM: it then
stops every process it started and removes every namespace and link (`net.sweep`). Every half second it lists
the envoy Deployments and Services Envoy Gateway manages and every pod, and reconciles:

- a Gateway's envoy Deployment appears: a namespace and links for a free slot, its ClusterIP routed into it,
  and Envoy started with the Deployment's bootstrap (`envoy`); it changes (args or address): recreated; it
  goes away: Envoy stopped and the namespace removed;
- a pod of a release starts (kwok gives it an IP, unready: `stages`): podinfo started on its IP and container
  port in the apps namespace (`apps`; a port named `grpc` gets podinfo's gRPC server); once every process
  of the pod accepts connections and the pod's own readiness probes pass (`probe_passes`: httpGet,
  tcpSocket and grpc), the pod's `apps.LISTENING` annotation is set and kwok makes it
  Ready; the pod goes away: its process is stopped;
- a process that exits is started again (with a back-off), and said so in the log.

`WORKDIR/state.json` says what runs: per Gateway its address, namespace and slot; per pod its address,
version, hooks and metrics port. `WORKDIR/prometheus-targets.json` lists the pods' metrics endpoints for
the bed's Prometheus (file_sd, `prometheus`), rewritten whenever a process starts or stops.
Logs: WORKDIR/supervisor.log (from cluster.sh), WORKDIR/gateways/*/envoy.log,
WORKDIR/pods/*.log.

It also makes Envoy Gateway's namespace and WORKDIR/eg-kubeconfig (the apiserver as seen from there), in which
scripts/cluster.sh then starts Envoy Gateway, and likewise Traefik's (WORKDIR/traefik-kubeconfig; GatewayClass
`traefik`, `traefik`); the final sweep stops both with everything else.

Usage: python -m scripts.testbed.supervisor run --kubeconfig K --workdir D --certs D --bin D [--instance I]
       python -m scripts.testbed.supervisor sweep [--instance I]   (leftovers of a killed supervisor)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.testbed import apps, envoy, net, plan, prometheus
from scripts.testbed.kube import Kube

EG_NAMESPACE = apps.EG_NAMESPACE
GATEWAY_NAME = "gateway.envoyproxy.io/owning-gateway-name"
GATEWAY_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"
METRICS_PORTS = range(20000, 30000)
MAX_APPS = 400
INTERVAL = 0.25
GRACE = 3.0
TARGETS_FILE = "prometheus-targets.json"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Proc:
    """A child process in a namespace, restarted with a back-off when it exits."""

    name: str
    command: list[str]
    netns: str
    env: dict[str, str]
    logfile: Path
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started: float = 0.0
    """time.monotonic() of the last start."""

    def start(self) -> None:
        self.started = time.monotonic()
        with open(self.logfile, "ab") as out:
            self.popen = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "--", *self.command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env},
                start_new_session=True,
            )

    def check(self) -> None:
        """Start it again when it has exited and its back-off has passed."""
        if self.popen is not None and self.popen.poll() is None:
            return
        now = time.monotonic()
        if self.popen is not None:
            self.restarts += 1
            self.next_start = now + min(10.0, 0.5 * 2 ** min(self.restarts, 5))
            log(
                f"{self.name} exited with {self.popen.returncode} "
                f"(restart {self.restarts}; log {self.logfile})"
            )
            self.popen = None
        if now >= self.next_start:
            self.start()

    def stop(self, grace: float = 3.0) -> None:
        stop_all([self], grace)


def listens(ip: str, port: int) -> bool:
    """Whether something accepts a TCP connection on ip:port (the root namespace routes the pod CIDR into
    the apps namespace: `net.setup_apps`)."""
    try:
        with socket.create_connection((ip, port), timeout=0.2):
            return True
    except OSError:
        return False


def probe_passes(ip: str, check: apps.ReadinessCheck) -> bool:
    """Whether one readiness check of a pod passes on its address, as a kubelet's prober decides: an HTTP
    status from 200 to 399, a TCP connection accepted, or a gRPC health check answering SERVING (the
    kubelet's grpc probe: grpc.health.v1 Check over plaintext HTTP/2; 1 s each, as the probe's default
    timeout)."""
    if check.grpc_service is not None:
        from canary.ops.verify import grpc_versions

        address = f"ipv6:[{ip}]:{check.port}" if ":" in ip else f"ipv4:{ip}:{check.port}"
        status = grpc_versions.health(address, check.grpc_service, 1.0, "kube-probe/gateway-canary-bed")
        return status == grpc_versions.SERVING
    if check.path is None:
        return listens(ip, check.port)
    import http.client

    conn = http.client.HTTPConnection(ip, check.port, timeout=1.0)
    try:
        conn.request("GET", check.path, headers={"User-Agent": "kube-probe/gateway-canary-bed"})
        return 200 <= conn.getresponse().status < 400
    except OSError:
        return False
    finally:
        conn.close()


def stop_all(procs: list[Proc], grace: float = 3.0) -> None:
    """SIGTERM them all at once, then SIGKILL whatever still runs after `grace` seconds."""
    running = [p.popen for p in procs if p.popen is not None and p.popen.poll() is None]
    for popen in running:
        popen.terminate()
    deadline = time.monotonic() + grace
    for popen in running:
        try:
            popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)


@dataclass(frozen=True)
class Draining:
    """A podinfo sent SIGTERM: SIGKILL after `deadline` (time.monotonic()). kwok hands a gone pod's IP to the
    next pod at once, and its metrics port stays taken until the process is gone."""

    proc: Proc
    deadline: float
    address: str
    """ip:port of its app server."""
    metrics: int


@dataclass
class Gateway:
    key: str
    gateway: str
    address: str
    slot: int
    digest: str
    proc: Proc


@dataclass
class Supervisor:
    kube: Kube
    plan: plan.Plan
    workdir: Path
    certs: Path
    bin: Path
    gateways: dict[str, Gateway] = field(default_factory=dict)
    pods: dict[tuple[str, int], tuple[apps.App, int, Proc]] = field(default_factory=dict)
    # Processes sent SIGTERM, with the time after which they get SIGKILL: a stop never blocks the loop, so a
    # newly Ready pod gets its process within one INTERVAL even while others shut down.
    draining: list[Draining] = field(default_factory=list)
    stopping: bool = False
    # Envoy Deployment name -> the last error starting it, so a failure that repeats is logged once.
    start_failures: dict[str, str] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)
    """Uids of the pods whose LISTENING annotation this supervisor set (pruned as pods go)."""

    # -- gateways ---------------------------------------------------------------------------------------
    def desired_gateways(self) -> dict[str, tuple[str, str, list[str]]]:
        """Envoy Deployment name -> (Gateway ns/name, its ClusterIP, the envoy container's args)."""
        services = {}
        for svc in self.kube.items(f"/api/v1/namespaces/{EG_NAMESPACE}/services"):
            labels = svc["metadata"].get("labels") or {}
            if GATEWAY_NAME in labels and svc["spec"].get("clusterIP") not in (None, "", "None"):
                services[(labels.get(GATEWAY_NAMESPACE), labels[GATEWAY_NAME])] = svc["spec"]["clusterIP"]
        desired = {}
        for dep in self.kube.items(f"/apis/apps/v1/namespaces/{EG_NAMESPACE}/deployments"):
            labels = dep["metadata"].get("labels") or {}
            owner = (labels.get(GATEWAY_NAMESPACE), labels.get(GATEWAY_NAME))
            containers = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}
            if owner not in services or "envoy" not in containers:
                continue
            address = services[owner]
            if ipaddress.ip_address(address) not in ipaddress.ip_network(self.plan.service_cidr):
                log(f"skipping {dep['metadata']['name']}: address {address} outside {self.plan.service_cidr}")
                continue
            desired[dep["metadata"]["name"]] = (
                f"{owner[0]}/{owner[1]}",
                address,
                containers["envoy"]["args"],
            )
        return desired

    def start_gateway(self, key: str, gateway: str, address: str, args: list[str], digest: str) -> None:
        used = {g.slot for g in self.gateways.values()}
        slot = next(s for s in range(1, plan.MAX_SLOTS + 1) if s not in used)
        workdir = self.workdir / "gateways" / key
        workdir.mkdir(parents=True, exist_ok=True)
        xds = self.plan.gateway_eg_link(slot).inner_ip
        try:
            bootstrap = envoy.write_bootstrap(workdir, args, xds, self.certs, key, EG_NAMESPACE)
            net.setup_gateway(self.plan, slot, address)
            command = envoy.command(str(self.bin / "envoy"), args, bootstrap, key, EG_NAMESPACE)
            proc = Proc(f"envoy {gateway}", command, self.plan.gateway_netns(slot), {}, workdir / "envoy.log")
            proc.start()
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError):
            # Half a namespace would make every retry fail on "File exists": remove what was made.
            net.teardown_gateway(self.plan, slot)
            raise
        self.gateways[key] = Gateway(key, gateway, address, slot, digest, proc)
        log(f"gateway {gateway}: Envoy in {self.plan.gateway_netns(slot)}, address {address}")

    def stop_gateway(self, key: str) -> None:
        gw = self.gateways.pop(key)
        gw.proc.stop()
        net.teardown_gateway(self.plan, gw.slot)
        log(f"gateway {gw.gateway}: Envoy stopped, {self.plan.gateway_netns(gw.slot)} removed")

    def reconcile_gateways(self) -> None:
        desired = self.desired_gateways()
        for key in [k for k in self.gateways if k not in desired]:
            self.stop_gateway(key)
        for key, (gateway, address, args) in desired.items():
            digest = hashlib.sha256(json.dumps([address, args]).encode()).hexdigest()[:16]
            current = self.gateways.get(key)
            if current and current.digest != digest:
                log(f"gateway {gateway}: Envoy Gateway changed its Deployment or address; recreating")
                self.stop_gateway(key)
                current = None
            if current is not None:
                current.proc.check()
                continue
            try:
                self.start_gateway(key, gateway, address, args, digest)
            except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as err:
                # One Gateway's failure must not hold back the others (each is retried every INTERVAL).
                if self.start_failures.get(key) != str(err):
                    log(f"gateway {gateway}: could not start its Envoy (retrying): {err}")
                self.start_failures[key] = str(err)
            else:
                self.start_failures.pop(key, None)

    # -- apps -------------------------------------------------------------------------------------------
    def desired_apps(self, pods: list[dict[str, Any]]) -> dict[tuple[str, int], apps.App]:
        cidr = ipaddress.ip_network(self.plan.pod_cidr)
        desired = {}
        for pod in pods:
            for app in apps.apps_of(pod):
                if ipaddress.ip_address(app.ip) in cidr:
                    desired[(pod["metadata"]["uid"], app.port)] = app
        return desired

    def reconcile_apps(self) -> None:
        pods = self.kube.items("/api/v1/pods")
        desired = self.desired_apps(pods)
        # New pods first, then the gone ones: podinfo's SIGTERM waits 3 s, and a rollout waits for its new
        # pods (Ready once they listen: `announce`), so stopping first would hold every rollout back.
        # kwok hands a gone pod's IP to the next pod at once, though: a process still holding the address
        # (gone this round, or draining) is killed first, or the new podinfo fails to bind and waits out
        # its restart back-off (seen in CI: "bind: address already in use").
        gone = [
            self.pods.pop(k) for k in [k for k, (app, _, _) in self.pods.items() if desired.get(k) != app]
        ]
        # podinfo serves metrics on every address of the apps namespace (":port", pkg/api/http/server.go)
        # and ignores a failed bind: a port a draining process still holds would leave the new pod with no
        # metrics at all (seen in CI: the canary's scrape refused while it served its share).
        used = {port for _, port, _ in [*self.pods.values(), *gone]}
        used |= {d.metrics for d in self.draining}
        free = (p for p in METRICS_PORTS if p not in used)
        for key, app in desired.items():
            if key in self.pods:
                self.pods[key][2].check()
                continue
            if len(self.pods) >= MAX_APPS:
                log(f"pod {app.namespace}/{app.pod}: not started, {MAX_APPS} podinfo processes already run")
                continue
            self.free_address(f"{app.ip}:{app.port}", gone)
            metrics = next(free)
            logfile = self.workdir / "pods" / f"{app.namespace}_{app.pod}_{app.port}.log"
            proc = Proc(
                f"podinfo {app.namespace}/{app.pod}",
                app.command(str(self.bin / "podinfo"), metrics),
                self.plan.apps_netns,
                app.env(),
                logfile,
            )
            proc.start()
            self.pods[key] = (app, metrics, proc)
            hooks = f" hooks {','.join(app.hooks)}" if app.hooks else ""
            grpc = f" (gRPC; HTTP on {app.http_port})" if app.grpc else ""
            log(f"pod {app.namespace}/{app.pod}: podinfo {app.version} on {app.ip}:{app.port}{grpc}{hooks}")
        for app, metrics, proc in gone:
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.terminate()
                ends = time.monotonic() + GRACE
                self.draining.append(Draining(proc, ends, f"{app.ip}:{app.port}", metrics))
        for app, _, _ in gone:
            log(f"pod {app.namespace}/{app.pod}: podinfo on {app.ip}:{app.port} stopped")
        self.announce(pods)

    def announce(self, pods: list[dict[str, Any]]) -> None:
        """Set LISTENING on each started, unready release pod whose processes all accept connections (a
        pod without ports at once; a late-ready one LATE_SECONDS later): kwok's `pod-listening` Stage then
        makes it Ready."""
        by_pod: dict[str, list[tuple[apps.App, Proc]]] = {}
        for (uid, _), (app, _, proc) in self.pods.items():
            by_pod.setdefault(uid, []).append((app, proc))
        for pod in pods:
            meta = pod["metadata"]
            uid = meta["uid"]
            if (
                uid in self.announced
                or not apps.gated(pod)
                or not apps.running(pod)
                or apps.ready(pod)
                or (meta.get("annotations") or {}).get(apps.LISTENING) == "true"
            ):
                continue
            want = apps.apps_of(pod)
            have = by_pod.get(uid, [])
            # Our own processes, alive, and listening: a podinfo that failed to bind (its address still held
            # by another process) has exited by the next round, and must not pass for the pod on a connect.
            alive = all(p.popen is not None and p.popen.poll() is None for _, p in have)
            if len(have) != len(want) or not alive or not all(listens(a.ip, a.port) for a, _ in have):
                continue
            # The pod's own readiness probes, asked as a kubelet would (`apps.readiness_checks`).
            if not all(probe_passes(pod["status"]["podIP"], check) for check in apps.readiness_checks(pod)):
                continue
            if apps.late(pod) and any(time.monotonic() - p.started < apps.LATE_SECONDS for _, p in have):
                continue
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            patch = {"metadata": {"annotations": {apps.LISTENING: "true"}}}
            if self.kube.merge_patch(path, patch) is not None:
                log(f"pod {meta['namespace']}/{meta['name']}: listening, {apps.LISTENING} set")
            self.announced.add(uid)
        self.announced &= {p["metadata"]["uid"] for p in pods}

    def free_address(self, address: str, gone: list[tuple[apps.App, int, Proc]]) -> None:
        """SIGKILL (and wait for) whatever old podinfo still listens on `address`: its pod is gone."""
        holders = [p for a, _, p in gone if f"{a.ip}:{a.port}" == address]
        holders += [d.proc for d in self.draining if d.address == address]
        for proc in holders:
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(5)
                log(f"{proc.name}: killed, its address {address} went to a new pod")

    def reap(self) -> None:
        """Forget drained processes; SIGKILL those past their grace."""
        left = []
        for drained in self.draining:
            popen = drained.proc.popen
            assert popen is not None
            if popen.poll() is not None:
                continue
            if time.monotonic() > drained.deadline:
                popen.kill()
            left.append(drained)
        self.draining = left

    # -- state and lifecycle ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "traefik": {
                "address": self.plan.traefik_address,
                "netns": self.plan.traefik_netns,
                "link": self.plan.traefik_link().outer,
            },
            "gateways": [
                {
                    "gateway": g.gateway,
                    "deployment": g.key,
                    "address": g.address,
                    "netns": self.plan.gateway_netns(g.slot),
                    "link": self.plan.gateway_link(g.slot).outer,
                    "admin": "127.0.0.1:19000 inside netns",
                    "pid": g.proc.popen.pid if g.proc.popen else None,
                }
                for g in self.gateways.values()
            ],
            "pods": [
                {
                    "namespace": a.namespace,
                    "pod": a.pod,
                    "address": f"{a.ip}:{a.port}",
                    "metrics": f"{a.ip}:{m}",
                    "version": a.version,
                    "hooks": list(a.hooks),
                    "pid": p.popen.pid if p.popen else None,
                }
                for a, m, p in self.pods.values()
            ],
        }

    def write_targets(self, last: str) -> str:
        pods = [(app, metrics) for app, metrics, _ in self.pods.values()]
        return prometheus.write_targets(self.workdir / TARGETS_FILE, pods, last)

    def write_state(self, last: str) -> str:
        text = json.dumps(self.state(), indent=1, sort_keys=True)
        if text != last:
            tmp = self.workdir / "state.json.tmp"
            tmp.write_text(text)
            tmp.replace(self.workdir / "state.json")
        return text

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        for what in net.sweep(self.plan):
            log(f"removed leftover {what}")
        (self.workdir / "pods").mkdir(parents=True, exist_ok=True)
        net.setup_apps(self.plan)
        log(f"apps namespace {self.plan.apps_netns}: {self.plan.pod_cidr} and {self.plan.node_cidr} local")
        net.setup_eg(self.plan)
        self.kube.write_kubeconfig(self.workdir / "eg-kubeconfig", self.plan.eg_link().outer_ip)
        log(f"Envoy Gateway's namespace {self.plan.eg_netns}: apiserver at {self.plan.eg_link().outer_ip}")
        net.setup_traefik(self.plan)
        self.kube.write_kubeconfig(self.workdir / "traefik-kubeconfig", self.plan.traefik_link().outer_ip)
        log(
            f"Traefik's namespace {self.plan.traefik_netns}: address {self.plan.traefik_address}, "
            f"apiserver at {self.plan.traefik_link().outer_ip}"
        )
        last, failing = "", set[str]()
        targets = self.write_targets("")
        try:
            while not self.stopping:
                # Each step on its own: apps failing (the apiserver gone, say) must not stop the Gateways'
                # reconcile, and nothing may end the loop but a signal: a dead supervisor strands every test.
                for step in (self.reconcile_apps, self.reconcile_gateways, self.reap):
                    try:
                        step()  # apps first: a new pod's process is what a rollout waits for
                    except Exception as err:  # logged, retried every INTERVAL
                        if step.__name__ not in failing:
                            log(f"{step.__name__} failed (retrying): {type(err).__name__}: {err}")
                        failing.add(step.__name__)
                    else:
                        if step.__name__ in failing:
                            log(f"{step.__name__} works again")
                        failing.discard(step.__name__)
                targets = self.write_targets(targets)
                last = self.write_state(last)
                time.sleep(INTERVAL)
        finally:
            log("stopping")
            procs = [proc for _, _, proc in self.pods.values()] + [g.proc for g in self.gateways.values()]
            stop_all(procs + [d.proc for d in self.draining])
            for key in list(self.gateways):
                self.stop_gateway(key)
            self.pods.clear()
            self.write_targets(targets)
            self.write_state(last)
            for what in net.sweep(self.plan):
                log(f"removed {what}")
            log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--kubeconfig", required=True)
    run.add_argument("--workdir", required=True, type=Path)
    run.add_argument("--certs", required=True, type=Path, help="the envoy client certs of certgen")
    run.add_argument("--bin", required=True, type=Path, help="folder with kubectl, envoy and podinfo")
    run.add_argument("--instance", type=int, default=0, help="data-plane instance (scripts/testbed/plan.py)")
    sweep = sub.add_parser("sweep")
    sweep.add_argument("--instance", type=int, default=0)
    args = parser.parse_args(argv)
    bed = plan.load(args.instance)
    if args.command == "sweep":
        for what in net.sweep(bed):
            print(f"removed {what}")
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    kube = Kube(str(args.bin / "kubectl"), args.kubeconfig, args.workdir / "secrets")
    Supervisor(kube, bed, args.workdir, args.certs, args.bin).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
