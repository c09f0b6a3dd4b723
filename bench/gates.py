"""How fast a metric gate takes traffic off a failing canary: `python -m bench.gates [--intervals 30,2]`.

For each `analysis.interval`: a release of the product's program on class `eg` (real Envoy, real podinfo,
the bed's Prometheus) with a `faulty` canary (podinfo --random-error) deployed at 0%, a background stream of
bounded, paced GETs to the Gateway's status address, then `canary run --yes` (canaryPlan [20, 50, 100]).
The figure: from the first failed request (the canary's first failing answers, right after the step to
20%) to the last answer the canary gave (after which Envoy sends it nothing: traffic at 0%), both read from
the stream's own timestamps; beside it, how long the run took and what it printed last. Each release has
its own stack and namespace (`bench-*`), destroyed at the end. Needs the local cluster with its data plane
(`make cluster-up` as root).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stacks import REPO, Stack, private_project, project_env
from bench.traffic import prometheus_url
from canary.ops.kube.kubectl import LiveReader
from canary.ops.verify.traffic import Load, Stream, target
from devtools.pulumi_cli import unique

APP, HOST = "web", "web.bench.example"
STABLE, FAULTY = "registry.example/web:1.0.0", "registry.example/web:1.1.0-faulty"
RATE = 100.0
"""Requests per second of the stream (20 per second reach the canary at 20%)."""


def gateway_address(env: dict[str, str], namespace: str, timeout: float = 120) -> str:
    reader = LiveReader(env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gw = reader.get("gateway.gateway.networking.k8s.io", f"{APP}-gateway", namespace) or {}
        conditions = {c["type"]: c["status"] for c in gw.get("status", {}).get("conditions", [])}
        if conditions.get("Programmed") == "True":
            return str(gw["status"]["addresses"][0]["value"])
        time.sleep(0.5)
    raise SystemExit(f"the Gateway in {namespace} was not Programmed in {timeout:.0f}s")


def one(env: dict[str, str], workdir: Path, interval: int, prometheus: str) -> dict[str, object]:
    name = unique("bench-gate")
    stack = Stack(private_project(REPO, workdir / name), name, env).init()
    namespace = unique("gc-bench-gate")
    try:
        stack.set_config(
            {
                "appName": APP,
                "namespace": namespace,
                "stableImage": STABLE,
                "canaryImage": FAULTY,
                "gatewayClassName": "eg",
            }
        )
        for key, value in (
            ("hostnames[0]", HOST),
            ("canaryPlan[0]", "20"),
            ("canaryPlan[1]", "50"),
            ("canaryPlan[2]", "100"),
            ("analysis.prometheusUrl", prometheus),
            ("analysis.interval", str(interval)),
            ("analysis.minRequests", "50"),
        ):
            stack.run("config", "set", "--path", key, value).check(f"config set {key}")
        stack.up("--skip-preview")
        where = target(f"http://{gateway_address(env, namespace)}/version")
        stream = Stream(Load(where, 20000, concurrency=4, time_limit=200, host=HOST), rate=RATE).start()
        time.sleep(3)
        started = time.monotonic()
        run = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "canary"),
                "run",
                "--yes",
                "--cwd",
                str(stack.project_dir),
                "--stack",
                name,
            ],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900,
        )
        run_seconds = time.monotonic() - started
        time.sleep(3)
        seen = stream.stop()
        canary = [s for s in seen if s.result.version != "1.0.0"]
        failed = [s for s in canary if not s.result.ok]
        last = run.stdout.strip().splitlines()[-1:] or ["(no output)"]
        return {
            "interval": interval,
            "exit": run.returncode,
            "fail_to_zero": (canary[-1].answered - failed[0].sent) if failed else None,
            "run_seconds": run_seconds,
            "canary_answers": len(canary),
            "failed": len(failed),
            "last_line": last[0][:140],
        }
    finally:
        stack.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--intervals", default="30,2", help="analysis.interval values (default 30,2)")
    args = parser.parse_args(argv)
    env = project_env()
    prometheus = prometheus_url(env)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gates-") as tmp:
        for interval in [int(x) for x in args.intervals.split(",") if x.strip()]:
            print(f"interval {interval}s ...", file=sys.stderr, flush=True)
            rows.append(one(env, Path(tmp), interval, prometheus))
    print(
        "| analysis.interval | canary run exit | first failed request -> traffic 0% | run took "
        "| canary answers (failed) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        fz = "n/a" if r["fail_to_zero"] is None else f"{r['fail_to_zero']:.1f} s"
        print(
            f"| {r['interval']} s | {r['exit']} | {fz} | {r['run_seconds']:.1f} s | "
            f"{r['canary_answers']} ({r['failed']}) |"
        )
    for r in rows:
        print(f"\ninterval {r['interval']} s, last line: {r['last_line']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
