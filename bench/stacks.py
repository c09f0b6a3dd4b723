"""Dedicated bench stacks: a private copy of a project, one stack on the local backend, driven by the CLI.

Every bench stack has its own project directory (so its Pulumi.<stack>.yaml never lands in the checkout),
its own stack name and its own namespace; `destroy` removes all three.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Run, timed

REPO = Path(__file__).resolve().parents[1]
SCALE_PROJECT = REPO / "bench" / "projects" / "scale"
FLOOR_PROJECT = REPO / "bench" / "projects" / "floor"


def project_env() -> dict[str, str]:
    """The environment of scripts/env.sh (toolchain on PATH, local backend, offline Pulumi), read from the
    script itself, so `python -m bench` works with or without the Makefile."""
    out = subprocess.run(
        ["bash", "-c", "source scripts/env.sh && env -0"],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={**os.environ},
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


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
    """Pulumi.yaml and __main__.py of `src` in `dst`, with the repo's virtualenv linked in as .venv."""
    dst.mkdir(parents=True)
    shutil.copy(src / "Pulumi.yaml", dst / "Pulumi.yaml")
    (dst / "__main__.py").write_text(program_text(src, light))
    (dst / ".venv").symlink_to(REPO / ".venv")
    return dst


@dataclass
class Stack:
    """One stack of a project directory on the local file backend, every command timed (bench.measure)."""

    project_dir: Path
    name: str
    env: dict[str, str]
    created: bool = field(default=False, init=False)

    def argv(self, *args: str) -> list[str]:
        return ["pulumi", *args, "--stack", self.name, "--non-interactive"]

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return timed(self.argv(*args), {**self.env, **(env or {})}, self.project_dir)

    def init(self) -> Stack:
        timed(["pulumi", "stack", "init", self.name, "--non-interactive"], self.env, self.project_dir).check()
        self.created = True
        return self

    def set_config(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.run("config", "set", key, value).check()

    def up(self, *flags: str, env: dict[str, str] | None = None) -> Run:
        """`pulumi up --yes` plus `flags` (e.g. --skip-preview), checked."""
        return self.run("up", "--yes", *flags, env=env).check(f"pulumi up {' '.join(flags)} on {self.name}")

    def last_update(self) -> dict[str, Any]:
        """The newest entry of `pulumi stack history --json`."""
        res = self.run("stack", "history", "--json", "--page-size", "1").check()
        entries: list[dict[str, Any]] = json.loads(res.stdout)
        return entries[0]

    def urn_of(self, type_token: str) -> str:
        """The URN of the only resource of a type in the stack state."""
        res = self.run("stack", "export").check()
        urns = [
            r["urn"] for r in json.loads(res.stdout)["deployment"]["resources"] if r.get("type") == type_token
        ]
        if len(urns) != 1:
            raise SystemExit(f"bench: expected one {type_token} in stack {self.name}, found {urns}")
        return str(urns[0])

    def destroy(self, *flags: str) -> list[str]:
        """Destroy the stack's resources and remove the stack; returns problems (never raises)."""
        if not self.created:
            return []
        problems = []
        res = self.run("destroy", "--yes", "--skip-preview", *flags)
        if res.code != 0:
            problems.append(f"pulumi destroy of {self.name} failed: {res.stderr.strip()[-500:]}")
        res = self.run("stack", "rm", "--yes", "--force")
        if res.code != 0:
            problems.append(f"pulumi stack rm {self.name} failed: {res.stderr.strip()[-500:]}")
        self.created = False
        return problems


def kubectl(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"bench: kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def changes(update: dict[str, Any]) -> dict[str, int]:
    """resourceChanges of a history entry without the unchanged ("same") count."""
    return {op: n for op, n in (update.get("resourceChanges") or {}).items() if op != "same" and n}


APP = "web"
STABLE_IMAGE = "registry.example/web:1.0.0"
CANARY_IMAGE = "registry.example/web:1.1.0"
ROUTE_TYPE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"


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
            "httproute.gateway.networking.k8s.io",
            APP,
            "-n",
            self.namespace,
            "-o",
            "json",
        )
        route: dict[str, Any] = json.loads(out)
        return route
