"""The `canary` command: argument parsing and the one error boundary; the steps before argparse are in
canary.cli.entry, the commands in canary.cli.commands.

    canary status | step [--gate] | rollback | promote [--actor NAME] | history [--plot FILE]
           | preview [--markdown]
           | verify [--requests N] [--url URL] [--host H] [--header 'x-canary: true']
           | analyze | run [--promote]
           [--stack NAME] [--cwd DIR] [--yes] [--json]

Exit codes: 0 done, 1 refused or failed (for the metric gates: a failed check), 2 usage, 3 internal error,
4 no data and 5 analysis error (analyze, run, step --gate). Every failure is a message and an exit code,
never a traceback: `main` maps each kind of failure to one (as pip's base command does) and ends with
a catch-all that names the error and how to see its traceback (CANARY_DEBUG=1). Errors from Pulumi are
printed in full.

This module (with canary.cli.entry) imports only os, sys, time and types when it loads: `canary rollback
--yes` opens its apiserver connection (canary.ops.kube.https.EarlyConnection) on main's first line, and its
TLS handshake should not wait for pathlib, contextlib, typing or argparse (about 4 ms of start-up); those
are imported where used.
"""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

from canary.cli.entry import cwd_of, first_steps, quick_rollback_values, release_lock, rollback_namespace
from canary.ops.errors import ClusterUnreachable, PulumiFailed, Refused, Terminated, UsageProblem

TYPE_CHECKING = False  # not typing's: this module imports only what `canary rollback --yes` needs (main)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, TextIO

    from canary.cli.output import Printer

    Args = argparse.Namespace | SimpleNamespace

