"""`make demo`: the reference article's canary progression, done with `pulumi config set` + `pulumi up`.

Runs the real Pulumi CLI on stack `dev` of this project (local file backend) against the cluster in
KUBECONFIG (the local kwok cluster by default), and after every step prints a row read back from the live
HTTPRoute: time since start, stable %, canary %, each track's ready pods (capacity follows traffic: the
article's 3 stable pods, and a canary sized for its share), what the step did, and how long the step took.

Walk: stable v1 -> canary v2 header-only -> 5 -> 25 -> 50 -> 100 -> promote, then a second canary v3 at 25%
and an instant rollback. Re-running converges from whatever state the stack is in: the first step declares
the steady state again (with a refresh, so a recreated cluster is fine), so an interrupted run is simply
continued.

The demo works in its own copy of the project, `.state/demo/` (Pulumi.yaml and __main__.py copied fresh, the
stack file Pulumi.dev.yaml kept between runs), so it never edits the checkout's stack files; that folder is
where to go on by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canary.ops.errors import ClusterUnreachable, Refused, TrafficProblem
from canary.ops.kube.kubectl import LiveReader
from canary.ops.verify.flow import VerifyOptions, verify
from canary.weights import format_percent
from devtools.pulumi_cli import CliStack

REPO = Path(__file__).resolve().parents[1]
WORKDIR = REPO / ".state" / "demo"
STACK = "dev"
V1, V2, V3 = (f"ghcr.io/stefanprodan/podinfo:{v}" for v in ("6.7.0", "6.7.1", "6.8.0"))


@dataclass(frozen=True)
class Step:
    action: str
    config: dict[str, str]


STEPS = [
    Step("stable only (v6.7.0)", {"stableImage": V1, "canaryImage": "", "canaryWeight": "0"}),
    Step("canary deployed, header-only", {"canaryImage": V2}),
    Step("initial traffic split", {"canaryWeight": "5"}),
    Step("metrics look good, increase", {"canaryWeight": "25"}),
    Step("half traffic on canary", {"canaryWeight": "50"}),
    Step("full shift", {"canaryWeight": "100"}),
    Step("promote: canary becomes stable", {"stableImage": V2, "canaryImage": "", "canaryWeight": "0"}),
    Step("second canary (v6.8.0), header-only", {"canaryImage": V3}),
    Step("second canary at 25%", {"canaryWeight": "25"}),
    Step("instant rollback", {"canaryWeight": "0"}),
]


def prepare_workdir() -> None:
    """Fresh program files from the checkout; the stack file (the rollout state) is kept between runs."""
    WORKDIR.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(REPO / name, WORKDIR / name)
    stack_file = WORKDIR / f"Pulumi.{STACK}.yaml"
    if not stack_file.exists():
        shutil.copy(REPO / f"Pulumi.{STACK}.yaml", stack_file)
    venv = WORKDIR / ".venv"
    if not venv.exists():
        venv.symlink_to(REPO / ".venv")


@dataclass
class Ran:
    """One finished command; `check` ends the demo with its output when it failed."""

    args: list[str]
    code: int
    stdout: str
    stderr: str

    def check(self, what: str | None = None) -> Ran:
        if self.code != 0:
            sys.stderr.write(self.stdout + self.stderr)
            raise SystemExit(f"demo: `{what or ' '.join(self.args)}` failed (exit {self.code})")
        return self


def run(argv: list[str], env: dict[str, str], cwd: Path) -> Ran:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr)


def demo_stack() -> CliStack[Ran]:
    """Stack `dev` of the demo's project copy (devtools.pulumi_cli: the driver the tests and bench use)."""
    stack = CliStack(WORKDIR, STACK, dict(os.environ), run)
    listed = run(["pulumi", "stack", "ls", "--json"], stack.env, WORKDIR).check()
    if STACK in {entry["name"] for entry in json.loads(listed.stdout)}:
        stack.created = True
        return stack
    return stack.init()


SAMPLE = 400
"""Requests sent through the Gateway after each step: the article's `curl` loop and `sort | uniq -c`."""


