"""A stack of this project read from its own files: Pulumi.yaml, Pulumi.<stack>.yaml and a local backend.

The commands timed in fractions of a second (`canary rollback`'s fast path, `canary status`) read what the
Automation API would give them straight from the files the Pulumi CLI writes, instead of starting a
`pulumi` process per read (0.2-0.5 s each). Only the `file://` backend is read this way (its layout:
pkg/backend/diy in the pinned CLI: `.pulumi/stacks/<project>/<stack>.json[.gz]`, history in
`.pulumi/history/<project>/<stack>/<stack>-<time>.history.json[.gz]`, locks in `.pulumi/locks/...`); for
any other backend, or a file this reader does not know (zstd-compressed, an ESC environment), it raises
FastUnavailable and the caller takes the Automation API path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from canary.ops.files import yaml_files
from canary.records import Record

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:  # history: imported where used, `canary rollback` reads none of it before its write
    from typing import Any

    from canary.ops.core.history import HistoryEntry


class FastUnavailable(Exception):
    """The fast path cannot be used for this stack (for example a non-file backend it cannot read, or
    config it cannot see); nothing was written and the caller uses the `pulumi up` path instead."""


def stack_raw_config(
    project_doc: Mapping[str, Any], stack_doc: Mapping[str, Any] | None, to_string: Callable[[object], str]
) -> tuple[dict[str, str], frozenset[str]]:
    """The project's config as the engine hands it to the program (key -> string, defaults included, project
    namespace stripped) and the keys whose stack value is a secret (ciphertext here: left deferred).

    Raises FastUnavailable when the stack takes config from somewhere this reader does not see (an ESC
    environment)."""
    project = str(project_doc["name"])
    prefix = f"{project}:"
    raw: dict[str, str] = {}
    for key, decl in (project_doc.get("config") or {}).items():
        name = key[len(prefix) :] if key.startswith(prefix) else key
        if isinstance(decl, Mapping):
            value = decl.get("value", decl.get("default"))
            if value is not None:
                raw[name] = to_string(value)
        elif decl is not None:
            raw[name] = to_string(decl)
    secure: set[str] = set()
    stack_doc = stack_doc or {}
    if stack_doc.get("environment"):
        raise FastUnavailable("the stack imports an ESC environment, whose values only Pulumi can read")
    for key, value in (stack_doc.get("config") or {}).items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if isinstance(value, Mapping) and "secure" in value:
            secure.add(name)
            raw[name] = ""
        else:
            raw[name] = to_string(value)
    return raw, frozenset(secure)


def backend_url(
    cwd: Path, env: Mapping[str, str], project_doc: Mapping[str, Any] | None = None
) -> str | None:
    """The backend this project's stacks use, as Pulumi picks it: PULUMI_BACKEND_URL, then Pulumi.yaml's
    backend.url, then the current login in PULUMI_HOME (~/.pulumi)/credentials.json. The one resolver: the
    CLI's lock (canary.ops.team.lock) and the fast path's reads both use it. `project_doc`: Pulumi.yaml,
    when the caller has read it already."""
    if env.get("PULUMI_BACKEND_URL"):
        return env["PULUMI_BACKEND_URL"]
    if project_doc is None:
        project_file = cwd / "Pulumi.yaml"
        project_doc = (yaml_files.load(project_file, env) or {}) if project_file.is_file() else {}
    url = (project_doc.get("backend") or {}).get("url")
    if url:
        return str(url)
    home = Path(env.get("PULUMI_HOME") or Path.home() / ".pulumi")
    try:
        current = json.loads((home / "credentials.json").read_text()).get("current")
    except (OSError, ValueError):
        return None
    return str(current) if current else None


def file_backend_dir(url: str | None) -> Path | None:
    """The directory of a `file://` backend URL (None for any other backend)."""
    if not url or not url.startswith("file://"):
        return None
    return Path(os.path.expanduser(url[len("file://") :]))


def state_file(backend: Path, project: str, stack: str) -> Path | None:
    """The stack's checkpoint in a local backend (project layout, then the legacy one; maybe gzipped)."""
    short = stack.split("/")[-1]
    for base in (backend / ".pulumi" / "stacks" / project / short, backend / ".pulumi" / "stacks" / short):
        for path in (base.with_name(base.name + ".json"), base.with_name(base.name + ".json.gz")):
            if path.is_file():
                return path
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The `deployment` section (`checkpoint.latest`) of a local backend's stack file."""
    latest: dict[str, Any] = (read_json(path).get("checkpoint") or {}).get("latest") or {}
    return latest


