"""canary.cli: parsing, the error boundary, exit codes and what status prints (no Pulumi, no cluster)."""

import io
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from canary.cli import commands, entry, output
from canary.cli import main as cli
from canary.ops.core.history import HistoryEntry
from canary.ops.core.state import Deployed, Replicas, RolloutState, StackState
from canary.ops.errors import ClusterUnreachable, PulumiFailed, Refused, UsageProblem
from canary.ops.pulumi.stack import Release
from canary.release.validate import ConfigError
from canary.route_state import RouteState
from tests.unit.helpers import release_settings

V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--stack", "dev", "--cwd", "/p", "--json"],
        ["--stack", "dev", "--cwd", "/p", "--json", "status"],
        ["--stack", "dev", "status", "--cwd", "/p", "--json"],
    ],
)
def test_shared_options_go_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.build_parser().parse_args(argv)
    assert (args.command, args.stack, args.cwd, args.json) == ("status", "dev", Path("/p"), True)


def test_command_options() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["history", "--plot", "w.png"]).plot == Path("w.png")
    assert parser.parse_args(["preview", "--markdown"]).markdown is True
    assert parser.parse_args(["step", "-y"]).yes is True


@pytest.mark.parametrize("argv", [[], ["bogus"], ["status", "--nope"], ["history", "--plot"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, _, err = run(argv)
    assert code == 2 and "usage: canary" in err


def test_help_exits_0() -> None:
    code, out, _ = run(["--help"])
    assert code == 0 and "exit codes: 0 done, 1 refused or failed, 2 usage, 3 internal error" in out


class FakeRelease:
    name = "dev"
    project = "gateway-canary"


@pytest.fixture
def fail_with(monkeypatch: pytest.MonkeyPatch):
    """Make the command raise `error` once the release is open."""

    def install(error: BaseException) -> None:
        monkeypatch.setattr(Release, "open", classmethod(lambda cls, cwd, stack: FakeRelease()))

        def handler(release: Any, args: Any, printer: Any) -> int:
            raise error

        monkeypatch.setitem(commands.COMMANDS, "status", handler)

    return install


def test_a_refusal_exits_1_with_its_reason(fail_with) -> None:
    fail_with(Refused("refusing to step: canary already gets 100% of traffic"))
    code, out, err = run(["status"])
    assert (
        code == 1 and err == "canary: refusing to step: canary already gets 100% of traffic\n" and out == ""
    )


def test_a_refusal_in_json_mode_is_also_json(fail_with) -> None:
    fail_with(Refused("no"))
    code, out, _ = run(["status", "--json"])
    assert code == 1 and json.loads(out) == {"ok": False, "refused": "no"}


def test_pulumi_errors_are_printed_in_full(fail_with) -> None:
    detail = (
        "\n code: 255\n stdout: Updating (dev):\n  error: 1 error occurred\n stderr: error: update failed"
    )
    fail_with(PulumiFailed("pulumi up", detail))
    code, _, err = run(["status"])
    assert code == 1
    assert "canary: pulumi up failed:" in err and detail in err


def test_config_errors_exit_1(fail_with) -> None:
    fail_with(ConfigError([("canaryWeight", "canaryWeight: '2o' is not allowed: a percent")]))
    code, _, err = run(["status"])
    assert code == 1 and "canaryWeight: '2o' is not allowed" in err


def test_usage_problems_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cls: Any, cwd: Path, stack: str | None) -> None:
        raise UsageProblem(f"no Pulumi.yaml in {cwd}: pass --cwd with the project directory")

    monkeypatch.setattr(Release, "open", classmethod(refuse))
    code, _, err = run(["status", "--cwd", "/nowhere"])
    assert code == 2 and "no Pulumi.yaml in /nowhere" in err


def test_no_terminal_and_no_yes_means_no(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    err = io.StringIO()
    printer = output.Printer(False, io.StringIO(), err)
    assert commands.ask(cli.build_parser().parse_args(["step"]), printer, "Go?") is False
    assert "pass --yes" in err.getvalue()
    assert commands.ask(cli.build_parser().parse_args(["step", "--yes"]), printer, "Go?") is True


def rollout_state(**overrides: Any) -> RolloutState:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values: dict[str, Any] = {
        "stack": "dev",
        "project": "gateway-canary",
        "config": None,
        "config_error": None,
        "state": StackState(
            Deployed("canary 25%", Decimal(25), V1, V2, "web", "ns"),
            "urn",
            RouteState(75, 25, ("x-canary", "true"), Decimal(0), "7", 3),
        ),
        "last_update": HistoryEntry(
            "update",
            "succeeded",
            f"canary 5% -> 25% ({V2}) [by Alice]",
            when,
            when.replace(second=8),
            {},
            {"git.author": "Commit Author"},
            {"update": 1},
        ),
        "live_route": RouteState(75, 25, ("x-canary", "true"), Decimal(0), "7", 3),
        "live_error": None,
        "replicas": {"stable": Replicas(2, 2), "canary": Replicas(1, 1)},
    }
    values.update(overrides)
    return RolloutState(**values)


def test_status_lines() -> None:
    assert output.status_lines(rollout_state()) == [
        "stack        dev (project gateway-canary)",
        "phase        canary 25%",
        "weights      stable 75%, canary 25%",
        f"images       stable {V1}, canary {V2}",
        "replicas     stable 2/2 ready carrying 75%, canary 1/1 ready carrying 25%",
        "header rule  x-canary: true -> canary",
        "mirror       off",
        "live route   ns/web: weights stable 75 / canary 25 (canary 25%), generation 3",
        f"last update  2026-01-02 03:04:05 UTC, update succeeded in 3s, by Alice: 'canary 5% -> 25% ({V2})'",
    ]


def test_status_says_drift_plainly() -> None:
    lines = output.status_lines(
        rollout_state(live_route=RouteState(50, 50, ("x-canary", "true"), Decimal(0), "9", 4))
    )
    assert lines[-1] == "DRIFT: live route sends 50% to canary, stack says 25%"


def test_status_of_a_stack_never_deployed_and_of_an_unreachable_cluster() -> None:
    never = output.status_lines(
        rollout_state(state=StackState(None, None, None), last_update=None, replicas={})
    )
    assert never[1] == "phase        not deployed (no stack outputs): run `pulumi up`"
    assert never[-1] == "last update  none"
    down = output.status_lines(rollout_state(live_route=None, live_error="connection refused", replicas={}))
    assert "live route   ns/web: cannot read: connection refused" in down
    assert not any(line.startswith("DRIFT") for line in down)


def test_status_json_is_machine_readable() -> None:
    data = output.status_json(rollout_state())
    json.dumps(data)
    assert data["deployed"]["canaryPercent"] == "25"
    assert data["liveRoute"]["headerRule"] == {"name": "x-canary", "value": "true"}
    assert data["lastUpdate"]["by"] == "Alice"
    assert data["drift"] == []


# --- the error boundary: every failure a message and an exit code -----------------------------------------


class UnreachableCluster:
    def route(self, *_: Any) -> None:
        raise ClusterUnreachable("cannot read httproute.gateway.networking.k8s.io ns/web from the apiserver")


class RollbackRelease(FakeRelease):
    """A stack at canary 50% whose apiserver does not answer; records any config write."""

    def __init__(self) -> None:
        self.live = UnreachableCluster()
        self.writes: list[dict[str, str]] = []

    def config(self) -> Any:
        return release_settings(appName="web", namespace="ns", canaryImage=V2, canaryWeight="50")

    def stack_state(self) -> StackState:
        deployed = Deployed("canary 50%", Decimal(50), V1, V2, "web", "ns")
        return StackState(deployed, "urn:route", None)

    def set_config(self, updates: dict[str, str]) -> None:
        self.writes.append(updates)


def test_rollback_with_the_apiserver_unreachable_is_a_message_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = RollbackRelease()
    monkeypatch.setattr(Release, "open", classmethod(lambda cls, cwd, stack: release))
    # The CLI's stack lock needs a selected stack in the checkout (a fresh clone has none); it has its own
    # tests (tests/unit/ops/team/test_lock.py, tests/integration/test_teams.py).
    monkeypatch.setattr(entry, "hold_stack", lambda args, hold: None)
    code, out, err = run(["rollback", "--yes", "--no-fast"])
    assert code == 1
    assert err.startswith("canary: cannot read httproute") and "Traceback" not in err + out
    assert release.writes == [], "no config was changed"
    code, out, _ = run(["rollback", "--yes", "--no-fast", "--json"])
    assert code == 1 and json.loads(out)["ok"] is False


def test_an_unexpected_error_is_reported_as_a_bug_without_a_traceback(fail_with) -> None:
    fail_with(ValueError("boom"))
    code, out, err = run(["status"])
    assert code == 3
    assert (
        err
        == "canary: internal error: ValueError: boom (a bug in canary; CANARY_DEBUG=1 prints the traceback)\n"
    )
    assert out == ""


def test_canary_debug_shows_the_traceback(fail_with, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_DEBUG", "1")
    fail_with(ValueError("boom"))
    code, _, err = run(["status"])
    assert code == 3 and "Traceback (most recent call last)" in err and "ValueError: boom" in err


def test_interrupted_exits_130(fail_with) -> None:
    fail_with(KeyboardInterrupt())
    code, _, err = run(["status"])
    assert (code, err) == (130, "canary: interrupted\n")


def test_sigterm_ends_a_command_as_ctrl_c_does_and_exits_143(monkeypatch: pytest.MonkeyPatch) -> None:
    """`kill PID` (SIGTERM) raises in the running command, so its interrupt handlers run (a running update is
    interrupted once, the lock released); main restores SIGTERM's handler when it returns."""
    seen: list[str] = []

    def handler(release: Any, args: Any, printer: Any) -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt as interrupt:  # what deadline.run_with_deadline and the rollback catch
            seen.append(type(interrupt).__name__)
            raise
        return 0

    monkeypatch.setattr(Release, "open", classmethod(lambda cls, cwd, stack: FakeRelease()))
    monkeypatch.setitem(commands.COMMANDS, "status", handler)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run(["status"])
    assert (code, err, seen) == (143, "canary: terminated (SIGTERM)\n", ["Terminated"])
    assert signal.getsignal(signal.SIGTERM) is before


class HistoryRelease(FakeRelease):
    def history(self) -> list[HistoryEntry]:
        return []

    def defaults(self) -> dict[str, str]:
        return {}


def test_history_plot_without_matplotlib_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(Release, "open", classmethod(lambda cls, cwd, stack: HistoryRelease()))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run(["history", "--plot", str(tmp_path / "w.png")])
    assert code == 2
    assert "--plot needs matplotlib" in err and "gateway-canary[plot]" in err and "Traceback" not in err
    assert not (tmp_path / "w.png").exists()


def test_status_says_when_the_gateway_refuses_the_live_route() -> None:
    refused = RouteState(
        95, 5, ("x-canary", "true"), Decimal(0), "7", 3, "Accepted=False, NotAllowedByListeners"
    )
    lines = output.status_lines(rollout_state(live_route=refused))
    assert "REFUSED: the gateway refuses generation 3: Accepted=False, NotAllowedByListeners" in lines
    assert output.status_json(rollout_state(live_route=refused))["liveRoute"]["refusal"].startswith(
        "Accepted"
    )
    assert not any(line.startswith("REFUSED") for line in output.status_lines(rollout_state()))
