"""The metric-gated commands' flows: `canary analyze`, `canary step --gate` and `canary run`.

`run` walks canaryPlan from the deployed weight. At a weight above 0 it checks every `analysis.interval`
seconds (canary.ops.gates.gate) over data from after that weight was applied, and acts on each verdict by
the run policy: enough passes -> the next step (one recorded update whose message carries the verdict that
allowed it); a failure past failureLimit -> the fast rollback to 0 (route written first, then recorded with
the failing verdict in its message), exit 1; no data or errors -> wait, and past their limits stop with
traffic as it is. Before the first step, Prometheus must answer: if not, refuse with nothing changed. At the
last step it stops at 100%, recording the last verdict in an update that changes nothing, or promotes with
`--promote`. Interrupted (Ctrl-C while it waits, or during an update as `canary step` handles it), the stack
is at a weight it recorded, and the next `run` starts from there, checking that weight again first.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from canary.gateway_api import GRPC_ROUTE_KIND
from canary.ops.core import plan
from canary.ops.core.analysis import AnalysisSettings
from canary.ops.core.plan import Change
from canary.ops.core.state import Deployed
from canary.ops.errors import Refused
from canary.ops.fast.write import SafeWrite
from canary.ops.gates.gate import Decision, RunPolicy, analyze
from canary.ops.gates.prometheus import Prometheus
from canary.ops.gates.verdict import Outcome, Verdict
from canary.ops.pulumi.stack import OnOutput, Release
from canary.ops.rollout import flows, rollback
from canary.weights import format_percent

Say = Callable[[str], None]


@dataclass(frozen=True)
class Gate:
    """What the gated commands need: the settings, the server, the release's pods."""

    settings: AnalysisSettings
    prometheus: Prometheus
    deployed: Deployed


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: `outcome` is at-100, promoted, rolled-back, no-data or error."""

    outcome: str
    percent: Decimal
    verdicts: int
    detail: str
    rollback_safe_seconds: float | None = None
    """Fast rollback: seconds from the failing verdict to the live route at 0%."""


def gate_of(release: Release) -> Gate:
    """The gate for this stack, or Refused when analysis has no Prometheus or nothing is deployed."""
    settings = release.ops_settings().analysis
    if not settings.prometheus_url:
        raise Refused(
            'analysis.prometheusUrl is "" (no Prometheus configured): set it, e.g. `pulumi config set --path '
            "analysis.prometheusUrl http://127.0.0.1:9090`"
        )
    deployed = plan.require_deployed(release.stack_state().deployed, release.name)
    if deployed.route_kind == GRPC_ROUTE_KIND:
        raise Refused(GRPC_UNREADABLE)
    return Gate(settings, Prometheus(settings.prometheus_url, settings.timeout), deployed)


GRPC_UNREADABLE = (
    "metric gates cannot judge a gRPC release yet: every verdict counts the tracks' requests in "
    "http_request_duration_seconds (canary.ops.gates.queries), which podinfo's gRPC server does not export "
    "(it has no Prometheus interceptor: docs/routes-notes.md), so every check would read no data; nothing "
    "was changed. Move traffic with `canary step` and check the split with `canary verify`"
)
"""Why `analyze`, `step --gate` and `run` refuse a release whose route is a GRPCRoute."""


def since_last_update(release: Release) -> float | None:
    """When the last update ended (wall clock): the current weight's data start there."""
    last = release.last_update()
    return None if last is None or last.end is None else last.end.timestamp()


def check(gate: Gate, since: float | None) -> Verdict:
    return analyze(
        gate.settings, gate.prometheus, gate.deployed.namespace, gate.deployed.app_name, since=since
    )


def require_reachable(gate: Gate) -> None:
    why = gate.prometheus.reachable()
    if why is not None:
        raise Refused(f"refusing: {why}. Nothing was changed (a gated step needs Prometheus to answer)")


def verdict_note(percent: Decimal, verdict: Verdict) -> str:
    return f"analysis at {format_percent(percent)}%: {verdict.summary()}"


def step_change(release: Release, note: str | None) -> flows.Planned:
    """The next step of canaryPlan (Refused at its end), its message carrying `note`."""
    canary_plan = release.ops_settings().canary_plan
    return flows.plan_change(release, functools.partial(plan.plan_step, canary_plan=canary_plan), note)


def roll_back(
    release: Release, note: str, *, deadline: float, on_output: OnOutput, on_error: OnOutput, say: Say
) -> float | None:
    """Canary to 0% now (canary.ops.rollout.rollback.roll_back decides how), its message carrying the
    failing verdict. Returns seconds until the live route read 0%."""
    done = rollback.roll_back(
        release,
        report=RunRollbackReport(say),
        note=note,
        deadline=deadline,
        on_output=on_output,
        on_error=on_error,
    )
    return 0.0 if done.change is None else done.live_zero_seconds


