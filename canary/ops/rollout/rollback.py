"""The one rollback decision: canary weight 0 by the fast write or by `pulumi up`, and what happened.

`roll_back` is what `canary rollback` and `canary run` (on a failed check) call; they print what it reports
and returns, nothing more. The paths, in the order it takes them:

- already at 0 (stack, config and live route): nothing to do (RolledBack.how "already-zero");
- fast (the default, on a local file backend): the route the program renders at 0 is written first
  (canary.ops.fast.write.make_safe; by the CLI before argparse for `canary rollback --yes`, else here after
  the plan and its confirmation), then `record` records it through Pulumi: config canaryWeight 0 and a
  refreshing `pulumi up --target <route>` with the rollback's message (how "fast");
- through Pulumi (`--no-fast`, or a stack the fast path cannot read, which is reported): config 0 and a
  targeted `pulumi up` of the route alone, the live route watched from before it starts (how "pulumi").

Either way the canary pods stay warm (only the route changes) and stack history holds the rollback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from canary.ops.core.plan import Change, plan_rollback, require_deployed, with_note
from canary.ops.core.state import StackState
from canary.ops.errors import PulumiFailed, Refused
from canary.ops.fast.write import AlreadyZero, SafeWrite, make_safe
from canary.ops.kube.kubectl import RouteWatch
from canary.ops.pulumi.deadline import Stop
from canary.ops.pulumi.local_backend import FastUnavailable
from canary.ops.pulumi.stack import OnOutput, Release, update_deadline
from canary.ops.rollout.flows import RefusalJudge, set_config

if TYPE_CHECKING:
    from canary.ops.kube.kubectl import ZeroWatch


@dataclass(frozen=True)
class RollbackTiming:
    """How long a rollback took, from the moment it started acting (after any confirmation)."""

    update_seconds: float
    """Until `pulumi up` returned."""
    live_zero_seconds: float | None
    """Until the live route was first seen sending 0% to canary (None: not seen within the timeout)."""


@dataclass(frozen=True)
class RolledBack:
    """What `roll_back` did."""

    how: str
    """"already-zero" (nothing to do), "fast" (written first, then recorded) or "pulumi" (`pulumi up`)."""
    change: Change | None
    """The change recorded (None when already at 0)."""
    written: SafeWrite | None = None
    """The fast write (how "fast")."""
    update_seconds: float | None = None
    """How long the recording or rolling-back `pulumi up` took."""
    live_zero_seconds: float | None = None
    """From the start until the live route sent 0% to the canary: the fast write's answer, or the watch's
    first sight of it through Pulumi (None: not seen within the timeout)."""
    not_fast: str | None = None
    """Why the fast path was not taken when it was asked for (None: taken, or not asked for)."""


class RollbackReport(Protocol):
    """What a caller is told while `roll_back` runs, at the moment it happens (the caller prints it)."""

    def planned(self, change: Change) -> None:
        """The rollback's plan, before it is confirmed and before anything is written."""

    def not_fast(self, why: str) -> None:
        """The fast path cannot be used for this stack: the rollback goes through `pulumi up`."""

    def safe(self, written: SafeWrite) -> None:
        """The live route sends 0% to the canary; the record through Pulumi starts now."""

    def record_interrupted(self, written: SafeWrite) -> None:
        """Ctrl-C or SIGTERM while the record ran: traffic is safe, the record is not finished."""


Confirm = Callable[[Change], bool]


def roll_back(
    release: Release,
    *,
    report: RollbackReport,
    fast: bool = True,
    early: SafeWrite | AlreadyZero | None = None,
    early_not_fast: str | None = None,
    note: str | None = None,
    confirm: Confirm | None = None,
    deadline: float | None = None,
    started: float | None = None,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
) -> RolledBack:
    """Canary weight 0 now, by the fast write when `fast` and the stack allows it, else through `pulumi up`.

    `early`: what the CLI's fast write already did before the stack was opened (`canary rollback --yes`),
    or `early_not_fast`: why it could not. Without either, the rollback is planned from the stack, told
    (report.planned) and confirmed (`confirm`; None: no question) before anything is written. `note` is
    added to the recorded message (`canary run`: the failing verdict). Raises Refused when not confirmed or
    nothing can be rolled back, PulumiFailed when recording fails (saying that traffic is safe, if it is).
    `deadline` bounds the update (None: update_deadline of the stack's config, read only when an update runs).
    """
    started = time.monotonic() if started is None else started
    written = early
    not_fast = early_not_fast if fast else None
    if written is None and fast and not_fast is None and confirm is None:
        written, not_fast = _write_fast(release, started)  # nothing to ask: traffic first, plan after
    if written is None:
        state = release.stack_state()
        deployed = state.deployed
        live = None
        if deployed is not None:
            live = release.live.route(
                deployed.app_name, deployed.namespace, deployed.route_name, deployed.route_kind
            )
        change = plan_rollback(release.name, release.config(), deployed, live)
        if change is None:
            return RolledBack("already-zero", None)
        change = with_note(change, note)
        report.planned(change)
        if confirm is not None and not confirm(change):
            raise Refused("not confirmed: nothing changed")
        if fast and not_fast is None:
            written, not_fast = _write_fast(release, started)
        if written is None:
            if not_fast is not None:
                report.not_fast(not_fast)
            deadline = _deadline(release, deadline)
            timing = through_pulumi(
                release, change, state, deadline=deadline, on_output=on_output, on_error=on_error
            )
            return RolledBack(
                "pulumi", change, None, timing.update_seconds, timing.live_zero_seconds, not_fast
            )
    if isinstance(written, AlreadyZero):
        return RolledBack("already-zero", None)
    written = written._replace(change=with_note(written.change, note))
    report.safe(written)
    try:
        deadline = _deadline(release, deadline)
        seconds = record(release, written, deadline=deadline, on_output=on_output, on_error=on_error)
    except KeyboardInterrupt:
        report.record_interrupted(written)
        raise
    return RolledBack("fast", written.change, written, seconds, written.safe_seconds)


