"""The `canary` command: argument parsing and printing only; the decisions are in canary.rollout.

    canary status | step | rollback | promote | history [--plot FILE] | preview [--markdown]
           [--stack NAME] [--cwd DIR] [--yes] [--json]

Exit codes: 0 done, 1 refused or failed, 2 usage. Errors from Pulumi are printed in full.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from canary import history as timeline
from canary import rollout
from canary.config import CanaryReleaseArgs, ConfigError
from canary.history import HistoryEntry, format_duration, format_time, updated_by
from canary.rollout import (
    Applied,
    Change,
    Deployed,
    PreviewReport,
    PulumiFailed,
    Refused,
    Release,
    RolloutState,
    UsageProblem,
    show_percent,
)
from canary.weights import format_percent

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The parser: shared options are accepted before or after the subcommand."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--stack", "-s", default=argparse.SUPPRESS, help="stack name (default: the selected stack)"
    )
    shared.add_argument(
        "--cwd", type=Path, default=argparse.SUPPRESS, help="Pulumi project directory (default: .)"
    )
    shared.add_argument(
        "--yes", "-y", action="store_true", default=argparse.SUPPRESS, help="do not ask for confirmation"
    )
    shared.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )

    parser = argparse.ArgumentParser(
        prog="canary",
        parents=[shared],
        description="Canary releases over Pulumi stack config: status, step, rollback, promote, "
        "history, preview.",
        epilog="exit codes: 0 done, 1 refused or failed, 2 usage",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "status", parents=[shared], help="live rollout state: phase, weights, images, replicas, drift"
    )
    updating = argparse.ArgumentParser(add_help=False)
    updating.add_argument(
        "--deadline",
        type=positive_seconds,
        metavar="SECONDS",
        help="interrupt `pulumi up` (as Ctrl-C does) if it is still running after this long "
        "(default: rolloutTimeout + 900)",
    )
    commands.add_parser(
        "step",
        parents=[shared, updating],
        help="move the canary to the next weight of canaryPlan (with preview)",
    )
    commands.add_parser(
        "rollback",
        parents=[shared, updating],
        help="canary weight to 0 now (route only; canary pods stay warm)",
    )
    commands.add_parser(
        "promote",
        parents=[shared, updating],
        help="make the canary image the stable image and remove the canary",
    )
    history = commands.add_parser("history", parents=[shared], help="the rollout timeline from stack history")
    history.add_argument("--plot", type=Path, metavar="FILE.png", help="draw canary weight over time")
    preview = commands.add_parser(
        "preview", parents=[shared], help="what the next `pulumi up` does to traffic, and the full diff"
    )
    preview.add_argument("--markdown", action="store_true", help="print a block for a pull-request comment")
    return parser


def positive_seconds(text: str) -> float:
    """--deadline's value: a number of seconds above zero."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):  # also refuses "nan"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return seconds


def deadline_of(args: argparse.Namespace, config: CanaryReleaseArgs) -> float:
    """--deadline, or the default for this config (rollout.update_deadline)."""
    given: float | None = getattr(args, "deadline", None)
    return given if given is not None else rollout.update_deadline(config)


class Printer:
    """Where output goes: results to stdout; Pulumi's own output and notes to stderr in --json mode."""

    def __init__(self, as_json: bool, out: TextIO, err: TextIO) -> None:
        self.as_json = as_json
        self.out = out
        self.err = err

    def say(self, text: str = "") -> None:
        """Human output; none in --json mode, where stdout carries the JSON result only."""
        if not self.as_json:
            print(text, file=self.out, flush=True)

    def pulumi_line(self, line: str) -> None:
        """Pulumi's own output, streamed: stdout, or stderr in --json mode."""
        print(line, file=self.err if self.as_json else self.out, flush=True)

    def error_line(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def result(self, data: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2), file=self.out, flush=True)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    printer = Printer(getattr(args, "json", False), out, err)
    try:
        release = Release.open(Path(getattr(args, "cwd", Path("."))).resolve(), getattr(args, "stack", None))
        handler: Callable[[Release, argparse.Namespace, Printer], int] = COMMANDS[args.command]
        return handler(release, args, printer)
    except UsageProblem as problem:
        print(f"canary: {problem}", file=err)
        return EXIT_USAGE
    except Refused as refusal:
        print(f"canary: {refusal}", file=err)
        printer.result({"ok": False, "refused": str(refusal)})
        return EXIT_REFUSED
    except ConfigError as problem:
        print(f"canary: {problem}", file=err)
        printer.result({"ok": False, "error": str(problem)})
        return EXIT_REFUSED
    except PulumiFailed as failure:
        if failure.streamed:
            print(f"canary: {failure.what} failed (its output is above); in full:", file=err)
        else:
            print(f"canary: {failure.what} failed:", file=err)
        print(failure.detail, file=err)
        printer.result({"ok": False, "error": f"{failure.what} failed", "detail": failure.detail})
        return EXIT_REFUSED
    except OSError as problem:
        print(f"canary: {problem} (are pulumi and kubectl on PATH?)", file=err)
        printer.result({"ok": False, "error": str(problem)})
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("canary: interrupted", file=err)
        return 130