EXIT_OK, EXIT_REFUSED = 0, 1
"""The codes canary.cli.commands returns (not imported from there: `canary rollback` writes the route before
the Automation API is imported, see canary.cli.entry)."""
EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 130, 143
__all__ = ["EXIT_OK", "EXIT_REFUSED", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser: shared options are accepted before or after the subcommand."""
    import argparse
    from pathlib import Path

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
        "history, preview, verify.",
        epilog="exit codes: 0 done, 1 refused or failed, 2 usage, 3 internal error, 4 no data, 5 analysis "
        "error (the metric gates; for them 1 is a failed check), 130 interrupted",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status", parents=[shared], help="live rollout state: phase, weights, images, replicas, drift"
    )
    status.add_argument(
        "--no-fast",
        action="store_true",
        help="read through the Automation API (without it a stack in a local backend is read from its "
        "files and the apiserver directly)",
    )
    updating = argparse.ArgumentParser(add_help=False)
    updating.add_argument(
        "--deadline",
        type=positive_seconds,
        metavar="SECONDS",
        help="interrupt `pulumi up` (as Ctrl-C does) if it is still running after this long "
        "(default: rolloutTimeout + 900)",
    )
    updating.add_argument(
        "--actor",
        metavar="NAME",
        help="who is acting, recorded in the update's message as `[by NAME]` (default: CANARY_ACTOR, else "
        "the CI job's user, else git's user.name, else the OS user)",
    )
    step = commands.add_parser(
        "step",
        parents=[shared, updating],
        help="move the canary to the next weight of canaryPlan (with preview)",
    )
    step.add_argument(
        "--gate",
        action="store_true",
        help="first check the canary's metrics at its current weight (analysis); step only on a pass",
    )
    commands.add_parser(
        "analyze",
        parents=[shared],
        help="the metric gate's verdict now: pass (0), fail (1), no data (4) or error (5), with its numbers",
    )
    run = commands.add_parser(
        "run",
        parents=[shared, updating],
        help="walk canaryPlan, checking metrics between steps; roll back to 0 on a failed check",
    )
    run.add_argument(
        "--promote", action="store_true", help="promote the canary after the last step's checks pass"
    )
    rollback = commands.add_parser(
        "rollback",
        parents=[shared, updating],
        help="canary weight to 0 now (route first; canary pods stay warm)",
    )
    rollback.add_argument(
        "--no-fast",
        action="store_true",
        help="only through `pulumi up` (without it the route the program renders at 0 is written first, "
        "then recorded through Pulumi)",
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
    add_verify_parser(commands, shared)
    return parser


def add_verify_parser(commands: Any, shared: argparse.ArgumentParser) -> None:
    """`canary verify`: real requests through the Gateway, per-version counts against the live route."""
    verify = commands.add_parser(
        "verify",
        parents=[shared],
        help="send requests through each Gateway and check the per-version split against the live route",
        description="Send N GET requests through each Gateway the route attaches to (its status.addresses[0] "
        "and --path; or one by --gateway, or --url) and "
        "compare the versions that answered with the share the live HTTPRoute intends, within an exact "
        "binomial interval. Exit 1 when the split is outside it, a request failed, or a header request "
        "missed the canary. The app must report its version (the image tag) in a JSON field, as podinfo's "
        "/version does.",
    )
    verify.add_argument("--requests", "-n", type=int, default=400, metavar="N", help="requests to send")
    verify.add_argument(
        "--gateway",
        metavar="[NAMESPACE/]NAME",
        help="only through this Gateway of the route (default: through each one, judged apart)",
    )
    verify.add_argument(
        "--path",
        help="path requested at each Gateway's address: one a split rule matches (default /version)",
    )
    verify.add_argument("--url", help="send here instead of the Gateways' addresses (default path /version)")
    verify.add_argument("--host", help="Host header (default: the route's first hostname)")
    verify.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a header to every request; when it matches the route's header rule, all must reach canary",
    )
    verify.add_argument(
        "--version-field", default="version", metavar="FIELD", help="JSON field naming the version"
    )
    verify.add_argument(
        "--confidence", default="99.9", metavar="PERCENT", help="confidence of the interval (default 99.9)"
    )
    verify.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    verify.add_argument(
        "--timeout", type=positive_seconds, default=5.0, metavar="SECONDS", help="per request"
    )
    verify.add_argument(
        "--time-limit", type=positive_seconds, default=120.0, metavar="SECONDS", help="for the whole run"
    )
    verify.add_argument(
        "--allow-any-target",
        action="store_true",
        help="send to any address (a real cluster's gateway); without it only loopback and the local "
        "test bed's own network namespaces are allowed",
    )


def positive_seconds(text: str) -> float:
    """--deadline's value: a number of seconds above zero."""
    import argparse

    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):  # also refuses "nan"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return seconds


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; whatever happens, return an exit code and leave a message, never a traceback."""
    started = time.monotonic()
    tokens = list(sys.argv[1:] if argv is None else argv)
    quick_values = quick_rollback_values(tokens)
    connection = None
    if quick_values is not None:  # the route first: its connection opens now, argparse after the write
        from canary.ops.kube.https import REQUEST_TIMEOUT, EarlyConnection

        connection = EarlyConnection(None, REQUEST_TIMEOUT)
    import contextlib  # from here on, what the connection need not wait for (module docstring)

    out, err = out or sys.stdout, err or sys.stderr
    hold = contextlib.ExitStack()
    early: BaseException | None = None
    fast_args = None
    if connection is not None and quick_values is not None:  # both set together, above
        fast_args = rollback_namespace(quick_values)
        fast_args.connection = connection
        try:
            early = first_steps(fast_args, hold, started)
        finally:
            connection.close()
            del fast_args.connection
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = build_parser().parse_args(tokens)
    except SystemExit as exit_:
        release_lock(hold, err)
        return int(exit_.code or 0)
    if fast_args is None:
        early = first_steps(args, hold, started)
    else:
        vars(args).update(vars(fast_args))

    from canary.cli.output import Printer
    from canary.release.validate import ConfigError

    printer = Printer(getattr(args, "json", False), out, err)

    def fail(code: int, message: str, **data: object) -> int:
        print(f"canary: {message}", file=err)
        printer.result({"ok": False, **data})
        return code

    from canary.cli.signals import command_signals

    restore_signals = None
    try:
        restore_signals = command_signals()
        if early is not None:
            raise early
        quick = _read_quickly(args, printer)
        if quick is not None:
            return quick
        from canary.cli.commands import COMMANDS
        from canary.ops.pulumi.stack import Release

        release = Release.open(cwd_of(args), getattr(args, "stack", None))
        release.actor = getattr(args, "actor_name", None)
        return COMMANDS[args.command](release, args, printer)
    except UsageProblem as problem:
        return fail(EXIT_USAGE, str(problem), error=str(problem))
    except (Refused, ConfigError, ClusterUnreachable) as refusal:
        key = "refused" if isinstance(refusal, Refused) else "error"
        return fail(EXIT_REFUSED, str(refusal), **{key: str(refusal)})
    except PulumiFailed as failure:
        told = "failed (its output is above); in full:" if failure.streamed else "failed:"
        print(f"canary: {failure.what} {told}", file=err)
        print(failure.detail, file=err)
        printer.result({"ok": False, "error": f"{failure.what} failed", "detail": failure.detail})
        return EXIT_REFUSED
    except OSError as problem:
        return fail(EXIT_REFUSED, f"{problem} (are pulumi and kubectl on PATH?)", error=str(problem))
    except Terminated:
        return fail(EXIT_TERMINATED, "terminated (SIGTERM)", error="terminated")
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, "interrupted", error="interrupted")
    except Exception as bug:  # the boundary: anything else is a bug, still reported as a message
        if os.environ.get("CANARY_DEBUG") == "1":
            import traceback

            traceback.print_exc(file=err)
        return fail(
            EXIT_INTERNAL,
            f"internal error: {type(bug).__name__}: {bug} (a bug in canary; CANARY_DEBUG=1 prints the "
            "traceback)",
            error=f"{type(bug).__name__}: {bug}",
        )
    finally:
        if restore_signals is not None:
            restore_signals()
        release_lock(hold, err)


def _read_quickly(args: Args, printer: Printer) -> int | None:
    """`canary status` of a stack in a local backend, from its files and the apiserver directly
    (canary.ops.rollout.status.read_local; no `pulumi` process once the stack is named); None when only the
    Automation API can read it, or with --no-fast."""
    if args.command != "status" or args.no_fast:
        return None
    from canary.cli.output import show_status
    from canary.ops.pulumi.local_backend import FastUnavailable
    from canary.ops.rollout.status import read_local

    try:
        state = read_local(cwd_of(args), getattr(args, "stack", None))
    except FastUnavailable:
        return None
    show_status(state, printer)
    return EXIT_OK
