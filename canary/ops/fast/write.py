"""`canary rollback`'s fast path: traffic safe first, then the rollback recorded through Pulumi.

1. `make_safe`: read the stack's state (the local backend's file, else `pulumi stack export`) and config
   (Pulumi.yaml and Pulumi.<stack>.yaml), render the route the program renders at canaryWeight 0 with the
   program's own functions (validate.parse_config, routing.route_manifest), check that the live route is
   that stack's own route, and write it with one server-side apply as the Kubernetes provider's own field
   manager (the `__fieldManager` the provider keeps in the route's state), forcing conflicts as the route's
   `pulumi.com/patchForce` makes the provider do. The next `pulumi up` then finds nothing to change on it:
   the same fields, the same values, the same owner. The apply carries the resourceVersion that was checked,
   so a route changed after the check is refused by the apiserver, never overwritten unseen.
2. Then canary.ops.rollout.rollback.record: config canaryWeight 0 and a refreshing `pulumi up --target
   <route URN>` with the rollback's message, so stack config, state and history end as after `pulumi
   config set canaryWeight 0 && pulumi up`. This module imports nothing of rollout/ (tests/unit/test_layout).

Refused with nothing written: a stack locked by a running update (it was started with the old weight and
would put traffic back on the canary when it writes the route; stop it first), a live route that is not the
one the state names (another uid: another cluster, or recreated), one missing the annotations the program
sets, or one whose shape (parentRefs, hostnames, rules, backends) no rendering at any weight gives.

Start-up is what a rollback is timed by (docs/performance.md). Before the write it runs the CLI's entry, this
module and its HTTPS client (canary.ops.kube.https, read through canary.ops.kube.direct; kubectl only for
kubeconfigs it does not support), whose connection the CLI opens on its first line (EarlyConnection) and
whose read of the route runs in a thread. YAML files and the program's rendering at 0 come remembered when
their input is unchanged (canary.ops.files.yaml_files, rendered_at_zero); the plan of the rollback (its
message)
is made after the write. Nothing of the Pulumi SDK, the Automation API, argparse, PyYAML, dataclasses or
typing is imported before the route is written (tests/unit/ops/fast/test_write.py keeps it so).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from canary.gateway_api import (
    API_VERSION,
    GATEWAY_CLASS_RESOURCE,
    GATEWAY_RESOURCE,
    ROUTE_KIND,
    ROUTE_PLURALS,
    ROUTE_RESOURCES,
    ROUTE_TYPES,
)
from canary.ops.errors import ClusterUnreachable, Refused
from canary.ops.kube.direct import DirectReader, kubectl_timeout, object_path, reader_over
from canary.ops.kube.https import REQUEST_TIMEOUT, Conflict, EarlyConnection
from canary.ops.kube.kubectl import LiveReader
from canary.ops.pulumi.exported import deployments_beside, stack_outputs
from canary.ops.pulumi.local_backend import FastUnavailable, LocalStack
from canary.records import Record
from canary.route_state import route_state

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import Any

    from canary.ops.core.plan import Change

    Manifest = dict[str, Any]

FAST_NOTE = "(fast: route written first)"


class StateRoute(Record):
    """The release's route (an HTTPRoute, or a GRPCRoute: `kind`) as the stack's state names it."""

    urn: str
    namespace: str
    name: str
    uid: str | None
    field_manager: str | None
    deployment_urns: tuple[str, ...]
    """The release's Deployments in the state: the record's update scales them with the route."""
    kind: str = ROUTE_KIND


class SafeWrite(Record):
    """What the fast write did: the route it wrote, when, and the change to record."""

    stack: str
    route: StateRoute
    change: Change
    generation_before: int
    generation: int
    started: float
    """time.monotonic() when make_safe started."""
    safe: float
    """time.monotonic() when the apiserver answered the apply."""

    @property
    def safe_seconds(self) -> float:
        return self.safe - self.started


class AlreadyZero(Record):
    """Stack, config and live route are all at canary 0% already: nothing written."""

    stack: str


# --- refusals ---------------------------------------------------------------------------------------


def lock_message(stack: str, holders: list[dict[str, Any]]) -> str:
    """Why the fast path refuses a locked stack, and what to do."""
    holder = holders[0]
    who = ", ".join(
        f"{label} {holder[key]}"
        for key, label in (("pid", "pid"), ("hostname", "on"), ("username", "user"), ("timestamp", "since"))
        if holder.get(key)
    )
    return (
        f"stack {stack} is locked by a running update ({who or holder.get('file', 'lock file')}): nothing "
        "was written. That update was started with the old weight and would put traffic back on the canary "
        "when it writes the route, after a rollback written now. Stop it first (Ctrl-C once where it runs, "
        "or `kill -INT <pid>` on its host; `pulumi cancel` if that process is gone), then run `canary "
        "rollback` again"
    )


def route_in_state(deployment: Mapping[str, Any]) -> StateRoute:
    """The release's route in the state: the HTTPRoute named by the stack output routeName (the only one if
    there is no such output). Refused when the state has none."""
    resources: list[dict[str, Any]] = list(deployment.get("resources") or [])
    outputs = stack_outputs(resources)
    routes = [r for r in resources if r.get("type") in ROUTE_TYPES and not r.get("delete")]
    if "routeName" in outputs:
        routes = [r for r in routes if _meta(r).get("name") == outputs["routeName"]]
    if len(routes) != 1:
        raise Refused("the stack's state names no route of this release: run `pulumi up` first")
    route = routes[0]
    meta = _meta(route)
    manager = (route.get("outputs") or {}).get("__fieldManager")
    return StateRoute(
        urn=str(route["urn"]),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=None if meta.get("uid") is None else str(meta["uid"]),
        field_manager=None if manager is None else str(manager),
        deployment_urns=deployments_beside(resources, route),
        kind=ROUTE_TYPES[route["type"]],
    )


def _meta(resource: Mapping[str, Any]) -> dict[str, Any]:
    holder = resource.get("outputs") or resource.get("inputs") or {}
    return dict(holder.get("metadata") or {})


# --- the live route against the rendering (pure) ----------------------------------------------------------


def live_problems(live: Manifest, rendered: Manifest, state: StateRoute, app_name: str) -> list[str]:
    """Why the live route is not the release's own route as the program renders it at some weight; empty
    when the fast write may replace it.

    Same object as in the state (uid), the program's annotations, and every field the program renders
    present with the same value, except the split rule's weights (hand edits of those are what a rollback
    undoes). Fields the apiserver defaults (a backendRef's kind, a parentRef's group) may be extra; lists
    must have the same length, so an extra rule, backend or parent is a difference."""
    meta = live.get("metadata") or {}
    where = f"{state.namespace}/{state.name}"
    if state.uid is not None and meta.get("uid") != state.uid:
        return [
            f"live route {where} is not the one the stack created (uid {meta.get('uid')}, state says "
            f"{state.uid}): another cluster or a recreated route"
        ]
    problems = []
    annotations = meta.get("annotations") or {}
    for key, value in (rendered["metadata"].get("annotations") or {}).items():
        if annotations.get(key) != value:
            problems.append(f"annotation {key} is {annotations.get(key)!r}, the program sets {value!r}")
    live_spec = without_split_weights(live.get("spec") or {}, app_name)
    want_spec = without_split_weights(rendered["spec"], app_name)
    problems += [f"spec{path}" for path in differences(want_spec, live_spec)]
    return problems


def without_split_weights(spec: Manifest, app_name: str) -> Manifest:
    """A copy of a route spec with the split rules' backendRef weights removed."""
    from canary.route_state import split_rule_indices

    copy: Manifest = json.loads(json.dumps(spec))
    for index in split_rule_indices({"spec": copy}, app_name):
        for ref in copy["rules"][index].get("backendRefs", []):
            ref.pop("weight", None)
    return copy


