"""canary.ops.gates.run.run's loop with a scripted series of verdicts: what it steps, records and rolls back.

Stand-ins for the stack and Prometheus (unit tests only; tests/integration/test_gates.py runs it for real)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from canary.ops.core.plan import Change
from canary.ops.core.settings import parse_ops_settings
from canary.ops.errors import Refused
from canary.ops.gates import run as gated
from canary.ops.gates.prometheus import Empty, Prometheus, Value
from canary.ops.gates.verdict import Figures, Verdict, judge
from canary.ops.rollout import flows
from canary.ops.rollout.flows import Planned
from tests.unit.helpers import project_defaults

OPS = parse_ops_settings(project_defaults())
SETTINGS = replace(OPS.analysis, prometheus_url="http://127.0.0.1:9", interval=1)


def verdict(**overrides: Any) -> Verdict:
    base = dict(
        window=10,
        canary_requests=Value(100),
        canary_success=Value(100),
        canary_p99=Value(5),
        stable_requests=Value(300),
        stable_success=Value(100),
        stable_p99=Value(5),
    )
    return judge(SETTINGS, Figures(**{**base, **overrides}))


PASS, FAIL = verdict(), verdict(canary_success=Value(80))
NO_DATA, ERROR = verdict(canary_requests=Empty()), verdict(canary_p99=Empty())


class Deployed:
    namespace, app_name = "ns", "web"

    def __init__(self, percent: Decimal) -> None:
        self.canary_percent = percent


class Fake:
    """The calls gated.run makes, recorded; `verdicts` are answered in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: Decimal, verdicts: list[Verdict]) -> None:
        self.percent = start
        self.steps: list[str] = []
        self.rollbacks: list[str] = []
        self.finished: list[str | None] = []
        self.verdicts = list(verdicts)
        gate = gated.Gate(SETTINGS, Prometheus(SETTINGS.prometheus_url, 1), Deployed(start))  # type: ignore[arg-type]
        monkeypatch.setattr(gated, "gate_of", lambda release: gate)
        monkeypatch.setattr(gated, "require_reachable", lambda g: None)
        monkeypatch.setattr(gated, "since_last_update", lambda release: None)
        monkeypatch.setattr(gated, "check", lambda g, since: self.verdicts.pop(0))
        monkeypatch.setattr(gated, "step_change", self.step_change)
        monkeypatch.setattr(flows, "apply_change", self.apply)
        monkeypatch.setattr(gated, "roll_back", self.roll_back)
        monkeypatch.setattr(gated, "finish", self.finish)

    def ops_settings(self) -> Any:
        return OPS

    def stack_state(self) -> Any:
        return self

    deployed = None

    def step_change(self, release: Any, note: str | None) -> Planned:
        target = next(p for p in OPS.canary_plan if p > self.percent)
        message = f"canary {self.percent}% -> {target}%" + (f"; {note}" if note else "")
        return Planned(
            Change("step", {"canaryWeight": str(target)}, message, self.percent, target), None, None
        )

    def apply(self, release: Any, planned: Planned, **kw: Any) -> None:
        self.steps.append(planned.change.message)
        self.percent = planned.change.to_percent

    def roll_back(self, release: Any, note: str, **kw: Any) -> float:
        self.rollbacks.append(note)
        return 0.5

    def finish(self, release: Any, percent: Decimal, note: str | None, **kw: Any) -> gated.RunEnd:
        self.finished.append(note)
        return gated.RunEnd("at-100", percent, kw["verdicts"], note or "")


def go(fake: Fake, promote: bool = False) -> gated.RunEnd:
    lines: list[str] = []
    end = gated.run(
        fake,  # type: ignore[arg-type]
        promote=promote,
        confirm=lambda report: True,
        deadline=60,
        say=lines.append,
        on_output=lambda line: None,
        on_error=lambda line: None,
        sleep=lambda seconds: None,
    )
    return end


def test_a_healthy_walk_steps_on_passes_only_and_records_each_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = Fake(monkeypatch, Decimal(0), [NO_DATA, PASS, ERROR, PASS, PASS, PASS])
    end = go(fake)
    assert end.outcome == "at-100" and end.verdicts == 6
    assert [s.split(";")[0] for s in fake.steps] == [
        "canary 0% -> 5%",
        "canary 5% -> 25%",
        "canary 25% -> 50%",
        "canary 50% -> 100%",
    ]
    assert "; " not in fake.steps[0]  # nothing to judge at 0%
    assert all("analysis at" in s and ": pass: canary 100 req" in s for s in fake.steps[1:])
    assert (
        fake.finished
        and fake.finished[0] is not None
        and fake.finished[0].startswith("analysis at 100%: pass")
    )


def test_a_failure_rolls_back_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(monkeypatch, Decimal(0), [FAIL])
    end = go(fake)
    assert end.outcome == "rolled-back" and end.rollback_safe_seconds == 0.5
    assert fake.steps == ["canary 0% -> 5%"]
    assert fake.rollbacks[0].startswith("analysis at 5%: FAIL (success rate 80.00% < min 99%")
    assert "failureLimit 0" in fake.rollbacks[0]


def test_a_run_continues_from_the_deployed_weight_checking_it_first(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(monkeypatch, Decimal(25), [PASS, PASS, PASS])
    go(fake)
    assert [s.split(";")[0] for s in fake.steps] == ["canary 25% -> 50%", "canary 50% -> 100%"]
    assert fake.steps[0].split("; ")[1].startswith("analysis at 25%: pass")


@pytest.mark.parametrize(("outcome", "verdict_"), [("no-data", NO_DATA), ("error", ERROR)])
def test_too_many_no_data_or_errors_stop_with_traffic_as_it_is(
    monkeypatch: pytest.MonkeyPatch, outcome: str, verdict_: Verdict
) -> None:
    fake = Fake(monkeypatch, Decimal(5), [verdict_] * 20)
    end = go(fake)
    assert (end.outcome, end.percent, fake.steps, fake.rollbacks) == (outcome, Decimal(5), [], [])


def test_prometheus_unreachable_refuses_before_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(monkeypatch, Decimal(0), [])

    def unreachable(gate: Any) -> None:
        raise Refused("refusing: Prometheus at http://127.0.0.1:9 unreachable")

    monkeypatch.setattr(gated, "require_reachable", unreachable)
    with pytest.raises(Refused):
        go(fake)
    assert fake.steps == [] and fake.rollbacks == []


def test_a_grpc_release_is_refused_with_what_the_gates_cannot_read() -> None:
    """podinfo's gRPC server exports no request metrics: the gated commands say so, before anything runs."""
    from canary.ops.core.state import Deployed as StateDeployed
    from canary.ops.core.state import StackState

    class GrpcRelease:
        name = "dev"

        def ops_settings(self) -> Any:
            raw = project_defaults()
            analysis = {**json.loads(raw["analysis"]), "prometheusUrl": "http://127.0.0.1:9090"}
            return parse_ops_settings({**raw, "analysis": json.dumps(analysis)})

        def stack_state(self) -> StackState:
            deployed = StateDeployed("canary 25%", Decimal(25), "a:1", "a:2", "web", "ns", "GRPCRoute")
            return StackState(deployed, "urn:route", None)

    with pytest.raises(Refused) as refused:
        gated.gate_of(GrpcRelease())  # type: ignore[arg-type]
    assert str(refused.value) == gated.GRPC_UNREADABLE
    assert "podinfo's gRPC server does not export" in str(refused.value)
