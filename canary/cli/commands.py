"""The `canary` commands, one function each: read, plan (canary.ops), confirm, act, print.

Each returns its exit code or raises one of the errors canary.cli.main maps to one (the error boundary).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from canary.cli import timeline as timeline_output
from canary.cli.output import (
    Printer,
    preview_lines,
    render_markdown,
    show_status,
    status_json,
    status_lines,
    verify_json,
    verify_lines,
)
from canary.gateway_api import ROUTE_KIND
from canary.ops.core import plan
from canary.ops.core.plan import Change, PreviewReport
from canary.ops.core.state import RolloutState
from canary.ops.errors import UsageProblem
from canary.ops.fast.write import SafeWrite
from canary.ops.gates import run as gated
from canary.ops.gates.verdict import Outcome, Verdict
from canary.ops.pulumi.stack import Applied, Release, update_deadline
from canary.ops.rollout import flows, rollback, timeline
from canary.ops.rollout.status import read_status
from canary.ops.verify import flow as verify_flow
from canary.ops.verify.split import VERSION_PATH, check_confidence, parse_header
from canary.ops.verify.traffic import MAX_CONCURRENCY, MAX_REQUESTS
from canary.release.settings import ReleaseSettings
from canary.weights import format_percent

EXIT_OK, EXIT_REFUSED = 0, 1
EXIT_NO_DATA, EXIT_ANALYSIS_ERROR = 4, 5
"""The metric gates' own outcomes (a failed check is EXIT_REFUSED)."""
VERDICT_EXIT = {
    Outcome.PASS: EXIT_OK,
    Outcome.FAIL: EXIT_REFUSED,
    Outcome.NO_DATA: EXIT_NO_DATA,
    Outcome.ERROR: EXIT_ANALYSIS_ERROR,
}

Command = Callable[[Release, argparse.Namespace, Printer], int]


def deadline_of(args: argparse.Namespace, config: ReleaseSettings) -> float:
    """--deadline, or the default for this config (update_deadline)."""
    given: float | None = getattr(args, "deadline", None)
    return given if given is not None else update_deadline(config)