# --- status ------------------------------------------------------------------------------------------------


def status_lines(state: RolloutState) -> list[str]:
    """The status block, one fact per line, then DRIFT / PENDING / CONFIG notes."""
    lines = [f"stack        {state.stack} (project {state.project})"]
    deployed = state.deployed
    if deployed is None:
        lines.append("phase        not deployed (no stack outputs): run `pulumi up`")
    else:
        canary = deployed.canary_image
        lines += [
            f"phase        {deployed.phase}",
            f"weights      stable {show_percent(deployed.stable_percent)}"
            + (f", canary {show_percent(deployed.canary_percent)}" if canary else ""),
            f"images       stable {deployed.stable_image}" + (f", canary {canary}" if canary else ""),
            f"replicas     {_replicas_text(state)}",
        ]
        live = state.live_route
        where = f"{deployed.namespace}/{deployed.route_name}"
        if state.live_error is not None:
            lines.append(f"live route   {where}: cannot read: {state.live_error}")
        elif live is None:
            lines.append(f"live route   {where}: not found")
        else:
            header = "off" if live.header_rule is None else f"{live.header_rule[0]}: {live.header_rule[1]}"
            mirror = "off" if live.mirror_percent == 0 else f"{show_percent(live.mirror_percent)} to canary"
            split = f"stable {live.stable_weight}" + (
                f" / canary {live.canary_weight}" if live.canary_weight is not None else ""
            )
            lines += [
                f"header rule  {header}" + (" -> canary" if live.header_rule else ""),
                f"mirror       {mirror}",
                f"live route   {where}: weights {split} "
                f"(canary {show_percent(live.canary_percent)}), generation {live.generation}",
            ]
    lines.append(f"last update  {_last_update_text(state)}")
    lines += state.drift
    if state.pending:
        lines.append(
            "PENDING: stack config differs from the last update: "
            + "; ".join(state.pending)
            + " (see `canary preview`)"
        )
    if state.config_error is not None:
        lines.append(f"CONFIG: {state.config_error}")
    return lines


def _replicas_text(state: RolloutState) -> str:
    parts = []
    for track, replicas in state.replicas.items():
        parts.append(
            f"{track} not found" if replicas is None else f"{track} {replicas.ready}/{replicas.desired} ready"
        )
    return ", ".join(parts) or "unknown"


def _last_update_text(state: RolloutState) -> str:
    last = state.last_update
    if last is None:
        return "none"
    return (
        f"{format_time(last.start)}, {last.kind} {last.result} in {format_duration(last.duration)}, "
        f"by {updated_by(last.environment)}: {last.message or '(no message)'!r}"
    )


def status_json(state: RolloutState) -> dict[str, Any]:
    deployed, live, last = state.deployed, state.live_route, state.last_update
    return {
        "ok": True,
        "stack": state.stack,
        "deployed": None
        if deployed is None
        else {
            "phase": deployed.phase,
            "stableWeight": format_percent(deployed.stable_percent),
            "canaryWeight": format_percent(deployed.canary_percent),
            "stableImage": deployed.stable_image,
            "canaryImage": deployed.canary_image or "",
            "namespace": deployed.namespace,
            "routeName": deployed.route_name,
        },
        "replicas": {
            track: None if r is None else {"ready": r.ready, "desired": r.desired}
            for track, r in state.replicas.items()
        },
        "liveRoute": None
        if live is None
        else {
            "stableWeight": live.stable_weight,
            "canaryWeight": live.canary_weight,
            "canaryPercent": show_percent(live.canary_percent).rstrip("%"),
            "headerRule": None
            if live.header_rule is None
            else {"name": live.header_rule[0], "value": live.header_rule[1]},
            "mirrorPercent": format_percent(live.mirror_percent),
            "generation": live.generation,
        },
        "liveError": state.live_error,
        "lastUpdate": None
        if last is None
        else {
            "kind": last.kind,
            "result": last.result,
            "start": last.start.isoformat(),
            "durationSeconds": None if last.duration is None else last.duration.total_seconds(),
            "by": updated_by(last.environment),
            "message": last.message,
        },
        "drift": state.drift,
        "pending": state.pending,
        "configError": None if state.config_error is None else str(state.config_error),
    }