def differences(want: Any, live: Any, path: str = "") -> list[str]:
    """Where `live` lacks or changes what `want` has (extra keys in `live` are allowed, lists must match in
    length), as "<path>: ..." lines."""
    if isinstance(want, dict):
        if not isinstance(live, dict):
            return [f"{path}: is {json.dumps(live)}, the program renders an object"]
        found = []
        for key, value in want.items():
            if key not in live:
                found.append(f"{path}.{key}: missing, the program renders {json.dumps(value)}")
            else:
                found += differences(value, live[key], f"{path}.{key}")
        return found
    if isinstance(want, list):
        if not isinstance(live, list) or len(live) != len(want):
            return [f"{path}: is {json.dumps(live)}, the program renders {json.dumps(want)}"]
        return [line for i, item in enumerate(want) for line in differences(item, live[i], f"{path}[{i}]")]
    if want != live:
        return [f"{path}: is {json.dumps(live)}, the program renders {json.dumps(want)}"]
    return []


def apply_body(rendered: Manifest, resource_version: str) -> Manifest:
    """The server-side apply body: exactly the program's route, plus the checked resourceVersion as the
    apiserver's precondition (it is not a managed field, so ownership is the provider's as after its own
    apply)."""
    body: Manifest = json.loads(json.dumps(rendered))
    body["metadata"]["resourceVersion"] = resource_version
    return body


