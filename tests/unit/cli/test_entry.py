"""canary.cli.entry: what `canary rollback --yes` loads before its write, run in a process of its own.

The rule "import nothing heavy before the write" is held here once, on the entry's own steps (who acts, the
stack named and locked, the fast write up to the live route's read), instead of on each module they use. The
apiserver is a closed port on loopback: everything up to the route's read runs, the read itself fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from canary.gateway_api import ROUTE_TYPE
from tests.unit.helpers import CANARY, REPO

HEAVY = (
    "argparse",
    "dataclasses",
    "inspect",
    "getpass",
    "signal",
    "subprocess",
    "tempfile",
    "typing",
    "yaml",
    "pulumi",
    "grpc",
    "canary.ops.core.plan",
    "canary.ops.core.state",
    "canary.ops.core.history",
    "canary.ops.rollout",
)
"""Modules (and packages) the path to the write must not load: each costs milliseconds of a rollback whose
budget over `kubectl patch` is about 20 ms (docs/performance.md), or belongs after the write."""

RUN_FIRST_STEPS = """
import contextlib, json, sys, time
from canary.cli.entry import first_steps, rollback_namespace
args = rollback_namespace({"yes": True, "stack": "dev", "cwd": sys.argv[1]})
hold = contextlib.ExitStack()
problem = first_steps(args, hold, time.monotonic())
loaded = sorted(sys.modules)
hold.close()
print(json.dumps({"problem": f"{type(problem).__name__}: {problem}", "loaded": loaded}))
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def project(tmp_path: Path) -> dict[str, str]:
    """A project with stack dev in a local file backend whose state names the route web/shop, and a
    kubeconfig pointing at a closed port; the environment to run in."""
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    config = {"appName": "web", "namespace": "shop", "canaryImage": CANARY, "canaryWeight": "25"}
    (tmp_path / "Pulumi.dev.yaml").write_text(
        yaml.safe_dump({"config": {f"gateway-canary:{k}": v for k, v in config.items()}})
    )
    stacks = tmp_path / "backend" / ".pulumi" / "stacks" / "gateway-canary"
    stacks.mkdir(parents=True)
    route: dict[str, Any] = {
        "urn": "urn:pulumi:dev::gateway-canary::HTTPRoute::web",
        "type": ROUTE_TYPE,
        "outputs": {
            "metadata": {"namespace": "shop", "name": "web", "uid": "u-1"},
            "__fieldManager": "pulumi-kubernetes-test",
        },
    }
    stack = {"urn": "urn:stack", "type": "pulumi:pulumi:Stack", "outputs": {"routeName": "web"}}
    (stacks / "dev.json").write_text(json.dumps({"checkpoint": {"latest": {"resources": [stack, route]}}}))
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "closed",
        "contexts": [{"name": "closed", "context": {"cluster": "closed"}}],
        "clusters": [
            {
                "name": "closed",
                "cluster": {"server": f"https://127.0.0.1:{closed_port()}", "insecure-skip-tls-verify": True},
            }
        ],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "CANARY_", "KUBECONFIG"))},
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'backend'}",
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "CANARY_CACHE_DIR": str(tmp_path / "cache"),
        "CANARY_ACTOR": "tester",
        "PYTHONPATH": str(REPO),
    }


def first_steps(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", RUN_FIRST_STEPS, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


PROGRAM_BEFORE_THE_WRITE = ("canary.release", "canary.release.keys")
"""Of the program's modules, only how a config value is written as a string (the remembered rendering's
key)."""


def heavy_in(loaded: list[str]) -> list[str]:
    """The modules of `loaded` the path to the write must not load."""
    return [
        m
        for m in loaded
        if any(m == h or m.startswith(h + ".") for h in HEAVY)
        or (m.startswith("canary.release") and m not in PROGRAM_BEFORE_THE_WRITE)
    ]


def test_a_rollback_loads_nothing_heavy_before_its_write(tmp_path: Path) -> None:
    env = project(tmp_path)
    first = first_steps(tmp_path, env)  # renders the config and parses the YAML files, remembering both
    assert first["problem"].startswith("ClusterUnreachable"), first["problem"]
    assert "canary.release.routing" in first["loaded"], "the first run renders with the program's code"

    again = first_steps(tmp_path, env)
    assert again["problem"].startswith("ClusterUnreachable"), again["problem"]
    assert "canary.ops.fast.write" in again["loaded"] and "canary.ops.team.lock" in again["loaded"]
    assert heavy_in(again["loaded"]) == []
