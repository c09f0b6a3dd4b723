"""Dedicated bench stacks: a private copy of a project, one stack on the local backend, driven by the CLI.

Every bench stack has its own project directory (so its Pulumi.<stack>.yaml never lands in the checkout),
its own stack name and its own namespace; `destroy` removes all three.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import Run, timed
from canary.gateway_api import ROUTE_RESOURCE
from devtools.pulumi_cli import REPO as REPO
from devtools.pulumi_cli import CliStack, unique
from devtools.pulumi_cli import changes as changes
from devtools.pulumi_cli import private_project as copy_project
from devtools.pulumi_cli import project_env as project_env

SCALE_PROJECT = REPO / "bench" / "projects" / "scale"
FLOOR_PROJECT = REPO / "bench" / "projects" / "floor"


LIGHT_PREFIX = (
    "import sys\n"
    f"sys.path.insert(0, {str(REPO)!r})\n"
    "import bench.experiments.light_k8s  # noqa: E402, F401  (bench experiment)\n"
)


def program_text(src: Path, light: bool = False) -> str:
    """`src`/__main__.py, with bench/experiments/light_k8s installed first when `light`."""
    text = (src / "__main__.py").read_text()
    return LIGHT_PREFIX + text if light else text


def private_project(src: Path, dst: Path, light: bool = False) -> Path:
    """A private copy of `src` (devtools.pulumi_cli.private_project), light_k8s installed when `light`."""
    return copy_project(dst, src, program_text(src, light))


class Stack(CliStack[Run]):
    """One stack of a project directory on the local file backend, every command timed (bench.measure)."""

    def __init__(self, project_dir: Path, name: str, env: dict[str, str]) -> None:
        super().__init__(project_dir, name, env, lambda argv, env, cwd: timed(argv, env, cwd))

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """One timed `pulumi` command on this stack."""
        return self.pulumi(*args, env=env)

    def up(self, *flags: str, env: dict[str, str] | None = None) -> Run:
        """`pulumi up --yes` plus `flags` (e.g. --skip-preview), checked."""
        return self.run("up", "--yes", *flags, env=env).check(f"pulumi up {' '.join(flags)} on {self.name}")

    def last_update(self) -> dict[str, Any]:
        """The newest entry of `pulumi stack history --json`."""
        return self.history("--page-size", "1")[0]


def kubectl(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"bench: kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


APP = "web"
STABLE_IMAGE = "registry.example/web:1.0.0"
CANARY_IMAGE = "registry.example/web:1.1.0"


@dataclass
class Release:
    """A dedicated stack of the product's own program (a private copy of Pulumi.yaml and __main__.py) in
    its own namespace, with a canary deployed: what the rollback and step benchmarks act on."""

    stack: Stack
    namespace: str

    @classmethod
    def create(cls, workdir: Path, env: dict[str, str], weight: str) -> tuple[Release, Run]:
        """Init the stack, set its config and deploy it at `weight` (returns the timed first `pulumi up`)."""
        name = unique("bench")
        stack = Stack(private_project(REPO, workdir / name), name, env).init()
        release = cls(stack, unique("gc-bench"))
        try:
            stack.set_config(
                {
                    "appName": APP,
                    "namespace": release.namespace,
                    "stableImage": STABLE_IMAGE,
                    "canaryImage": CANARY_IMAGE,
                    "stableReplicas": "1",
                    "canaryReplicas": "1",
                    "canaryWeight": weight,
                    # The default GatewayClass has no controller: nothing will ever accept the route.
                    "waitForGateway": "false",
                }
            )
            return release, stack.up("--skip-preview")
        except BaseException:
            stack.destroy()
            raise

    def use_program(self, light: bool) -> None:
        """Run the product's program as is, or with the light_k8s experiment (same state, no diff)."""
        (self.stack.project_dir / "__main__.py").write_text(program_text(REPO, light))

    def live_route(self) -> dict[str, Any]:
        out = kubectl(
            self.stack.env,
            "get",
            ROUTE_RESOURCE,
            APP,
            "-n",
            self.namespace,
            "-o",
            "json",
        )
        route: dict[str, Any] = json.loads(out)
        return route
