"""What capacity that follows traffic costs: pod-seconds of a full walk per mode, and the time per step.

Per round and mode (interleaved, order rotated each round): a release of the product's program on class
`eg` (real Envoy, one real podinfo per Ready pod), R = `FULL` stable pods, `canaryReplicas` 1. Untimed: the
stable deployed. Then, each a timed `pulumi up --skip-preview` followed by `dwell` seconds (the time a team
would watch each step): the canary deployed at 0, 5, 25, 50, 100; then `canary rollback --yes` from 100%,
timed until a watch on the apiserver sees the route at canary weight 0 (time-to-safe: with stable
"traffic" it waits for the stable's scale-up first) and until the command exits; then promote. A watch of
the namespace's Pods runs from before the first step; pod-seconds integrate the number of pods that exist
(created and not yet deleted) over the walk, from the watch's arrival times. The stack is destroyed after
each walk.

Modes: `fixed` (capacity.canary fixed: the article's one canary pod), `traffic-full` (the default: canary
follows traffic, stable full), `traffic-traffic` (both follow traffic).
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import pod_seconds, time_until_route
from bench.rollback import rotated
from bench.stacks import APP, CANARY_IMAGE, REPO, STABLE_IMAGE, Stack, private_project
from bench.traffic import EG_CLASS, HOST
from canary.ops.kube.kubectl import Watch
from devtools.pulumi_cli import unique

MODES: dict[str, dict[str, str]] = {
    "fixed": {"canary": "fixed"},
    "traffic-full": {},
    "traffic-traffic": {"stable": "traffic"},
}
FULL = 4
"""The stable's full size, R."""
WALK = ["0", "5", "25", "50", "100"]


def walk(workdir: Path, env: dict[str, str], mode: str, dwell: float) -> dict[str, Any]:
    """One walk of `mode`: seconds per step and the pod-seconds of the whole walk."""
    name = unique("bench")
    stack = Stack(private_project(REPO, workdir / name), name, env).init()
    namespace = unique("gc-bench")
    try:
        stack.set_config(
            {
                "appName": APP,
                "namespace": namespace,
                "stableImage": STABLE_IMAGE,
                "stableReplicas": str(FULL),
                "canaryReplicas": "1",
                "gatewayClassName": EG_CLASS,
                "waitForGateway": "true",
                "rolloutTimeout": "300",
            }
        )
        stack.pulumi("config", "set", "--path", "hostnames[0]", HOST).check()
        for field, value in MODES[mode].items():
            stack.pulumi("config", "set", "--path", f"capacity.{field}", value).check()
        stack.up("--skip-preview")
        steps: list[dict[str, Any]] = []
        with Watch("pod", namespace, events=True, env=env) as pods:
            time.sleep(1.0)  # the watch's initial list
            start = time.monotonic()
            stack.set_config({"canaryImage": CANARY_IMAGE})
            for weight in WALK:
                stack.set_config({"canaryWeight": weight})
                steps.append({"to": weight, "seconds": stack.up("--skip-preview").seconds})
                time.sleep(dwell)
            rollback = time_until_route(env, namespace, APP, lambda: canary_rollback(stack), 0)
            time.sleep(dwell)
            stack.set_config({"stableImage": CANARY_IMAGE, "canaryImage": "", "canaryWeight": "0"})
            steps.append({"to": "promote", "seconds": stack.up("--skip-preview").seconds})
            time.sleep(dwell)
            end = time.monotonic()
            events = list(pods.seen)
        return {
            "mode": mode,
            "steps": steps,
            "walkSeconds": end - start,
            "podSeconds": pod_seconds(events, start, end),
            "rollbackSafe": rollback.safe,
            "rollbackExited": rollback.exited,
        }
    finally:
        stack.destroy()


def canary_rollback(stack: Stack) -> None:
    argv = ["canary", "rollback", "--yes", "--stack", stack.name, "--cwd", str(stack.project_dir)]
    proc = subprocess.run(argv, env=stack.env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed: {proc.stdout}{proc.stderr}")


def run(
    workdir: Path,
    env: dict[str, str],
    modes: list[str],
    rounds: int,
    dwell: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    runs = []
    for r in range(rounds):
        for mode in rotated(modes, r):
            log(f"  capacity: round {r + 1}/{rounds}, {mode}")
            runs.append(walk(workdir, env, mode, dwell))
    return {"runs": runs, "full": FULL, "dwell": dwell}


def derive(raw: dict[str, Any]) -> dict[str, Any]:
    """Per mode: median pod-seconds and walk time; per step, the median seconds and the extra over fixed."""
    by_mode: dict[str, list[dict[str, Any]]] = {}
    for one in raw["runs"]:
        by_mode.setdefault(one["mode"], []).append(one)
    modes: dict[str, Any] = {}
    for mode, runs in by_mode.items():
        steps = [step["to"] for step in runs[0]["steps"]]
        modes[mode] = {
            "n": len(runs),
            "podSeconds": statistics.median(one["podSeconds"] for one in runs),
            "walkSeconds": statistics.median(one["walkSeconds"] for one in runs),
            "rollbackSafe": statistics.median(one["rollbackSafe"] for one in runs),
            "rollbackExited": statistics.median(one["rollbackExited"] for one in runs),
            "steps": {
                to: statistics.median(one["steps"][i]["seconds"] for one in runs)
                for i, to in enumerate(steps)
            },
        }
    fixed = modes.get("fixed")
    if fixed is not None:
        for values in modes.values():
            values["extraSeconds"] = {
                to: seconds - fixed["steps"][to] for to, seconds in values["steps"].items()
            }
    return {"modes": modes, "full": raw["full"], "dwell": raw["dwell"]}


def markdown(d: dict[str, Any]) -> str:
    modes = d["modes"]
    steps = list(next(iter(modes.values()))["steps"]) if modes else []
    counts = ", ".join(f"{mode} n={values['n']}" for mode, values in modes.items())
    lines = [
        f"R = {d['full']} stable pods, `canaryReplicas` 1, {d['dwell']:.0f} s at each step; median of "
        f"{counts}. Step: median seconds of its `pulumi up` (extra over `fixed`).",
        "",
        "| mode | pod-seconds | walk s | rollback from 100%: safe s (exits s) | "
        + " | ".join(f"-> {s}" for s in steps)
        + " |",
        "|---|---|---|---|" + "---|" * len(steps),
    ]
    for mode, v in modes.items():
        cells = []
        for step in steps:
            extra = v.get("extraSeconds", {}).get(step)
            shown = "" if extra is None or mode == "fixed" else f" ({extra:+.1f})"
            cells.append(f"{v['steps'][step]:.1f}{shown}")
        rollback = f"{v['rollbackSafe']:.2f} ({v['rollbackExited']:.1f})"
        lines.append(
            f"| {mode} | {v['podSeconds']:.0f} | {v['walkSeconds']:.0f} | {rollback} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)
