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

import http.client
import json
import sys
import time
from collections import Counter
from typing import Any

from bench.peers import manifests
from bench.peers.beside import ARGO_NS, FLAGGER_NS, NAMESPACES, down, status, up
from bench.peers.controllers import PLUGIN_LABEL
from bench.peers.drivers import available, set_rollout_image
from bench.peers.kube import apply, get, wait
from devtools.pulumi_cli import project_env
from scripts.testbed.netcheck import check_target

ARGO_STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}]


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
    started = time.monotonic()
    set_rollout_image(env, ARGO_NS, manifests.IMAGE_V2)
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
