"""canary.ops.team.lock: which lock a backend gets, the file lock's exclusion and takeover, the refusal
message. (The PostgreSQL row lock runs against a real server in tests/integration/test_teams.py.)"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from canary.ops.errors import Refused
from canary.ops.pulumi.local_backend import backend_url
from canary.ops.team.lock import (
    FileLock,
    Holder,
    PostgresLock,
    held,
    lock_for,
    new_holder,
    psql_target,
    refusal,
)


def test_lock_for_each_backend_kind(tmp_path: Path) -> None:
    file_lock = lock_for(f"file://{tmp_path}", "gateway-canary", "organization/gateway-canary/dev")
    assert isinstance(file_lock, FileLock)
    assert file_lock.path == tmp_path / ".pulumi" / "canary-locks" / "gateway-canary" / "dev.json"
    pg = lock_for("postgres://u@127.0.0.1:5/db?sslmode=disable&table=team_state", "p", "dev")
    assert isinstance(pg, PostgresLock)
    assert (pg.url, pg.table, pg.stack) == (
        "postgres://u@127.0.0.1:5/db?sslmode=disable",
        "team_state_canary_locks",
        "p/dev",
    )
    assert lock_for("s3://bucket", "p", "dev") is None
    assert lock_for(None, "p", "dev") is None


def test_psql_target_refuses_a_table_name_that_is_not_plain() -> None:
    assert psql_target("postgres://h/db")[1] == "pulumi_state"
    with pytest.raises(Refused, match="not a plain table name"):
        psql_target("postgres://h/db?table=x;drop")


def test_backend_url_order(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: p\nbackend:\n  url: file:///from-project\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "credentials.json").write_text(json.dumps({"current": "postgres://login/db"}))
    env = {"PULUMI_HOME": str(tmp_path / "home")}
    assert backend_url(tmp_path, {**env, "PULUMI_BACKEND_URL": "file:///env"}) == "file:///env"
    assert backend_url(tmp_path, env) == "file:///from-project"
    (tmp_path / "Pulumi.yaml").write_text("name: p\n")
    assert backend_url(tmp_path, env) == "postgres://login/db"


def test_one_holder_at_a_time_and_the_refusal_names_it(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "dev.json")
    alice, bob = new_holder("alice", "step"), new_holder("bob", "promote")
    with held(lock, "dev", alice):
        with pytest.raises(Refused) as err, held(lock, "dev", bob):
            raise AssertionError("bob must not get the lock")
        text = str(err.value)
        assert text.startswith(f"stack dev is held by alice (canary step, pid {os.getpid()} on ")
        assert f"since {alice.since}: nothing was done" in text
        assert lock.acquire(bob).token == alice.token
    with held(lock, "dev", bob):
        assert json.loads((tmp_path / "dev.json").read_text())["actor"] == "bob"
    assert not (tmp_path / "dev.json").exists()


def _dead_pid() -> int:
    proc = multiprocessing.get_context("fork").Process(target=lambda: None)
    proc.start()
    proc.join()
    assert proc.pid is not None
    return proc.pid


def test_a_lock_left_by_a_dead_process_of_this_host_is_taken_over(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "dev.json")
    me = new_holder("alice", "step")
    dead = Holder("old", "crashed", me.host, _dead_pid(), "step", "2026-01-01T00:00:00Z")
    assert lock.acquire(dead) == dead
    with held(lock, "dev", me):
        assert lock.acquire(new_holder("x", "y")).token == me.token


def test_a_lock_of_another_host_is_never_taken_over(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "dev.json")
    other = Holder("t", "ci-bot", "elsewhere", 1, "rollback", "2026-01-01T00:00:00Z")
    lock.acquire(other)
    with (
        pytest.raises(Refused, match=r"held by ci-bot .* on elsewhere"),
        held(lock, "dev", new_holder("a", "step")),
    ):
        pass
    assert refusal("dev", other, lock.where).endswith(f"delete {lock.where})")


def test_no_lock_runs_the_body() -> None:
    ran = []
    with held(None, "dev", new_holder("a", "step")):
        ran.append(1)
    assert ran == [1]


def test_a_lock_that_cannot_be_taken_refuses_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file backend whose lock folder cannot be made (`.pulumi` is a file here): the command is refused,
    not run without the CLI's lock."""
    from canary.cli.main import main

    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: gateway-canary\nruntime: python\n")
    backend = tmp_path / "backend"
    backend.mkdir()
    (backend / ".pulumi").write_text("not a folder")
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{backend}")
    code = main(["step", "--yes", "--stack", "dev", "--actor", "ana", "--cwd", str(project)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "canary: cannot take the stack lock of dev (" in err and "nothing was done" in err, err
