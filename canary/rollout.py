"""Status, step, rollback, promote and preview over the Pulumi Automation API.

The stack config is the rollout state and `pulumi up` the only writer, so every command here is "change a
config key or two, then run one update with a message saying what it did". What to change is decided by
pure functions (`plan_step`, `plan_promote`, `plan_rollback`, `traffic_summary`, `drift`) over plain data
read once from the stack (config, outputs, exported state, history) and the apiserver (canary.live); the
`Release` class is the only part that talks to Pulumi.

Percents come from canary.config / canary.weights (parse_config, parse_percent, format_percent): the CLI
never parses a weight its own way.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from canary.config import CanaryReleaseArgs, ConfigError, parse_config
from canary.deadline import DeadlineCommand, DeadlineExceeded
from canary.history import FAILED, IN_PROGRESS, HistoryEntry, format_time
from canary.live import LiveReader, RouteState, json_stream, route_state
from canary.weights import decimals, format_percent, parse_percent
from canary.workload import Track, object_name

ROUTE_TYPE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
"""Type token of the HTTPRoute in the stack state (a CustomResource of that apiVersion and kind)."""
STACK_TYPE = "pulumi:pulumi:Stack"
ROUTE_KIND = "httproute.gateway.networking.k8s.io"

OnOutput = Callable[[str], Any]


class Refused(Exception):
    """The command will not act; the message says why and what to do instead (exit 1)."""


class UsageProblem(Exception):
    """The command cannot even start: no project or no stack to work on (exit 2)."""


class PulumiFailed(Exception):
    """A Pulumi command failed. `detail` is its full output; `streamed` says it was already shown live."""

    def __init__(self, what: str, detail: str, *, streamed: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.detail = detail
        self.streamed = streamed


# --- what the stack and the cluster say (plain data) ------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """The rollout state the stack's last successful update left, read from its outputs."""

    phase: str
    canary_percent: Decimal
    stable_image: str
    canary_image: str | None
    route_name: str
    namespace: str

    @property
    def stable_percent(self) -> Decimal:
        return Decimal(100) - self.canary_percent

    @property
    def app_name(self) -> str:
        """The app name: the route is named after it (routing.route_name), so the route name is it."""
        return self.route_name


def output_percent(value: object) -> Decimal:
    """A weight stack output (an int, or a float for fractions, see weights.percent_number) as a Decimal."""
    return parse_percent(str(value))


def deployed_from_outputs(outputs: Mapping[str, Any]) -> Deployed | None:
    """The Deployed state from the stack outputs, or None when the stack has none (never deployed)."""
    if "phase" not in outputs:
        return None
    return Deployed(
        phase=str(outputs["phase"]),
        canary_percent=output_percent(outputs.get("canaryWeight", 0)),
        stable_image=str(outputs.get("stableImage", "")),
        canary_image=str(outputs.get("canaryImage") or "") or None,
        route_name=str(outputs["routeName"]),
        namespace=str(outputs["namespace"]),
    )


@dataclass(frozen=True)
class StackState:
    """What the exported stack state says: the deployed release, the route's URN and its last known spec."""

    deployed: Deployed | None
    route_urn: str | None
    route: RouteState | None


def read_state(deployment: Mapping[str, Any] | None) -> StackState:
    """Read `pulumi stack export`'s `deployment` section: stack outputs and the HTTPRoute resource."""
    resources: list[dict[str, Any]] = list((deployment or {}).get("resources") or [])
    outputs: dict[str, Any] = {}
    for resource in resources:
        if resource.get("type") == STACK_TYPE and "parent" not in resource:
            outputs = dict(resource.get("outputs") or {})
    deployed = deployed_from_outputs(outputs)
    routes = [r for r in resources if r.get("type") == ROUTE_TYPE and not r.get("delete")]
    if deployed is not None:
        named = [r for r in routes if _metadata(r).get("name") == deployed.route_name]
        routes = named or routes
    if not routes:
        return StackState(deployed, None, None)
    route = routes[0]
    spec_holder = route.get("outputs") or route.get("inputs") or {}
    app = deployed.app_name if deployed is not None else str(_metadata(route).get("name", ""))
    known = route_state(spec_holder, app) if "spec" in spec_holder else None
    return StackState(deployed, str(route["urn"]), known)


