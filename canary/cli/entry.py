"""The steps before argparse, in one place: `canary rollback --yes`'s options read by hand, who acts, the
stack resolved once, the CLI's stack lock, and for `rollback --yes` the route written before anything else.

`canary rollback` is timed from its first line (docs/performance.md: time-to-safe within 1.5x `kubectl patch`
at the apiserver, 1.2x through Envoy), so this module and what it runs up to the write import no argparse,
typing, dataclasses, PyYAML, Pulumi SDK or the program's modules (when the config's rendering is
remembered): tests/unit/cli/test_entry.py runs `first_steps` of a rollback in a process of its own and holds
it to that. The main's connection to the apiserver (canary.ops.kube.https.EarlyConnection) opens before this
module loads.

Every updating command (step, promote, run, rollback) takes the same steps, after argparse when they are not
a quick rollback: the stack is named once here (`--stack`, else `pulumi stack --show-name`), written back as
`args.stack`, and the lock, the fast write and the Automation API all use that name.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from canary.ops.errors import Refused, UsageProblem

TYPE_CHECKING = False  # not typing's: see the module docstring
if TYPE_CHECKING:
    import argparse
    import contextlib
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any, TextIO

    Args = argparse.Namespace | SimpleNamespace

QUICK_FLAGS = {"--yes": "yes", "-y": "yes", "--json": "json"}
QUICK_OPTIONS = {"--stack": "stack", "-s": "stack", "--cwd": "cwd", "--actor": "actor"}


def quick_rollback_args(tokens: Sequence[str]) -> SimpleNamespace | None:
    """`canary rollback --yes` with at most --stack, --cwd, --actor and --json (before or after the
    subcommand, each once), as the namespace argparse would give, read without argparse: its import and
    parser cost the fast path about 4 ms before the route is written. None for anything else (an
    abbreviation, `-s=NAME`, --deadline, --no-fast, a repeat), which argparse parses as usual;
    tests/unit/cli/test_quick_args.py holds the two to the same answers."""
    values = quick_rollback_values(tokens)
    return None if values is None else rollback_namespace(values)


def quick_rollback_values(tokens: Sequence[str]) -> dict[str, Any] | None:
    """quick_rollback_args's options as given (strings and flags), before anything is imported to make
    them a namespace (pathlib): main opens the connection in between."""
    values: dict[str, Any] = {}
    command = False
    rest = iter(tokens)
    for token in rest:
        if token == "rollback" and not command:
            command = True
            continue
        if token in QUICK_FLAGS:
            name, flag = QUICK_FLAGS[token], True
        else:
            option, equals, text = token.partition("=")
            if option not in QUICK_OPTIONS or (equals and not option.startswith("--")):
                return None
            name = QUICK_OPTIONS[option]
            if not equals:
                text = next(rest, "")
            if not text or text.startswith("-"):
                return None
        if name in values:
            return None
        values[name] = flag if token in QUICK_FLAGS else text
    if not command or not values.get("yes"):
        return None
    return values


def rollback_namespace(values: dict[str, Any]) -> SimpleNamespace:
    """The namespace argparse gives `canary rollback` for quick_rollback_values's `values`."""
    from pathlib import Path

    if "cwd" in values:
        values = {**values, "cwd": Path(values["cwd"])}
    return SimpleNamespace(command="rollback", deadline=None, no_fast=False, **{"actor": None, **values})


def first_steps(args: Args, hold: contextlib.ExitStack, started: float) -> BaseException | None:
    """Before anything is read: who acts, the stack named once and locked, and for `rollback --yes` the route
    written; the first problem, for main's one error boundary to report."""
    return resolve_actor(args) or hold_stack(args, hold) or write_first(args, started)


def resolve_actor(args: Args) -> BaseException | None:
    """For the commands that update (they have --actor): who acts (canary.ops.team.actor), in
    `args.actor_name`, before anything is written. A bad --actor or CANARY_ACTOR is returned as the
    UsageProblem to report."""
    if not hasattr(args, "actor"):
        return None
    from canary.ops.team.actor import local_actor

    try:
        args.actor_name = local_actor(args.actor, cwd_of(args)).name
    except UsageProblem as problem:
        return problem
    return None


def hold_stack(args: Args, hold: contextlib.ExitStack) -> BaseException | None:
    """For the commands that update: name the stack once (`args.stack` from here on) and take the CLI's
    stack lock (canary.ops.team.lock) before anything is read, into `hold` (released when main returns).
    Held by another command: the Refused to report, naming who."""
    if not hasattr(args, "actor_name"):
        return None
    from canary.ops.files import yaml_files
    from canary.ops.pulumi.local_backend import FastUnavailable, backend_url, stack_name_of
    from canary.ops.team import lock

    cwd = cwd_of(args)
    if not (cwd / "Pulumi.yaml").is_file():
        return None  # Release.open reports it
    try:
        args.stack = stack_name_of(cwd, getattr(args, "stack", None), None)
    except FastUnavailable as why:
        return UsageProblem(f"{why}: pass --stack or run `pulumi stack select`")
    except OSError:
        return None  # no `pulumi` to name the stack: nothing can run, and Release.open reports it
    except BaseException as problem:  # reported by main's boundary
        return problem
    try:
        project_doc = yaml_files.load(cwd / "Pulumi.yaml")
        stack_lock = lock.lock_for(
            backend_url(cwd, os.environ, project_doc), str(project_doc["name"]), args.stack
        )
        hold.enter_context(lock.held(stack_lock, args.stack, lock.new_holder(args.actor_name, args.command)))
    except OSError as problem:
        # A lock that cannot be taken (no psql, an unwritable backend folder) must not mean no lock.
        return Refused(f"cannot take the stack lock of {args.stack} ({problem}); nothing was done")
    except BaseException as problem:  # reported by main's boundary
        return problem
    return None


def write_first(args: Args, started: float) -> BaseException | None:
    """`canary rollback --yes` (fast): make traffic safe before anything else is imported or opened
    (canary.ops.fast.write.make_safe), leaving the result in `args.fast_write` for the command to record.
    What it raises is returned, for the one error boundary in `main` to report; a stack the fast path cannot
    read leaves `args.fast_unavailable` and the command takes the `pulumi up` path."""
    if args.command != "rollback" or args.no_fast or not getattr(args, "yes", False):
        return None
    from canary.ops.fast.write import make_safe
    from canary.ops.pulumi.local_backend import FastUnavailable

    try:
        args.fast_write = make_safe(
            cwd_of(args),
            getattr(args, "stack", None),
            started=started,
            connection=getattr(args, "connection", None),
        )
    except FastUnavailable as why:
        args.fast_unavailable = str(why)
    except BaseException as problem:  # reported by main's boundary
        return problem
    return None


def cwd_of(args: Args) -> Path:
    """The project folder the command works in (--cwd, else the current one), absolute."""
    from pathlib import Path

    return Path(getattr(args, "cwd", ".")).resolve()


def release_lock(hold: contextlib.ExitStack, err: TextIO) -> None:
    """Drop the stack lock; a lock that cannot be dropped (its database went away) is said, not raised."""
    try:
        hold.close()
    except Exception as problem:
        print(f"canary: warning: the stack lock was not released ({problem})", file=err)
