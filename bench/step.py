"""The cost of one traffic step (canary 5% -> 25%) against the engine floor (a no-op `pulumi up`).

Every round and variant: the stack is put at 5% (untimed), then `pulumi config set canaryWeight 25` and the
timed step `pulumi up`, then the same `pulumi up` again with nothing to do (the floor: engine, language
host, program and provider start-up, one Check/Diff per resource, the state write). Stack history must show
exactly one resource updated by the step and none by the no-op.

Variants change only how `pulumi up` is run:
- skip-preview: `pulumi up --yes --skip-preview` (the reference comparison);
- preview: `pulumi up --yes`, as users run it (a preview, then the update);
- target: `--skip-preview --target <route URN>` (what `canary rollback` runs);
- skip-checkpoints: `--skip-preview` with PULUMI_SKIP_CHECKPOINTS=true (state written once at the end);
- parallel-32: `--skip-preview --parallel 32`;
- parallel-diff: `--skip-preview` with PULUMI_PARALLEL_DIFF=true (provider Diff calls off the step generator);
- light: `--skip-preview`, the program run with bench/experiments/light_k8s (no typed Kubernetes classes).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import trace
from bench.rollback import rotated
from bench.stacks import Release, changes
from canary.gateway_api import ROUTE_TYPE


@dataclass(frozen=True)
class Variant:
    key: str
    flags: list[str]
    env: dict[str, str] = field(default_factory=dict)
    target: bool = False
    light: bool = False

    def describe(self) -> str:
        flags = " ".join(self.flags + (["--target <route URN>"] if self.target else []))
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        light = " (program without typed Kubernetes classes, experiment)" if self.light else ""
        return f"{env + ' ' if env else ''}pulumi up --yes {flags}".strip() + light


VARIANTS: dict[str, Variant] = {
    v.key: v
    for v in [
        Variant("skip-preview", ["--skip-preview"]),
        Variant("preview", []),
        Variant("target", ["--skip-preview"], target=True),
        Variant("skip-checkpoints", ["--skip-preview"], env={"PULUMI_SKIP_CHECKPOINTS": "true"}),
        Variant("parallel-32", ["--skip-preview", "--parallel", "32"]),
        Variant("parallel-diff", ["--skip-preview"], env={"PULUMI_PARALLEL_DIFF": "true"}),
        Variant("light", ["--skip-preview"], light=True),
    ]
}
DEFAULT_VARIANTS = ["skip-preview", "preview", "skip-checkpoints", "light"]

FROM_WEIGHT, TO_WEIGHT = "5", "25"


def run(release: Release, variants: list[str], rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    stack = release.stack
    route_urn = stack.urn_of(ROUTE_TYPE)
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        for key in rotated(variants, r):
            variant = VARIANTS[key]
            flags = [*variant.flags, *(["--target", route_urn] if variant.target else [])]
            stack.set_config({"canaryWeight": FROM_WEIGHT})
            stack.up("--skip-preview")
            stack.set_config({"canaryWeight": TO_WEIGHT})
            release.use_program(variant.light)
            try:
                step = stack.up(*flags, env=variant.env)
                step_changes = changes(stack.last_update())
                if step_changes != {"update": 1}:
                    raise SystemExit(f"bench: the {key} step touched {step_changes}, not one route update")
                noop = stack.up(*flags, env=variant.env)
            finally:
                release.use_program(False)
            noop_changes = changes(stack.last_update())
            if noop_changes:
                raise SystemExit(f"bench: the {key} no-op update changed {noop_changes}")
            runs.append(
                {
                    "variant": key,
                    "round": r,
                    "step": step.seconds,
                    "noop": noop.seconds,
                    "stepChanges": step_changes,
                    "stepPeakMiB": step.peak_mib,
                    "noopPeakMiB": noop.peak_mib,
                    "stepCpu": step.cpu,
                    "noopCpu": noop.cpu,
                    "noopCpuByRole": noop.cpu_by_role,
                    "at": time.time(),
                }
            )
            log(
                f"  step round {r + 1}/{rounds} {key}: step {step.seconds:.2f}s, "
                f"no-op {noop.seconds:.2f}s, {step_changes}"
            )
    return {
        "variants": {key: VARIANTS[key].describe() for key in variants},
        "runs": runs,
        "traces": traced_runs(release),
    }


def traced_runs(release: Release) -> dict[str, list[dict[str, Any]]]:
    """One no-op `pulumi up --skip-preview` and one step (5 -> 25), each with the engine's OpenTelemetry
    trace, cut into phases (bench/trace.py)."""
    stack = release.stack
    found: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="gc-bench-trace-") as tmp:
        stack.set_config({"canaryWeight": FROM_WEIGHT})
        stack.up("--skip-preview")
        for label, weight in (("no-op", FROM_WEIGHT), ("step 5->25", TO_WEIGHT)):
            stack.set_config({"canaryWeight": weight})
            path = Path(tmp) / f"{len(found)}.json"
            stack.up("--skip-preview", "--otel-traces", f"file://{path}")
            found[label] = trace.phases(trace.read_spans(path.read_text().splitlines()))
    return found