def _metadata(resource: Mapping[str, Any]) -> dict[str, Any]:
    holder = resource.get("outputs") or resource.get("inputs") or {}
    return dict(holder.get("metadata") or {})


@dataclass(frozen=True)
class Replicas:
    """Pods of one live Deployment: ready out of desired."""

    ready: int
    desired: int


def replicas_of(deployment: Mapping[str, Any] | None) -> Replicas | None:
    if deployment is None:
        return None
    status = deployment.get("status") or {}
    return Replicas(int(status.get("readyReplicas", 0)), int(deployment["spec"].get("replicas", 1)))


@dataclass(frozen=True)
class RolloutState:
    """Everything `canary status` shows, read once: config, stack state, last update, live objects."""

    stack: str
    project: str
    config: CanaryReleaseArgs | None
    config_error: ConfigError | None
    state: StackState
    last_update: HistoryEntry | None
    live_route: RouteState | None
    live_error: str | None
    replicas: dict[Track, Replicas | None] = field(default_factory=dict)

    @property
    def deployed(self) -> Deployed | None:
        return self.state.deployed

    @property
    def drift(self) -> list[str]:
        return drift(self.state, self.live_route, self.live_error)

    @property
    def pending(self) -> list[str]:
        return pending(self.config, self.deployed)


# --- pure decisions ---------------------------------------------------------------------------------------


def show_percent(percent: Decimal) -> str:
    """A percent for people: exact when it has at most 4 decimals (as config allows), else rounded, "~"."""
    if decimals(percent) <= 4:
        return f"{format_percent(percent)}%"
    return f"~{format_percent(percent.quantize(Decimal('0.0001')))}%"


def next_weight(plan: Sequence[Decimal], current: Decimal) -> Decimal | None:
    """The first weight of canaryPlan above `current`, or None when current is at or past its last step."""
    return next((weight for weight in plan if weight > current), None)


def step_message(before: Decimal, after: Decimal, image: str) -> str:
    return f"canary {format_percent(before)}% -> {format_percent(after)}% ({image})"


def rollback_message(before: Decimal, live: Decimal | None = None) -> str:
    """ "rollback canary 50% -> 0%", noting the live weight when a hand edit made it differ from the stack."""
    note = f" (live route was at {show_percent(live)})" if live is not None and live != before else ""
    return f"rollback canary {format_percent(before)}% -> 0%{note}"


def promote_message(image: str) -> str:
    return f"promote {image}"


@dataclass(frozen=True)
class Change:
    """A planned rollout move: the config keys to set (project namespace, values as `pulumi config set`
    takes them) and the message the update will carry."""

    action: str
    updates: dict[str, str]
    message: str
    from_percent: Decimal
    to_percent: Decimal


def check_last_update(last: HistoryEntry | None, action: str) -> None:
    """Refuse to move traffic on top of a failed or unfinished update: its outcome is unknown."""
    if last is None:
        return
    when = format_time(last.start)
    if last.result == FAILED:
        raise Refused(
            f"refusing to {action}: the last update ({when}, {last.message or 'no message'!r}) failed. "
            "Look at `pulumi stack history` and the error it printed, fix the cause, and run `pulumi up` "
            "until it succeeds (or `canary rollback`) before moving traffic again"
        )
    if last.result == IN_PROGRESS:
        raise Refused(
            f"refusing to {action}: an update started at {when} is still in progress "
            "(or was interrupted: see `pulumi cancel` and `pulumi stack export`)"
        )


def _require_deployed(deployed: Deployed | None, stack: str) -> Deployed:
    if deployed is None:
        raise Refused(f"stack {stack} has no deployed release yet (no stack outputs): run `pulumi up` first")
    return deployed


