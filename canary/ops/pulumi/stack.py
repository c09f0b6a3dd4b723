"""The Automation API driver: one stack of this project, read and updated through the `pulumi` CLI.

`Release` is the only code on the operations side that talks to Pulumi. Percents are parsed by canary.weights
and config by canary.release.validate: the CLI never reads a weight or a key its own way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from enum import Enum
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from canary.ops.core.history import HistoryEntry, with_actor
from canary.ops.core.plan import Change, PreviewReport
from canary.ops.core.settings import OpsSettings, parse_ops_settings
from canary.ops.core.state import Deployed, StackState, read_state
from canary.ops.errors import PulumiFailed, UsageProblem
from canary.ops.files import yaml_files
from canary.ops.kube.kubectl import LiveReader
from canary.ops.pulumi.deadline import DeadlineCommand, DeadlineExceeded, Stop, StoppedEarly
from canary.ops.pulumi.local_backend import FastUnavailable, LocalStack
from canary.release.keys import config_string
from canary.release.settings import ReleaseSettings
from canary.release.validate import parse_config

OnOutput = Callable[[str], Any]


def project_defaults(project_file: Path) -> dict[str, str]:
    """Every key Pulumi.yaml declares, with its default: for history entries whose config lacks a key."""
    declared = (yaml_files.load(project_file) or {}).get("config") or {}
    return {
        key: config_string(decl["default"])
        for key, decl in declared.items()
        if isinstance(decl, dict) and "default" in decl
    }


def history_entry(summary: auto.UpdateSummary) -> HistoryEntry:
    """An Automation API history summary as a plain HistoryEntry (times are UTC in history)."""
    return HistoryEntry(
        kind=summary.kind,
        result=summary.result,
        message=summary.message or "",
        start=summary.start_time.replace(tzinfo=UTC),
        end=summary.end_time.replace(tzinfo=UTC) if summary.end_time else None,
        config={key: str(value.value) for key, value in summary.config.items()},
        environment=dict(summary.environment or {}),
        resource_changes=op_counts(summary.resource_changes),
    )


def op_counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    """Operation counts keyed by plain names ("update"), whether Pulumi gave OpType members or strings."""
    return {(op.value if isinstance(op, Enum) else str(op)): n for op, n in (changes or {}).items()}


@dataclass(frozen=True)
class ConfigSnapshot:
    """Config values before a change, to put back when the change is not made."""

    values: dict[str, auto.ConfigValue | None]
    """Fully qualified key -> the value explicitly set in the stack file, or None when it was not set."""


@dataclass(frozen=True)
class Applied:
    """A change that ran: its message, the preview shown before it, and how long the update took."""

    change: Change
    preview: PreviewReport | None
    update_seconds: float


class Release:
    """One stack of this project, through the Automation API (LocalWorkspace on the project directory)."""

    def __init__(
        self,
        stack: auto.Stack,
        cwd: Path,
        live: LiveReader | None = None,
        local: LocalStack | None = None,
        actor: str | None = None,
    ) -> None:
        self.stack = stack
        self.cwd = cwd
        self.live = live or LiveReader()
        self.project = stack.workspace.project_settings().name
        self.local = local
        """The same stack read from its files (a local backend): state and history without a `pulumi`
        process each (canary.ops.pulumi.local_backend); None on other backends."""
        self._config: dict[str, auto.ConfigValue] | None = None
        self.actor = actor
        """Who runs this command's updates (canary.ops.team.actor): recorded as the `[by NAME]` trailer of
        every update message; None records none."""

    @classmethod
    def open(cls, cwd: Path, stack_name: str | None = None) -> Release:
        """Select `stack_name` (or the workspace's current stack) of the project in `cwd`."""
        if not (cwd / "Pulumi.yaml").is_file() and not (cwd / "Pulumi.yml").is_file():
            raise UsageProblem(f"no Pulumi.yaml in {cwd}: pass --cwd with the project directory")
        try:
            command = DeadlineCommand()
            if stack_name is None:
                current = auto.LocalWorkspace(work_dir=str(cwd), pulumi_command=command).stack()
                if current is None:
                    raise UsageProblem(
                        f"no stack selected in {cwd}: pass --stack or run `pulumi stack select`"
                    )
                stack_name = current.name
            stack = auto.select_stack(
                stack_name, work_dir=str(cwd), opts=auto.LocalWorkspaceOptions(pulumi_command=command)
            )
        except auto.StackNotFoundError as err:
            raise UsageProblem(
                f"no stack named {stack_name!r} in project {cwd}: {_first_error(err)}"
            ) from err
        except auto.CommandError as err:
            raise PulumiFailed(f"selecting stack {stack_name}", str(err)) from err
        try:
            local: LocalStack | None = LocalStack.open(cwd, stack.name)
        except FastUnavailable:
            local = None
        return cls(stack, cwd, local=local)

    @property
    def name(self) -> str:
        return self.stack.name

    def _pulumi(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except auto.CommandError as err:
            raise PulumiFailed(what, str(err)) from err

    def raw_config(self) -> dict[str, str]:
        """The project's config for this stack, defaults included, keyed without the project namespace
        (read once, and again after set_config or restore_config)."""
        prefix = f"{self.project}:"
        values = self._all_config()
        return {key[len(prefix) :]: v.value for key, v in values.items() if key.startswith(prefix)}

    def _all_config(self) -> dict[str, auto.ConfigValue]:
        """`pulumi config --json` of the stack, once until the config is changed through this object."""
        if self._config is None:
            self._config = self._pulumi("pulumi config", self.stack.get_all_config)
        return dict(self._config)

    def config(self) -> ReleaseSettings:
        """The validated config (raises ConfigError, listing every problem, like the program would)."""
        return parse_config(self.raw_config())

    def ops_settings(self) -> OpsSettings:
        """The operations-only settings (canaryPlan, analysis), validated the same way."""
        return parse_ops_settings(self.raw_config(), self.defaults())

    def deployment(self) -> Mapping[str, Any] | None:
        """The stack's state (`pulumi stack export`'s deployment), from the backend's file when local."""
        if self.local is not None:
            return self.local.deployment()
        exported: auto.Deployment = self._pulumi("pulumi stack export", self.stack.export_stack)
        return exported.deployment

    def stack_state(self) -> StackState:
        return read_state(self.deployment())

    def history(self, page_size: int | None = None) -> list[HistoryEntry]:
        """Stack history, newest first."""
        summaries: list[auto.UpdateSummary] = self._pulumi(
            "pulumi stack history", lambda: self.stack.history(page_size=page_size)
        )
        return [history_entry(summary) for summary in summaries]

    def last_update(self) -> HistoryEntry | None:
        if self.local is not None:
            return self.local.last_update()
        entries = self.history(page_size=1)
        return entries[0] if entries else None

    def defaults(self) -> dict[str, str]:
        return project_defaults(self.cwd / "Pulumi.yaml")

    def set_config(self, updates: Mapping[str, str]) -> ConfigSnapshot:
        """Set config keys (project namespace), returning what to restore if the change is abandoned."""
        explicit = self._explicit_config()
        current = self._all_config()
        snapshot = ConfigSnapshot(
            {
                self._key(key): current.get(self._key(key)) if self._key(key) in explicit else None
                for key in updates
            }
        )
        values = {self._key(key): auto.ConfigValue(value) for key, value in updates.items()}
        self._config = None
        self._pulumi("pulumi config set-all", lambda: self.stack.set_all_config(values))
        return snapshot

    def restore_config(self, snapshot: ConfigSnapshot) -> None:
        restore = {key: value for key, value in snapshot.values.items() if value is not None}
        remove = [key for key, value in snapshot.values.items() if value is None]
        self._config = None
        if restore:
            self._pulumi("pulumi config set-all", lambda: self.stack.set_all_config(restore))
        if remove:
            self._pulumi("pulumi config rm", lambda: self.stack.remove_all_config(remove))

    def _explicit_config(self) -> set[str]:
        """Keys set in the stack's own config file (the rest come from Pulumi.yaml defaults)."""
        try:
            settings = self.stack.workspace.stack_settings(self.name)
        except FileNotFoundError:
            return set()
        return {self._key(key) for key in (settings.config or {})}

    def _key(self, key: str) -> str:
        return key if ":" in key else f"{self.project}:{key}"

    def preview(self, before: Deployed | None) -> PreviewReport:
        """`pulumi preview --diff` of the current config against the stack, with the traffic summary."""
        after = self.config()
        result: auto.PreviewResult = self._pulumi(
            "pulumi preview", lambda: self.stack.preview(diff=True, color="never")
        )
        changes = {op: n for op, n in op_counts(result.change_summary).items() if op != "same"}
        return PreviewReport(self.name, before, after, changes, result.stdout)

    def up(
        self,
        message: str,
        *,
        target: list[str] | None = None,
        refresh: bool = False,
        deadline: float | None = None,
        stop: Stop | None = None,
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> float:
        """Run the update (no second preview), streaming Pulumi's output; returns its duration in seconds.
        Its message carries the actor (`[by NAME]`) when there is one.

        With a `deadline` (seconds), an update still running after it is interrupted like Ctrl-C (see
        canary.ops.pulumi.deadline for why that can happen) and reported as failed; likewise as soon as
        `stop` is set (the gateway refused the route, canary.ops.rollout.flows).

        The CLI runs through the workspace's command rather than `Stack.up`, which after the update reads
        the outputs twice and the history once more (three CLI calls, about 1.3 s) that nothing here uses.
        The arguments are the ones `Stack.up` passes for a local program."""
        command = self.stack.workspace.pulumi_command
        assert isinstance(command, DeadlineCommand), "Release.open gives the workspace a DeadlineCommand"
        if self.actor is not None:
            message = with_actor(message, self.actor)
        args = ["up", "--yes", "--skip-preview", "--message", message, "--color", "never"]
        for urn in target or []:
            args += ["--target", urn]
        if refresh:
            args.append("--refresh")
        args += ["--exec-kind", "auto.local", "--stack", self.stack.name]
        started = time.monotonic()
        try:
            with command.deadline(deadline if deadline is not None else NO_DEADLINE, stop):
                command.run(args, str(self.cwd), {}, on_output, on_error)
        except StoppedEarly as stopped:
            raise PulumiFailed(
                "pulumi up", refusal_advice(stopped), streamed=on_output is not None
            ) from stopped
        except DeadlineExceeded as over:
            raise PulumiFailed("pulumi up", deadline_advice(over), streamed=on_output is not None) from over
        except auto.CommandError as err:
            raise PulumiFailed("pulumi up", str(err), streamed=on_output is not None) from err
        return time.monotonic() - started


def update_deadline(config: ReleaseSettings) -> float:
    """How long one `pulumi up` of `canary` may run before it is interrupted, in seconds.

    Before the route changes, an update waits once for readiness (the Deployments and Services wait side by
    side, each bounded by rolloutTimeout); a promote then removes the canary, whose delete the provider
    waits for up to its default of 10 minutes. The deadline is that plus 5 minutes for everything else: it
    is a backstop for the waits nothing else bounds (canary.ops.pulumi.deadline), never the normal way to
    fail.
    """
    return float(config.rollout_timeout + 600 + 300)


NO_DEADLINE = float(7 * 24 * 3600)
"""What "no deadline" means when an update must still be stoppable early: a week."""


def refusal_advice(stopped: StoppedEarly) -> str:
    """What happened and what to do, for an update interrupted because the gateway refused the route."""
    output = "\n".join(part for part in (stopped.result.stdout, stopped.result.stderr) if part)
    return (
        f"the gateway refused the route's new spec ({stopped.why}), so the update was interrupted instead "
        "of waiting out rolloutTimeout. It is recorded as failed; the route is applied as the stack config "
        "says (config, state and the live route agree) but the gateway does not serve it as written. Fix "
        "the cause the controller names and run `pulumi up`, or `canary rollback`.\n" + output
    )


def deadline_advice(over: DeadlineExceeded) -> str:
    """What happened and what to do, for an update stopped at its deadline."""
    if over.killed:
        then = (
            "It did not stop within the grace period after the interrupt and was killed, so its lock and "
            "any pending operations are still in the stack: follow the recovery after a killed `pulumi up` "
            "in docs/reliability.md: `pulumi cancel`, then `pulumi refresh` with "
            "--import-pending-creates for each pending create."
        )
    else:
        then = (
            "The update is recorded as failed and the stack lock is released; no operation was left "
            "pending. The usual cause is an apiserver that stopped answering: check "
            "`kubectl get --raw /readyz`; once it answers, run `pulumi up`: the stack config already holds "
            "this change, so that finishes it."
        )
    output = "\n".join(part for part in (over.result.stdout, over.result.stderr) if part)
    return (
        f"pulumi up was still running {over.deadline:.0f}s after it started, so it was interrupted as "
        f"Ctrl-C does (--deadline sets this limit). {then}\n{output}"
    )


def _first_error(err: Exception) -> str:
    """The first "error: ..." line of a Pulumi failure, for one-line messages (the rest is noise there)."""
    found = re.search(r"error: .*", str(err))
    return found.group(0).strip() if found else str(err).strip()
