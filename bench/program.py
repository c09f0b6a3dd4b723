"""Program cost, measured apart from the engine and the cluster:

- Python start-up (`python -c pass`) and the imports the program needs (`import pulumi`,
  `import pulumi, pulumi_kubernetes`, `import canary.release.component`), each a fresh interpreter;
- the biggest imports by `python -X importtime` (one run);
- resource registration of __main__.py (and of the scale program at each size) under Pulumi mocks
  (bench/mockrun.py): the Python side of a `pulumi up`, without engine, gRPC transport or provider; also
  with bench/experiments/light_k8s (no typed Kubernetes classes), which must register the very same
  resources (same digest of types, names and inputs);
- the engine floor ladder (bench/projects/floor): a no-op `pulumi up --skip-preview` and `pulumi preview`
  of a program that registers nothing (`empty`), that also imports pulumi_kubernetes and the component
  (`import`), and that also registers an explicit Kubernetes provider (`provider`: the engine starts and
  configures the plugin). Together with the step benchmark's no-op these split a no-op `pulumi up` into
  engine, Python, provider and per-resource work.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import timed
from bench.stacks import FLOOR_PROJECT, REPO, Stack, private_project
from devtools.pulumi_cli import unique

PYTHON = str(REPO / ".venv" / "bin" / "python")

SNIPPETS = {
    "python -c pass": "pass",
    "import pulumi": "import pulumi",
    "import pulumi, pulumi_kubernetes": "import pulumi, pulumi_kubernetes",
    "import canary.release.component": "import canary.release.component",
}

# What registering the component loads on top of importing the component module (pulumi_kubernetes is lazy).
IMPORTTIME_SNIPPET = (
    "import canary.release.component, pulumi_kubernetes.core.v1, pulumi_kubernetes.apps.v1, "
    "pulumi_kubernetes.apiextensions"
)


def parse_importtime(stderr: str) -> list[dict[str, Any]]:
    """`python -X importtime` lines as {"module", "self", "cumulative", "depth"} (seconds; depth 0 = a
    top-level import of the snippet)."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        stripped = name.lstrip(" ")
        depth = (len(name) - len(stripped) - 1) // 2
        found.append(
            {
                "module": stripped,
                "self": int(parts[0]) / 1e6,
                "cumulative": int(parts[1]) / 1e6,
                "depth": max(depth, 0),
            }
        )
    return found


def top_packages(modules: list[dict[str, Any]], n: int = 8) -> list[dict[str, Any]]:
    """Self time summed by top-level package (pulumi, grpc, google, ...), largest first."""
    by_package: dict[str, float] = {}
    for m in modules:
        package = m["module"].split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + m["self"]
    ranked = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [{"package": p, "self": s} for p, s in ranked]


def _python(env: dict[str, str], *args: str) -> tuple[float, str, str]:
    res = timed([PYTHON, *args], env, REPO).check()
    return res.seconds, res.stdout, res.stderr


def run(
    workdir: Path, env: dict[str, str], reps: int, sizes: list[int], floor: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "pythonDontWriteBytecode": env.get("PYTHONDONTWRITEBYTECODE"),
    }
    startup: dict[str, list[float]] = {label: [] for label in SNIPPETS}
    for _ in range(reps):
        for label, snippet in SNIPPETS.items():
            startup[label].append(_python(env, "-c", snippet)[0])
    out["startup"] = startup
    log("  program: start-up and imports " + ", ".join(f"{k} {min(v):.2f}s" for k, v in startup.items()))

    _, _, stderr = _python(env, "-X", "importtime", "-c", IMPORTTIME_SNIPPET)
    modules = parse_importtime(stderr)
    out["importtime"] = {
        "snippet": IMPORTTIME_SNIPPET,
        "total": sum(m["self"] for m in modules),
        "packages": top_packages(modules),
        "modules": sorted(modules, key=lambda m: m["self"], reverse=True)[:12],
    }

    mocks: list[dict[str, Any]] = []
    for _ in range(reps):
        for light in ([], ["--light"]):
            _, stdout, _ = _python(env, "-m", "bench.mockrun", "main", *light)
            mocks.append(json.loads(stdout))
            for size in sizes:
                _, stdout, _ = _python(env, "-m", "bench.mockrun", "scale", str(size), *light)
                mocks.append({**json.loads(stdout), "size": size})
    out["mocks"] = mocks
    log("  program: registration under mocks done")

    if floor:
        out["floor"] = floor_ladder(workdir, env, reps, log)
    return out


FLOOR_MODES = ["empty", "import", "provider"]


def floor_ladder(
    workdir: Path, env: dict[str, str], reps: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    name = unique("bench-floor")
    stack = Stack(private_project(FLOOR_PROJECT, workdir / name), name, env).init()
    records: list[dict[str, Any]] = []
    try:
        for mode in FLOOR_MODES:
            stack.set_config({"mode": mode})
            stack.up("--skip-preview")
            for rep in range(reps):
                up = stack.up("--skip-preview")
                preview = stack.run("preview").check()
                for op, res in (("up-noop", up), ("preview", preview)):
                    records.append(
                        {
                            "mode": mode,
                            "op": op,
                            "rep": rep,
                            "seconds": res.seconds,
                            "peakMiB": res.peak_mib,
                            "at": time.time(),
                        }
                    )
            log(f"  floor {mode}: up-noop/preview done")
    finally:
        for problem in stack.destroy():
            log(f"  WARNING: {problem}")
    return records