def _require_canary(config: CanaryReleaseArgs, deployed: Deployed, action: str) -> str:
    image = config.canary_image
    if image is None:
        raise Refused(
            f"refusing to {action}: no canary is deployed (canaryImage is empty). Set one with "
            "`pulumi config set canaryImage <image>` and run `pulumi up` to deploy it at 0% first"
        )
    if deployed.canary_image != image:
        running = deployed.canary_image or "no canary"
        raise Refused(
            f"refusing to {action}: canary {image} is not deployed yet (the stack runs {running}): "
            "run `pulumi up` to deploy it at 0% first"
        )
    return image


def plan_step(
    stack: str, config: CanaryReleaseArgs, deployed: Deployed | None, last: HistoryEntry | None
) -> Change:
    """The next step of canaryPlan from the deployed weight, or Refused with what to do instead."""
    check_last_update(last, "step")
    current = _require_deployed(deployed, stack)
    image = _require_canary(config, current, "step")
    if config.canary_weight != current.canary_percent:
        raise Refused(
            f"refusing to step: stack config says canaryWeight {format_percent(config.canary_weight)} but "
            f"the last update deployed {format_percent(current.canary_percent)}. Run `pulumi up` to apply "
            f"it, or `pulumi config set canaryWeight {format_percent(current.canary_percent)}` to drop it"
        )
    target = next_weight(config.canary_plan, current.canary_percent)
    if target is None:
        if current.canary_percent >= 100:
            raise Refused(
                f"refusing to step: canary {image} already gets 100% of traffic. "
                "Run `canary promote` to make it the stable version"
            )
        plan = ", ".join(format_percent(w) for w in config.canary_plan)
        raise Refused(
            f"refusing to step: canary is at {show_percent(current.canary_percent)}, the last step of "
            f"canaryPlan [{plan}]. Run `canary promote`, or extend canaryPlan"
        )
    return Change(
        action="step",
        updates={"canaryWeight": format_percent(target)},
        message=step_message(current.canary_percent, target, image),
        from_percent=current.canary_percent,
        to_percent=target,
    )


def plan_promote(
    stack: str, config: CanaryReleaseArgs, deployed: Deployed | None, last: HistoryEntry | None
) -> Change:
    """stableImage := canaryImage, no canary (canaryImage "", canaryWeight 0, no mirror): one update."""
    check_last_update(last, "promote")
    current = _require_deployed(deployed, stack)
    image = _require_canary(config, current, "promote")
    updates = {"stableImage": image, "canaryImage": "", "canaryWeight": "0"}
    if config.mirror_percent > 0:
        updates["mirrorPercent"] = "0"
    return Change(
        action="promote",
        updates=updates,
        message=promote_message(image),
        from_percent=current.canary_percent,
        to_percent=Decimal(0),
    )


def plan_rollback(
    stack: str, config: CanaryReleaseArgs, deployed: Deployed | None, live: RouteState | None
) -> Change | None:
    """canaryWeight 0 on the route alone; None when stack, config and live route are all at 0 already.

    A failed last update does not stop a rollback: sending traffic back to stable is the way out of one.
    """
    current = _require_deployed(deployed, stack)
    if current.canary_image is None:
        raise Refused(f"nothing to roll back: stack {stack} has no canary deployed (phase {current.phase!r})")
    live_percent = live.canary_percent if live is not None else None
    if current.canary_percent == 0 and config.canary_weight == 0 and not live_percent:
        return None
    return Change(
        action="rollback",
        updates={"canaryWeight": "0"},
        message=rollback_message(current.canary_percent, live_percent),
        from_percent=current.canary_percent,
        to_percent=Decimal(0),
    )


