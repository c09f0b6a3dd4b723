"""The rollout commands' flows: set config, preview, confirm, update; and the targeted rollback."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from canary.ops.core.history import HistoryEntry
from canary.ops.core.plan import Change, PreviewReport, with_note
from canary.ops.core.state import Deployed
from canary.ops.errors import Refused
from canary.ops.fast.write import remember_rendering
from canary.ops.kube.kubectl import RouteWatch
from canary.ops.pulumi.deadline import Stop
from canary.ops.pulumi.stack import Applied, ConfigSnapshot, OnOutput, Release
from canary.release.settings import ReleaseSettings
from canary.route_state import refusal_of

if TYPE_CHECKING:
    pass

Confirm = Callable[[PreviewReport], bool]


Planner = Callable[[str, ReleaseSettings, Deployed | None, HistoryEntry | None], Change]
"""Plans a change from (stack name, config, the release as deployed, the stack's last update)."""


@dataclass(frozen=True)
class Planned:
    """A change with what it was planned from: the release as deployed and the stack's last update then.
    `apply_change` refuses to run it once the stack's last update is another one."""

    change: Change
    before: Deployed | None
    last: HistoryEntry | None


def plan_change(release: Release, planner: Planner, note: str | None = None) -> Planned:
    """Read the stack (config, state, last update) and plan a change from it, `note` added to its message."""
    state = release.stack_state()
    last = release.last_update()
    change = with_note(planner(release.name, release.config(), state.deployed, last), note)
    return Planned(change, state.deployed, last)


def changed_since(planned: HistoryEntry | None, now: HistoryEntry | None) -> str | None:
    """What happened to the stack since a plan read its last update `planned`, or None if nothing."""
    if now is None:
        return None if planned is None else "its history is gone"
    if planned is not None and (planned.start, planned.kind, planned.message) == (
        now.start,
        now.kind,
        now.message,
    ):
        return None
    return (
        f"its last update is now {now.kind} {now.result} {now.message!r} of {now.start:%Y-%m-%d %H:%M:%S} UTC"
    )


def set_config(release: Release, updates: Mapping[str, str]) -> ConfigSnapshot:
    """Set config keys through Pulumi, then remember the rollback's rendering of the new config
    (canary.ops.fast.write.remember_rendering), so a `canary rollback` after this command writes sooner."""
    snapshot = release.set_config(updates)
    if release.local is not None:
        remember_rendering(release.local)
    return snapshot


def apply_change(
    release: Release,
    planned: Planned,
    *,
    confirm: Confirm,
    deadline: float | None = None,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
) -> Applied:
    """Set the change's config, preview it, ask, and run one update carrying the change's message.

    Declining (or a failing preview) puts the config back as it was, so nothing is left half-changed. A
    failed update keeps the new config: it is what the failed update tried, as with `pulumi up`.

    Just before the update the stack's last update is read again: when it is not the one the change was
    planned from (someone ran `pulumi up` meanwhile; other canary commands are kept out by the CLI's lock,
    canary.ops.team.lock) the change is refused and the config put back.
    """
    change = planned.change
    snapshot = set_config(release, change.updates)
    try:
        report = release.preview(planned.before)
        confirmed = confirm(report)
        if confirmed:
            moved = changed_since(planned.last, release.last_update())
            if moved is not None:
                raise Refused(
                    f"the stack changed after {change.action} read it ({moved}): nothing was done "
                    f"({change.message!r} not run). Check `canary status` and run it again"
                )
    except BaseException:
        release.restore_config(snapshot)
        raise
    if not confirmed:
        release.restore_config(snapshot)
        raise Refused(f"not confirmed: nothing changed ({change.message!r} not run)")
    stop = Stop()
    with refusal_guard(planned.before, stop):
        seconds = release.up(
            change.message, deadline=deadline, stop=stop, on_output=on_output, on_error=on_error
        )
    return Applied(change, report, seconds)


class RefusalJudge:
    """Sets `stop` when the route is refused by its controller at a generation newer than the one first
    seen: the verdict on the spec this update wrote (canary.route_state.refusal_of)."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self.first_generation: int | None = None

    def __call__(self, route: dict[str, Any]) -> None:
        generation = int(route.get("metadata", {}).get("generation", 0))
        if self.first_generation is None:
            self.first_generation = generation
            return
        why = refusal_of(route) if generation > self.first_generation else None
        if why is not None:
            self.stop.set(why)


@contextmanager
def refusal_guard(deployed: Deployed | None, stop: Stop) -> Iterator[None]:
    """Watch the release's route during an update, stopping it early on the controller's refusal."""
    if deployed is None:
        yield
        return
    with RouteWatch(
        deployed.app_name,
        deployed.namespace,
        deployed.route_name,
        on_item=RefusalJudge(stop),
        kind=deployed.route_kind,
    ):
        yield
