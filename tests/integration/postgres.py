"""A private PostgreSQL server for a test module (scripts/postgres.sh with GATEWAY_CANARY_PG_DIR), as Pulumi's
postgres:// state backend: started by a fixture, stopped and removed after it.

Its folder is inside the checkout's .state/ (not pytest's tmp dir, which only root may enter: as root the
server runs as the `postgres` user). Under CI=true a server that cannot start fails the test; locally the
skip says so loudly (conftest's NOT_RUN banner).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.pulumi_cli import REPO, unique
from tests.integration.conftest import not_run

SCRIPT = REPO / "scripts" / "postgres.sh"


@dataclass
class Postgres:
    """One server: `url` is the backend URL Pulumi logs in to (scripts/postgres.sh url)."""

    folder: Path
    env: dict[str, str]

    def script(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env={**self.env, "GATEWAY_CANARY_PG_DIR": str(self.folder)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @property
    def url(self) -> str:
        return self.checked("url").stdout.strip()

    def checked(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self.script(*args)
        if proc.returncode != 0:
            command = " ".join(args)
            raise AssertionError(f"scripts/postgres.sh {command} exited {proc.returncode}: {proc.stderr}")
        return proc

    def sql(self, query: str) -> str:
        """One query through psql, its rows as unaligned text."""
        proc = subprocess.run(
            ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", self.url, "-c", query],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"psql {query!r} failed: {proc.stderr}")
        return proc.stdout.strip()

    def backend_env(self, env: dict[str, str]) -> dict[str, str]:
        """`env` with this server as the state backend."""
        return {**env, "PULUMI_BACKEND_URL": self.url}


def start_postgres(env: dict[str, str]) -> Postgres:
    """A new server, up, or the loud skip / CI failure when it cannot start."""
    server = Postgres(REPO / ".state" / unique("postgres-test"), env)
    proc = server.script("up")
    if proc.returncode != 0:
        server.script("down")
        not_run(f"PostgreSQL could not start (scripts/postgres.sh up): {proc.stderr.strip()[-400:]}")
    return server