def drift(state: StackState, live: RouteState | None, live_error: str | None = None) -> list[str]:
    """Where the live route differs from what the stack says: somebody edited it outside Pulumi."""
    deployed = state.deployed
    if deployed is None or live_error is not None:
        return []
    where = f"{deployed.namespace}/{deployed.route_name}"
    if live is None:
        return [f"DRIFT: live route {where} not found, stack says it exists"]
    found = []
    if live.canary_percent != deployed.canary_percent:
        found.append(
            f"DRIFT: live route sends {show_percent(live.canary_percent)} to canary, "
            f"stack says {show_percent(deployed.canary_percent)}"
        )
    known = state.route
    if known is not None:
        if live.header_rule != known.header_rule:
            found.append(
                f"DRIFT: live route header rule is {_header_text(live.header_rule)}, "
                f"stack says {_header_text(known.header_rule)}"
            )
        if live.mirror_percent != known.mirror_percent:
            found.append(
                f"DRIFT: live route mirrors {show_percent(live.mirror_percent)} to canary, "
                f"stack says {show_percent(known.mirror_percent)}"
            )
    return found


def _header_text(header: tuple[str, str] | None) -> str:
    return "off" if header is None else f"'{header[0]}: {header[1]}'"


def pending(config: CanaryReleaseArgs | None, deployed: Deployed | None) -> list[str]:
    """Config changes not deployed yet (set with `pulumi config set` but no `pulumi up` since)."""
    if config is None or deployed is None:
        return []
    found = []
    if config.canary_weight != deployed.canary_percent:
        before, after = format_percent(deployed.canary_percent), format_percent(config.canary_weight)
        found.append(f"canaryWeight {before} -> {after}")
    if config.stable_image != deployed.stable_image:
        found.append(f"stableImage {deployed.stable_image} -> {config.stable_image}")
    if config.canary_image != deployed.canary_image:
        found.append(f"canaryImage {deployed.canary_image or '(none)'} -> {config.canary_image or '(none)'}")
    return found


_VERBS = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
_IGNORED_OPS = {"same", "create-replacement", "delete-replaced", "read", "refresh"}


