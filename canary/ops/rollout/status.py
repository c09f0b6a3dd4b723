"""What `canary status` shows, read once (RolloutState), and the quick way to read it.

`read_rollout` puts the reads together; it does not care where they come from. `read_status` feeds it the
Automation API (a `pulumi` process per read: about 3 s in all). `read_local` feeds it the stack's own
files (canary.ops.pulumi.local_backend) and the direct apiserver client (canary.ops.kube.direct): the same
RolloutState, with no `pulumi` process once the stack is named (--stack), for a stack in a local backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.names import Track, object_name
from canary.ops.core.history import HistoryEntry
from canary.ops.core.state import RolloutState, read_state, replicas_of
from canary.ops.errors import ClusterUnreachable
from canary.ops.kube.direct import live_reader
from canary.ops.kube.https import REQUEST_TIMEOUT
from canary.ops.kube.kubectl import LiveReader
from canary.ops.pulumi.local_backend import LocalStack
from canary.release.settings import ReleaseSettings
from canary.release.validate import ConfigError

if TYPE_CHECKING:
    from canary.ops.pulumi.stack import Release


def read_rollout(
    stack: str,
    project: str,
    config: Callable[[], ReleaseSettings],
    deployment: Mapping[str, Any] | None,
    last_update: HistoryEntry | None,
    live: LiveReader,
) -> RolloutState:
    """Everything status shows. A bad config or an unreachable cluster is reported, not raised."""
    settings: ReleaseSettings | None = None
    config_error: ConfigError | None = None
    try:
        settings = config()
    except ConfigError as err:
        config_error = err
    state = read_state(deployment)
    live_route, live_error, replicas = None, None, {}
    deployed = state.deployed
    if deployed is not None:
        try:
            live_route = live.route(
                deployed.app_name, deployed.namespace, deployed.route_name, deployed.route_kind
            )
            tracks: tuple[Track, ...] = ("stable", "canary") if deployed.canary_image else ("stable",)
            for track in tracks:
                name = object_name(deployed.app_name, track)
                replicas[track] = replicas_of(live.get("deployment", name, deployed.namespace))
        except (ClusterUnreachable, OSError) as err:
            live_error = str(err)
    return RolloutState(
        stack=stack,
        project=project,
        config=settings,
        config_error=config_error,
        state=state,
        last_update=last_update,
        live_route=live_route,
        live_error=live_error,
        replicas=replicas,
    )


def read_status(release: Release) -> RolloutState:
    """Everything status shows, through the Automation API (the local backend's files where it has them)."""
    return read_rollout(
        release.name,
        release.project,
        release.config,
        release.deployment(),
        release.last_update(),
        release.live,
    )


def read_local(cwd: Path, stack: str | None, env: Mapping[str, str] | None = None) -> RolloutState:
    """RolloutState from the stack's files and the apiserver directly; raises FastUnavailable (for
    canary.ops.pulumi.local_backend's reasons) when only the Automation API can read this stack.

    Secret config values stay ciphertext here: validation defers them, as the program does for an
    Output, so a config problem in a secret shows up in `canary status --no-fast`'s reading only."""
    from canary.release.keys import config_string
    from canary.release.validate import parse_config

    local = LocalStack.open(cwd, stack, env)

    def config() -> ReleaseSettings:
        raw, secure = local.raw_config(config_string)
        return parse_config(raw, deferred=secure)

    return read_rollout(
        local.stack,
        local.project,
        config,
        local.deployment(),
        local.last_update(),
        live_reader(env, REQUEST_TIMEOUT),
    )