class RunRollbackReport:
    """What `canary run` says while its rollback runs (canary.ops.rollout.rollback.RollbackReport)."""

    def __init__(self, say: Say) -> None:
        self.say = say

    def planned(self, change: Change) -> None:
        """`canary run` said why it rolls back already."""

    def not_fast(self, why: str) -> None:
        self.say(f"fast rollback not available ({why}): rolling back through `pulumi up`")

    def safe(self, written: SafeWrite) -> None:
        self.say(
            f"traffic safe: live route at canary 0% {written.safe_seconds:.2f}s after the rollback started; "
            "recording it"
        )

    def record_interrupted(self, written: SafeWrite) -> None:
        self.say(
            "traffic is safe, but recording the rollback was interrupted: run `pulumi config set "
            f"canaryWeight 0 --stack {written.stack} && pulumi up --stack {written.stack}`"
        )


def run(
    release: Release,
    *,
    promote: bool,
    confirm: flows.Confirm,
    deadline: float,
    say: Say,
    on_output: OnOutput,
    on_error: OnOutput,
    sleep: Callable[[float], None] = time.sleep,
) -> RunEnd:
    gate = gate_of(release)
    require_reachable(gate)
    s = gate.settings
    policy = RunPolicy(s)
    plan_text = ", ".join(format_percent(p) for p in release.ops_settings().canary_plan)
    percent = gate.deployed.canary_percent
    since = since_last_update(release)
    verdicts = 0
    say(
        f"run: canary at {format_percent(percent)}%, plan [{plan_text}], a check every {s.interval}s "
        f"({s.checks_per_step} pass(es) per step; failureLimit {s.failure_limit}, "
        f"errorLimit {s.error_limit}, noDataLimit {s.no_data_limit}); Prometheus {s.prometheus_url}"
    )
    while True:
        note = None
        if percent > 0:
            while True:
                sleep(s.interval)
                verdict = check(gate, since)
                verdicts += 1
                decision = policy.decide(verdict)
                say(
                    f"[{time.strftime('%H:%M:%S')}] at {format_percent(percent)}%: {verdict.summary()} "
                    f"-> {decision.value}"
                )
                if decision is Decision.STEP:
                    note = verdict_note(percent, verdict)
                    break
                if decision is Decision.ROLLBACK:
                    note = f"{verdict_note(percent, verdict)}; {policy.why}"
                    seconds = roll_back(
                        release, note, deadline=deadline, on_output=on_output, on_error=on_error, say=say
                    )
                    return RunEnd("rolled-back", Decimal(0), verdicts, note, seconds)
                if decision is Decision.STOP:
                    outcome = "no-data" if verdict.outcome is Outcome.NO_DATA else "error"
                    return RunEnd(
                        outcome, percent, verdicts, f"{policy.why}; canary left at {format_percent(percent)}%"
                    )
        if percent >= 100 or plan.next_percent(release.ops_settings().canary_plan, percent) is None:
            return finish(
                release,
                percent,
                note,
                promote=promote,
                confirm=confirm,
                deadline=deadline,
                on_output=on_output,
                on_error=on_error,
                verdicts=verdicts,
            )
        planned = step_change(release, note)
        change = planned.change
        say(f"step: {change.message}")
        flows.apply_change(
            release,
            planned,
            confirm=confirm,
            deadline=deadline,
            on_output=on_output,
            on_error=on_error,
        )
        since = time.time()
        percent = change.to_percent
        policy.stepped()


def finish(
    release: Release,
    percent: Decimal,
    note: str | None,
    *,
    promote: bool,
    confirm: flows.Confirm,
    deadline: float,
    on_output: OnOutput,
    on_error: OnOutput,
    verdicts: int,
) -> RunEnd:
    """At the plan's last weight: promote (with the verdict in its message), or record the verdict in an
    update that changes nothing (stack history then holds every verdict of the run)."""
    if promote:
        planned = flows.plan_change(release, plan.plan_promote, note)
        flows.apply_change(
            release,
            planned,
            confirm=confirm,
            deadline=deadline,
            on_output=on_output,
            on_error=on_error,
        )
        return RunEnd("promoted", Decimal(0), verdicts, planned.change.message)
    if note is not None:
        release.up(
            f"canary stays at {format_percent(percent)}%; {note}",
            deadline=deadline,
            on_output=on_output,
            on_error=on_error,
        )
    return RunEnd("at-100" if percent >= 100 else "at-last-step", percent, verdicts, note or "")
