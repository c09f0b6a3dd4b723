"""The apiserver stops in the middle of an update: the update fails cleanly, and once the apiserver is back
the next `pulumi up` converges with no manual state surgery.

What really happens (seen on this cluster, explained in canary/ops/pulumi/deadline.py): the Kubernetes
provider fills
its watch caches before a readiness wait starts its clock, so when the apiserver dies at that moment
`pulumi up` waits for it forever and rolloutTimeout never fires. One interrupt ends it cleanly. The tests
show both ways users get that interrupt: `canary promote` (like step and rollback) sends it by itself at
its deadline, and a person running plain `pulumi up` presses Ctrl-C once (SIGINT).

These tests kill a kube-apiserver (etcd, kwok and the controllers keep running, as in a control-plane
outage), so they run on a private cluster of their own (scripts/cluster.sh with GATEWAY_CANARY_CLUSTER_DIR),
never on the shared one other tests are using.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.route_state import route_state
from tests.integration.harness import (
    REPO,
    Kube,
    PulumiStack,
    assert_converged,
    assert_stable_only,
    release_stack,
    run,
    unique,
    wait_for,
)

APP = "outage"
V1 = "registry.example/outage:1.0.0"
V2, V3 = (f"registry.example/outage:{v}-late-ready" for v in ("1.1.0", "1.2.0"))
"""`late-ready` (a test hook of the local cluster, scripts/testbed/stages.py): these pods turn Ready 15 s
late, so the rollouts the tests interrupt are surely still waiting when the apiserver is killed (an instant
Ready could finish the rollout first)."""
CANARY = str(REPO / ".venv" / "bin" / "canary")
DEADLINE = 30
"""`canary promote --deadline`: short, so the test is quick, and long enough for the update to reach the
Deployment on a busy machine. The CLI's default is rolloutTimeout + 900 s."""
STUCK = 10
"""How long the Ctrl-C test watches `pulumi up` stay stuck before pressing Ctrl-C."""


class PrivateCluster:
    """A second local cluster (own etcd, apiserver, kwok) in a temporary directory."""

    def __init__(self, env: dict[str, str], where: Path) -> None:
        self.env = {
            **env,
            "GATEWAY_CANARY_CLUSTER_DIR": str(where),
            "GATEWAY_CANARY_CLUSTER_NAME": unique("gc-outage"),
            "KUBECONFIG": str(where / "kubeconfig"),
        }
        self.kube = Kube(self.env)

    def script(self, command: str) -> None:
        run(["bash", "scripts/cluster.sh", command], self.env, REPO, timeout=300).check()

    def is_up(self) -> bool:
        return self.kube.run("get", "--raw", "/readyz").code == 0


@pytest.fixture(scope="module")
def cluster(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    private = PrivateCluster(env, tmp_path_factory.mktemp("private-cluster"))
    private.script("up")
    yield private
    private.script("down")


@pytest.fixture
def stack(cluster: PrivateCluster, tmp_path: Path) -> Iterator[PulumiStack]:
    """Stable V1 and canary V2 at 0%, deployed on the private cluster.

    rolloutTimeout stays at its default (600 s), so nothing but an interrupt can end a stuck update early."""
    config = {
        "appName": APP,
        "stableImage": V1,
        "canaryImage": V2,
        "stableReplicas": "1",
        "canaryReplicas": "1",
    }
    s = release_stack(cluster.env, tmp_path, "outage", config)
    s.up(message="deploy").check()
    yield s
    if not cluster.is_up():
        cluster.script("start-apiserver")
    s.destroy()


def kill_apiserver_when(cluster: PrivateCluster, stack: PulumiStack, track: str, image: str) -> None:
    """Kill the apiserver as soon as it shows the update writing `image` into the track's Deployment: the
    provider is then about to wait for that rollout."""
    ns = str(stack.outputs()["namespace"])

    def written() -> bool:
        dep = cluster.kube.get("deployment", f"{APP}-{track}", ns)
        return dep is not None and dep["spec"]["template"]["spec"]["containers"][0]["image"] == image

    wait_for(written, timeout=120, what=f"the update to write {image} into {APP}-{track}")
    cluster.script("kill-apiserver")


def assert_failed_cleanly(cluster: PrivateCluster, stack: PulumiStack) -> None:
    """The interrupted update is in history as failed and left no pending operation; then the apiserver
    comes back. (That it released the lock shows next: the tests' plain `pulumi up` would be refused.)"""
    history = stack.history()
    assert [h["result"] for h in history] == ["failed", "succeeded"], history
    state = json.loads(stack.pulumi("stack", "export").check().stdout)
    assert not state["deployment"].get("pending_operations"), state["deployment"]["pending_operations"]
    cluster.script("start-apiserver")


def test_canary_promote_interrupts_a_stuck_update_at_its_deadline(
    cluster: PrivateCluster, stack: PulumiStack
) -> None:
    argv = [CANARY, "promote", "--yes", "--deadline", str(DEADLINE), "--cwd", str(stack.project_dir)]
    promote = subprocess.Popen(
        [*argv, "--stack", stack.name],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        kill_apiserver_when(cluster, stack, "stable", V2)
        output, _ = promote.communicate(timeout=DEADLINE + 180)
    finally:
        promote.kill()
    assert promote.returncode == 1, output
    assert f"still running {DEADLINE}s after it started, so it was interrupted" in output, output
    assert "stack lock is released" in output, output
    assert_failed_cleanly(cluster, stack)

    # No cancel, no refresh, no import: the next plain `pulumi up` finishes the promote.
    stack.up(message="after the outage").check()
    ns = str(stack.outputs()["namespace"])
    stable, route = assert_stable_only(cluster.kube, APP, ns, V2)
    assert route_state(route, APP).canary_weight is None, route["spec"]
    assert stable["status"].get("availableReplicas") == 1, stable
    stack.preview("--expect-no-changes", "--refresh").check()


def test_one_ctrl_c_ends_a_stuck_pulumi_up_cleanly(cluster: PrivateCluster, stack: PulumiStack) -> None:
    stack.set_config({"canaryImage": V3})
    up = stack.start_up()
    try:
        kill_apiserver_when(cluster, stack, "canary", V3)
        with pytest.raises(subprocess.TimeoutExpired):
            up.wait(timeout=STUCK)  # stuck: the 600 s rolloutTimeout cannot be what ends it
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=120)
    finally:
        up.kill()
    assert up.returncode != 0, output
    assert "cancelled" in output, output
    assert_failed_cleanly(cluster, stack)

    stack.up(message="after the outage").check()
    assert_converged(stack, cluster.kube, APP, canary_weight=0)
