"""The peers of the side-by-side bench (issue 26): Flagger and Argo Rollouts as host processes.

Each runs against the local apiserver with the bed's admin kubeconfig, in a namespace of its own, and drives
the bed's Envoy Gateway (class `eg`); Flagger reads the bed's Prometheus. Neither is installed in the cluster:
only their CRDs are (server-side: Argo's are 0.5-0.7 MB each), and only when the peers bench asks
(`apply_crds`), never at `cluster.sh up`, so `make test` neither needs nor waits for them.

Both bind their HTTP ports on every address (no flag to choose one), so each bed instance gets ports of its
own (`Ports`). Argo Rollouts reads its ConfigMap `argo-rollouts-config` (in POD_NAMESPACE) once, at start:
`plugin_config_map` must exist before `start`. It copies a `file://` plugin into `./plugin-bin/<org>/<name>`
of its working directory and runs it as a subprocess that inherits its environment (KUBECONFIG included), so
each controller runs in a directory of its own and in a session of its own, stopped as a process group.

The pure halves (command lines, environments, the plugin ConfigMap, the CRD file lists) are unit-tested;
`start`, `stop` and `apply_crds` act.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FLAGGER_CRDS = ("crd.yaml",)
"""Flagger's three CRDs (canaries, metrictemplates, alertproviders) in one file of its module zip
(artifacts/flagger/); it exits at start when any is missing."""
ARGO_CRDS = tuple(
    f"{name}-crd.yaml"
    for name in ("rollout", "analysis-template", "analysis-run", "cluster-analysis-template", "experiment")
)
"""Argo Rollouts' five CRDs (manifests/crds/ of its module zip): the controller waits for all their caches."""
PLUGIN_NAME = "gateway-canary/gatewayapi"
"""Our stand-in Gateway API traffic-router plugin (tools/argo-gatewayapi-plugin): its key in the ConfigMap and
in a Rollout's trafficRouting.plugins. Argo requires `<org>/<name>`."""
PLUGIN_LABEL = "with our stand-in Gateway API plugin"
"""Every Argo figure says so: upstream's plugin is not served here, ours only resembles it."""
ARGO_CONFIG_MAP = "argo-rollouts-config"
SOCKET_DIR_VARIABLE = "PLUGIN_UNIX_SOCKET_DIR"
"""go-plugin's EnvUnixSocketDir: where a plugin creates its socket."""
BASE_PORT = 31800
"""Instance I uses BASE_PORT + 10 I and up: Flagger +0, Argo healthz +1, Argo metrics +2, the bench's rollback
gate for Flagger +3 (on loopback)."""


_children: dict[int, subprocess.Popen[bytes]] = {}
"""The controllers this process started, kept so it can reap them (`stop`); the others are reaped by init."""


@dataclass(frozen=True)
class Ports:
    flagger: int
    argo_healthz: int
    argo_metrics: int
    flagger_rollback_gate: int


def ports(instance: int) -> Ports:
    base = BASE_PORT + 10 * instance
    return Ports(flagger=base, argo_healthz=base + 1, argo_metrics=base + 2, flagger_rollback_gate=base + 3)


@dataclass(frozen=True)
class Controller:
    """One host process: what to run, where, with which environment, and where it logs."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path


def crd_files(crd_dir: Path) -> dict[str, list[Path]]:
    """The CRD files per peer, as scripts/build-tools.sh links them under .tools/peer-crds/."""
    return {
        "flagger": [crd_dir / "flagger" / f for f in FLAGGER_CRDS],
        "argo-rollouts": [crd_dir / "argo-rollouts" / f for f in ARGO_CRDS],
    }


def flagger_command(binary: Path, kubeconfig: Path, prometheus: str, namespace: str, port: int) -> list[str]:
    """Flagger out of cluster. `-kubeconfig` is required: empty, it tries in-cluster config and ignores the
    KUBECONFIG variable. `-namespace` limits it to its peer namespace; leader election is off by default."""
    return [
        str(binary),
        f"-kubeconfig={kubeconfig}",
        "-mesh-provider=gatewayapi:v1",
        f"-metrics-server={prometheus}",
        f"-namespace={namespace}",
        f"-port={port}",
        "-log-level=info",
    ]


def argo_command(binary: Path, kubeconfig: Path, namespace: str, ports: Ports) -> list[str]:
    """Argo Rollouts' controller out of cluster, for one namespace, leader election off (on by default)."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--namespaced",
        f"--namespace={namespace}",
        f"--healthzPort={ports.argo_healthz}",
        f"--metricsPort={ports.argo_metrics}",
        "--loglevel=info",
    ]


