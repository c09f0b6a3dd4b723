"""`python -m bench` (`make bench`): run the benchmarks, print Markdown tables, write JSON.

    python -m bench                       the full default run (about 15 minutes on 2 quiet cores)
    python -m bench --quick               a smoke run: few repetitions, sizes 1 and 10
    python -m bench --only rollback,step  some sections only
    python -m bench --only traffic        Envoy: rollback propagation and rps (needs class eg)
    python -m bench --rounds 20 --sizes 1,10,50,100 --reps 5

Progress goes to stderr; the tables and the machine description to stdout; everything (raw runs, derived
figures, arguments, machine, tool versions) to bench/results/bench-<time>.json and bench/results/latest.json.
Every stack and namespace the bench creates is its own and is destroyed at the end.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import capacity, program, report, rollback, scaling, status, step, trace, traffic
from bench.measure import load_average, machine
from bench.stacks import REPO, Release, project_env
from canary.cli.signals import children_get_default_sigint

SECTIONS = ["rollback", "status", "step", "scale", "program", "traffic", "capacity"]
RESULTS = REPO / "bench" / "results"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="few repetitions and sizes 1,10 (a smoke run, noisy)")
    p.add_argument(
        "--only", type=_names, default=SECTIONS, help=f"sections to run (default {','.join(SECTIONS)})"
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="rollback rounds, every method once each (default 10)"
    )
    p.add_argument(
        "--methods", type=_names, default=rollback.DEFAULT_METHODS, help="rollback methods (default: all)"
    )
    p.add_argument(
        "--step-rounds", type=int, default=None, help="step rounds, every variant once each (default 3)"
    )
    p.add_argument(
        "--variants",
        type=_names,
        default=step.DEFAULT_VARIANTS,
        help=f"step variants (default {','.join(step.DEFAULT_VARIANTS)}; also: {','.join(step.VARIANTS)})",
    )
    p.add_argument("--sizes", type=_ints, default=None, help="releases per scaling stack (default 1,10,50)")
    p.add_argument("--reps", type=int, default=None, help="repetitions per size and operation (default 2)")
    p.add_argument(
        "--parallel",
        type=int,
        default=0,
        help="scaling: run every pulumi up and destroy with --parallel P (default: the engine's, 4 x cores)",
    )
    p.add_argument(
        "--light",
        action="store_true",
        help="scaling: run the program with bench/experiments/light_k8s (no typed Kubernetes classes)",
    )
    p.add_argument("--program-reps", type=int, default=None, help="program-cost repetitions (default 5)")
    p.add_argument("--no-floor", action="store_true", help="skip the engine floor ladder")
    p.add_argument(
        "--traffic-rounds",
        type=int,
        default=None,
        help="traffic: rollback propagation rounds, every method once each (default 5)",
    )
    p.add_argument(
        "--traffic-methods",
        type=_names,
        default=traffic.DEFAULT_METHODS,
        help=f"traffic: rollback methods (default {','.join(traffic.DEFAULT_METHODS)})",
    )
    p.add_argument(
        "--routes",
        type=_names,
        default=traffic.DEFAULT_VARIANTS,
        help=f"traffic: routes for the throughput runs (default {','.join(traffic.DEFAULT_VARIANTS)})",
    )
    p.add_argument(
        "--rps-rounds", type=int, default=None, help="traffic: throughput rounds per route (default 3)"
    )
    p.add_argument(
        "--rps-seconds", type=float, default=5.0, help="traffic: seconds per throughput run (default 5)"
    )
    p.add_argument("--rps-concurrency", type=int, default=8, help="traffic: concurrent clients (default 8)")
    p.add_argument(
        "--stream-rate",
        type=float,
        default=traffic.STREAM_RATE,
        help=f"traffic: requests/s of the stream during a rollback (default {traffic.STREAM_RATE:.0f})",
    )
    p.add_argument(
        "--traffic-class",
        choices=traffic.CLASSES,
        default=traffic.EG_CLASS,
        help="traffic: the GatewayClass measured (default eg: Envoy Gateway; traefik: Traefik)",
    )
    p.add_argument("--capacity-rounds", type=int, default=None, help="capacity: walks per mode (default 2)")
    p.add_argument(
        "--dwell", type=float, default=None, help="capacity: seconds held at each step (default 10)"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON results")
    args = p.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds if args.rounds is not None else (2 if quick else 10)
    args.step_rounds = args.step_rounds if args.step_rounds is not None else (1 if quick else 3)
    args.sizes = args.sizes if args.sizes is not None else ([1, 10] if quick else [1, 10, 50])
    args.reps = args.reps if args.reps is not None else (1 if quick else 2)
    args.program_reps = args.program_reps if args.program_reps is not None else (2 if quick else 5)
    args.traffic_rounds = args.traffic_rounds if args.traffic_rounds is not None else (2 if quick else 5)
    args.rps_rounds = args.rps_rounds if args.rps_rounds is not None else (1 if quick else 3)
    args.capacity_rounds = args.capacity_rounds if args.capacity_rounds is not None else (1 if quick else 2)
    args.dwell = args.dwell if args.dwell is not None else (2.0 if quick else 10.0)
    unknown = [s for s in args.only if s not in SECTIONS]
    unknown += [m for m in args.methods if m not in rollback.METHODS]
    unknown += [v for v in args.variants if v not in step.VARIANTS]
    unknown += [m for m in args.traffic_methods if m not in traffic.METHODS]
    unknown += [v for v in args.routes if v not in traffic.VARIANTS]
    if unknown:
        p.error(f"unknown section, method or variant: {', '.join(unknown)}")
    if args.traffic_class == traffic.TRAEFIK_CLASS and "mirror" in args.routes:
        p.error(
            "--routes mirror on --traffic-class traefik: Traefik does not mirror (its class does not list it)"
        )
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def versions(env: dict[str, str]) -> dict[str, str]:
    found = {}
    for name, argv in {
        "pulumi": ["pulumi", "version"],
        "kubectl": ["kubectl", "version", "--client=true"],
    }.items():
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        found[name] = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "?"
    for line in (REPO / "tools" / "versions.env").read_text().splitlines():
        if line.startswith(("PULUMI_KUBERNETES_VERSION=", "KUBERNETES_VERSION=", "KWOK_VERSION=")):
            key, value = line.split("=", 1)
            found[key] = value
    return found


def cluster_ready(env: dict[str, str]) -> bool:
    proc = subprocess.run(["kubectl", "get", "--raw", "/readyz"], env=env, capture_output=True, text=True)
    return proc.returncode == 0


def data_plane_up(
    section: str, env: dict[str, str], problems: list[str], gateway_class: str = traffic.EG_CLASS
) -> bool:
    """Whether the data plane a section needs is up; when not, the section is skipped and says why."""
    why = traffic.data_plane_ready(env, gateway_class)
    if why is not None:
        log(f"bench: {section} skipped: {why}")
        problems.append(f"{section} not measured: {why}")
    return why is None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    children_get_default_sigint()  # a background `make bench &` measures what a foreground one does
    env = project_env()
    if not cluster_ready(env):
        log("bench: no Kubernetes apiserver at KUBECONFIG (run `make cluster-up`, or `make bench`)")
        return 2
    methods = list(args.methods)
    if "canary" in methods and not rollback.canary_has_rollback(env):
        log("bench: the installed `canary` CLI has no `rollback` command: its rollback is not measured")
        methods.remove("canary")
    traffic_methods = list(args.traffic_methods)
    if "canary" in traffic_methods and "canary" not in methods and not rollback.canary_has_rollback(env):
        traffic_methods.remove("canary")

    # The CLI as an installed package runs it: from bytecode (pip compiles what it installs; an editable
    # checkout gets its .pyc on the first run unless PYTHONDONTWRITEBYTECODE is set, as on this project's
    # machines, where every `canary` start would compile its modules again: 20-40 ms of a rollback).
    compiled = compileall.compile_dir(str(REPO / "canary"), quiet=1)
    started = time.monotonic()
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(env),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "raw": {},
        "bytecodeCompiled": bool(compiled),
    }
    log(f"bench: {results['machine']}")
    workdir = Path(tempfile.mkdtemp(prefix="gc-bench-"))
    problems: list[str] = []
    try:
        if {"rollback", "status", "step"} & set(args.only):
            log("bench: deploying the release stack (canary at 50%)")
            release, first = Release.create(workdir, env, rollback.RESET_WEIGHT)
            results["raw"]["releaseCreate"] = {"seconds": first.seconds, "peakMiB": first.peak_mib}
            try:
                if "rollback" in args.only and methods:
                    log(f"bench: rollback, {args.rounds} interleaved rounds of {', '.join(methods)}")
                    results["raw"]["rollback"] = rollback.run(release, methods, args.rounds, log)
                if "status" in args.only:
                    log(f"bench: status, {args.rounds} interleaved rounds of {', '.join(status.METHODS)}")
                    results["raw"]["status"] = status.run(release, args.rounds, log)
                if "step" in args.only:
                    log(f"bench: step, {args.step_rounds} rounds of {', '.join(args.variants)}")
                    results["raw"]["step"] = step.run(release, args.variants, args.step_rounds, log)
            finally:
                problems += release.stack.destroy()
        if "scale" in args.only:
            log(f"bench: scaling, sizes {args.sizes}, {args.reps} reps")
            results["raw"]["scaling"] = scaling.run(
                workdir, env, args.sizes, args.reps, args.parallel or None, args.light, log
            )
        if "program" in args.only:
            log("bench: program cost")
            results["raw"]["program"] = program.run(
                workdir, env, args.program_reps, args.sizes, not args.no_floor, log
            )
        if "traffic" in args.only and data_plane_up("traffic", env, problems, args.traffic_class):
            log(
                f"bench: traffic through class {args.traffic_class}, {args.traffic_rounds} rounds of "
                f"{', '.join(traffic_methods)}; {args.rps_rounds} throughput rounds of "
                f"{', '.join(args.routes)}"
            )
            results["raw"]["traffic"] = traffic.run(
                workdir,
                env,
                traffic_methods,
                args.traffic_rounds,
                args.routes,
                args.rps_rounds,
                args.rps_seconds,
                args.rps_concurrency,
                args.stream_rate,
                log,
                args.traffic_class,
            )
            problems += results["raw"]["traffic"]["cleanup"]
        if "capacity" in args.only and data_plane_up("capacity", env, problems):
            log(f"bench: capacity, {args.capacity_rounds} walks of {', '.join(capacity.MODES)}")
            results["raw"]["capacity"] = capacity.run(
                workdir, env, list(capacity.MODES), args.capacity_rounds, args.dwell, log
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for problem in problems:
            log(f"bench: WARNING: {problem}")

    results["seconds"] = time.monotonic() - started
    results["loadAfter"] = load_average()
    results["derived"] = derive(results["raw"])
    text = markdown(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = json.dumps(results, indent=2, default=str)
    (args.out / f"bench-{stamp}.json").write_text(payload)
    (args.out / "latest.json").write_text(payload)
    log(f"bench: wrote {args.out / f'bench-{stamp}.json'} and latest.json ({results['seconds']:.0f}s in all)")
    return 0


def derive(raw: dict[str, Any]) -> dict[str, Any]:
    derived: dict[str, Any] = {}
    if "rollback" in raw:
        derived["rollback"] = report.derive_rollback(raw["rollback"])
    if "status" in raw:
        derived["status"] = status.derive(raw["status"])
    if "step" in raw:
        derived["step"] = report.derive_step(raw["step"])
    if "scaling" in raw:
        derived["scaling"] = report.derive_scaling(raw["scaling"])
    if "program" in raw:
        derived["program"] = report.derive_program(raw["program"])
    if "traffic" in raw:
        derived["traffic"] = traffic.derive(raw["traffic"])
    if "capacity" in raw:
        derived["capacity"] = capacity.derive(raw["capacity"])
    derived["goals"] = report.goals(derived)
    return derived


def markdown(results: dict[str, Any]) -> str:
    d = results["derived"]
    quick = " (QUICK RUN: few repetitions, figures are noisy)" if results["args"].get("quick") else ""
    parts = [f"# gateway-canary bench{quick}", "", f"Machine: {results['machine']}", ""]
    parts.append("Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    parts.append(
        f"\nTotal bench time {results['seconds']:.0f}s; load average after {results['loadAfter']:.2f}."
    )
    if d["goals"]:
        parts += ["", "## Goals", "", report.goals_markdown(d["goals"])]
    if "rollback" in d:
        parts += ["", "## Time-to-safe rollback (command start -> watch sees canary weight 0)", ""]
        parts.append(report.rollback_markdown(d["rollback"]))
    if "status" in d:
        parts += ["", "## `canary status` (command start -> exit)", ""]
        parts.append(status.markdown(d["status"]))
    if "step" in d:
        parts += ["", "## Cost of one step (canary 5% -> 25%) vs the no-op `pulumi up`", ""]
        parts.append(report.step_markdown(d["step"]))
        traces = results.get("raw", {}).get("step", {}).get("traces")
        if traces:
            parts += ["", "Where the time goes (one run each, from the engine's OpenTelemetry trace):", ""]
            parts.append(trace.side_by_side(traces))
    if "scaling" in d:
        parts += ["", "## Scaling: N CanaryRelease components in one stack (median seconds, min-max)", ""]
        parts.append(report.scaling_markdown(d["scaling"]))
    if "program" in d:
        noop = d.get("step", {}).get("variants", {}).get("skip-preview", {}).get("noop", {}).get("median")
        parts += ["", "## Program cost (Python start-up, imports, registration under mocks)", ""]
        parts.append(report.program_markdown(d["program"], noop))
    if "traffic" in d:
        parts += ["", "## Through the real Envoy: when the new split is served, and requests per second", ""]
        parts.append(traffic.markdown(d["traffic"]))
    if "capacity" in d:
        parts += ["", "## Capacity that follows traffic: pod-seconds of a walk, and time per step", ""]
        parts.append(capacity.markdown(d["capacity"]))
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
