"""The `canary` CLI as users run it: the console script in a subprocess, on a real stack and apiserver.

The walk class shares one stack and runs in order (pytest keeps definition order): deploy, status, a
declined step, step, preview as markdown, the pending-config refusal, drift, rollback with its timing,
step at 100, promote, history and its plot, step with no canary. The failed-update refusal needs its own
namespace (a ResourceQuota makes the apiserver reject the canary Service), so it has its own stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.ops.core.history import split_actor
from canary.route_state import route_state, split_rule_index
from tests.integration.harness import (
    CANARY,
    Kube,
    PulumiStack,
    Result,
    assert_stable_only,
    canary,
    changes,
    is_available,
    release_project,
    release_stack,
    unique,
)

APP = "web"
V1 = "registry.example/web:1.0.0"
V2 = "registry.example/web:1.1.0"


def refused(result: Result) -> str:
    """Assert the CLI refused (exit 1) and return what it said."""
    assert result.code == 1, f"expected a refusal (exit 1), got {result.code}\n{result.output}"
    return result.stderr


def live_weights(kube: Kube, ns: str) -> tuple[int, int | None]:
    route = kube.get(ROUTE, APP, ns)
    assert route is not None, f"HTTPRoute {ns}/{APP} not found"
    state = route_state(route, APP)
    return state.stable_weight, state.canary_weight


def last_update(stack: PulumiStack) -> dict[str, Any]:
    return stack.history()[0]


def message_of(update: dict[str, Any]) -> str:
    """An update's message without the actor trailer every update of the CLI carries
    (canary.ops.team.actor)."""
    message, actor = split_actor(update["message"])
    assert actor, f"no actor recorded in {update['message']!r}"
    return message


@pytest.fixture(scope="class")
def walk(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    namespace = unique("gc-cli")
    config = {"appName": APP, "namespace": namespace, "stableImage": V1, "canaryImage": V2}
    stack = release_stack(
        env, tmp_path_factory.mktemp("cli"), "cli", {**config, "stableReplicas": "2", "canaryReplicas": "1"}
    )
    yield stack, namespace
    stack.destroy()


@pytest.mark.usefixtures("walk")
class TestCliWalk:
    def test_01_status_of_a_header_only_canary(self, walk) -> None:
        stack, _ = walk
        stack.up(message="deploy canary header-only").check()
        out = canary(stack, "status").check().stdout
        assert "phase        canary deployed, header-only" in out
        assert "weights      stable 100%, canary 0%" in out
        assert f"images       stable {V1}, canary {V2}" in out
        assert "replicas     stable 2/2 ready carrying 100%, canary 1/1 ready carrying 0%" in out
        assert "header rule  x-canary: true -> canary" in out
        assert "mirror       off" in out
        assert "'deploy canary header-only'" in out
        assert "DRIFT" not in out

        data = json.loads(canary(stack, "status", "--json").check().stdout)
        assert data["deployed"]["canaryPercent"] == "0"
        assert data["replicas"]["stable"] == {"ready": 2, "desired": 2, "sharePercent": "100"}
        assert data["replicas"]["canary"] == {"ready": 1, "desired": 1, "sharePercent": "0"}
        assert data["liveRoute"]["headerRule"] == {"name": "x-canary", "value": "true"}
        assert data["lastUpdate"]["result"] == "succeeded"
        assert data["drift"] == []
        # The quick path (the stack's files, the apiserver directly) reads what the Automation API reads.
        assert json.loads(canary(stack, "status", "--json", "--no-fast").check().stdout) == data

    def test_02_python_dash_m_is_the_same_command(self, walk) -> None:
        stack, _ = walk
        out = canary(stack, "status", command=[sys.executable, "-m", "canary"]).check().stdout
        assert "phase        canary deployed, header-only" in out

    def test_03_step_without_yes_and_no_terminal_changes_nothing(self, walk, kube: Kube) -> None:
        stack, ns = walk
        stack_file = stack.project_dir / f"Pulumi.{stack.name}.yaml"
        before = stack_file.read_text()
        updates = len(stack.history())
        err = refused(canary(stack, "step"))
        assert "pass --yes" in err and "not confirmed" in err
        assert stack_file.read_text() == before, "a declined step must put the config back"
        assert len(stack.history()) == updates
        assert live_weights(kube, ns) == (100, 0)

    def test_04_step_moves_to_the_first_weight_of_the_plan(self, walk, kube: Kube) -> None:
        stack, ns = walk
        res = canary(stack, "step", "--yes").check()
        assert "Traffic: canary 0% -> 5%, stable 100% -> 95%, 1 resource updated" in res.stdout
        assert "phase        canary 5%" in res.stdout, "the new state is printed after the update"
        assert live_weights(kube, ns) == (95, 5)
        latest = last_update(stack)
        assert message_of(latest) == f"canary 0% -> 5% ({V2})"
        assert changes(latest) == {"update": 1}

    def test_05_preview_markdown_says_what_the_next_up_does_to_traffic(self, walk) -> None:
        stack, _ = walk
        stack.set_config({"canaryWeight": "25"})
        out = canary(stack, "preview", "--markdown").check().stdout
        assert out.startswith(f"### Canary preview: stack `{stack.name}`")
        assert "**canary 5% -> 25%, stable 95% -> 75%, 1 resource updated**" in out
        assert "| canary weight | 5% | 25% |" in out
        assert "| stable weight | 95% | 75% |" in out
        assert "<details>" in out and "```diff" in out
        assert "weight: 95 => 75" in out and "weight: 5 => 25" in out, out

        data = json.loads(canary(stack, "preview", "--json").check().stdout)
        assert data["summary"] == "canary 5% -> 25%, stable 95% -> 75%, 1 resource updated"
        assert data["changes"] == {"update": 1}

    def test_06_step_refuses_while_config_has_an_undeployed_weight(self, walk) -> None:
        stack, _ = walk
        err = refused(canary(stack, "step", "--yes"))
        assert "canaryWeight 25 but the last update deployed 5" in err
        stack.set_config({"canaryWeight": "5"})

    def test_07_status_reports_a_route_patched_by_hand(self, walk, kube: Kube) -> None:
        stack, ns = walk
        stack.set_config({"canaryWeight": "50"})
        stack.up(message="canary 5% -> 50% by hand").check()
        split = split_rule_index(kube.get(ROUTE, APP, ns) or {}, APP)
        kube.run(
            "patch",
            ROUTE,
            APP,
            "-n",
            ns,
            "--type=json",
            "-p",
            json.dumps(
                [
                    {"op": "replace", "path": f"/spec/rules/{split}/backendRefs/0/weight", "value": 20},
                    {"op": "replace", "path": f"/spec/rules/{split}/backendRefs/1/weight", "value": 80},
                ]
            ),
        ).check()
        out = canary(stack, "status").check().stdout
        assert "DRIFT: live route sends 80% to canary, stack says 50%" in out
        data = json.loads(canary(stack, "status", "--json").check().stdout)
        assert data["drift"] == ["DRIFT: live route sends 80% to canary, stack says 50%"]
        assert json.loads(canary(stack, "status", "--json", "--no-fast").check().stdout) == data

    def test_08_rollback_updates_only_the_route_and_prints_its_timing(self, walk, kube: Kube) -> None:
        stack, ns = walk
        # The `pulumi up` path; the fast path (the default) has test_fast_rollback.py.
        res = canary(stack, "rollback", "--yes", "--no-fast").check()
        assert "Rolled back: live route at canary 0% " in res.stdout
        assert "s after the rollback started (pulumi up took " in res.stdout
        assert "Previewing" not in res.stdout, "rollback skips the preview"
        assert live_weights(kube, ns) == (100, 0)
        canary_dep = kube.get("deployment", f"{APP}-canary", ns)
        assert is_available(canary_dep), "canary pods must stay warm after a rollback"
        latest = last_update(stack)
        assert message_of(latest) == "rollback canary 50% -> 0% (live route was at 80%)"
        assert changes(latest) == {"update": 1}
        assert latest["environment"].get("pulumi.flag.target") == "set", "the update targets the route"
        out = canary(stack, "status").check().stdout
        assert "DRIFT" not in out and "phase        canary deployed, header-only" in out

        again = json.loads(canary(stack, "rollback", "--yes", "--json").check().stdout)
        assert again["alreadyAtZero"] is True

    def test_09_step_refuses_at_100(self, walk, kube: Kube) -> None:
        stack, ns = walk
        stack.set_config({"canaryWeight": "100"})
        stack.up(message="canary 0% -> 100% by hand").check()
        err = refused(canary(stack, "step", "--yes"))
        assert "already gets 100% of traffic" in err and "canary promote" in err
        assert live_weights(kube, ns) == (0, 100)

    def test_10_promote_makes_the_canary_stable_in_one_update(self, walk, kube: Kube) -> None:
        stack, ns = walk
        updates = len(stack.history())
        res = canary(stack, "promote", "--yes").check()
        assert f"stable image {V1} -> {V2}" in res.stdout
        assert "phase        stable" in res.stdout
        assert len(stack.history()) == updates + 1, "promote is one update"
        assert message_of(last_update(stack)) == f"promote {V2}"
        assert_stable_only(kube, APP, ns, V2)
        assert kube.get("service", f"{APP}-canary", ns) is None
        assert stack.outputs()["canaryImage"] == ""

    def test_11_history_table_and_plot(self, walk, tmp_path: Path) -> None:
        stack, _ = walk
        plot = tmp_path / "weights.png"
        out = canary(stack, "history", "--plot", str(plot)).check().stdout
        lines = out.splitlines()
        assert lines[0].split() == ["#", "when", "who", "weight", "image", "result", "duration", "message"]
        assert any("0% -> 5%" in line and f"canary 0% -> 5% ({V2})" in line for line in lines), out
        assert any("50% -> 0%" in line and "rollback canary 50% -> 0%" in line for line in lines), out
        assert any("100% -> 0%" in line and f"promote {V2}" in line for line in lines), out
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plot.stat().st_size > 10_000

        rows = json.loads(canary(stack, "history", "--json").check().stdout)["rows"]
        steps = [(r["fromPercent"], r["toPercent"]) for r in rows]
        assert steps == [(None, "0"), ("0", "5"), ("5", "50"), ("50", "0"), ("0", "100"), ("100", "0")]
        assert all(r["result"] == "succeeded" for r in rows)

    def test_12_step_refuses_without_a_canary(self, walk) -> None:
        stack, _ = walk
        err = refused(canary(stack, "step", "--yes"))
        assert "no canary is deployed (canaryImage is empty)" in err
        err = refused(canary(stack, "rollback", "--yes"))
        assert "nothing to roll back" in err


def test_step_and_promote_refuse_after_a_failed_update(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """A ResourceQuota allowing one Service makes the apiserver reject the canary Service: the update that
    deploys the canary fails, and the CLI will not move traffic on top of it."""
    ns = unique("gc-fail")
    stack = release_stack(
        env, tmp_path, "fail", {"appName": APP, "namespace": ns, "stableImage": V1, "stableReplicas": "1"}
    )
    try:
        stack.up(message="deploy stable").check()
        err = refused(canary(stack, "step", "--yes"))
        assert "no canary is deployed (canaryImage is empty)" in err

        kube.run("create", "quota", "one-service", "-n", ns, "--hard=count/services=1").check()
        stack.set_config({"canaryImage": V2})
        failed = stack.up(message="deploy canary")
        assert failed.code != 0, failed.output
        assert "exceeded quota" in failed.output
        assert last_update(stack)["result"] == "failed"

        for command in ("step", "promote"):
            err = refused(canary(stack, command, "--yes"))
            assert f"refusing to {command}: the last update" in err and "failed" in err, err
        out = canary(stack, "status").check().stdout
        assert "update failed" in out and "'deploy canary'" in out
    finally:
        kube.run("delete", "quota", "one-service", "-n", ns)
        stack.destroy()


def test_usage_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    def run(*args: str) -> Result:
        proc = subprocess.run(
            [CANARY, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
        )
        return Result([CANARY, *args], proc.returncode, proc.stdout, proc.stderr)

    assert run("bogus").code == 2
    assert run().code == 2
    empty = run("status", "--cwd", str(tmp_path))
    assert empty.code == 2 and "no Pulumi.yaml" in empty.stderr
    project = release_project(tmp_path / "project")
    missing = run("status", "--cwd", str(project), "--stack", unique("nosuch"))
    assert missing.code == 2 and "no stack named" in missing.stderr, missing.output


def test_a_bad_canary_plan_is_refused_by_the_cli_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    """canaryPlan is the CLI's setting (the program ignores it): `canary step` validates it with the same
    rules and messages, and refuses before touching the stack."""
    stack = release_stack(env, tmp_path, "plan", {"appName": APP, "canaryImage": V2})
    try:
        stack.set_config_object("canaryPlan", [25, 5, 150])
        before = stack.pulumi("config", "--json").check().stdout
        err = refused(canary(stack, "step", "--yes"))
        assert "canaryPlan: '[25, 5, 150]' is not allowed: " in err, err
        assert "strictly increasing whole percents in 1..100" in err and "Traceback" not in err
        assert stack.pulumi("config", "--json").check().stdout == before, "the config was not touched"
        assert stack.history() == [], "no update ran"
    finally:
        stack.destroy()