def measured_split(outputs: dict[str, Any]) -> tuple[str, bool]:
    """What the data plane did with SAMPLE requests (canary.ops.verify.flow, as `canary verify` does): the
    count per track, and whether it fits the live route's split. The local cluster's Envoy is real."""
    try:
        (verification,) = verify(outputs, LiveReader(), VerifyOptions(requests=SAMPLE))
    except (Refused, TrafficProblem, ClusterUnreachable) as err:
        return f"(not measured: {err})"[:27], False
    tally = verification.tally
    tracks = verification.versions
    counts = " ".join(f"{tracks.get(v, v)} {n}" for v, n in sorted(tally.by_version.items()))
    failed = f" +{tally.failed} failed" if tally.failed else ""
    ok = verification.verdict.ok
    return f"{counts}{failed} {'ok' if ok else 'OFF'}", ok


AGAIN_AFTER = 2.0
"""Seconds before a second measurement when the first is off the route's split. Right after a step that
added pods, Envoy can still count the new pods as not ready for a moment (EndpointSlices and Envoy
Gateway's endpoint updates trail the Deployment's Available), and its locality weighting then sends the
growing track less than its share, never more (docs/capacity.md); the second measurement shows it
settled."""


def ready_pods(live: LiveReader, outputs: dict[str, Any]) -> str:
    """Ready pods per track, stable/canary ("3/1"; "-" for a track without a Deployment)."""
    counts = []
    for name in outputs["serviceNames"]:
        deployment = live.get("deployment", str(name), str(outputs["namespace"]))
        counts.append(str(((deployment or {}).get("status") or {}).get("readyReplicas", 0)))
    return "/".join(counts) if len(counts) == 2 else f"{counts[0]}/-"


def main() -> int:
    prepare_workdir()
    stack = demo_stack()
    live = LiveReader()
    kubeconfig = os.environ.get("KUBECONFIG")
    print(f"gateway-canary demo: stack '{STACK}', kubeconfig {kubeconfig}")
    print()
    measured = f"Measured ({SAMPLE} requests)"
    header = f"{'Time':<8}{'Stable':>7}{'Canary':>8}  {'Pods':<10}{'Step (s)':>8}  {measured:<28}Action"
    print(header)
    print("-" * 110)
    started = time.monotonic()
    for index, step in enumerate(STEPS):
        t0 = time.monotonic()
        stack.set_config(step.config)
        # The first step refreshes: if the cluster was recreated since the last run (make cluster-down/up),
        # the stack's state names objects that no longer exist, and a refresh drops them so they are created.
        refresh = ["--refresh"] if index == 0 else []
        stack.pulumi("up", "--yes", "--skip-preview", *refresh, "--message", step.action).check()
        took = time.monotonic() - t0
        release = stack.outputs()
        state = live.route(str(release["routeName"]), str(release["namespace"]))
        if state is None:
            raise SystemExit("demo: the HTTPRoute is missing after `pulumi up`")
        canary = "-" if state.canary_weight is None else f"{format_percent(state.canary_percent)}%"
        stable = f"{format_percent(state.stable_percent)}%"
        measured, ok = measured_split(release)
        note = ""
        if not ok:
            time.sleep(AGAIN_AFTER)
            again, ok = measured_split(release)
            note = f" ({AGAIN_AFTER:.0f} s later: {again})"
        pods = ready_pods(live, release)
        row = f"T+{t0 - started:<6.0f}{stable:>7}{canary:>8}  {pods:<10}{took:>8.1f}  {measured:<28}"
        print(f"{row}{step.action}{note}", flush=True)
    print()
    print(f"State:      {os.environ.get('PULUMI_BACKEND_URL')} (stack '{STACK}')")
    print(f"Kubeconfig: {os.environ.get('KUBECONFIG')}")
    print("Go on by hand:")
    print("  source scripts/env.sh && cd .state/demo")
    print("  pulumi config set canaryImage ghcr.io/stefanprodan/podinfo:6.8.0")
    print("  pulumi config set canaryWeight 25 && pulumi up")
    print("  pulumi stack history        # every step above, with its message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