def _deadline(release: Release, given: float | None) -> float:
    return given if given is not None else update_deadline(release.config())


def _write_fast(release: Release, started: float) -> tuple[SafeWrite | AlreadyZero | None, str | None]:
    """The fast write (canary.ops.fast.write.make_safe), or why this stack cannot have it."""
    try:
        return make_safe(release.cwd, release.name, started=started), None
    except FastUnavailable as why:
        return None, str(why)


def record(
    release: Release,
    written: SafeWrite,
    *,
    deadline: float | None = None,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
) -> float:
    """Config canaryWeight 0, then a refreshing update of the route and the release's Deployments (the
    canary scales down after the route, where capacity follows traffic) with the rollback's message; its
    duration. A failure says that traffic is safe and what to run (raises PulumiFailed)."""
    where = f"{written.route.namespace}/{written.route.name}"
    safe = f"Traffic is safe: the live route {where} sends 0% to the canary (written directly)."
    try:
        set_config(release, written.change.updates)
    except (PulumiFailed, OSError) as err:
        detail = err.detail if isinstance(err, PulumiFailed) else str(err)
        raise PulumiFailed(
            "recording the rollback",
            f"{safe} Setting config canaryWeight 0 failed, so the stack still says otherwise: run "
            f"`pulumi config set canaryWeight 0 --stack {written.stack} && pulumi up --stack "
            f"{written.stack}`.\n{detail}",
        ) from err
    try:
        return release.up(
            written.change.message,
            target=[written.route.urn, *written.route.deployment_urns],
            refresh=True,
            deadline=deadline,
            on_output=on_output,
            on_error=on_error,
        )
    except PulumiFailed as err:
        raise PulumiFailed(
            "recording the rollback (pulumi up)",
            f"{safe} Config canaryWeight is 0, but the update that records it failed: run `pulumi up "
            f"--stack {written.stack}` (it finds the route already at 0 and converges).\n{err.detail}",
            streamed=err.streamed,
        ) from err


def through_pulumi(
    release: Release,
    change: Change,
    state: StackState,
    *,
    deadline: float | None = None,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
    settle_timeout: float = 30.0,
    watch_route: Callable[[str, str, str], ZeroWatch] = RouteWatch,
) -> RollbackTiming:
    """canaryWeight 0, then a targeted update of the HTTPRoute and the release's Deployments: no preview, no
    other resource; a Deployment changes only where capacity follows traffic (the stable scaled up before
    the route, the canary scaled down after it and the settle time; canary.release.capacity). The live
    route is watched from before the update starts, so the time it first reads 0% is measured, not
    assumed.

    When the stack already says 0 but the live route does not (edited by hand), the update refreshes the
    route first, so Pulumi sees the difference and writes the route back. `watch_route` starts the watch
    (app, namespace, route name); tests pass a stand-in.
    """
    deployed = require_deployed(state.deployed, release.name)
    if state.route_urn is None:
        raise Refused(f"no HTTPRoute in the state of stack {release.name}: run `pulumi up` first")
    set_config(release, change.updates)
    started = time.monotonic()
    stop = Stop()
    with watch_route(deployed.app_name, deployed.namespace, deployed.route_name) as watch:
        watch.on_item = RefusalJudge(stop)
        update_seconds = release.up(
            change.message,
            target=[state.route_urn, *state.deployment_urns],
            refresh=change.from_percent == 0,
            deadline=deadline,
            stop=stop,
            on_output=on_output,
            on_error=on_error,
        )
        seen = watch.wait_for_zero(timeout=settle_timeout)
    if seen is None:
        live = release.live.route(
            deployed.app_name, deployed.namespace, deployed.route_name, deployed.route_kind
        )
        if live is not None and live.canary_percent == 0:
            seen = time.monotonic()
    return RollbackTiming(update_seconds, None if seen is None else max(0.0, seen - started))