def resource_summary(changes: Mapping[str, int]) -> str:
    """ "1 resource updated", "2 resources created, 1 updated", or "no resource changes"."""
    counted = [(op, n) for op, n in changes.items() if op not in _IGNORED_OPS and n]
    order = list(_VERBS)
    counted.sort(key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    parts = []
    for index, (op, n) in enumerate(counted):
        verb = _VERBS.get(op, op)
        noun = (" resource" if n == 1 else " resources") if index == 0 else ""
        parts.append(f"{n}{noun} {verb}")
    return ", ".join(parts) or "no resource changes"


def traffic_summary(
    before: Deployed | None, after: CanaryReleaseArgs, changes: Mapping[str, int] | None = None
) -> str:
    """What the next update does to traffic, in one line:
    "canary 5% -> 25%, stable 95% -> 75%, 1 resource updated"."""
    parts = []
    if before is None:
        parts.append(f"first update: stable {show_percent(after.stable_percent)} ({after.stable_image})")
        if after.canary_image is not None:
            parts.append(f"canary {show_percent(after.canary_weight)} ({after.canary_image})")
    else:
        if before.canary_percent != after.canary_weight:
            parts.append(
                f"canary {show_percent(before.canary_percent)} -> {show_percent(after.canary_weight)}, "
                f"stable {show_percent(before.stable_percent)} -> {show_percent(after.stable_percent)}"
            )
        elif after.canary_image is None and before.canary_image is None:
            parts.append("traffic unchanged (stable 100%)")
        else:
            parts.append(
                f"traffic unchanged (canary {show_percent(after.canary_weight)}, "
                f"stable {show_percent(after.stable_percent)})"
            )
        if before.stable_image != after.stable_image:
            parts.append(f"stable image {before.stable_image} -> {after.stable_image}")
        if before.canary_image != after.canary_image:
            if after.canary_image is None:
                parts.append(f"canary {before.canary_image} removed")
            elif before.canary_image is None:
                parts.append(f"canary {after.canary_image} deployed")
            else:
                parts.append(f"canary image {before.canary_image} -> {after.canary_image}")
    if changes is not None:
        parts.append(resource_summary(changes))
    return ", ".join(parts)


@dataclass(frozen=True)
class PreviewReport:
    """What the next `pulumi up` would do: the traffic change in a line, the resource counts, the diff."""

    stack: str
    before: Deployed | None
    after: CanaryReleaseArgs
    changes: dict[str, int]
    diff: str

    @property
    def summary(self) -> str:
        return traffic_summary(self.before, self.after, self.changes)


def render_markdown(report: PreviewReport) -> str:
    """A block for a pull-request comment: the traffic line, a before/after table, the diff folded away."""
    before, after = report.before, report.after
    rows = [
        ("phase", before.phase if before else "(not deployed)", after.phase),
        (
            "canary weight",
            show_percent(before.canary_percent) if before else "-",
            show_percent(after.canary_weight),
        ),
        (
            "stable weight",
            show_percent(before.stable_percent) if before else "-",
            show_percent(after.stable_percent),
        ),
        ("stable image", _code(before.stable_image) if before else "-", _code(after.stable_image)),
        (
            "canary image",
            _code(before.canary_image) if before else "-",
            _code(after.canary_image),
        ),
    ]
    fence = "```"
    while fence in report.diff:
        fence += "`"
    lines = [
        f"### Canary preview: stack `{report.stack}`",
        "",
        f"**{report.summary}**",
        "",
        "| | now | after `pulumi up` |",
        "|---|---|---|",
        *(f"| {name} | {now} | {then} |" for name, now, then in rows),
        "",
        "<details><summary>Full diff (<code>pulumi preview --diff</code>)</summary>",
        "",
        f"{fence}diff",
        report.diff.rstrip(),
        fence,
        "",
        "</details>",
    ]
    return "\n".join(lines) + "\n"


def _code(value: str | None) -> str:
    return f"`{value}`" if value else "(none)"


# --- talking to Pulumi ------------------------------------------------------------------------------------


def engine_string(value: object) -> str:
    """A Pulumi.yaml default the way the engine hands it to a program: scalars as text, arrays as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def project_defaults(project_file: Path) -> dict[str, str]:
    """Every key Pulumi.yaml declares, with its default: for history entries whose config lacks a key."""
    declared = (yaml.safe_load(project_file.read_text()) or {}).get("config") or {}
    return {
        key: engine_string(decl["default"])
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


@dataclass(frozen=True)
class RollbackTiming:
    """How long a rollback took, from the moment it started acting (after any confirmation)."""

    update_seconds: float
    """Until `pulumi up` returned."""
    live_zero_seconds: float | None
    """Until the live route was first seen sending 0% to canary (None: not seen within the timeout)."""


class Release:
    """One stack of this project, through the Automation API (LocalWorkspace on the project directory)."""

    def __init__(self, stack: auto.Stack, cwd: Path, live: LiveReader | None = None) -> None:
        self.stack = stack
        self.cwd = cwd
        self.live = live or LiveReader()
        self.project = stack.workspace.project_settings().name

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
        return cls(stack, cwd)

    @property
    def name(self) -> str:
        return self.stack.name

    def _pulumi(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except auto.CommandError as err:
            raise PulumiFailed(what, str(err)) from err

    def raw_config(self) -> dict[str, str]:
        """The project's config for this stack, defaults included, keyed without the project namespace."""
        prefix = f"{self.project}:"
        values: dict[str, auto.ConfigValue] = self._pulumi("pulumi config", self.stack.get_all_config)
        return {key[len(prefix) :]: v.value for key, v in values.items() if key.startswith(prefix)}

    def config(self) -> CanaryReleaseArgs:
        """The validated config (raises ConfigError, listing every problem, like the program would)."""
        return parse_config(self.raw_config())

    def stack_state(self) -> StackState:
        exported: auto.Deployment = self._pulumi("pulumi stack export", self.stack.export_stack)
        return read_state(exported.deployment)

    def history(self, page_size: int | None = None) -> list[HistoryEntry]:
        """Stack history, newest first."""
        summaries: list[auto.UpdateSummary] = self._pulumi(
            "pulumi stack history", lambda: self.stack.history(page_size=page_size)
        )
        return [history_entry(summary) for summary in summaries]

    def last_update(self) -> HistoryEntry | None:
        entries = self.history(page_size=1)
        return entries[0] if entries else None

    def defaults(self) -> dict[str, str]:
        return project_defaults(self.cwd / "Pulumi.yaml")

    def read(self) -> RolloutState:
        """Everything status shows. A bad config or an unreachable cluster is reported, not raised."""
        config: CanaryReleaseArgs | None = None
        config_error: ConfigError | None = None
        try:
            config = self.config()
        except ConfigError as err:
            config_error = err
        state = self.stack_state()
        last = self.last_update()
        live_route, live_error, replicas = None, None, {}
        deployed = state.deployed
        if deployed is not None:
            try:
                live_route = self.live.route(deployed.app_name, deployed.namespace, deployed.route_name)
                tracks: tuple[Track, ...] = ("stable", "canary") if deployed.canary_image else ("stable",)
                for track in tracks:
                    name = object_name(deployed.app_name, track)
                    replicas[track] = replicas_of(self.live.get("deployment", name, deployed.namespace))
            except (RuntimeError, OSError) as err:
                live_error = str(err)
        return RolloutState(
            stack=self.name,
            project=self.project,
            config=config,
            config_error=config_error,
            state=state,
            last_update=last,
            live_route=live_route,
            live_error=live_error,
            replicas=replicas,
        )

    def set_config(self, updates: Mapping[str, str]) -> ConfigSnapshot:
        """Set config keys (project namespace), returning what to restore if the change is abandoned."""
        explicit = self._explicit_config()
        current: dict[str, auto.ConfigValue] = self._pulumi("pulumi config", self.stack.get_all_config)
        snapshot = ConfigSnapshot(
            {
                self._key(key): current.get(self._key(key)) if self._key(key) in explicit else None
                for key in updates
            }
        )
        values = {self._key(key): auto.ConfigValue(value) for key, value in updates.items()}
        self._pulumi("pulumi config set-all", lambda: self.stack.set_all_config(values))
        return snapshot

    def restore_config(self, snapshot: ConfigSnapshot) -> None:
        restore = {key: value for key, value in snapshot.values.items() if value is not None}
        remove = [key for key, value in snapshot.values.items() if value is None]
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
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> float:
        """Run the update (no second preview), streaming Pulumi's output; returns its duration in seconds.

        With a `deadline` (seconds), an update still running after it is interrupted like Ctrl-C (see
        canary.deadline for why that can happen) and reported as failed.

        The CLI runs through the workspace's command rather than `Stack.up`, which after the update reads
        the outputs twice and the history once more (three CLI calls, about 1.3 s) that nothing here uses.
        The arguments are the ones `Stack.up` passes for a local program."""
        command = self.stack.workspace.pulumi_command
        assert isinstance(command, DeadlineCommand), "Release.open gives the workspace a DeadlineCommand"
        args = ["up", "--yes", "--skip-preview", "--message", message, "--color", "never"]
        for urn in target or []:
            args += ["--target", urn]
        if refresh:
            args.append("--refresh")
        args += ["--exec-kind", "auto.local", "--stack", self.stack.name]
        started = time.monotonic()
        try:
            with command.deadline(deadline):
                command.run(args, str(self.cwd), {}, on_output, on_error)
        except DeadlineExceeded as over:
            raise PulumiFailed("pulumi up", deadline_advice(over), streamed=on_output is not None) from over
        except auto.CommandError as err:
            raise PulumiFailed("pulumi up", str(err), streamed=on_output is not None) from err
        return time.monotonic() - started


def update_deadline(config: CanaryReleaseArgs) -> float:
    """How long one `pulumi up` of `canary` may run before it is interrupted, in seconds.

    Before the route changes, an update waits once for readiness (the Deployments and Services wait side by
    side, each bounded by rolloutTimeout); a promote then removes the canary, whose delete the provider
    waits for up to its default of 10 minutes. The deadline is that plus 5 minutes for everything else: it
    is a backstop for the waits nothing else bounds (canary.deadline), never the normal way to fail.
    """
    return float(config.rollout_timeout + 600 + 300)


def deadline_advice(over: DeadlineExceeded) -> str:
    """What happened and what to do, for an update stopped at its deadline."""
    if over.killed:
        then = (
            "It did not stop within the grace period after the interrupt and was killed, so its lock and "
            "any pending operations are still in the stack: follow the recovery after a killed `pulumi up` "
            "in the README (RELIABILITY): `pulumi cancel`, then `pulumi refresh` with "
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


# --- the commands' flows -----------------------------------------------------------------------------------

Confirm = Callable[[PreviewReport], bool]


def apply_change(
    release: Release,
    change: Change,
    before: Deployed | None,
    *,
    confirm: Confirm,
    deadline: float | None = None,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
) -> Applied:
    """Set the change's config, preview it, ask, and run one update carrying the change's message.

    Declining (or a failing preview) puts the config back as it was, so nothing is left half-changed. A
    failed update keeps the new config: it is what the failed update tried, as with `pulumi up`.
    """
    snapshot = release.set_config(change.updates)
    try:
        report = release.preview(before)
        confirmed = confirm(report)
    except BaseException:
        release.restore_config(snapshot)
        raise
    if not confirmed:
        release.restore_config(snapshot)
        raise Refused(f"not confirmed: nothing changed ({change.message!r} not run)")
    seconds = release.up(change.message, deadline=deadline, on_output=on_output, on_error=on_error)
    return Applied(change, report, seconds)


def rollback(
    release: Release,
    change: Change,
    state: StackState,
    *,
    deadline: float | None = None,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
    settle_timeout: float = 30.0,
) -> RollbackTiming:
    """canaryWeight 0, then a targeted update of the HTTPRoute only: no preview, no other resource, the
    canary pods stay warm. The live route is watched from before the update starts, so the time it first
    reads 0% is measured, not assumed.

    When the stack already says 0 but the live route does not (edited by hand), the update refreshes the
    route first, so Pulumi sees the difference and writes the route back.
    """
    deployed = _require_deployed(state.deployed, release.name)
    if state.route_urn is None:
        raise Refused(f"no HTTPRoute in the state of stack {release.name}: run `pulumi up` first")
    release.set_config(change.updates)
    started = time.monotonic()
    with RouteWatch(deployed.app_name, deployed.namespace, deployed.route_name) as watch:
        update_seconds = release.up(
            change.message,
            target=[state.route_urn],
            refresh=change.from_percent == 0,
            deadline=deadline,
            on_output=on_output,
            on_error=on_error,
        )
        seen = watch.wait_for_zero(timeout=settle_timeout)
    if seen is None:
        live = release.live.route(deployed.app_name, deployed.namespace, deployed.route_name)
        if live is not None and live.canary_percent == 0:
            seen = time.monotonic()
    return RollbackTiming(update_seconds, None if seen is None else max(0.0, seen - started))


class RouteWatch:
    """`kubectl get --watch` of one HTTPRoute in the background, noting when each version was seen.

    Polling after the update would measure the poll; the watch sees the apiserver's change as it happens.
    """

    def __init__(self, app_name: str, namespace: str, route_name: str, kubectl: str = "kubectl") -> None:
        self._app = app_name
        self._seen: list[tuple[float, RouteState]] = []
        self._changed = threading.Condition()
        self._proc = subprocess.Popen(
            [kubectl, "get", ROUTE_KIND, route_name, "-n", namespace, "--watch", "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def __enter__(self) -> RouteWatch:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for obj in json_stream(self._proc.stdout):
            state = route_state(obj, self._app)
            with self._changed:
                self._seen.append((time.monotonic(), state))
                self._changed.notify_all()

    def wait_for_zero(self, timeout: float) -> float | None:
        """The monotonic time the route was first seen at canary 0%, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for when, state in self._seen:
                    if state.canary_percent == 0:
                        return when
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return None
                self._changed.wait(min(remaining, 0.5))

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._thread.join(timeout=10)
