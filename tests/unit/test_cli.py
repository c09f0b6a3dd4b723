"""canary.cli: argument parsing, exit codes and what status prints (no Pulumi, no cluster)."""

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from canary import cli, rollout
from canary.config import ConfigError
from canary.history import HistoryEntry
from canary.live import RouteState
from canary.rollout import (
    Deployed,
    PulumiFailed,
    Refused,
    Replicas,
    RolloutState,
    StackState,
    UsageProblem,
)

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
    assert code == 0 and "exit codes: 0 done, 1 refused or failed, 2 usage" in out


class FakeRelease:
    name = "dev"
    project = "gateway-canary"


@pytest.fixture
def fail_with(monkeypatch: pytest.MonkeyPatch):
    """Make the command raise `error` once the release is open."""

    def install(error: BaseException) -> None:
        monkeypatch.setattr(rollout.Release, "open", classmethod(lambda cls, cwd, stack: FakeRelease()))

        def handler(release: Any, args: Any, printer: Any) -> int:
            raise error

        monkeypatch.setitem(cli.COMMANDS, "status", handler)

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

    monkeypatch.setattr(rollout.Release, "open", classmethod(refuse))
    code, _, err = run(["status", "--cwd", "/nowhere"])
    assert code == 2 and "no Pulumi.yaml in /nowhere" in err


def test_no_terminal_and_no_yes_means_no(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    err = io.StringIO()
    printer = cli.Printer(False, io.StringIO(), err)
    assert cli.ask(cli.build_parser().parse_args(["step"]), printer, "Go?") is False
    assert "pass --yes" in err.getvalue()
    assert cli.ask(cli.build_parser().parse_args(["step", "--yes"]), printer, "Go?") is True


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
            f"canary 5% -> 25% ({V2})",
            when,
            when.replace(second=8),
            {},
            {"git.author": "Alice"},
            {"update": 1},
        ),
        "live_route": RouteState(75, 25, ("x-canary", "true"), Decimal(0), "7", 3),
        "live_error": None,
        "replicas": {"stable": Replicas(2, 2), "canary": Replicas(1, 1)},
    }
    values.update(overrides)
    return RolloutState(**values)


def test_status_lines() -> None:
    assert cli.status_lines(rollout_state()) == [
        "stack        dev (project gateway-canary)",
        "phase        canary 25%",
        "weights      stable 75%, canary 25%",
        f"images       stable {V1}, canary {V2}",
        "replicas     stable 2/2 ready, canary 1/1 ready",
        "header rule  x-canary: true -> canary",
        "mirror       off",
        "live route   ns/web: weights stable 75 / canary 25 (canary 25%), generation 3",
        f"last update  2026-01-02 03:04:05 UTC, update succeeded in 3s, by Alice: 'canary 5% -> 25% ({V2})'",
    ]


def test_status_says_drift_plainly() -> None:
    lines = cli.status_lines(
        rollout_state(live_route=RouteState(50, 50, ("x-canary", "true"), Decimal(0), "9", 4))
    )
    assert lines[-1] == "DRIFT: live route sends 50% to canary, stack says 25%"


def test_status_of_a_stack_never_deployed_and_of_an_unreachable_cluster() -> None:
    never = cli.status_lines(rollout_state(state=StackState(None, None, None), last_update=None, replicas={}))
    assert never[1] == "phase        not deployed (no stack outputs): run `pulumi up`"
    assert never[-1] == "last update  none"
    down = cli.status_lines(rollout_state(live_route=None, live_error="connection refused", replicas={}))
    assert "live route   ns/web: cannot read: connection refused" in down
    assert not any(line.startswith("DRIFT") for line in down)


def test_status_json_is_machine_readable() -> None:
    data = cli.status_json(rollout_state())
    json.dumps(data)
    assert data["deployed"]["canaryWeight"] == "25"
    assert data["liveRoute"]["headerRule"] == {"name": "x-canary", "value": "true"}
    assert data["lastUpdate"]["by"] == "Alice"
    assert data["drift"] == []
