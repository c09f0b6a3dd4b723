"""`canary rollback`'s fast path on the real engine and apiserver: traffic safe first, then recorded.

Each test has its own stack at canary 50% (no-data-plane class, waitForGateway false). The happy path ends
exactly as `pulumi config set canaryWeight 0 && pulumi up` would: config 0, a refreshing preview plans
nothing, the last history entry is the rollback, and the route's generation moved once. Then the faults: an
apiserver that does not answer (nothing changed), a record step that fails after the write (traffic stays
safe, the message says to run `pulumi up`, which converges), a record step stopped by Ctrl-C or SIGTERM
(the same, exit 130 or 143), a stack locked by a stuck update (refused,
nothing written) and a route that is not the program's (refused, nothing written).
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.route_state import route_state
from tests.integration.harness import (
    ROUTE,
    Kube,
    PulumiStack,
    canary,
    release_stack,
    start_canary,
    start_stuck_update,
)

APP = "fast"
V1, V2 = "registry.example/fast:1.0.0", "registry.example/fast:1.1.0"


@pytest.fixture
def stack(env: dict[str, str], tmp_path: Path) -> Iterator[PulumiStack]:
    """A release with a canary at 50%, deployed."""
    s = release_stack(
        env,
        tmp_path,
        "fastrb",
        {"appName": APP, "stableImage": V1, "canaryImage": V2, "canaryWeight": "50"},
    )
    s.up(message="canary at 50%").check()
    yield s
    s.destroy()


def live_route(stack: PulumiStack, kube: Kube) -> dict:
    route = kube.get(ROUTE, APP, str(stack.outputs()["namespace"]))
    assert route is not None
    return route


def config_weight(stack: PulumiStack) -> str:
    return stack.pulumi("config", "get", "canaryWeight").check().stdout.strip()


def test_fast_rollback_writes_first_and_records_it_like_config_set_and_up(
    stack: PulumiStack, kube: Kube
) -> None:
    before = live_route(stack, kube)
    assert route_state(before, APP).canary_weight == 50
    updates = len(stack.history())

    result = canary(stack, "rollback", "--yes", "--json").check()
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["fast"] is True, result.output
    print("fast rollback:", {k: doc[k] for k in ("liveZeroSeconds", "updateSeconds", "generation")})

    after = live_route(stack, kube)
    assert route_state(after, APP).canary_weight == 0 and route_state(after, APP).stable_weight == 100
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1, "moved once, not twice"
    assert config_weight(stack) == "0"
    history = stack.history()
    assert len(history) == updates + 1
    assert history[0]["result"] == "succeeded" and "rollback canary 50% -> 0%" in history[0]["message"]
    stack.preview("--refresh", "--expect-no-changes").check()
    # The fields are the provider's again, exactly as after its own apply.
    managers = kube.run(
        "get", ROUTE, APP, "-n", after["metadata"]["namespace"], "-o", "json", "--show-managed-fields"
    ).check()
    owners = {m["manager"] for m in json.loads(managers.stdout)["metadata"]["managedFields"]}
    assert all(o.startswith("pulumi-kubernetes-") for o in owners), owners
    # A second rollback finds nothing to do.
    again = canary(stack, "rollback", "--yes").check()
    assert "nothing to roll back" in again.stdout


def test_apiserver_unreachable_is_a_clear_error_and_changes_nothing(
    stack: PulumiStack, kube: Kube, tmp_path: Path
) -> None:
    before = live_route(stack, kube)
    updates = len(stack.history())
    closed = tmp_path / "kubeconfig-closed"
    kubeconfig = Path(stack.env["KUBECONFIG"]).read_text()
    import re

    closed.write_text(re.sub(r"server: https://[^\s]+", "server: https://127.0.0.1:9", kubeconfig))
    unreachable = PulumiStack(stack.project_dir, stack.name, {**stack.env, "KUBECONFIG": str(closed)})
    result = canary(unreachable, "rollback", "--yes")
    assert result.code == 1, result.output
    assert result.stderr.startswith("canary: cannot read httproute"), result.stderr
    assert "nothing was changed" in result.stderr and "Traceback" not in result.output
    after = live_route(stack, kube)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert config_weight(stack) == "50"
    assert len(stack.history()) == updates


def failing_pulumi(tmp_path: Path, real: str) -> Path:
    """A `pulumi` on PATH that runs the real one, except that `up` fails (the record step's update)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        '  [ "$a" = up ] && { echo "error: simulated failure of pulumi up" >&2; exit 1; }\n'
        "done\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_record_step_failing_after_the_write_keeps_traffic_safe_and_says_to_run_pulumi_up(
    stack: PulumiStack, kube: Kube, tmp_path: Path
) -> None:
    import shutil

    real = shutil.which("pulumi", path=stack.env["PATH"])
    assert real is not None
    bin_dir = failing_pulumi(tmp_path, real)
    broken = PulumiStack(
        stack.project_dir, stack.name, {**stack.env, "PATH": f"{bin_dir}{os.pathsep}{stack.env['PATH']}"}
    )
    before = live_route(stack, kube)
    result = canary(broken, "rollback", "--yes")
    assert result.code == 1, result.output
    assert "Traffic is safe" in result.stderr and f"run `pulumi up --stack {stack.name}`" in result.stderr
    after = live_route(stack, kube)
    assert route_state(after, APP).canary_weight == 0
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert config_weight(stack) == "0"

    stack.up(message="after a failed record").check()
    converged = live_route(stack, kube)
    assert route_state(converged, APP).canary_weight == 0
    assert converged["metadata"]["generation"] == after["metadata"]["generation"], "pulumi up rewrote it"
    stack.preview("--refresh", "--expect-no-changes").check()


