"""Teams: the shared PostgreSQL state backend, who did what, and concurrent use (docs/teams.md).

Real PostgreSQL (scripts/postgres.sh, a private server per module or test), the real engine and provider,
the local apiserver. The walk runs the CLI's rollout on a postgres:// stack with an actor from --actor, from
CANARY_ACTOR and from both fallbacks, and reads it back from `pulumi stack history` and `canary history`.
Then: a stack moved from the file backend keeps every history entry; six concurrent `canary step` by six
actors take exactly one step; six concurrent plain `pulumi up` show what Pulumi's own lock does; and a
server stopped in the middle of an update fails it clearly and the stack converges once it is back.
"""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.ops.core.history import split_actor
from canary.ops.team.actor import CI_VARIABLES
from canary.route_state import route_state
from tests.integration.harness import (
    CANARY,
    REPO,
    ROUTE,
    Kube,
    PulumiStack,
    Result,
    canary,
    release_stack,
    run,
    start_stuck_update,
)
from tests.integration.postgres import Postgres, start_postgres

APP = "team"
V1, V2 = "registry.example/team:1.0.0", "registry.example/team:1.1.0"
CONFIG = {"appName": APP, "stableImage": V1, "canaryImage": V2, "stableReplicas": "1", "canaryReplicas": "1"}


@pytest.fixture(scope="module")
def postgres(env: dict[str, str]) -> Iterator[Postgres]:
    server = start_postgres(env)
    yield server
    server.checked("down")


KEYS = "pulumi/.pulumi"
"""Where the backend's keys start: the URL's path (the database) is a folder (docs/teams-notes.md)."""


def pulumi_locks(postgres: Postgres) -> str:
    """How many of Pulumi's own lock objects the backend holds."""
    return postgres.sql(f"SELECT count(*) FROM pulumi_state WHERE key LIKE '{KEYS}/locks/%'")


def without_ci(env: dict[str, str]) -> dict[str, str]:
    """`env` with no CI system Pulumi (or canary.ops.team.actor) would detect, and no CANARY_ACTOR."""
    return {k: v for k, v in env.items() if k not in CI_VARIABLES and k != "CANARY_ACTOR"}


def live_weights(kube: Kube, ns: str) -> tuple[int, int | None]:
    route = kube.get(ROUTE, APP, ns)
    assert route is not None
    state = route_state(route, APP)
    return state.stable_weight, state.canary_weight


def history_keys(postgres: Postgres, stack: PulumiStack) -> list[str]:
    """The backend rows of the stack's history entries."""
    rows = postgres.sql(
        f"SELECT key FROM pulumi_state WHERE key LIKE '{KEYS}/history/gateway-canary/{stack.name}/%' "
        "AND key LIKE '%.history.json' ORDER BY key"
    )
    return rows.splitlines()


def canary_with(stack: PulumiStack, env: dict[str, str], *args: str) -> Result:
    """canary on `stack` with another environment (the harness's `canary` uses the stack's)."""
    argv = [CANARY, *args, "--cwd", str(stack.project_dir), "--stack", stack.name]
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="class")
def walk(env: dict[str, str], postgres: Postgres, tmp_path_factory: pytest.TempPathFactory):
    stack = release_stack(postgres.backend_env(env), tmp_path_factory.mktemp("teams"), "team", CONFIG)
    yield stack, stack.pulumi("config", "get", "namespace").check().stdout.strip()
    stack.destroy()