# --- the fast write ---------------------------------------------------------------------------------------


def server_side_apply(body: Manifest, field_manager: str, reader: LiveReader) -> Manifest:
    """Server-side apply of one route as `field_manager`, forcing conflicts, over the connection `reader`
    reads with; the applied object."""
    where = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
    if not isinstance(reader, DirectReader):
        return kubectl_apply(body, field_manager, reader, where)
    try:
        return reader.client.apply(
            object_path(
                API_VERSION,
                ROUTE_PLURALS[body["kind"]],
                body["metadata"]["namespace"],
                body["metadata"]["name"],
            ),
            body,
            field_manager,
            force=True,
        )
    except Conflict as err:
        raise Refused(changed_message(where, str(err))) from err
    except ClusterUnreachable as err:
        raise ClusterUnreachable(unconfirmed_message(where, str(err))) from err


def changed_message(where: str, error: str) -> str:
    return (
        f"the live route {where} changed after it was checked, so the apiserver refused the rollback "
        f"write (nothing written; {error}): run `canary rollback` again"
    )


def unconfirmed_message(where: str, error: str) -> str:
    return (
        f"writing the rollback route {where} failed ({error}); the route was checked at its "
        "previous weights and the write was not confirmed: check `canary status`, or run `canary "
        "rollback --no-fast`"
    )


def kubectl_apply(body: Manifest, field_manager: str, reader: LiveReader, where: str) -> Manifest:
    """`kubectl apply --server-side --force-conflicts --field-manager M` of one object, for kubeconfigs
    the direct client does not support."""
    import subprocess

    proc = subprocess.run(
        [
            "kubectl",
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={field_manager}",
            f"--request-timeout={kubectl_timeout(REQUEST_TIMEOUT)}",
            "-o",
            "json",
            "-f",
            "-",
        ],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        env=reader.env,
        check=False,
    )
    if proc.returncode != 0:
        error = proc.stderr.strip()
        if "the object has been modified" in error or "Conflict" in error:
            raise Refused(changed_message(where, f"kubectl: {error}"))
        raise ClusterUnreachable(unconfirmed_message(where, f"kubectl: {error}"))
    applied: Manifest = json.loads(proc.stdout)
    return applied