def cmd_status(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    state = release.read()
    for line in status_lines(state):
        printer.say(line)
    printer.result(status_json(state))
    return EXIT_OK


# --- step / promote / rollback ----------------------------------------------------------------------------


def preview_lines(report: PreviewReport) -> list[str]:
    return [report.diff.rstrip(), "", f"Traffic: {report.summary}"]


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
        "fromWeight": format_percent(change.from_percent),
        "toWeight": format_percent(change.to_percent),
        "updateSeconds": round(applied.update_seconds, 3),
        "preview": None if applied.preview is None else applied.preview.summary,
        "status": status_json(state),
    }


def _run_change(
    release: Release,
    args: argparse.Namespace,
    printer: Printer,
    plan: Callable[[str, CanaryReleaseArgs, Deployed | None, HistoryEntry | None], Change],
) -> int:
    config = release.config()
    state = release.stack_state()
    change = plan(release.name, config, state.deployed, release.last_update())
    printer.say(f"{change.action}: {change.message}")
    applied = rollout.apply_change(
        release,
        change,
        state.deployed,
        confirm=confirmer(args, printer, f"Run `pulumi up` for {change.message!r}?"),
        deadline=deadline_of(args, config),
        on_output=printer.pulumi_line,
        on_error=printer.error_line,
    )
    after = release.read()
    printer.say("")
    printer.say(f"Done in {applied.update_seconds:.1f}s: {change.message}")
    for line in status_lines(after):
        printer.say(line)
    printer.result(_applied_json(applied, after))
    return EXIT_OK


def cmd_step(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    return _run_change(release, args, printer, rollout.plan_step)


def cmd_promote(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    return _run_change(release, args, printer, rollout.plan_promote)


def cmd_rollback(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    config = release.config()
    state = release.stack_state()
    deployed = state.deployed
    live = None
    if deployed is not None:
        live = release.live.route(deployed.app_name, deployed.namespace, deployed.route_name)
    change = rollout.plan_rollback(release.name, config, deployed, live)
    if change is None:
        printer.say("canary already at 0% (stack, config and live route): nothing to roll back")
        printer.result({"ok": True, "action": "rollback", "message": None, "alreadyAtZero": True})
        return EXIT_OK
    printer.say(f"rollback: {change.message} (route only, canary pods stay warm)")
    if not ask(args, printer, f"Roll back now ({change.message!r})?"):
        raise Refused("not confirmed: nothing changed")
    timing = rollout.rollback(
        release,
        change,
        state,
        deadline=deadline_of(args, config),
        on_output=printer.pulumi_line,
        on_error=printer.error_line,
    )
    printer.say("")
    if timing.live_zero_seconds is None:
        printer.say(
            f"Update done in {timing.update_seconds:.1f}s, but the live route was not seen at canary 0%: "
            "check `canary status`"
        )
    else:
        printer.say(
            f"Rolled back: live route at canary 0% {timing.live_zero_seconds:.1f}s after the rollback "
            f"started (pulumi up took {timing.update_seconds:.1f}s)"
        )
    seen = timing.live_zero_seconds
    printer.result(
        {
            "ok": seen is not None,
            "action": "rollback",
            "message": change.message,
            "fromWeight": format_percent(change.from_percent),
            "toWeight": "0",
            "updateSeconds": round(timing.update_seconds, 3),
            "liveZeroSeconds": None if seen is None else round(seen, 3),
        }
    )
    return EXIT_OK if timing.live_zero_seconds is not None else EXIT_REFUSED


# --- history / preview ------------------------------------------------------------------------------------


def cmd_history(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    rows = timeline.timeline(release.history(), release.project, release.defaults())
    if rows:
        printer.say(timeline.render_table(rows))
    else:
        printer.say(f"stack {release.name} has no updates yet")
    if args.plot is not None:
        timeline.plot(rows, args.plot, f"canary weight, stack {release.name}")
        printer.say(f"plot written to {args.plot}")
    printer.result(
        {
            "ok": True,
            "stack": release.name,
            "rows": [timeline.row_json(row) for row in rows],
            "plot": None if args.plot is None else str(args.plot),
        }
    )
    return EXIT_OK


def cmd_preview(release: Release, args: argparse.Namespace, printer: Printer) -> int:
    state = release.stack_state()
    report = release.preview(state.deployed)
    if args.markdown:
        printer.say(rollout.render_markdown(report).rstrip("\n"))
    else:
        for line in preview_lines(report):
            printer.say(line)
    printer.result(
        {
            "ok": True,
            "stack": report.stack,
            "summary": report.summary,
            "changes": report.changes,
            "canaryWeight": {
                "now": None if report.before is None else format_percent(report.before.canary_percent),
                "next": format_percent(report.after.canary_weight),
            },
            "markdown": rollout.render_markdown(report),
            "diff": report.diff,
        }
    )
    return EXIT_OK


COMMANDS: dict[str, Callable[[Release, argparse.Namespace, Printer], int]] = {
    "status": cmd_status,
    "step": cmd_step,
    "rollback": cmd_rollback,
    "promote": cmd_promote,
    "history": cmd_history,
    "preview": cmd_preview,
}
