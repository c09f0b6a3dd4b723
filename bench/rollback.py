"""Time-to-safe rollback: from the command's start until a watch on the apiserver sees canary weight 0.

Methods, each run as users run it, against one dedicated stack and namespace:

- kubectl: the reference article's one-liner, `kubectl patch httproute ... --type=json` (the baseline);
- pulumi-up: `pulumi config set canaryWeight 0 && pulumi up --yes` (preview, then update);
- pulumi-up-skip-preview: the same with `--skip-preview`;
- pulumi-up-target: `... && pulumi up --yes --skip-preview --target <route URN>`, what `canary rollback`
  runs inside, without the CLI around it (splits the CLI's own cost from the engine's);
- pulumi-up-target-light: the same, the program run with bench/experiments/light_k8s (the typed
  Kubernetes classes replaced by plain registrations; a proposal, measured before it is made);
- canary: `canary rollback --yes` (when the installed CLI has it): its fast path, the route the program
  renders at canaryWeight 0 server-side applied first, then recorded by a refreshing, targeted `pulumi up`
  (canary.ops.fast.write);
- canary-no-fast: `canary rollback --yes --no-fast`, the targeted `pulumi up` alone (the path before the
  fast one);
- break-glass: bench/experiments/breakglass.py, a prototype of a proposed `canary rollback --now` that
  patches the route directly, then records it with a refreshing, targeted `pulumi up`.

Runs are interleaved: every round runs each method once, in an order rotated by one per round, so slow
phases of a noisy machine spread over all methods. Before each run the stack is put back to weight 50 with
a real `pulumi up`; after a kubectl patch the stack state is stale (it still says 50 while the live route
says 0), so that reset runs `pulumi up --refresh` and live and state agree again.
"""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import time_until_route
from bench.stacks import APP, Release, changes
from canary.gateway_api import ROUTE_TYPE
from canary.names import object_name
from canary.route_state import route_state, split_rule_index

RESET_WEIGHT = "50"
BREAKGLASS = Path(__file__).resolve().parent / "experiments" / "breakglass.py"


def rollback_patch(route: dict[str, Any], app: str) -> list[dict[str, Any]]:
    """The article's JSON patch for this route: stable backend weight 100, canary 0, in the split rule
    (canary.route_state.split_rule_index), with indices read from the live object."""
    stable, canary = object_name(app, "stable"), object_name(app, "canary")
    index = split_rule_index(route, app)
    names = [] if index is None else [ref.get("name") for ref in route["spec"]["rules"][index]["backendRefs"]]
    if canary not in names:
        raise ValueError(f"route {app} has no split rule with both {stable} and {canary}")
    base = f"/spec/rules/{index}/backendRefs"
    return [
        {"op": "replace", "path": f"{base}/{names.index(stable)}/weight", "value": 100},
        {"op": "replace", "path": f"{base}/{names.index(canary)}/weight", "value": 0},
    ]


def rotated(items: list[str], by: int) -> list[str]:
    """`items` rotated left by `by` (round r of an interleaved run starts with method r)."""
    if not items:
        return []
    by %= len(items)
    return items[by:] + items[:by]


@dataclass(frozen=True)
class Method:
    key: str
    command: str
    """The command as a user types it (for the table)."""
    argv: Callable[[Release, dict[str, Any]], list[list[str]]]
    """The commands to run, in order (each must succeed)."""
    engine: bool
    """Runs a Pulumi update (the stack's history gets an entry touching only the route)."""
    stale: bool = False
    """Leaves the stack state behind the live route (the reset must refresh)."""
    light: bool = False
    """Runs the program with bench/experiments/light_k8s (proposal: no typed Kubernetes classes)."""
    refreshes: bool = False
    """Its update refreshes the route first, so it may find nothing left to change."""


def _pulumi(release: Release, *args: str) -> list[str]:
    return ["pulumi", *args, "--stack", release.stack.name]


def _config_zero(release: Release) -> list[str]:
    return _pulumi(release, "config", "set", "canaryWeight", "0")


def _targeted_up(release: Release, ctx: dict[str, Any]) -> list[list[str]]:
    """canaryWeight 0, then an update of the route alone (no preview)."""
    up = _pulumi(release, "up", "--yes", "--skip-preview", "--target", ctx["route_urn"])
    return [_config_zero(release), up]


