"""`python -m bench.peers up|down|status|smoke [PEER ...]`: Flagger and Argo Rollouts beside the bed.

    up      apply their CRDs (server-side), create the peer namespaces and Argo's plugin ConfigMap, start both
            controllers as host processes (state and logs in .cluster/peers/<peer>/)
    down    stop both (process groups: Argo's plugin subprocess goes with it)
    status  which run
    bench   the side-by-side bench: the three tools through every scenario (bench/peers/bench.py; options:
            --repeats N, --tools, --scenarios)
    smoke   the first state of each: Flagger's Canary Initialized with its primary Available; Argo's Rollout
            Healthy at its first revision, then a second revision's first setWeight step read back from the
            route (Argo "with our stand-in Gateway API plugin")

PEER is `flagger` or `argo-rollouts` (default both). Needs `make peers-tools` and a cluster with its data
plane (`make cluster-up`). Prints what it saw. Issue 26.
"""

from __future__ import annotations

import functools
import http.client
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.peers import manifests
from bench.peers.controllers import (
    PLUGIN_LABEL,
    Controller,
    apply_crds,
    argo_command,
    argo_env,
    crd_files,
    flagger_command,
    plugin_config_map,
    ports,
    running,
    start,
    stop,
)
from devtools.pulumi_cli import REPO, project_env
from scripts.testbed.netcheck import check_target