def argo_env(base: dict[str, str], kubeconfig: Path, namespace: str, sockets: Path) -> dict[str, str]:
    """POD_NAMESPACE is where it reads its ConfigMap; KUBECONFIG reaches the plugin (go-plugin passes the
    controller's environment on). The plugin listens on a unix socket it creates in PLUGIN_UNIX_SOCKET_DIR
    (go-plugin; default /tmp) and that a stopped controller leaves behind: kept in the controller's folder."""
    return {
        **base,
        "KUBECONFIG": str(kubeconfig),
        "POD_NAMESPACE": namespace,
        SOCKET_DIR_VARIABLE: str(sockets),
    }


def plugin_config_map(namespace: str, plugin: Path) -> dict[str, Any]:
    """argo-rollouts-config with our plugin at a `file://` location (copied by the controller at start; a
    sha256 is checked only for http(s) locations)."""
    if not plugin.is_absolute():
        raise ValueError(f"the plugin location must be absolute: {plugin}")
    plugins = [{"name": PLUGIN_NAME, "location": f"file://{plugin}"}]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": ARGO_CONFIG_MAP, "namespace": namespace},
        "data": {"trafficRouterPlugins": yaml.safe_dump(plugins, sort_keys=False)},
    }


def rollout_plugin(route: str, namespace: str) -> dict[str, Any]:
    """A Rollout's `trafficRouting` for our plugin: upstream's config shape (`httpRoute`, `namespace`)."""
    return {"plugins": {PLUGIN_NAME: {"httpRoute": route, "namespace": namespace}}}


def apply_crds(kubectl: str, files: list[Path], env: dict[str, str]) -> None:
    """Server-side apply (Argo's CRDs are too large for the client-side annotation), then wait Established."""
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"CRD files missing (run `make peers-tools`): {', '.join(missing)}")
    args = [arg for f in files for arg in ("-f", str(f))]
    subprocess.run([kubectl, "apply", "--server-side", "--force-conflicts", *args], env=env, check=True)
    subprocess.run(
        [kubectl, "wait", "--for=condition=Established", "--timeout=60s", *args], env=env, check=True
    )


def pid_file(controller: Controller) -> Path:
    return controller.cwd / "pid"


def start(controller: Controller) -> int:
    """Start it in a session of its own (its plugin subprocess goes with its group), logging to its file."""
    controller.cwd.mkdir(parents=True, exist_ok=True)
    if SOCKET_DIR_VARIABLE in controller.env:
        Path(controller.env[SOCKET_DIR_VARIABLE]).mkdir(parents=True, exist_ok=True)
    with controller.log.open("ab") as log:
        process = subprocess.Popen(
            controller.argv,
            cwd=controller.cwd,
            env=controller.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[process.pid] = process
    pid_file(controller).write_text(f"{process.pid}\n")
    return process.pid


def running(controller: Controller) -> int | None:
    """Its pid, when the process its pid file names is alive and runs its binary."""
    try:
        pid = int(pid_file(controller).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if cmdline.split(b"\0")[0] == controller.argv[0].encode() else None


def stop(controller: Controller, grace: float = 10.0) -> bool:
    """SIGTERM to its process group, SIGKILL after `grace` seconds, and to whatever of the group outlives its
    leader; True when something was running."""
    pid = running(controller)
    if pid is None:
        pid_file(controller).unlink(missing_ok=True)
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
            if pid in _children:
                _children[pid].poll()  # our own child: reap it, or it stays a zombie in /proc
        if not Path(f"/proc/{pid}").exists():
            break
    with contextlib.suppress(ProcessLookupError):  # what is left of its group (Argo's plugin subprocess)
        os.killpg(pid, signal.SIGKILL)
    _children.pop(pid, None)
    pid_file(controller).unlink(missing_ok=True)
    return True