class _Fetch(threading.Thread):
    """Get the live route in the background, over `connection` (opened earlier), while the config is read."""

    def __init__(self, name: str, namespace: str, kind: str, connection: EarlyConnection) -> None:
        super().__init__(daemon=True)
        self.args = (name, namespace, kind, connection)
        self.reader: LiveReader | None = None
        self.result: Manifest | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        name, namespace, kind, connection = self.args
        try:
            self.reader = reader_over(connection)
            self.result = self.reader.get(ROUTE_RESOURCES[kind], name, namespace)
        except BaseException as err:  # handed to the caller's thread
            self.error = err

    def get(self) -> tuple[Manifest | None, LiveReader]:
        self.join()
        if self.error is not None:
            raise self.error
        assert self.reader is not None
        return self.result, self.reader


class Rendering(Record):
    """The program's route at canaryWeight 0 for one config, and what the rest of the fast path needs of
    that config."""

    route: Manifest
    app_name: str
    raw: dict[str, str]
    secure: frozenset[str]
    stable_full: int | None
    """The stable's full size when its pod count follows traffic (capacity.stable "traffic"), else None:
    then a live weight above 0 means fewer stable pods than a rollback's 100% needs."""
    features: list[list[str]]
    """The Gateway API features beyond Core the route needs, as [feature, config key] (release.features)."""
    gateways: list[list[str]]
    """The route's Gateways as [name, namespace, class]: the class is gatewayClassName for the owned one,
    "" for another Gateway (read from the cluster when a feature needs checking)."""
    assume: bool
    """gatewayFeatures is 'assume'."""


RENDERINGS = "rollback-route"
"""canary.ops.files.remembered's kind for remembered renderings: per stack, the last few configs'
renderings."""
RENDERINGS_KEPT = 8
"""How many configs' renderings a stack keeps (a rollout's steps, their rollbacks, a promote)."""


def rendering_key(raw: Mapping[str, str], secure: frozenset[str]) -> str:
    """What a rendering at canaryWeight 0 is made from: the config as the program gets it, which keys are
    secrets, and the program's own code (each module's size and modification time)."""
    import canary

    package = os.path.dirname(canary.__file__)
    code = []
    for folder in (package, os.path.join(package, "release")):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                info = entry.stat()
                code.append([os.path.relpath(entry.path, package), info.st_size, info.st_mtime_ns])
    return json.dumps({"config": dict(raw), "secure": sorted(secure), "code": code}, sort_keys=True)


def stable_short(full: int, canary_percent: Decimal) -> int | None:
    """The stable's pods at `canary_percent` when it follows traffic, if fewer than `full` (None when it
    could take all traffic now)."""
    from canary.release.capacity import stable_following_traffic

    pods = stable_following_traffic(full, canary_percent)
    return pods if pods < full else None


def rendered_at_zero(local: LocalStack) -> Rendering:
    """The route the program renders for this stack's config with canaryWeight 0, after the program's own
    validation of that config (validate.parse_config, routing.route_manifest). A config rendered before,
    exactly as it is now and by the same code, gets that rendering back (canary.ops.files.remembered): the
    fast
    path then imports none of the program's modules before its write. Raises ConfigError (the program would
    not render either) or FastUnavailable."""
    from canary.ops.files import remembered
    from canary.release.keys import config_string

    raw, secure = local.raw_config(config_string)
    key = rendering_key(raw, secure)
    name = f"{local.cwd}/{local.stack}"
    kept = remembered.find(RENDERINGS, name, "key", key)
    if kept is not None and {"features", "gateways", "assume"} <= set(kept):  # older records lack them
        return Rendering(
            kept["route"],
            str(kept["appName"]),
            raw,
            secure,
            kept["stableFull"],
            kept["features"],
            kept["gateways"],
            kept["assume"],
        )
    from canary.release.features import CORE, needs
    from canary.release.routing import route_manifest
    from canary.release.validate import parse_config

    config = parse_config(raw, deferred=secure)
    route = route_manifest(parse_config({**raw, "canaryWeight": "0"}, deferred=secure))
    stable_full = config.stable_replicas if config.capacity.stable == "traffic" else None
    wanted = [[need.feature, need.key] for need in needs(config) if need.feature not in CORE]
    gateways = [
        [
            parent.name,
            parent.namespace,
            config.gateway_class_name if index == 0 and config.create_gateway else "",
        ]
        for index, parent in enumerate(config.parents)
    ]
    assume = config.gateway_features == "assume"
    remembered.add(
        RENDERINGS,
        name,
        {
            "key": key,
            "route": route,
            "appName": config.app_name,
            "stableFull": stable_full,
            "features": wanted,
            "gateways": gateways,
            "assume": assume,
        },
        RENDERINGS_KEPT,
    )
    return Rendering(route, config.app_name, raw, secure, stable_full, wanted, gateways, assume)


