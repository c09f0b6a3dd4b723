"""Faults lose nothing: a canary that never gets ready, a killed `pulumi`, two updates at once, and a
hand-edited route.

Each test deploys a release, breaks something in the middle of a real `pulumi up`, then follows the
recovery docs/reliability.md documents and checks that the stack converges: the live objects match the
config, a `pulumi preview --expect-no-changes` passes, and stack history still has every earlier update.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.route_state import route_state, split_rule_index
from tests.integration.harness import (
    ROUTE,
    Kube,
    PulumiStack,
    assert_converged,
    descendants,
    kill_all,
    release_stack,
    wait_for,
)

APP = "faulty"
V1, V2 = "registry.example/faulty:1.0.0", "registry.example/faulty:1.1.0"


@pytest.fixture
def stack(env: dict[str, str], tmp_path: Path) -> Iterator[PulumiStack]:
    """A deployed stable release (one replica) on its own stack and namespace."""
    s = release_stack(env, tmp_path, "fault", {"appName": APP, "stableImage": V1, "stableReplicas": "1"})
    s.up(message="deploy stable").check()
    yield s
    s.destroy()


def namespace_of(stack: PulumiStack) -> str:
    return str(stack.outputs()["namespace"])


def test_canary_that_never_becomes_ready_fails_the_update_and_moves_no_traffic(
    stack: PulumiStack, kube: Kube
) -> None:
    """The local cluster never readies pods of an image containing "never-ready" (scripts/cluster.sh)."""
    ns = namespace_of(stack)
    before = kube.get(ROUTE, APP, ns)
    assert before is not None
    stack.set_config(
        {"canaryImage": "registry.example/faulty:never-ready", "canaryWeight": "5", "rolloutTimeout": "15"}
    )
    result = stack.up()
    assert result.code != 0, result.output
    assert f"{APP}-canary" in result.output and "timed out" in result.output.lower(), result.output

    after = kube.get(ROUTE, APP, ns)
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"], "the route was written"
    assert route_state(after, APP).canary_percent == 0
    assert stack.history()[0]["result"] == "failed"


def test_killed_pulumi_is_recovered_by_the_documented_steps(stack: PulumiStack, kube: Kube) -> None:
    ns = namespace_of(stack)
    stack.set_config({"canaryImage": V2, "canaryWeight": "5"})
    proc = stack.start_up()
    wait_for(lambda: kube.get("deployment", f"{APP}-canary", ns) is not None, what="canary Deployment")
    plugins = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # Pulumi starts its plugins in process groups of their own: the kill orphans its language host and
    # provider, which a crashed machine would not keep either; the test leaves nothing running behind it.
    kill_all(plugins)

    # The lock of the killed update is still there: nothing else may write this stack until a human says so.
    refused = stack.up()
    assert refused.code != 0 and "locked" in refused.output, refused.output

    # Documented recovery (docs/reliability.md): cancel removes the dead update's lock; refresh reconciles
    # the state with the cluster, adopting the objects the killed update had already created; up converges.
    stack.pulumi("cancel", "--yes").check()
    state = json.loads(stack.pulumi("stack", "export").check().stdout)
    pending = state["deployment"].get("pending_operations") or []
    print("pending operations after the kill:", [(p["type"], p["resource"]["urn"]) for p in pending])
    stack.pulumi("refresh", "--yes", "--skip-preview", *_pending_imports(pending)).check()
    stack.up(message="after kill").check()
    assert_converged(stack, kube, APP, canary_weight=5)
    messages = [h.get("message") for h in reversed(stack.history()) if h["kind"] == "update"]
    assert messages[0] == "deploy stable" and messages[-1] == "after kill", messages


def _pending_imports(pending: list[dict]) -> list[str]:
    """`--import-pending-creates URN --import-pending-creates ID` for every interrupted create: the flag is
    repeated, URN then ID, and a Kubernetes object's ID is namespace/name."""
    args: list[str] = []
    for op in pending:
        if op["type"] != "creating":
            continue
        res = op["resource"]
        meta = res["inputs"]["metadata"]
        args += [
            "--import-pending-creates",
            res["urn"],
            "--import-pending-creates",
            f"{meta['namespace']}/{meta['name']}",
        ]
    return args


def test_second_concurrent_update_is_refused_by_the_stack_lock(stack: PulumiStack, kube: Kube) -> None:
    ns = namespace_of(stack)
    stack.set_config({"canaryImage": V2})
    first = stack.start_up()
    wait_for(lambda: kube.get("deployment", f"{APP}-canary", ns) is not None, what="first update to start")
    second = stack.up()
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output
    assert second.code != 0 and "locked" in second.output, second.output

    history = stack.history()
    assert [h["result"] for h in history] == ["succeeded", "succeeded"], history
    assert_converged(stack, kube, APP, canary_weight=0)


def test_hand_edited_route_is_detected_and_restored(stack: PulumiStack, kube: Kube) -> None:
    ns = namespace_of(stack)
    stack.set_config({"canaryImage": V2, "canaryWeight": "25"})
    stack.up().check()
    split = split_rule_index(kube.get(ROUTE, APP, ns) or {}, APP)
    patch = [
        {"op": "replace", "path": f"/spec/rules/{split}/backendRefs/0/weight", "value": 50},
        {"op": "replace", "path": f"/spec/rules/{split}/backendRefs/1/weight", "value": 50},
    ]
    kube.run("patch", ROUTE, APP, "-n", ns, "--type=json", "-p", json.dumps(patch)).check()
    assert route_state(kube.get(ROUTE, APP, ns), APP).canary_weight == 50  # type: ignore[arg-type]

    # A refreshing preview sees the drift (this is what CI shows a reviewer)...
    drift = stack.preview("--refresh", "--diff").check()
    assert "weight" in drift.stdout and "50" in drift.stdout, drift.stdout
    # ...and the next update with refresh puts the declared weights back.
    stack.pulumi("up", "--yes", "--skip-preview", "--refresh").check()
    state = route_state(kube.get(ROUTE, APP, ns), APP)  # type: ignore[arg-type]
    assert (state.stable_weight, state.canary_weight) == (75, 25)