@pytest.mark.parametrize(("how", "exit_code"), [("ctrl-c", 130), ("sigterm", 143)])
def test_record_step_stopped_after_the_write_keeps_traffic_safe_and_says_to_run_pulumi_up(
    stack: PulumiStack, kube: Kube, how: str, exit_code: int
) -> None:
    """Ctrl-C (SIGINT to the command's process group, as a terminal sends it) or `kill PID` (SIGTERM to the
    CLI alone: a cancelled CI job, a stopped container) while the record's `pulumi up` runs. The CLI passes
    one interrupt to that update (it runs in a session of its own), says that traffic is safe and what to
    run, and exits 130 or 143; nothing is left locked, and that `pulumi up` converges. Whatever the timing:
    when the interrupt reaches the program while it still imports pulumi (often, on a fast machine), Python's
    KeyboardInterrupt traceback that Pulumi relays is the interrupt's echo, and the CLI leaves it out
    (canary.ops.pulumi.deadline.InterruptEcho): the user sees messages, never a traceback."""
    before = live_route(stack, kube)
    running = start_canary(stack, "rollback", "--yes")
    assert running.wait_for_line("Traffic safe: live route") is not None, running.finish()
    assert running.wait_for_line("Updating (") is not None, running.finish()  # the record's update runs
    if how == "ctrl-c":
        os.killpg(running.proc.pid, signal.SIGINT)
    else:
        os.kill(running.proc.pid, signal.SIGTERM)
    output = running.finish()
    print(output)
    assert running.returncode == exit_code, output
    assert "traffic is safe (live route" in output and "recording the rollback was interrupted" in output
    assert f"pulumi up --stack {stack.name}`" in output and "Traceback" not in output
    after = live_route(stack, kube)
    assert route_state(after, APP).canary_weight == 0
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert config_weight(stack) == "0"
    print("the interrupted record:", stack.history()[0]["result"])

    stack.up(message=f"after the record was stopped ({how})").check()  # neither Pulumi's lock nor ours held
    converged = live_route(stack, kube)
    assert converged["metadata"]["generation"] == after["metadata"]["generation"], "pulumi up rewrote it"
    stack.preview("--refresh", "--expect-no-changes").check()
    assert "nothing to roll back" in canary(stack, "rollback", "--yes").check().stdout


def test_a_stack_locked_by_a_stuck_update_is_refused_and_nothing_is_written(
    stack: PulumiStack, kube: Kube
) -> None:
    """A `pulumi up` of a new canary that never gets ready holds the lock; when its canary became ready it
    would write the route at its own weight, so a rollback written now could be undone unseen."""
    stuck = start_stuck_update(
        stack, f"{APP}-canary", {"canaryImage": "registry.example/fast:never-ready", "rolloutTimeout": "120"}
    )
    try:
        before = live_route(stack, kube)
        result = canary(stack, "rollback", "--yes")
        assert result.code == 1, result.output
        assert f"stack {stack.name} is locked by a running update" in result.stderr, result.stderr
        assert "nothing was written" in result.stderr and "Stop it first" in result.stderr
        after = live_route(stack, kube)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert config_weight(stack) == "50"
    finally:
        output = stuck.interrupt()
    assert stack.history()[0]["result"] == "failed", f"the stuck update, after one Ctrl-C:\n{output}"


def test_a_route_that_is_not_the_programs_is_refused_and_nothing_is_written(
    stack: PulumiStack, kube: Kube
) -> None:
    ns = str(stack.outputs()["namespace"])
    patch = [{"op": "remove", "path": "/metadata/annotations/pulumi.com~1patchForce"}]
    kube.run("patch", ROUTE, APP, "-n", ns, "--type=json", "-p", json.dumps(patch)).check()
    before = live_route(stack, kube)
    result = canary(stack, "rollback", "--yes")
    assert result.code == 1, result.output
    assert "is not the program's route (nothing written)" in result.stderr, result.stderr
    assert "annotation pulumi.com/patchForce" in result.stderr
    assert live_route(stack, kube)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert config_weight(stack) == "50"


def test_no_fast_keeps_the_pulumi_up_path(stack: PulumiStack, kube: Kube) -> None:
    result = canary(stack, "rollback", "--yes", "--no-fast", "--json").check()
    assert json.loads(result.stdout)["fast"] is False
    assert route_state(live_route(stack, kube), APP).canary_weight == 0
    assert "(fast" not in stack.history()[0]["message"]