def feature_problems(rendering: Rendering, reader: LiveReader) -> list[str]:
    """What the release's GatewayClasses lack of the features beyond Core its route needs (canary.release
    .features, as the program checks at preview), read only when the route needs any."""
    if not rendering.features:
        return []
    from canary.release.features import Need, judge, supported_features

    classes: dict[str, frozenset[str] | None] = {}
    for name, namespace, class_name in rendering.gateways:
        if not class_name:
            gateway = reader.get(GATEWAY_RESOURCE, name, namespace)
            if gateway is None:
                continue
            class_name = str(gateway["spec"]["gatewayClassName"])
        gateway_class = reader.get(GATEWAY_CLASS_RESOURCE, class_name)
        classes[class_name] = supported_features(gateway_class or {})
    wanted = [Need(feature, key) for feature, key in rendering.features]
    return [message for _, message in judge(wanted, classes, rendering.assume).problems]


def remember_rendering(local: LocalStack) -> None:
    """Read the stack's config as `pulumi config` just wrote it and render its rollback route, so that a
    `canary rollback` after this finds both remembered (canary.ops.files.yaml_files, rendered_at_zero: its
    fast path then imports neither a YAML parser nor the program before its write). Best effort: what fails
    here fails again, and is reported, when the rollback runs."""
    import contextlib

    from canary.ops.files.yaml_files import YamlError
    from canary.release.validate import ConfigError

    with contextlib.suppress(OSError, YamlError, ConfigError, FastUnavailable):
        rendered_at_zero(local)


def plan_for(
    stack: str, deployment: Mapping[str, Any], rendering: Rendering, live: Manifest
) -> Change | None:
    """plan_rollback for this stack (its config validated, its state read, its live route), with the fast
    path's note in the message; None when stack, config and live route are at 0 already."""
    from canary.ops.core.plan import Change as ChangeClass
    from canary.ops.core.plan import plan_rollback
    from canary.ops.core.state import read_state
    from canary.release.validate import parse_config

    config = parse_config(rendering.raw, deferred=rendering.secure)
    change = plan_rollback(
        stack, config, read_state(deployment).deployed, route_state(live, rendering.app_name)
    )
    if change is None:
        return None
    return ChangeClass(
        action=change.action,
        updates=change.updates,
        message=f"{change.message} {FAST_NOTE}",
        from_percent=change.from_percent,
        to_percent=Decimal(0),
    )


def _plan_after_write(
    stack: str, deployment: Mapping[str, Any], rendering: Rendering, live: Manifest, where: str
) -> Change:
    """plan_for once the route is written: whatever stops it is said after saying that traffic is safe."""
    from canary.release.validate import ConfigError

    try:
        change = plan_for(stack, deployment, rendering, live)
    except (Refused, ConfigError) as err:
        problem = str(err)
    else:
        if change is not None:
            return change
        problem = "the plan found nothing to roll back"
    raise Refused(
        f"Traffic is safe: the live route {where} sends 0% to the canary (written directly), but the "
        f"rollback cannot be recorded ({problem}): run `pulumi up --stack {stack}`"
    )


