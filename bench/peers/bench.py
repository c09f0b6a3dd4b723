"""`make bench-peers` (`python -m bench.peers bench`): the three tools through the scenarios, side by side.

One run: the tool's baseline (`Driver.prepare`, untimed), the load started at its Gateway (netchecked:
only the bed's own addresses), a watch on its HTTPRoute and one on its namespace's Pods, then the release
(`Driver.begin`) and, in the abort scenario, the abort ABORT_AFTER_SECONDS after the watch saw the route at
50%; the run ends when the tool reached its end state, and the load and the pod watch go on a little (a
faulty run: TAIL_SECONDS) so that the last canary answer and the canary's pods are seen. The figures are
`scenario.figures` of what was seen. Runs are interleaved (`scenario.interleaved`); the JSON of every run
and the summary go to bench/results/peers-<UTC>.json, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.measure import machine
from bench.peers import scenario
from bench.peers.beside import ARGO_NS, FLAGGER_NS, controllers, instance, prometheus_url, up
from bench.peers.controllers import crd_files, ports
from bench.peers.drivers import ArgoDriver, Driver, FlaggerDriver, OursDriver
from bench.traffic import settle, target_of_gateway
from canary.gateway_api import ROUTE_RESOURCE
from canary.ops.gates.prometheus import Prometheus, Value
from canary.ops.kube.kubectl import Watch
from canary.ops.verify.traffic import MAX_REQUESTS, Load, Stream
from devtools.pulumi_cli import REPO

RUN_LIMIT = 600.0
"""Seconds a release may take before the run is called stuck."""
AFTER_SECONDS = 5.0
"""Load and watches keep going this long after the end state, to see the last canary answer."""
RESULTS = REPO / "bench" / "results"


def peak_requests_per_pod(prometheus: str, namespace: str, start: float, end: float) -> float | None:
    """The most requests per second one pod of `namespace` served in [start, end] (Unix times), counted
    by the app (podinfo's histogram), over 5 s rates sampled each second."""
    span = max(1, round(end - start))
    query = (
        "max(max_over_time(sum by (pod) "
        f'(rate(http_request_duration_seconds_count{{namespace="{namespace}"}}[5s]))[{span}s:1s]))'
    )
    answer = Prometheus(prometheus, 10).query(query, at=end)
    return answer.number if isinstance(answer, Value) else None


def one(driver: Driver, scenario_name: str, env: dict[str, str], prometheus: str) -> scenario.Observed:
    driver.prepare()
    target = target_of_gateway(env, driver.namespace, driver.gateway)
    settle(target, {scenario.version_of(scenario.STABLE_IMAGE)}, driver.host)
    canary_image = scenario.canary_image(scenario_name)
    route_watch = Watch(ROUTE_RESOURCE, driver.namespace, driver.route, env=env)
    pod_watch = Watch("pods", driver.namespace, events=True, env=env)
    load = Load(target, MAX_REQUESTS, concurrency=4, timeout=2, time_limit=RUN_LIMIT, host=driver.host)
    stream = Stream(load, rate=scenario.RATE).start()
    try:
        if route_watch.wait_for(lambda _: True, 30) is None:
            raise SystemExit(f"peers: no watch of {driver.namespace}/{driver.route}")
        time.sleep(2.0)  # steady load before the release
        start, wall_start = time.monotonic(), time.time()
        driver.begin(scenario_name)
        abort: float | None = None
        while (outcome := driver.outcome()) is None:
            now = time.monotonic()
            if now - start > RUN_LIMIT:
                raise SystemExit(f"peers: {driver.tool} {scenario_name} did not finish in {RUN_LIMIT:.0f} s")
            if scenario_name == "abort" and abort is None:
                route = [(at, scenario.canary_percent(obj)) for at, obj in route_watch.seen]
                at50 = scenario.first_at(route, scenario.ABORT_AT)
                if at50 is not None and now >= at50 + scenario.ABORT_AFTER_SECONDS:
                    abort = time.monotonic()
                    driver.abort()
            time.sleep(0.2)
        done, wall_done = time.monotonic(), time.time()
        cpu, peak = driver.usage()
        linger = scenario.TAIL_SECONDS if scenario_name == "faulty" else AFTER_SECONDS
        time.sleep(linger + 1)
    finally:
        stamped = stream.stop()
        route_watch.stop()
        pod_watch.stop()
    answers = [
        scenario.Answer(s.sent, s.answered, s.result.version if s.result.ok else None, s.result.ok)
        for s in stamped
    ]
    pods = [(at, e) for at, e in pod_watch.seen if image_of(e) == canary_image]
    return scenario.Observed(
        tool=driver.tool,
        scenario=scenario_name,
        start=start,
        done=done,
        answers=answers,
        route=[(at, scenario.canary_percent(obj)) for at, obj in route_watch.seen],
        canary_pods=pods,
        abort=abort,
        cpu_seconds=cpu,
        peak_mib=peak,
        peak_requests_per_pod=(
            peak_requests_per_pod(prometheus, driver.namespace, wall_start, wall_done)
            if scenario_name == "healthy"
            else None
        ),
        outcome=outcome,
    )


def image_of(event: dict[str, Any]) -> str:
    containers = event.get("object", {}).get("spec", {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def footprint(crd_dir: Path) -> dict[str, dict[str, Any]]:
    """What each tool installs in the cluster, read from the files it ships (the CRDs and the RBAC linked
    by `make peers-tools`): CRDs (count, bytes), controllers, and the ClusterRole's rules."""
    out: dict[str, dict[str, Any]] = {
        scenario.OURS: {"crds": 0, "crdBytes": 0, "controllers": 0, "clusterRoleRules": 0},
    }
    for tool, files in crd_files(crd_dir).items():
        docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
        rbac = crd_dir / tool / "rbac.yaml"
        roles = [d for d in yaml.safe_load_all(rbac.read_text()) if d and d.get("kind") == "ClusterRole"]
        out[tool] = {
            "crds": sum(1 for d in docs if d.get("kind") == "CustomResourceDefinition"),
            "crdBytes": sum(f.stat().st_size for f in files),
            "controllers": 1,
            "clusterRoleRules": sum(len(r.get("rules") or []) for r in roles),
        }
    return out


def drivers(env: dict[str, str], workdir: Path, tools: list[str], prometheus: str) -> dict[str, Driver]:
    made: dict[str, Driver] = {}
    running = controllers(env, prometheus)
    if scenario.OURS in tools:
        made[scenario.OURS] = OursDriver(env, workdir, prometheus)
    if scenario.FLAGGER in tools:
        gate_port = ports(instance(env)).flagger_rollback_gate
        made[scenario.FLAGGER] = FlaggerDriver(env, running["flagger"], FLAGGER_NS, gate_port)
    if scenario.ARGO in tools:
        made[scenario.ARGO] = ArgoDriver(env, running["argo-rollouts"], ARGO_NS, prometheus)
    return made


def run(
    env: dict[str, str],
    prometheus: str,
    repeats: int,
    tools: list[str],
    scenarios: list[str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    whole: dict[str, dict[str, float]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        made = drivers(env, Path(tmp), tools, prometheus)
        try:
            order = scenario.interleaved(repeats, tools, scenarios)
            for i, (r, tool, name) in enumerate(order, 1):
                log(f"[{i}/{len(order)}] repeat {r + 1}: {scenario.tool_label(tool)}, {name}")
                obs = one(made[tool], name, env, prometheus)
                figures = scenario.figures(obs)
                runs.append({"repeat": r + 1, "tool": tool, "scenario": name, "figures": figures})
                log(f"    {obs.outcome}: {json.dumps({k: _round(v) for k, v in figures.items()})}")
        finally:
            seconds = time.monotonic() - started
            for tool, driver in made.items():
                cpu, peak = driver.total()
                whole[tool] = {"cpuSeconds": cpu, "peakMiB": peak, "benchSeconds": seconds}
                driver.close()
    summary = scenario.summarize(runs)
    installed = footprint(REPO / ".tools" / "peer-crds")
    return {
        "machine": machine(),
        "repeats": repeats,
        "plan": list(scenario.PLAN),
        "intervalSeconds": scenario.INTERVAL_SECONDS,
        "rate": scenario.RATE,
        "runs": runs,
        "summary": summary,
        "wholeRun": whole,
        "footprint": installed,
        "table": scenario.table(summary, whole, installed),
    }


def _round(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def report(path: Path) -> str:
    """The table and every run's values again, from a results file (what the docs quote)."""
    result = json.loads(path.read_text())
    summary = result["summary"]
    table = scenario.table(summary, result.get("wholeRun"), result.get("footprint"))
    return f"{table}\n\n{scenario.details(summary)}"


def main(env: dict[str, str], argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each scenario per tool (default 3)")
    parser.add_argument("--tools", default=",".join(scenario.TOOLS), help="comma-separated (default all)")
    parser.add_argument("--scenarios", default=",".join(scenario.SCENARIOS), help="comma-separated")
    parser.add_argument("--report", type=Path, help="print the tables of a results file, run nothing")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.report))
        return 0
    tools = [t for t in args.tools.split(",") if t]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(tools) - set(scenario.TOOLS)) + sorted(set(scenarios) - set(scenario.SCENARIOS))
    if unknown or args.repeats < 1:
        parser.error(f"unknown {', '.join(unknown)}" if unknown else "--repeats must be at least 1")
    peers = [t for t in tools if t in scenario.PEERS]
    if peers:
        up(env, peers)
    result = run(
        env,
        prometheus_url(),
        args.repeats,
        tools,
        scenarios,
        lambda line: print(line, file=sys.stderr, flush=True),
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"peers-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['table']}\n\n{scenario.details(result['summary'])}")
    print(f"\nfootprint: {json.dumps(result['footprint'])}\nwritten: {out.relative_to(REPO)}")
    return 0
