"""Flagger and Argo Rollouts beside the bed: their namespaces, command lines for this bed instance, and
starting, stopping and listing them (`python -m bench.peers up|down|status`; `make bench-peers` starts them
too). Issue 26."""

from __future__ import annotations

import functools
import sys
import urllib.request
from pathlib import Path

from bench.peers import manifests
from bench.peers.controllers import (
    Controller,
    apply_crds,
    argo_command,
    argo_env,
    crd_files,
    flagger_command,
    plugin_config_map,
    ports,
    running,
    start,
    stop,
)
from bench.peers.kube import apply, wait
from bench.traffic import prometheus_url
from devtools.pulumi_cli import REPO

FLAGGER_NS = "peer-flagger"
ARGO_NS = "peer-argo"
NAMESPACES = {"flagger": FLAGGER_NS, "argo-rollouts": ARGO_NS}


def cluster_dir(env: dict[str, str]) -> Path:
    return Path(env["KUBECONFIG"]).parent


def instance(env: dict[str, str]) -> int:
    path = cluster_dir(env) / "dataplane-instance"
    return int(path.read_text().strip()) if path.exists() else 0


def controllers(env: dict[str, str], prometheus: str = "") -> dict[str, Controller]:
    kubeconfig, bin_dir = Path(env["KUBECONFIG"]), REPO / ".tools" / "bin"
    state, p = cluster_dir(env) / "peers", ports(instance(env))
    return {
        "flagger": Controller(
            "flagger",
            flagger_command(bin_dir / "flagger", kubeconfig, prometheus, FLAGGER_NS, p.flagger),
            env,
            state / "flagger",
            state / "flagger" / "flagger.log",
        ),
        "argo-rollouts": Controller(
            "argo-rollouts",
            argo_command(bin_dir / "rollouts-controller", kubeconfig, ARGO_NS, p),
            argo_env(env, kubeconfig, ARGO_NS, state / "argo-rollouts" / "sockets"),
            state / "argo-rollouts",
            state / "argo-rollouts" / "rollouts-controller.log",
        ),
    }


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def up(env: dict[str, str], peers: list[str]) -> None:
    files = crd_files(REPO / ".tools" / "peer-crds")
    apply_crds("kubectl", [f for peer in peers for f in files[peer]], env)
    apply(env, [manifests.namespace(NAMESPACES[peer]) for peer in peers])
    if "argo-rollouts" in peers:
        plugin = (REPO / ".tools" / "bin" / "argo-gatewayapi-plugin").resolve()
        apply(env, [plugin_config_map(ARGO_NS, plugin)])
    p = ports(instance(env))
    for name, controller in controllers(env, prometheus_url()).items():
        if name not in peers:
            continue
        if running(controller):
            print(f"{name}: already running", file=sys.stderr)
            continue
        pid = start(controller)
        port = p.flagger if name == "flagger" else p.argo_healthz
        took = wait(
            f"{name} /healthz on :{port} (log: {controller.log})", functools.partial(healthy, port), 60
        )
        print(f"{name}: pid {pid}, /healthz answered after {took:.1f} s, log {controller.log}")


def down(env: dict[str, str], peers: list[str]) -> None:
    for name, controller in controllers(env).items():
        if name in peers:
            print(f"{name}: {'stopped' if stop(controller) else 'not running'}")


def status(env: dict[str, str], peers: list[str]) -> None:
    for name, controller in controllers(env).items():
        pid = running(controller)
        print(f"{name}: {f'running, pid {pid}' if pid else 'not running'}")