def lock_holders(backend: Path, project: str, stack: str) -> list[dict[str, Any]]:
    """The lock files of the stack in a local backend (`.pulumi/locks/<org>/<project>/<stack>/*.json`,
    pkg/backend/diy/lock.go): {pid, username, hostname, timestamp} each; empty when unlocked."""
    short = stack.split("/")[-1]
    locks = backend / ".pulumi" / "locks"
    found = []
    for folder in (locks / "organization" / project / short, locks / short):
        for path in sorted(folder.glob("*.json")):
            try:
                found.append(dict(json.loads(path.read_text())))
            except (OSError, ValueError):
                found.append({"file": str(path)})
    return found


def stack_name_of(cwd: Path, stack: str | None, env: Mapping[str, str] | None) -> str:
    """--stack, or the workspace's selected stack (`pulumi stack --show-name`)."""
    if stack is not None:
        return stack
    import subprocess

    proc = subprocess.run(
        ["pulumi", "stack", "--show-name", "--non-interactive"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise FastUnavailable(f"no selected stack found ({proc.stderr.strip()})")
    return proc.stdout.strip()


def history_files(backend: Path, project: str, stack: str) -> list[Path]:
    """The stack's history files in a local backend, newest first (their names sort by time, as the
    backend's own getHistory relies on)."""
    short = stack.split("/")[-1]
    found: list[Path] = []
    for folder in (
        backend / ".pulumi" / "history" / project / short,
        backend / ".pulumi" / "history" / short,
    ):
        if folder.is_dir():
            found = sorted(
                (p for p in folder.iterdir() if p.name.endswith((".history.json", ".history.json.gz"))),
                key=lambda p: p.name,
                reverse=True,
            )
            if any(p.name.endswith(".history.json.zst") for p in folder.iterdir()):
                raise FastUnavailable(f"history in {folder} is zstd-compressed")
            break
    return found


def history_entry_of(info: Mapping[str, Any]) -> HistoryEntry:
    """One history file's UpdateInfo (pkg/backend/updates.go) as a HistoryEntry. Config values are text as
    the stack file holds them; a secret reads "[secret]"."""
    from datetime import UTC, datetime

    from canary.ops.core.history import HistoryEntry

    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and "secure" in value:
            return "[secret]"
        return json.dumps(value, separators=(",", ":"))

    end = int(info.get("endTime") or 0)
    return HistoryEntry(
        kind=str(info.get("kind", "")),
        result=str(info.get("result", "")),
        message=str(info.get("message") or ""),
        start=datetime.fromtimestamp(int(info.get("startTime") or 0), UTC),
        end=datetime.fromtimestamp(end, UTC) if end else None,
        config={str(key): text(value) for key, value in (info.get("config") or {}).items()},
        environment={str(k): str(v) for k, v in (info.get("environment") or {}).items()},
        resource_changes={str(k): int(v) for k, v in (info.get("resourceChanges") or {}).items()},
    )


def read_json(path: Path) -> Any:
    data = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        data = gzip.decompress(data)
    return json.loads(data)


class LocalStack(Record):
    """One stack of the project in `cwd`, in a local file backend, read from its files."""

    cwd: Path
    project_doc: Mapping[str, Any]
    stack: str
    backend: Path

    @property
    def project(self) -> str:
        return str(self.project_doc["name"])

    @classmethod
    def open(cls, cwd: Path, stack: str | None, env: Mapping[str, str] | None = None) -> LocalStack:
        """The stack (--stack, else the workspace's selected one); FastUnavailable for other backends."""
        environ = os.environ if env is None else env
        project_file = cwd / "Pulumi.yaml"
        if not project_file.is_file():
            raise FastUnavailable(f"no Pulumi.yaml in {cwd}")
        project_doc = yaml_files.load(project_file)
        backend = file_backend_dir(backend_url(cwd, environ, project_doc))
        if backend is None:
            raise FastUnavailable("the stack is not in a local file backend")
        return cls(cwd, project_doc, stack_name_of(cwd, stack, env), backend)

    def raw_config(self, to_string: Callable[[object], str]) -> tuple[dict[str, str], frozenset[str]]:
        """As stack_raw_config: the program's raw config and the keys that are secrets."""
        if self.project_doc.get("stackConfigDir"):
            raise FastUnavailable("Pulumi.yaml sets stackConfigDir, which this reader does not follow")
        stack_file = self.cwd / f"Pulumi.{self.stack.split('/')[-1]}.yaml"
        stack_doc = yaml_files.load(stack_file) if stack_file.is_file() else None
        return stack_raw_config(self.project_doc, stack_doc, to_string)

    def deployment(self) -> dict[str, Any]:
        path = state_file(self.backend, self.project, self.stack)
        if path is None:
            raise FastUnavailable(f"no state file for stack {self.stack} in {self.backend}")
        return read_checkpoint(path)

    def last_update(self) -> HistoryEntry | None:
        files = history_files(self.backend, self.project, self.stack)
        return history_entry_of(read_json(files[0])) if files else None

    def lock_holders(self) -> list[dict[str, Any]]:
        return lock_holders(self.backend, self.project, self.stack)