METHODS: dict[str, Method] = {
    m.key: m
    for m in [
        Method(
            "kubectl",
            "kubectl patch httproute <app> -n <ns> --type=json -p '[...weight 100/0...]'",
            lambda r, ctx: [
                [
                    "kubectl",
                    "patch",
                    "httproute",
                    APP,
                    "-n",
                    r.namespace,
                    "--type=json",
                    "-p",
                    json.dumps(ctx["patch"]),
                ]
            ],
            engine=False,
            stale=True,
        ),
        Method(
            "pulumi-up",
            "pulumi config set canaryWeight 0 && pulumi up --yes",
            lambda r, ctx: [_config_zero(r), _pulumi(r, "up", "--yes")],
            engine=True,
        ),
        Method(
            "pulumi-up-skip-preview",
            "pulumi config set canaryWeight 0 && pulumi up --yes --skip-preview",
            lambda r, ctx: [_config_zero(r), _pulumi(r, "up", "--yes", "--skip-preview")],
            engine=True,
        ),
        Method(
            "pulumi-up-target",
            "pulumi config set canaryWeight 0 && pulumi up --yes --skip-preview --target <route URN>",
            _targeted_up,
            engine=True,
        ),
        Method(
            "pulumi-up-target-light",
            "same as pulumi-up-target, program without typed Kubernetes classes (experiment)",
            _targeted_up,
            engine=True,
            light=True,
        ),
        Method(
            "break-glass",
            "prototype canary rollback --now: kubectl patch (test ops), then pulumi up --refresh --target",
            lambda r, ctx: [
                [
                    "python",
                    str(BREAKGLASS),
                    "--cwd",
                    str(r.stack.project_dir),
                    "--stack",
                    r.stack.name,
                ]
            ],
            engine=True,
            refreshes=True,
        ),
        Method(
            "canary",
            "canary rollback --yes (fast path: route written first, then recorded)",
            lambda r, ctx: [
                ["canary", "rollback", "--yes", "--stack", r.stack.name, "--cwd", str(r.stack.project_dir)]
            ],
            engine=True,
            refreshes=True,
        ),
        Method(
            "canary-no-fast",
            "canary rollback --yes --no-fast",
            lambda r, ctx: [
                [
                    "canary",
                    "rollback",
                    "--yes",
                    "--no-fast",
                    "--stack",
                    r.stack.name,
                    "--cwd",
                    str(r.stack.project_dir),
                ]
            ],
            engine=True,
        ),
    ]
}
DEFAULT_METHODS = [
    "kubectl",
    "pulumi-up",
    "pulumi-up-skip-preview",
    "pulumi-up-target",
    "pulumi-up-target-light",
    "canary",
    "canary-no-fast",
    "break-glass",
]


def canary_has_rollback(env: dict[str, str]) -> bool:
    """Whether the installed `canary` CLI has a rollback command (another engineer writes it)."""
    try:
        proc = subprocess.run(
            ["canary", "rollback", "--help"], env=env, capture_output=True, text=True, timeout=60
        )
    except OSError:
        return False
    return proc.returncode == 0


def run_all(commands: list[list[str]], release: Release) -> None:
    for argv in commands:
        proc = subprocess.run(
            argv,
            env=release.stack.env,
            cwd=release.stack.project_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(argv)} failed (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}"
            )


def reset(release: Release, refresh: bool) -> float:
    """Back to canary 50% with a real `pulumi up` (with --refresh when the state is stale); checked live."""
    stack = release.stack
    stack.set_config({"canaryWeight": RESET_WEIGHT})
    flags = ["--skip-preview", *(["--refresh"] if refresh else [])]
    seconds = stack.up(*flags).seconds
    live = route_state(release.live_route(), APP)
    weights = [live.stable_weight, live.canary_weight]
    if weights != [50, 50]:
        raise SystemExit(f"bench: reset to 50% left the live route at {weights}")
    return seconds


def run(release: Release, methods: list[str], rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    """`rounds` interleaved rounds of every method; returns the raw runs and the method descriptions."""
    ctx: dict[str, Any] = {
        "patch": rollback_patch(release.live_route(), APP),
        "route_urn": release.stack.urn_of(ROUTE_TYPE),
    }
    runs: list[dict[str, Any]] = []
    stale = False
    for r in range(rounds):
        for key in rotated(methods, r):
            method = METHODS[key]
            reset_seconds = reset(release, refresh=stale)
            reset_refresh = stale
            release.use_program(method.light)
            timing = time_until_route(
                release.stack.env,
                release.namespace,
                APP,
                functools.partial(run_all, method.argv(release, ctx), release),
                want_canary_weight=0,
            )
            stale = method.stale
            release.use_program(False)
            record: dict[str, Any] = {
                "method": key,
                "round": r,
                "safe": timing.safe,
                "exited": timing.exited,
                "reset": reset_seconds,
                "resetRefresh": reset_refresh,
                "at": time.time(),
            }
            if method.engine:
                record["changes"] = changes(release.stack.last_update())
                allowed = [{"update": 1}, *([{}] if method.refreshes else [])]
                if record["changes"] not in allowed:
                    raise SystemExit(f"bench: {key} rollback touched {record['changes']}, not one update")
            runs.append(record)
            log(
                f"  rollback round {r + 1}/{rounds} {key}: safe {timing.safe:.2f}s, exit {timing.exited:.2f}s"
            )
    return {
        "methods": {key: METHODS[key].command for key in methods},
        "runs": runs,
    }
