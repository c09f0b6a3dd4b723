"""Scaling: one stack of N CanaryRelease components (bench/projects/scale), for each N of `sizes`.

Per size, on its own stack and namespace (destroyed before the next size starts, so sizes never share the
cluster): the creating `pulumi up`, then `reps` rounds of
- preview-change: `pulumi preview` after `pulumi config set canaryWeight` moved every release (N updates);
- up-change: the `pulumi up --yes --skip-preview` that applies it (N routes updated, checked in history);
- preview: `pulumi preview` with nothing to do;
- up-noop: `pulumi up --yes --skip-preview` with nothing to do;
- up-change-skip-checkpoints: another N-route update, with PULUMI_SKIP_CHECKPOINTS=true (the local
  backend otherwise rewrites the whole state file after every step: N full writes of an O(N) file);
and finally the destroy. Wall time, CPU time and peak RSS of the engine, language host, Python program and
provider. `parallel` adds `--parallel P` to every `pulumi up` and the destroy (default: the engine's own,
4 x cores); `light` runs the program with bench/experiments/light_k8s (no typed Kubernetes classes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import Run
from bench.stacks import SCALE_PROJECT, Stack, changes, private_project
from devtools.pulumi_cli import unique

OPERATIONS = [
    "create",
    "preview-change",
    "up-change",
    "up-change-skip-checkpoints",
    "preview",
    "up-noop",
    "destroy",
]


def _record(
    op: str, size: int, rep: int, run: Run, resource_changes: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "op": op,
        "size": size,
        "rep": rep,
        "seconds": run.seconds,
        "peakMiB": run.peak_mib,
        "cpu": run.cpu,
        "cpuByRole": run.cpu_by_role,
        "changes": resource_changes,
        "at": time.time(),
    }


def run_size(
    workdir: Path,
    env: dict[str, str],
    size: int,
    reps: int,
    parallel: int | None,
    light: bool,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    name = unique(f"bench-scale{size}")
    stack = Stack(private_project(SCALE_PROJECT, workdir / name, light), name, env).init()
    more = ["--parallel", str(parallel)] if parallel else []
    records: list[dict[str, Any]] = []
    try:
        stack.set_config(
            {
                "releases": str(size),
                "namespace": unique(f"gc-bench-scale{size}"),
                "canaryWeight": "0",
            }
        )
        create = stack.up("--skip-preview", *more)
        created = changes(stack.last_update())
        records.append(_record("create", size, 0, create, created))
        log(f"  scale {size}: create {create.seconds:.1f}s {created}")
        weight = "0"
        for rep in range(reps):
            weight = "5" if weight == "0" else "0"
            stack.set_config({"canaryWeight": weight})
            preview = stack.run("preview").check(f"pulumi preview on {name}")
            records.append(_record("preview-change", size, rep, preview))
            up = stack.up("--skip-preview", *more)
            updated = changes(stack.last_update())
            if updated != {"update": size}:
                raise SystemExit(f"bench: moving {size} canaries changed {updated}, not {size} route updates")
            records.append(_record("up-change", size, rep, up, updated))
            noop_preview = stack.run("preview").check(f"pulumi preview on {name}")
            records.append(_record("preview", size, rep, noop_preview))
            noop = stack.up("--skip-preview", *more)
            if changes(stack.last_update()):
                raise SystemExit(f"bench: a no-op update of {name} changed something")
            records.append(_record("up-noop", size, rep, noop))
            weight = "5" if weight == "0" else "0"
            stack.set_config({"canaryWeight": weight})
            fast = stack.up("--skip-preview", *more, env={"PULUMI_SKIP_CHECKPOINTS": "true"})
            fast_changes = changes(stack.last_update())
            if fast_changes != {"update": size}:
                raise SystemExit(
                    f"bench: moving {size} canaries changed {fast_changes}, not {size} route updates"
                )
            records.append(_record("up-change-skip-checkpoints", size, rep, fast, fast_changes))
            line = (
                f"  scale {size} rep {rep + 1}/{reps}: preview-change {preview.seconds:.1f}s, "
                f"up-change {up.seconds:.1f}s, preview {noop_preview.seconds:.1f}s, "
                f"up-noop {noop.seconds:.1f}s, up-change without checkpoints {fast.seconds:.1f}s"
            )
            log(line)
    finally:
        started = time.monotonic()
        problems = stack.destroy(*more)
        seconds = time.monotonic() - started
        for problem in problems:
            log(f"  WARNING: {problem}")
        records.append(
            {"op": "destroy", "size": size, "rep": 0, "seconds": seconds, "peakMiB": {}, "at": time.time()}
        )
        log(f"  scale {size}: destroy {seconds:.1f}s")
    return records


def run(
    workdir: Path,
    env: dict[str, str],
    sizes: list[int],
    reps: int,
    parallel: int | None,
    light: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    for size in sizes:
        records += run_size(workdir, env, size, reps, parallel, light, log)
    return {"sizes": sizes, "reps": reps, "parallel": parallel, "light": light, "runs": records}
