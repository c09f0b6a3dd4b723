"""The CLI's own stack lock: one `canary step|rollback|promote` at a time per stack, from read to record.

Why Pulumi's lock is not enough (docs/teams-notes.md has the details): the DIY backends lock a stack only
for the length of one `pulumi up`/`refresh`/`import` (pkg/backend/diy/lock.go: list the lock folder, write
our lock object, list again, give up when another is there). That is mutually exclusive on one database,
but a command of this CLI reads the stack, plans from it, sets config, previews and then runs `pulumi up`:
a second command that read the stack before the first one's update ends plans from a stale state, and its
own `pulumi up`, once the first one released Pulumi's lock, would take the same step again or undo it. So
the CLI takes a lock of its own before it reads anything and keeps it until its update is recorded:

- postgres:// backends: a row in table `<table>_canary_locks` of the backend's database (`<table>` is the
  URL's `table`, default pulumi_state), taken with one INSERT ... ON CONFLICT DO NOTHING: the primary key
  makes it atomic across machines. Through `psql` (the PostgreSQL client).
- file:// backends: a file `.pulumi/canary-locks/<project>/<stack>.json` in the backend, created with
  O_CREAT|O_EXCL, atomic on one file system.
- other backends: none (Pulumi's own lock only; docs/teams.md).

Both record who holds it (the actor), where (host, pid), for which command and since when, which is what
a refused command prints. A holder that died leaves its lock: on its own host a lock whose pid is gone is
taken over; elsewhere `canary unlock`-style cleanup is by hand (the message names the row or file).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from canary.ops.errors import Refused
from canary.records import Record

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import Protocol

LOCK_TABLE_SUFFIX = "_canary_locks"


class Holder(Record):
    """Who holds (or wants) a stack's lock."""

    token: str
    actor: str
    host: str
    pid: int
    command: str
    since: str
    """UTC, ISO 8601 to the second."""


