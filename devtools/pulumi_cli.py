"""One stack of a project directory, driven through the real `pulumi` CLI on the local file backend.

The tests check what each command did, the benchmarks time it (and sample its memory), the demo just runs it:
they differ only in how one command is run, so `CliStack` takes that as a `runner` and everything else (the
argv, stack init, config, outputs, history, state, destroy) is written once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

REPO = Path(__file__).resolve().parents[1]


class Outcome(Protocol):
    """What a runner returns for one command: its exit code and output, and a check that raises on failure."""

    code: int
    stdout: str
    stderr: str

    def check(self, what: str | None = None) -> Self: ...


R = TypeVar("R", bound=Outcome)
Runner = Callable[[list[str], dict[str, str], Path], R]
"""Runs one command (argv, environment, working directory) and returns its Outcome."""


def project_env() -> dict[str, str]:
    """The environment of scripts/env.sh (toolchain on PATH, KUBECONFIG of the local cluster, local backend,
    offline Pulumi), read from the script itself so the Makefile, the tests and the bench never disagree."""
    out = subprocess.run(
        ["bash", "-c", "source scripts/env.sh && env -0"],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={**os.environ},
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


NO_CHANGE = frozenset({"same", "read"})
"""Step operations that change nothing: unchanged resources, and reads of existing ones."""


def changes(update: dict[str, Any]) -> dict[str, int]:
    """What an update changed: the `resourceChanges` of a `pulumi stack history --json` entry, without
    the operations that change nothing (NO_CHANGE)."""
    return {op: n for op, n in (update.get("resourceChanges") or {}).items() if op not in NO_CHANGE and n}


def unique(prefix: str) -> str:
    """`prefix-` plus six random hex digits: stack names and namespaces that never collide between runs."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def private_project(dst: Path, src: Path = REPO, program: str | None = None) -> Path:
    """A private copy of a project (Pulumi.yaml and __main__.py, or `program` as its __main__.py) in `dst`,
    with the repo's virtualenv linked in, so its stack files never land in the checkout and copies can run
    side by side."""
    dst.mkdir(parents=True)
    shutil.copy(src / "Pulumi.yaml", dst / "Pulumi.yaml")
    if program is None:
        shutil.copy(src / "__main__.py", dst / "__main__.py")
    else:
        (dst / "__main__.py").write_text(program)
    (dst / ".venv").symlink_to(REPO / ".venv")
    return dst


@dataclass
class CliStack(Generic[R]):
    """One stack of `project_dir`, every command run by `runner`; `created` once `init` made it."""

    project_dir: Path
    name: str
    env: dict[str, str]
    runner: Runner[R]
    created: bool = field(default=False, init=False)

    def argv(self, *args: str) -> list[str]:
        return ["pulumi", *args, "--stack", self.name, "--non-interactive"]

    def pulumi(self, *args: str, env: dict[str, str] | None = None) -> R:
        return self.runner(self.argv(*args), {**self.env, **(env or {})}, self.project_dir)

    def init(self) -> Self:
        self.runner(
            ["pulumi", "stack", "init", self.name, "--non-interactive"], self.env, self.project_dir
        ).check()
        self.created = True
        return self

    def set_config(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.pulumi("config", "set", key, value).check()

    def outputs(self) -> dict[str, Any]:
        values: dict[str, Any] = json.loads(self.pulumi("stack", "output", "--json").check().stdout)
        return values

    def history(self, *flags: str) -> list[dict[str, Any]]:
        """Updates, newest first, as `pulumi stack history --json` prints them."""
        entries: list[dict[str, Any]] = json.loads(
            self.pulumi("stack", "history", "--json", *flags).check().stdout
        )
        return entries

    def resources(self) -> list[dict[str, Any]]:
        """The resources of `pulumi stack export`."""
        exported: dict[str, Any] = json.loads(self.pulumi("stack", "export").check().stdout)
        return list(exported["deployment"].get("resources") or [])

    def urn_of(self, type_token: str) -> str:
        """The URN of the only resource of a type in the stack state."""
        urns = [r["urn"] for r in self.resources() if r.get("type") == type_token]
        if len(urns) != 1:
            raise LookupError(f"expected one {type_token} in stack {self.name}, found {urns}")
        return str(urns[0])

    def destroy(self, *flags: str) -> list[str]:
        """Destroy the stack's resources and remove the stack; returns what failed (never raises)."""
        if not self.created:
            return []
        problems = []
        for args in (("destroy", "--yes", "--skip-preview", *flags), ("stack", "rm", "--yes", "--force")):
            result = self.pulumi(*args)
            if result.code != 0:
                problems.append(f"pulumi {args[0]} of {self.name} failed: {result.stderr.strip()[-500:]}")
        self.created = False
        return problems