@pytest.mark.usefixtures("walk")
class TestWalkOnPostgres:
    def test_01_deploy_lands_in_postgres_not_in_a_file(self, walk, postgres: Postgres) -> None:
        stack, _ = walk
        stack.up(message="deploy header-only").check()
        assert len(history_keys(postgres, stack)) == 1
        checkpoint = postgres.sql(
            f"SELECT count(*) FROM pulumi_state WHERE key = '{KEYS}/stacks/gateway-canary/{stack.name}.json'"
        )
        assert checkpoint == "1"
        file_backend = REPO / ".state" / "backend" / ".pulumi" / "stacks" / "gateway-canary"
        assert not list(file_backend.glob(f"{stack.name}.json*")), "the stack must not be in the file backend"
        out = canary(stack, "status").check().stdout
        assert "weights      stable 100%, canary 0%" in out

    def test_02_actor_from_the_flag(self, walk, kube: Kube) -> None:
        stack, ns = walk
        res = canary_with(
            stack, {**stack.env, "CANARY_ACTOR": "not-me"}, "step", "--yes", "--actor", "Alice Ops"
        )
        res.check()
        assert live_weights(kube, ns) == (95, 5)
        assert stack.history()[0]["message"] == f"canary 0% -> 5% ({V2}) [by Alice Ops]"

    def test_03_actor_from_canary_actor(self, walk, kube: Kube) -> None:
        stack, ns = walk
        canary_with(stack, {**stack.env, "CANARY_ACTOR": "bob"}, "step", "--yes").check()
        assert live_weights(kube, ns) == (75, 25)
        assert stack.history()[0]["message"] == f"canary 5% -> 25% ({V2}) [by bob]"

    def test_04_fallback_to_git_user_name(self, walk, kube: Kube, tmp_path: Path) -> None:
        stack, ns = walk
        gitconfig = tmp_path / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Gita Fallback\n")
        env = {**without_ci(stack.env), "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}
        canary_with(stack, env, "rollback", "--yes").check()  # the `pulumi up` path: not a file backend
        assert live_weights(kube, ns) == (100, 0)
        message, actor = split_actor(stack.history()[0]["message"])
        assert actor == "Gita Fallback" and message.startswith("rollback canary 25% -> 0%")

    def test_05_fallback_to_the_os_user(self, walk, kube: Kube) -> None:
        stack, ns = walk
        env = {**without_ci(stack.env), "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
        env["LOGNAME"] = "os-person"  # getpass.getuser() reads LOGNAME first
        canary_with(stack, env, "step", "--yes").check()
        assert live_weights(kube, ns) == (95, 5)
        assert stack.history()[0]["message"] == f"canary 0% -> 5% ({V2}) [by os-person]"
        assert getpass.getuser() != "" and "os-person" in stack.history()[0]["message"]

    def test_06_promote(self, walk, kube: Kube) -> None:
        stack, ns = walk
        canary(stack, "promote", "--yes", "--actor", "carol").check()
        assert kube.get("deployment", f"{APP}-canary", ns) is None
        assert stack.history()[0]["message"] == f"promote {V2} [by carol]"

    def test_07_history_shows_who(self, walk, tmp_path: Path) -> None:
        stack, _ = walk
        plot = tmp_path / "who.png"
        out = canary(stack, "history", "--plot", str(plot)).check().stdout
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["#", "when", "who"]
        assert any("Alice Ops" in line and f"canary 0% -> 5% ({V2})" in line for line in lines), out
        assert not any("[by " in line for line in lines), "the trailer is shown as who, not in the message"
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = json.loads(canary(stack, "history", "--json").check().stdout)["rows"]
        assert [row["who"] for row in rows[1:]] == ["Alice Ops", "bob", "Gita Fallback", "os-person", "carol"]
        assert [(r["fromPercent"], r["toPercent"]) for r in rows] == [
            (None, "0"),
            ("0", "5"),
            ("5", "25"),
            ("25", "0"),
            ("0", "5"),
            ("5", "0"),
        ]
        status = json.loads(canary(stack, "status", "--json").check().stdout)
        assert status["lastUpdate"]["by"] == "carol"


def test_migration_from_the_file_backend_keeps_every_history_entry(
    env: dict[str, str], postgres: Postgres, kube: Kube, tmp_path: Path
) -> None:
    """docs/teams.md: export, init + import on postgres, copy history (scripts/copy_history.py)."""
    on_file = release_stack(env, tmp_path, "move", CONFIG)
    on_pg = PulumiStack(on_file.project_dir, on_file.name, postgres.backend_env(env))
    try:
        on_file.up(message="deploy").check()
        canary(on_file, "step", "--yes", "--actor", "alice").check()
        canary(on_file, "step", "--yes", "--actor", "bob").check()
        before = on_file.history()
        table_before = canary(on_file, "history").check().stdout
        assert len(before) == 3

        exported = tmp_path / "state.json"
        on_file.pulumi("stack", "export", "--file", str(exported)).check()
        on_pg.init()
        on_pg.pulumi("stack", "import", "--file", str(exported)).check()
        assert on_pg.history() == [], "stack import carries no history"
        backend_dir = env["PULUMI_BACKEND_URL"].removeprefix("file://")
        copied = run(
            [
                "python3",
                str(REPO / "scripts" / "copy_history.py"),
                "--from",
                backend_dir,
                "--project",
                "gateway-canary",
                "--stack",
                on_file.name,
                "--to",
                postgres.url,
            ],
            env,
        ).check()
        assert "copied 3 history entries" in copied.stdout

        after = on_pg.history()
        assert after == before, "every entry, field by field"
        assert canary(on_pg, "history").check().stdout == table_before
        on_file.pulumi(
            "stack", "rm", "--yes", "--force", "--preserve-config"
        ).check()  # its resources live on
        on_file.created = False

        ns = str(on_pg.outputs()["namespace"])
        canary(on_pg, "step", "--yes", "--actor", "carol").check()
        assert live_weights(kube, ns) == (50, 50)
        assert [split_actor(h["message"])[1] for h in on_pg.history()] == ["carol", "bob", "alice", None]
        on_pg.preview("--expect-no-changes", "--refresh").check()
    finally:
        on_file.destroy()
        on_pg.destroy()


def checkout_of(stack: PulumiStack, where: Path) -> Path:
    """Another engineer's checkout: a copy of the project directory with the stack's config file."""
    return Path(shutil.copytree(stack.project_dir, where, symlinks=True))


def test_six_concurrent_steps_by_six_actors_take_exactly_one_step(
    env: dict[str, str], postgres: Postgres, kube: Kube, tmp_path: Path
) -> None:
    stack = release_stack(postgres.backend_env(env), tmp_path, "race", CONFIG)
    try:
        stack.up(message="deploy").check()
        ns = str(stack.outputs()["namespace"])
        updates = len(stack.history())
        checkouts = [checkout_of(stack, tmp_path / f"checkout-{i}") for i in range(6)]
        procs = [
            subprocess.Popen(
                [CANARY, "step", "--yes", "--actor", f"actor-{i}", "--cwd", str(cwd), "--stack", stack.name],
                env=stack.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, cwd in enumerate(checkouts)
        ]
        results = [(proc.wait(timeout=600), *proc.communicate()) for proc in procs]
        winners = [i for i, (code, _, _) in enumerate(results) if code == 0]
        assert len(winners) == 1, results
        winner = f"actor-{winners[0]}"
        for i, (code, _, err) in enumerate(results):
            if i == winners[0]:
                continue
            assert code == 1, (i, err)
            assert f"stack {stack.name} is held by {winner} (canary step, pid " in err, (i, err)
            assert "since 20" in err and "nothing was done" in err, (i, err)
            assert "Traceback" not in err

        assert live_weights(kube, ns) == (95, 5), "traffic moved exactly one step"
        history = stack.history()
        assert len(history) == updates + 1, [h["message"] for h in history]
        assert history[0]["message"] == f"canary 0% -> 5% ({V2}) [by {winner}]"
        rows = json.loads(canary(stack, "history", "--json").check().stdout)["rows"]
        assert rows[-1]["who"] == winner
        exported = json.loads(stack.pulumi("stack", "export").check().stdout)["deployment"]
        assert not exported.get("pending_operations"), "no operation left pending"
        assert postgres.sql("SELECT count(*) FROM pulumi_state_canary_locks") == "0", "the CLI's lock is gone"
        assert pulumi_locks(postgres) == "0"
    finally:
        stack.destroy()


# Pulumi's checkForLock (pkg/backend/diy/lock.go, v3.274.1) lists the stack's lock objects, then reads each
# to name its holder; a holder that unlocks in between makes that read fail, and the raw error is what the
# losing `pulumi up` prints (both seen in CI on postgres). The postgres bucket's list itself reads each key's
# metadata after selecting the keys (backend/diy/postgres/bucket.go ListPaged), so the same race can fail the
# list. Each way the loser ran nothing, which is what counts here.
LOCK_REFUSALS = (
    "the stack is currently locked",
    "key not found: sql: no rows in result set",
    "could not list bucket: blob (code=NotFound): sql: no rows in result set",
)


def test_pulumis_own_lock_lets_at_most_one_of_six_concurrent_ups_run(
    env: dict[str, str], postgres: Postgres, tmp_path: Path
) -> None:
    """Plain `pulumi up` x 6 at once, 3 rounds: Pulumi's check-write-check lock (pkg/backend/diy/lock.go) must
    never let two run; the figures (winners per round) are printed, as none is also possible (all six see
    each other's lock objects and back off)."""
    stack = release_stack(postgres.backend_env(env), tmp_path, "plock", {**CONFIG, "canaryImage": ""})
    try:
        stack.up(message="deploy").check()
        winners_per_round = []
        for round_ in range(3):
            procs = [
                subprocess.Popen(
                    stack.argv("up", "--yes", "--skip-preview", "--message", f"round {round_} up {i}"),
                    cwd=stack.project_dir,
                    env=stack.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for i in range(6)
            ]
            outcomes = [(proc.wait(timeout=600), proc.communicate()[0]) for proc in procs]
            winners = sum(1 for code, _ in outcomes if code == 0)
            winners_per_round.append(winners)
            assert winners <= 1, outcomes
            for code, output in outcomes:
                if code != 0:
                    assert any(m in output for m in LOCK_REFUSALS), output
        print(f"pulumi up x6 on postgres, winners per round: {winners_per_round}")
        messages = [h["message"] for h in stack.history()]
        assert len(messages) == 1 + sum(winners_per_round)
        assert pulumi_locks(postgres) == "0"
    finally:
        stack.destroy()


def test_postgres_stopped_mid_update_fails_clearly_and_converges_once_back(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """The server stops while the provider waits for a canary that never gets ready (rolloutTimeout 20).
    The update fails naming the snapshot it could not save and the lock it could not delete; once the
    server is back, the documented recovery after a crashed update (docs/reliability.md: cancel, refresh,
    up) converges. A plain `pulumi up` is refused by the lock left behind, and without the refresh it would
    not see that the live Deployment already has the image the lost snapshot never recorded."""
    server = start_postgres(env)
    stack = release_stack(server.backend_env(env), tmp_path, "pgdown", {**CONFIG, "rolloutTimeout": "20"})
    try:
        stack.up(message="deploy").check()
        ns = str(stack.outputs()["namespace"])
        never_ready = {"canaryImage": "registry.example/team:never-ready"}
        update = start_stuck_update(stack, f"{APP}-canary", never_ready)
        server.checked("stop")
        output = update.finish()
        assert update.returncode != 0, output
        assert "failed to save snapshot" in output and "connection refused" in output, output
        assert "there was a problem deleting the lock" in output, output

        server.checked("start")
        refused = stack.up(message="while the lock is left")
        assert refused.code != 0 and "the stack is currently locked" in refused.output, refused.output
        deployment = json.loads(stack.pulumi("stack", "export").check().stdout)["deployment"]
        pending = [
            (op["type"], op["resource"]["urn"].split("::")[-1]) for op in deployment["pending_operations"]
        ]
        assert pending == [("updating", f"{APP}-canary")], pending

        stack.set_config({"canaryImage": V2})
        stack.pulumi("cancel", "--yes").check()
        stack.pulumi("refresh", "--yes", "--skip-preview").check()
        stack.up(message="after postgres came back").check()
        stack.preview("--expect-no-changes", "--refresh").check()
        live = kube.get("deployment", f"{APP}-canary", ns)
        assert live is not None and live["spec"]["template"]["spec"]["containers"][0]["image"] == V2
        deployment = json.loads(stack.pulumi("stack", "export").check().stdout)["deployment"]
        assert not deployment.get("pending_operations")
        # The interrupted update has no entry: its record is written at its end, when the server was down.
        kinds = [(h["kind"], h["result"], h.get("message", "")) for h in stack.history()]
        assert kinds == [
            ("update", "succeeded", "after postgres came back"),
            ("refresh", "succeeded", ""),
            *[("update", "succeeded", "")] * update.finished_before,
            ("update", "succeeded", "deploy"),
        ], kinds
    finally:
        server.script("start")
        stack.destroy()
        server.checked("down")