def make_safe(
    cwd: Path,
    stack: str | None,
    *,
    env: Mapping[str, str] | None = None,
    started: float | None = None,
    connection: EarlyConnection | None = None,
) -> SafeWrite | AlreadyZero:
    """Write the route the program renders at canaryWeight 0, after every check; see the module docstring.

    While the live route sends the canary traffic, the rollback's plan (its message, the percent it rolls
    back from) is made after the write: nothing in it can stop a rollback then (plan_rollback refuses only a
    stack without a canary, whose live route has no canary backend), and it needs the program's modules.

    `connection`: the apiserver connection, when the caller opened it already (EarlyConnection).

    Raises Refused (nothing written), ClusterUnreachable, ConfigError (the config is invalid: the program
    would not render either) or FastUnavailable (use the `pulumi up` path)."""
    started = time.monotonic() if started is None else started
    connection = connection or EarlyConnection(env, REQUEST_TIMEOUT)
    local = LocalStack.open(cwd, stack, env)
    stack = local.stack
    deployment = local.deployment()
    state = route_in_state(deployment)
    if state.field_manager is None:
        raise FastUnavailable("the route's state does not name the provider's field manager")
    holders = local.lock_holders()
    if holders:
        raise Refused(lock_message(stack, holders))
    fetch = _Fetch(state.name, state.namespace, state.kind, connection)

    # While the route is read: the program's own validation and rendering (or their remembered result).
    rendering = rendered_at_zero(local)
    rendered = rendering.route
    meta = rendered["metadata"]
    if (rendered["kind"], meta["namespace"], meta["name"]) != (state.kind, state.namespace, state.name):
        raise Refused(
            f"the config renders {rendered['kind']} {meta['namespace']}/{meta['name']}, the stack's state "
            f"names {state.kind} {state.namespace}/{state.name} (a pending change of appName, namespace or "
            "protocol?): nothing written; use `canary rollback --no-fast`"
        )

    live, reader = fetch.get()
    if live is None:
        raise Refused(
            f"live route {state.namespace}/{state.name} not found: nothing written; run `pulumi up`"
        )
    lacking = feature_problems(rendering, reader)
    if lacking:
        raise Refused(
            "the route asks its gateway for what it does not support, at any weight (nothing written):\n  - "
            + "\n  - ".join(lacking)
        )
    change = None
    live_percent = route_state(live, rendering.app_name).canary_percent
    if live_percent and rendering.stable_full is not None:
        short = stable_short(rendering.stable_full, live_percent)
        if short:
            raise FastUnavailable(
                f"capacity.stable is 'traffic': at {live_percent}% the stable runs {short} of the "
                f"{rendering.stable_full} pods 100% needs, so the rollback scales it up before it moves "
                "traffic (through pulumi up)"
            )
    if not live_percent:  # no traffic to make safe: plan first
        change = plan_for(stack, deployment, rendering, live)
        if change is None:
            return AlreadyZero(stack)
    problems = live_problems(live, rendered, state, rendering.app_name)
    if problems:
        raise Refused(
            f"live route {state.namespace}/{state.name} is not the program's route (nothing written):\n  - "
            + "\n  - ".join(problems)
            + "\nfix it with `pulumi up --refresh` or `canary rollback --no-fast`"
        )
    before = int((live.get("metadata") or {}).get("generation", 0))
    applied = server_side_apply(
        apply_body(rendered, str(live["metadata"]["resourceVersion"])), state.field_manager, reader
    )
    safe = time.monotonic()
    if change is None:
        change = _plan_after_write(stack, deployment, rendering, live, f"{state.namespace}/{state.name}")
    return SafeWrite(
        stack=stack,
        route=state,
        change=change,
        generation_before=before,
        generation=int((applied.get("metadata") or {}).get("generation", 0)),
        started=started,
        safe=safe,
    )