def new_holder(actor: str, command: str) -> Holder:
    return Holder(
        token=os.urandom(16).hex(),  # as random as uuid4, without importing uuid on the rollback's path
        actor=actor,
        host=os.uname().nodename,  # what socket.gethostname() returns on POSIX
        pid=os.getpid(),
        command=command,
        since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


if TYPE_CHECKING:  # what held() needs of a lock (FileLock, PostgresLock); for mypy only

    class StackLock(Protocol):
        where: str
        """Where the lock lives, for messages (a table row or a file)."""

        def acquire(self, holder: Holder) -> Holder:
            """Take the lock for `holder`; returns the holder that has it (ours when taken)."""

        def release(self, holder: Holder) -> None:
            """Drop the lock if `holder` (by token) still has it."""


def refusal(stack: str, holder: Holder, where: str) -> str:
    """Why a command does nothing: another one holds the stack."""
    return (
        f"stack {stack} is held by {holder.actor} (canary {holder.command}, pid {holder.pid} on "
        f"{holder.host}) since {holder.since}: nothing was done. Wait for it to finish, then check "
        f"`canary status` and run the command again (a lock whose process is gone on another host: "
        f"delete {where})"
    )


def is_stale(holder: Holder, host: str, alive: bool) -> bool:
    """A lock left by a process of this host that no longer runs."""
    return holder.host == host and not alive


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def held(lock: StackLock | None, stack: str, holder: Holder) -> Iterator[None]:
    """Hold the stack for the body, or raise Refused naming who has it. No lock (a backend without one):
    the body runs under Pulumi's lock alone."""
    if lock is None:
        yield
        return
    got = lock.acquire(holder)
    if got.token != holder.token and is_stale(got, holder.host, pid_alive(got.pid)):
        lock.release(got)
        got = lock.acquire(holder)
    if got.token != holder.token:
        raise Refused(refusal(stack, got, lock.where))
    try:
        yield
    finally:
        lock.release(holder)


# --- where the lock lives ---------------------------------------------------------------------------------


def lock_for(url: str | None, project: str, stack: str) -> StackLock | None:
    """The lock for a stack of `project` on the backend at `url` (module docstring), or None."""
    if not url:
        return None
    scheme = urlsplit(url).scheme
    short = stack.split("/")[-1]
    if scheme == "file":
        folder = Path(unquote(urlsplit(url).path))
        return FileLock(folder / ".pulumi" / "canary-locks" / project / f"{short}.json")
    if scheme in ("postgres", "postgresql"):
        psql_url, table = psql_target(url)
        return PostgresLock(psql_url, table + LOCK_TABLE_SUFFIX, f"{project}/{short}")
    return None


def psql_target(url: str) -> tuple[str, str]:
    """(a URL psql accepts, Pulumi's table): `table` is Pulumi's parameter, not libpq's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    table = next((value for key, value in query if key == "table"), "pulumi_state")
    if not table.replace("_", "").isalnum():
        raise Refused(f"backend table {table!r} is not a plain table name: the CLI cannot lock the stack")
    rest = urlencode([(key, value) for key, value in query if key != "table"])
    return urlunsplit(parts._replace(query=rest)), table


class FileLock:
    """A lock file created exclusively in a local backend."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def acquire(self, holder: Holder) -> Holder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return self._holder()
        with os.fdopen(fd, "w") as out:
            json.dump(holder._asdict(), out)
        return holder

    def _holder(self) -> Holder:
        """The holder in the file; its writer may still be writing it, so a few tries."""
        for _ in range(40):
            found = self._read()
            if found is not None:
                return found
            time.sleep(0.05)
        return Holder("?", "unknown (unreadable lock file)", "?", 0, "?", "?")

    def _read(self) -> Holder | None:
        try:
            return Holder(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def release(self, holder: Holder) -> None:
        current = self._read()
        if current is not None and current.token == holder.token:
            self.path.unlink(missing_ok=True)


class PostgresLock:
    """A row per stack in the backend's database, inserted atomically (primary key), through psql."""

    def __init__(self, url: str, table: str, stack: str) -> None:
        self.url = url
        self.table = table
        self.stack = stack
        self.where = f"the row stack = '{stack}' of table {table}"

    def _psql(self, sql: str, variables: Mapping[str, str], what: str = "take") -> str:
        import subprocess  # here: a file backend's lock runs no program

        argv = ["psql", "-X", "-q", "-t", "-A", "-F", "\x1f", "-v", "ON_ERROR_STOP=1"]
        for key, value in variables.items():
            argv += ["-v", f"{key}={value}"]
        try:
            proc = subprocess.run(
                [*argv, self.url], input=sql, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.SubprocessError) as err:
            raise Refused(
                f"cannot {what} the stack lock in PostgreSQL ({err}; the postgres:// backend's lock needs "
                "psql, the PostgreSQL client): nothing was done"
            ) from err
        if proc.returncode != 0:
            raise Refused(
                f"cannot {what} the stack lock in PostgreSQL: {proc.stderr.strip()}"
                + (": nothing was done" if what == "take" else f" (delete {self.where})")
            )
        return proc.stdout

    def acquire(self, holder: Holder) -> Holder:
        sql = (
            f"CREATE TABLE IF NOT EXISTS {self.table} (stack text PRIMARY KEY, token text NOT NULL, "
            "actor text NOT NULL, host text NOT NULL, pid integer NOT NULL, command text NOT NULL, "
            "since text NOT NULL);\n"
            f"INSERT INTO {self.table} (stack, token, actor, host, pid, command, since) VALUES "
            "(:'stack', :'token', :'actor', :'host', :pid, :'command', :'since') "
            "ON CONFLICT (stack) DO NOTHING;\n"
            f"SELECT token, actor, host, pid, command, since FROM {self.table} WHERE stack = :'stack';\n"
        )
        variables = {"stack": self.stack, **{k: str(v) for k, v in holder._asdict().items()}}
        for attempt in range(3):
            try:
                out = self._psql(sql, variables)
                break
            except Refused as err:
                # Two first-ever CREATE TABLE IF NOT EXISTS at once: one fails on the catalog's unique key.
                if attempt == 2 or "duplicate key" not in str(err):
                    raise
        fields = out.strip().split("\x1f")
        if len(fields) != 6:
            raise Refused(f"cannot read the stack lock in PostgreSQL (got {out.strip()!r}): nothing was done")
        token, actor, host, pid, command, since = fields
        return Holder(token, actor, host, int(pid), command, since)

    def release(self, holder: Holder) -> None:
        self._psql(
            f"DELETE FROM {self.table} WHERE stack = :'stack' AND token = :'token';\n",
            {"stack": self.stack, "token": holder.token},
            what="release",
        )