def cmd_status(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    show_status(read_status(release), printer)
    return EXIT_OK


def confirmer(args: argparse.Namespace, printer: Printer, question: str) -> Callable[[PreviewReport], bool]:
    """Show the preview, then ask (or take --yes). Without a terminal and without --yes, the answer is no."""

    def confirm(report: PreviewReport) -> bool:
        for line in preview_lines(report):
            printer.say(line)
        return ask(args, printer, question)

    return confirm


def ask(args: argparse.Namespace, printer: Printer, question: str) -> bool:
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        printer.error_line(f"{question} -- no terminal to ask on: pass --yes to confirm")
        return False
    print(f"{question} [y/N] ", end="", file=printer.err, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _applied_json(applied: Applied, state: RolloutState) -> dict[str, Any]:
    change = applied.change
    return {
        "ok": True,
        "action": change.action,
        "message": change.message,
        "fromPercent": format_percent(change.from_percent),
        "toPercent": format_percent(change.to_percent),
        "updateSeconds": round(applied.update_seconds, 3),
        "preview": None if applied.preview is None else applied.preview.summary,
        "status": status_json(state),
    }


def _run_change(
    release: Release,
    args: argparse.Namespace,
    printer: Printer,
    planner: flows.Planner,
    note: str | None = None,
) -> int:
    planned = flows.plan_change(release, planner, note)
    change = planned.change
    printer.say(f"{change.action}: {change.message}")
    applied = flows.apply_change(
        release,
        planned,
        confirm=confirmer(args, printer, f"Run `pulumi up` for {change.message!r}?"),
        deadline=deadline_of(args, release.config()),
        on_output=printer.pulumi_line,
        on_error=printer.error_line,
    )
    after = read_status(release)
    printer.say("")
    printer.say(f"Done in {applied.update_seconds:.1f}s: {change.message}")
    for line in status_lines(after):
        printer.say(line)
    printer.result(_applied_json(applied, after))
    return EXIT_OK


def cmd_step(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    canary_plan = release.ops_settings().canary_plan
    planner = functools.partial(plan.plan_step, canary_plan=canary_plan)
    note = None
    if getattr(args, "gate", False):
        planner(release.name, release.config(), release.stack_state().deployed, release.last_update())
        gate = gated.gate_of(release)
        gated.require_reachable(gate)
        verdict = gated.check(gate, gated.since_last_update(release))
        percent = gate.deployed.canary_percent
        printer.say(f"analysis at {format_percent(percent)}%: {verdict.summary()}")
        if verdict.outcome is not Outcome.PASS:
            printer.result({"ok": False, "stepped": False, "verdict": verdict_json(verdict)})
            printer.error_line(
                f"canary: not stepping: the analysis says {verdict.outcome.value}; nothing changed"
            )
            return VERDICT_EXIT[verdict.outcome]
        note = gated.verdict_note(percent, verdict)
    return _run_change(release, args, printer, planner, note)


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "outcome": verdict.outcome.value,
        "summary": verdict.summary(),
        "window": verdict.window,
        "numbers": verdict.numbers,
        "checks": [{"name": c.name, "status": c.status, "text": c.text} for c in verdict.checks],
    }


def cmd_analyze(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    """The verdict now, over the data since the last update (at most analysis.window)."""
    gate = gated.gate_of(release)
    verdict = gated.check(gate, gated.since_last_update(release))
    printer.say(f"analysis at canary {format_percent(gate.deployed.canary_percent)}%: {verdict.summary()}")
    for c in verdict.checks:
        printer.say(f"  {c.status:<7} {c.text}")
    printer.result({"ok": verdict.outcome is Outcome.PASS, "verdict": verdict_json(verdict)})
    return VERDICT_EXIT[verdict.outcome]


def cmd_run(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    """Walk canaryPlan with a metric gate between steps (canary.ops.gates.run.run)."""
    end = gated.run(
        release,
        promote=args.promote,
        confirm=confirmer(args, printer, "Run `pulumi up` for this step?"),
        deadline=deadline_of(args, release.config()),
        say=printer.say,
        on_output=printer.pulumi_line,
        on_error=printer.error_line,
    )
    printer.say("")
    if end.outcome == "rolled-back":
        seconds = (
            ""
            if end.rollback_safe_seconds is None
            else f" (live route at 0% in {end.rollback_safe_seconds:.2f}s)"
        )
        printer.say(f"Rolled back to canary 0%{seconds}: {end.detail}")
    elif end.outcome in ("no-data", "error"):
        printer.say(f"Stopped ({end.outcome}): {end.detail}")
    else:
        printer.say(f"Done ({end.outcome}) after {end.verdicts} check(s): {end.detail}")
    printer.result(
        {
            "ok": end.outcome in ("at-100", "at-last-step", "promoted"),
            "outcome": end.outcome,
            "percent": format_percent(end.percent),
            "checks": end.verdicts,
            "detail": end.detail,
            "rollbackSafeSeconds": end.rollback_safe_seconds,
        }
    )
    codes = {"rolled-back": EXIT_REFUSED, "no-data": EXIT_NO_DATA, "error": EXIT_ANALYSIS_ERROR}
    return codes.get(end.outcome, EXIT_OK)


def cmd_promote(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    return _run_change(release, args, printer, plan.plan_promote)


def cmd_rollback(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    """Canary weight 0 (canary.ops.rollout.rollback.roll_back decides how); this prints what it did. With
    --yes the fast write already ran before the stack was opened (canary.cli.main)."""
    report = RollbackPrinter(printer)
    done = rollback.roll_back(
        release,
        report=report,
        fast=not getattr(args, "no_fast", False),
        early=getattr(args, "fast_write", None),
        early_not_fast=getattr(args, "fast_unavailable", None),
        confirm=lambda change: ask(args, printer, f"Roll back now ({change.message!r})?"),
        deadline=getattr(args, "deadline", None),
        on_output=printer.pulumi_line,
        on_error=printer.error_line,
    )
    if done.change is None:
        printer.say("canary already at 0% (stack, config and live route): nothing to roll back")
        printer.result({"ok": True, "action": "rollback", "message": None, "alreadyAtZero": True})
        return EXIT_OK
    change = done.change
    printer.say("")
    seen = done.live_zero_seconds
    if done.written is not None:
        printer.say(
            f"Rolled back: live route at canary 0% {done.written.safe_seconds:.2f}s after the rollback "
            f"started; recorded in stack history by pulumi up in {done.update_seconds:.1f}s "
            f"({change.message!r})"
        )
    elif seen is None:
        printer.say(
            f"Update done in {done.update_seconds:.1f}s, but the live route was not seen at canary 0%: "
            "check `canary status`"
        )
    else:
        printer.say(
            f"Rolled back: live route at canary 0% {seen:.1f}s after the rollback started (pulumi up took "
            f"{done.update_seconds:.1f}s)"
        )
    result: dict[str, Any] = {
        "ok": seen is not None,
        "action": "rollback",
        "fast": done.written is not None,
        "message": change.message,
        "fromPercent": format_percent(change.from_percent),
        "toPercent": "0",
        "updateSeconds": None if done.update_seconds is None else round(done.update_seconds, 3),
        "liveZeroSeconds": None if seen is None else round(seen, 3),
    }
    if done.written is not None:
        result["generation"] = done.written.generation
    printer.result(result)
    return EXIT_OK if seen is not None else EXIT_REFUSED


class RollbackPrinter:
    """Prints what canary.ops.rollout.rollback.roll_back reports, when it reports it."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.announced = False

    def planned(self, change: Change) -> None:
        self.printer.say(f"rollback: {change.message} (route first; canary pods stay warm)")
        self.announced = True

    def not_fast(self, why: str) -> None:
        self.printer.say(f"fast path not available ({why}): rolling back through `pulumi up`")

    def safe(self, written: SafeWrite) -> None:
        if not self.announced:
            self.planned(written.change)
        self.printer.say(
            f"Traffic safe: live route {route_of(written)} at canary 0% {written.safe_seconds:.2f}s after "
            f"the rollback started (server-side apply as {written.route.field_manager}, generation "
            f"{written.generation_before} -> {written.generation}); recording it through Pulumi"
        )

    def record_interrupted(self, written: SafeWrite) -> None:
        self.printer.error_line(
            f"canary: traffic is safe (live route {route_of(written)} at canary 0%), but recording the "
            f"rollback was interrupted: once the interrupted update has ended, run `pulumi config set "
            f"canaryWeight 0 --stack {written.stack} && pulumi up --stack {written.stack}`"
        )


def route_of(written: SafeWrite) -> str:
    return f"{written.route.namespace}/{written.route.name}"


def cmd_history(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    rows = timeline.timeline(release.history(), release.project, release.defaults())
    if rows:
        printer.say(timeline_output.render_table(rows))
    else:
        printer.say(f"stack {release.name} has no updates yet")
    if args.plot is not None:
        timeline_output.plot(rows, args.plot, f"canary weight, stack {release.name}")
        printer.say(f"plot written to {args.plot}")
    printer.result(
        {
            "ok": True,
            "stack": release.name,
            "rows": [timeline_output.row_json(row) for row in rows],
            "plot": None if args.plot is None else str(args.plot),
        }
    )
    return EXIT_OK


def cmd_preview(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    state = release.stack_state()
    report = release.preview(state.deployed)
    if args.markdown:
        printer.say(render_markdown(report).rstrip("\n"))
    else:
        for line in preview_lines(report):
            printer.say(line)
    printer.result(
        {
            "ok": True,
            "stack": report.stack,
            "summary": report.summary,
            "changes": report.changes,
            "canaryPercent": {
                "now": None if report.before is None else format_percent(report.before.canary_percent),
                "next": format_percent(report.after.canary_percent),
            },
            "pods": report.pods,
            "markdown": render_markdown(report),
            "diff": report.diff,
        }
    )
    return EXIT_OK


def cmd_verify(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    options = verify_options(args)
    deployed = release.stack_state().deployed
    kind = deployed.route_kind if deployed is not None else ROUTE_KIND
    results = verify_flow.verify(verify_flow.stack_outputs(release.stack), release.live, options, kind)
    for index, result in enumerate(results):
        if index:
            printer.say()
        for line in verify_lines(result):
            printer.say(line)
    ok = all(result.verdict.ok for result in results)
    data = verify_json(results[0])
    if len(results) > 1:
        data = {**data, "ok": ok, "gateways": [verify_json(result) for result in results]}
    printer.result(data)
    return EXIT_OK if ok else EXIT_REFUSED


def verify_options(args: argparse.Namespace) -> verify_flow.VerifyOptions:
    """verify's flags as options; a bad value is a one-line usage error (exit 2)."""
    if not 1 <= args.requests <= MAX_REQUESTS:
        raise UsageProblem(f"--requests must be between 1 and {MAX_REQUESTS}, not {args.requests}")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise UsageProblem(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, not {args.concurrency}")
    path = VERSION_PATH if args.path is None else args.path
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise UsageProblem(f"--path must start with '/' and have no whitespace, not {path!r}")
    if args.url and (args.gateway or args.path is not None):
        raise UsageProblem("--url names the whole target: leave out --gateway and --path with it")
    try:
        headers = dict(parse_header(text) for text in args.header)
    except ValueError as err:
        raise UsageProblem(f"--header {err}") from None
    try:
        confidence = Decimal(args.confidence) / 100
        check_confidence(confidence)
    except (ValueError, ArithmeticError):
        raise UsageProblem(
            f"--confidence {args.confidence!r} is not a percent from 50 to below 100 (for example 99.9)"
        ) from None
    return verify_flow.VerifyOptions(
        requests=args.requests,
        url=args.url,
        gateway=args.gateway,
        path=path,
        host=args.host,
        headers=headers,
        version_field=args.version_field,
        confidence=confidence,
        concurrency=args.concurrency,
        timeout=args.timeout,
        time_limit=args.time_limit,
        allow_any_target=args.allow_any_target,
    )


COMMANDS: dict[str, Command] = {
    "status": cmd_status,
    "step": cmd_step,
    "rollback": cmd_rollback,
    "promote": cmd_promote,
    "history": cmd_history,
    "preview": cmd_preview,
    "verify": cmd_verify,
    "analyze": cmd_analyze,
    "run": cmd_run,
}
