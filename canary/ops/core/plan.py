"""Pure decisions of the rollout commands: the next step, promote, rollback, and what an update will do.

Every command is "change a config key or two, then run one update with a message saying what it did". These
functions decide which keys and which message from plain data (canary.ops.core.state), or raise Refused with
what to do instead, so they are unit tested without an engine or a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from canary.ops.core.history import FAILED, IN_PROGRESS, HistoryEntry, format_time
from canary.ops.core.state import Deployed
from canary.ops.errors import Refused
from canary.release.capacity import scale_steps
from canary.release.settings import ReleaseSettings
from canary.route_state import RouteState
from canary.weights import format_percent, show_percent


def next_percent(plan: Sequence[Decimal], current: Decimal) -> Decimal | None:
    """The first percent of canaryPlan above `current`, or None when current is at or past its last step."""
    return next((step for step in plan if step > current), None)


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


def with_note(change: Change, note: str | None) -> Change:
    """The change, its message followed by `; note` (a gate's verdict, say); unchanged without a note."""
    return change if note is None else replace(change, message=f"{change.message}; {note}")


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


def require_deployed(deployed: Deployed | None, stack: str) -> Deployed:
    if deployed is None:
        raise Refused(f"stack {stack} has no deployed release yet (no stack outputs): run `pulumi up` first")
    return deployed


def require_canary(config: ReleaseSettings, deployed: Deployed, action: str) -> str:
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
    stack: str,
    config: ReleaseSettings,
    deployed: Deployed | None,
    last: HistoryEntry | None,
    *,
    canary_plan: Sequence[Decimal],
) -> Change:
    """The next step of canaryPlan from the deployed percent, or Refused with what to do instead."""
    check_last_update(last, "step")
    current = require_deployed(deployed, stack)
    image = require_canary(config, current, "step")
    if config.canary_percent != current.canary_percent:
        raise Refused(
            f"refusing to step: stack config says canaryWeight {format_percent(config.canary_percent)} but "
            f"the last update deployed {format_percent(current.canary_percent)}. Run `pulumi up` to apply "
            f"it, or `pulumi config set canaryWeight {format_percent(current.canary_percent)}` to drop it"
        )
    target = next_percent(canary_plan, current.canary_percent)
    if target is None:
        if current.canary_percent >= 100:
            raise Refused(
                f"refusing to step: canary {image} already gets 100% of traffic. "
                "Run `canary promote` to make it the stable version"
            )
        plan = ", ".join(format_percent(step) for step in canary_plan)
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
    stack: str, config: ReleaseSettings, deployed: Deployed | None, last: HistoryEntry | None
) -> Change:
    """stableImage := canaryImage, no canary (canaryImage "", canaryWeight 0, no mirror): one update."""
    check_last_update(last, "promote")
    current = require_deployed(deployed, stack)
    image = require_canary(config, current, "promote")
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
    stack: str, config: ReleaseSettings, deployed: Deployed | None, live: RouteState | None
) -> Change | None:
    """canaryWeight 0 on the route alone; None when stack, config and live route are all at 0 already.

    A failed last update does not stop a rollback: sending traffic back to stable is the way out of one.
    """
    current = require_deployed(deployed, stack)
    if current.canary_image is None:
        raise Refused(f"nothing to roll back: stack {stack} has no canary deployed (phase {current.phase!r})")
    live_percent = live.canary_percent if live is not None else None
    if current.canary_percent == 0 and config.canary_percent == 0 and not live_percent:
        return None
    return Change(
        action="rollback",
        updates={"canaryWeight": "0"},
        message=rollback_message(current.canary_percent, live_percent),
        from_percent=current.canary_percent,
        to_percent=Decimal(0),
    )


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
    before: Deployed | None, after: ReleaseSettings, changes: Mapping[str, int] | None = None
) -> str:
    """What the next update does to traffic, in one line:
    "canary 5% -> 25%, stable 95% -> 75%, 1 resource updated"."""
    parts = []
    if before is None:
        parts.append(f"first update: stable {show_percent(after.stable_percent)} ({after.stable_image})")
        if after.canary_image is not None:
            parts.append(f"canary {show_percent(after.canary_percent)} ({after.canary_image})")
    else:
        if before.canary_percent != after.canary_percent:
            parts.append(
                f"canary {show_percent(before.canary_percent)} -> {show_percent(after.canary_percent)}, "
                f"stable {show_percent(before.stable_percent)} -> {show_percent(after.stable_percent)}"
            )
        elif after.canary_image is None and before.canary_image is None:
            parts.append("traffic unchanged (stable 100%)")
        else:
            parts.append(
                f"traffic unchanged (canary {show_percent(after.canary_percent)}, "
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
    after: ReleaseSettings
    changes: dict[str, int]
    diff: str

    @property
    def summary(self) -> str:
        return traffic_summary(self.before, self.after, self.changes)

    @property
    def pods(self) -> str:
        """The pod count changes of the update, in the order they happen (canary.release.capacity)."""
        return pod_order(self.before, self.after)


def pod_order(before: Deployed | None, after: ReleaseSettings) -> str:
    """The pod count changes a move from the deployed weight to `after` makes, in order: scale-ups before
    the route, scale-downs after it and the settle time. "" when no count changes (or the autoscalers own
    them)."""
    if before is None or after.autoscaling is not None:
        return ""
    was = before.canary_percent if before.canary_image else Decimal(0)
    steps = scale_steps(after, was)
    if not steps:
        return ""
    first = [f"{s.track} {s.before} -> {s.after}" for s in steps if not s.after_route]
    then = [f"{s.track} {s.before} -> {s.after}" for s in steps if s.after_route]
    parts = [f"{', '.join(first)} (Available) before the route" if first else "", "the route"]
    if then:
        parts.append(f"after {after.capacity.settle_seconds} s settle: {', '.join(then)}")
    return " -> ".join(part for part in parts if part)