FLAGGER_NS = "peer-flagger"
ARGO_NS = "peer-argo"
NAMESPACES = {"flagger": FLAGGER_NS, "argo-rollouts": ARGO_NS}
ARGO_STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}]


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise SystemExit(f"peers: kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def get(env: dict[str, str], kind: str, name: str, ns: str) -> dict[str, Any]:
    out = subprocess.run(
        ["kubectl", "get", kind, name, "-n", ns, "-o", "json"], env=env, capture_output=True, text=True
    )
    return json.loads(out.stdout) if out.returncode == 0 else {}


def apply(env: dict[str, str], objects: list[dict[str, Any]]) -> None:
    kubectl(env, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def cluster_dir(env: dict[str, str]) -> Path:
    return Path(env["KUBECONFIG"]).parent


def instance(env: dict[str, str]) -> int:
    path = cluster_dir(env) / "dataplane-instance"
    return int(path.read_text().strip()) if path.exists() else 0


def prometheus_url() -> str:
    out = subprocess.run(
        ["bash", "scripts/cluster.sh", "prometheus-url"], cwd=REPO, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"peers: no Prometheus of the bed ({out.stderr.strip()}); run `make cluster-up`")
    return out.stdout.strip()


def controllers(env: dict[str, str], prometheus: str = "") -> dict[str, Controller]:
    kubeconfig, bin_dir = Path(env["KUBECONFIG"]), REPO / ".tools" / "bin"
    state, p = cluster_dir(env) / "peers", ports(instance(env))
    return {
        "flagger": Controller(
            "flagger",
            flagger_command(bin_dir / "flagger", kubeconfig, prometheus, FLAGGER_NS, p.flagger),
            env,
            state / "flagger",
            state / "flagger" / "flagger.log",
        ),
        "argo-rollouts": Controller(
            "argo-rollouts",
            argo_command(bin_dir / "rollouts-controller", kubeconfig, ARGO_NS, p),
            argo_env(env, kubeconfig, ARGO_NS, state / "argo-rollouts" / "sockets"),
            state / "argo-rollouts",
            state / "argo-rollouts" / "rollouts-controller.log",
        ),
    }


def wait(what: str, check: Callable[[], Any], seconds: float = 120) -> float:
    """Poll until `check()` is truthy; the seconds it took (SystemExit naming `what` after `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"peers: timed out after {seconds:.0f} s waiting for {what}")


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def up(env: dict[str, str], peers: list[str]) -> None:
    files = crd_files(REPO / ".tools" / "peer-crds")
    apply_crds("kubectl", [f for peer in peers for f in files[peer]], env)
    apply(env, [manifests.namespace(NAMESPACES[peer]) for peer in peers])
    if "argo-rollouts" in peers:
        plugin = (REPO / ".tools" / "bin" / "argo-gatewayapi-plugin").resolve()
        apply(env, [plugin_config_map(ARGO_NS, plugin)])
    p = ports(instance(env))
    for name, controller in controllers(env, prometheus_url()).items():
        if name not in peers:
            continue
        if running(controller):
            print(f"{name}: already running", file=sys.stderr)
            continue
        pid = start(controller)
        port = p.flagger if name == "flagger" else p.argo_healthz
        took = wait(
            f"{name} /healthz on :{port} (log: {controller.log})", functools.partial(healthy, port), 60
        )
        print(f"{name}: pid {pid}, /healthz answered after {took:.1f} s, log {controller.log}")


def down(env: dict[str, str], peers: list[str]) -> None:
    for name, controller in controllers(env).items():
        if name in peers:
            print(f"{name}: {'stopped' if stop(controller) else 'not running'}")


def status(env: dict[str, str], peers: list[str]) -> None:
    for name, controller in controllers(env).items():
        pid = running(controller)
        print(f"{name}: {f'running, pid {pid}' if pid else 'not running'}")


def available(env: dict[str, str], name: str, ns: str) -> bool:
    conditions = get(env, "deployment", name, ns).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def route_weights(env: dict[str, str], ns: str) -> dict[str, int]:
    return manifests.backend_weights(get(env, "httproute", manifests.APP, ns))


def route_accepted(env: dict[str, str], ns: str) -> bool:
    route = get(env, "httproute", manifests.APP, ns)
    generation = route.get("metadata", {}).get("generation")
    parents = route.get("status", {}).get("parents", [])
    return bool(parents) and all(
        c["status"] == "True" and c.get("observedGeneration") == generation
        for parent in parents
        for c in parent.get("conditions", [])
        if c["type"] in ("Accepted", "ResolvedRefs")
    )


def through_gateway(env: dict[str, str], ns: str, host: str, requests: int = 100) -> Counter[str]:
    """GET /version `requests` times through the peer's Gateway (its status address, netchecked first):
    the versions that answered, and `HTTP <code>` for every other answer."""
    gw = get(env, "gateway", manifests.GATEWAY, ns)
    address = gw["status"]["addresses"][0]["value"]
    check_target(address)  # raises unless the address is routed into the bed
    seen: Counter[str] = Counter()
    for _ in range(requests):
        connection = http.client.HTTPConnection(address, 80, timeout=5)
        try:
            connection.request("GET", "/version", headers={"Host": host})
            answer = connection.getresponse()
            body = answer.read()
            seen[json.loads(body)["version"] if answer.status == 200 else f"HTTP {answer.status}"] += 1
        finally:
            connection.close()
    return seen


def smoke_flagger(env: dict[str, str]) -> None:
    started = time.monotonic()
    apply(env, manifests.flagger_objects(FLAGGER_NS))

    def phase() -> str | None:
        value = get(env, "canary", manifests.APP, FLAGGER_NS).get("status", {}).get("phase")
        return value if isinstance(value, str) else None

    wait("Canary Initialized", lambda: phase() == "Initialized")
    wait("podinfo-primary Available", lambda: available(env, f"{manifests.APP}-primary", FLAGGER_NS))
    wait("Flagger's HTTPRoute Accepted at its generation", lambda: route_accepted(env, FLAGGER_NS))
    target = get(env, "deployment", manifests.APP, FLAGGER_NS).get("spec", {}).get("replicas")
    print(
        f"flagger: Canary {phase()} {time.monotonic() - started:.1f} s after apply; "
        f"podinfo-primary Available; podinfo scaled to {target}; "
        f"route {route_weights(env, FLAGGER_NS)} Accepted/ResolvedRefs"
    )
    seen = through_gateway(env, FLAGGER_NS, manifests.host("flagger"))
    print(f"flagger: 100 requests through its Gateway: {dict(seen)}")


def smoke_argo(env: dict[str, str]) -> None:
    started = time.monotonic()
    apply(env, manifests.argo_objects(ARGO_NS, ARGO_STEPS))

    def rollout() -> dict[str, Any]:
        return dict(get(env, "rollout", manifests.APP, ARGO_NS).get("status", {}))

    wait("Rollout Healthy", lambda: rollout().get("phase") == "Healthy")
    first = rollout()
    print(
        f"argo ({PLUGIN_LABEL}): Rollout Healthy {time.monotonic() - started:.1f} s after apply, "
        f"stable {first.get('stableRS')}, route {route_weights(env, ARGO_NS)}"
    )
    # A JSON patch of the one field: a merge patch would replace the whole containers list (a CRD has no
    # strategic merge), and the new pods would lose their port and probe.
    path = "/spec/template/spec/containers/0/image"
    patch = [{"op": "replace", "path": path, "value": manifests.IMAGE_V2}]
    started = time.monotonic()
    kubectl(env, "patch", "rollout", manifests.APP, "-n", ARGO_NS, "--type=json", "-p", json.dumps(patch))
    want = {f"{manifests.APP}-stable": 80, f"{manifests.APP}-canary": 20}
    took = wait(f"route weights {want}", lambda: route_weights(env, ARGO_NS) == want)
    wait("Rollout paused at step 1", lambda: rollout().get("currentStepIndex") == 1)
    second = rollout()
    print(
        f"argo ({PLUGIN_LABEL}): revision 2 image {manifests.IMAGE_V2}: route {route_weights(env, ARGO_NS)} "
        f"read back {took:.1f} s after the patch; phase {second.get('phase')}, "
        f"step {second.get('currentStepIndex')}, canary {second.get('currentPodHash')}, "
        f"stable {second.get('stableRS')}"
    )
    wait("Argo's HTTPRoute Accepted at its generation", lambda: route_accepted(env, ARGO_NS))
    generation = get(env, "httproute", manifests.APP, ARGO_NS)["metadata"]["generation"]
    print(f"argo: route generation {generation} Accepted/ResolvedRefs")
    seen = through_gateway(env, ARGO_NS, manifests.host("argo"))
    print(f"argo ({PLUGIN_LABEL}): 100 requests through its Gateway: {dict(seen)}")


def smoke(env: dict[str, str], peers: list[str]) -> None:
    if "flagger" in peers:
        smoke_flagger(env)
    if "argo-rollouts" in peers:
        smoke_argo(env)


def main(argv: list[str]) -> None:
    if argv[:1] == ["bench"]:
        from bench.peers import bench

        sys.exit(bench.main(project_env(), argv[1:]))
    commands = {"up": up, "down": down, "status": status, "smoke": smoke}
    peers = argv[1:] or list(NAMESPACES)
    if not argv or argv[0] not in commands or not set(peers) <= set(NAMESPACES):
        raise SystemExit(f"usage: python -m bench.peers {'|'.join(commands)} [{' '.join(NAMESPACES)}]")
    commands[argv[0]](project_env(), peers)


if __name__ == "__main__":
    main(sys.argv[1:])
