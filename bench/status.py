"""How long `canary status` takes, against the `kubectl get` that shows part of what it shows (issue 13).

Methods, interleaved (every round runs each once, in an order rotated by one per round), on the bench's
release stack (canary deployed):

- kubectl: `kubectl get httproute <app> -n <ns> -o json` (the live route alone: the floor);
- canary: `canary status --stack S` (the quick path: the stack's files and the apiserver directly);
- canary-no-fast: `canary status --stack S --no-fast` (through the Automation API: a `pulumi` process per
  read, the path before the quick one).

Each run must exit 0, and both canary methods must print the same status (the bench refuses otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench.measure import summary, timed
from bench.rollback import rotated
from bench.stacks import APP, Release
from canary.gateway_api import ROUTE_RESOURCE

METHODS = ["kubectl", "canary", "canary-no-fast"]


def commands(release: Release) -> dict[str, list[str]]:
    stack = release.stack
    status = ["canary", "status", "--json", "--stack", stack.name, "--cwd", str(stack.project_dir)]
    return {
        "kubectl": ["kubectl", "get", ROUTE_RESOURCE, APP, "-n", release.namespace, "-o", "json"],
        "canary": status,
        "canary-no-fast": [*status, "--no-fast"],
    }


def run(release: Release, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    argv = commands(release)
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        printed: dict[str, Any] = {}
        for key in rotated(METHODS, r):
            result = timed(argv[key], release.stack.env).check(f"status method {key}")
            if key != "kubectl":
                printed[key] = json.loads(result.stdout)
            runs.append({"method": key, "round": r, "seconds": result.seconds, "cpu": result.cpu})
            log(f"  status round {r + 1}/{rounds} {key}: {result.seconds:.2f}s")
        if printed["canary"] != printed["canary-no-fast"]:
            raise SystemExit(f"bench: the quick and the Automation API status differ: {printed}")
    return {"methods": {key: " ".join(argv[key]) for key in METHODS}, "runs": runs}


def derive(raw: dict[str, Any]) -> dict[str, Any]:
    methods = {}
    for key in raw["methods"]:
        seconds = [r["seconds"] for r in raw["runs"] if r["method"] == key]
        methods[key] = {"command": raw["methods"][key], "seconds": summary(seconds)}
    floor = methods.get("kubectl", {}).get("seconds", {}).get("median")
    for figures in methods.values():
        median = figures["seconds"]["median"]
        figures["vsKubectl"] = None if not floor or median is None else median / floor
    return {"methods": methods}


def markdown(derived: dict[str, Any]) -> str:
    lines = ["| method | median (min-max) | vs kubectl get |", "|---|---|---|"]
    for key, m in derived["methods"].items():
        s = m["seconds"]
        ratio = "-" if m["vsKubectl"] is None else f"{m['vsKubectl']:.1f}x"
        lines.append(
            f"| `{m['command']}` ({key}) | {s['median']:.2f}s ({s['min']:.2f}-{s['max']:.2f}) | {ratio} |"
        )
    return "\n".join(lines)
