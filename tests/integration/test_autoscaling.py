"""autoscaling and podDisruptionBudget on the local apiserver: a HorizontalPodAutoscaler and a
PodDisruptionBudget per track, and Pulumi never fighting the autoscaler over spec.replicas.

The local cluster has no metrics server, so the autoscaler here never acts on its own; `kubectl scale` stands
in for it (both write spec.replicas, which is what pulumi-kubernetes#2491's users saw Pulumi reset or
conflict on). Read back: the replica count after a weight step, which field manager owns spec.replicas, and a
refreshing preview that plans nothing. (kube-apiserver v1.36 records no field manager for a replica count
set through the scale subresource; what matters is that Pulumi's is not one.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.harness import Kube, is_available, release_stack, wait_for

APP = "scaled"
V1, V2 = "registry.example/scaled:1.0.0", "registry.example/scaled:1.1.0"


def replicas_owners(deployment: dict[str, Any]) -> list[str]:
    """The field managers that own spec.replicas of a live Deployment."""
    return [
        entry["manager"]
        for entry in deployment["metadata"].get("managedFields", [])
        if "f:replicas" in (entry.get("fieldsV1", {}).get("f:spec") or {})
    ]


def test_pulumi_leaves_replicas_to_the_autoscaler(env: dict[str, str], kube: Kube, tmp_path: Path) -> None:
    stack = release_stack(
        env,
        tmp_path,
        "hpa",
        {"appName": APP, "stableImage": V1, "canaryImage": V2, "canaryWeight": "5"},
    )
    stack.pulumi("config", "set", "--path", "autoscaling.minReplicas", "1").check()
    stack.pulumi("config", "set", "--path", "autoscaling.maxReplicas", "5").check()
    stack.pulumi("config", "set", "--path", "autoscaling.cpuUtilization", "70").check()
    stack.pulumi("config", "set", "--path", "podDisruptionBudget.maxUnavailable", "1").check()
    stack.up("canary 5% with autoscalers").check()
    namespace = str(stack.outputs()["namespace"])

    for track in ("stable", "canary"):
        hpa = kube.get("horizontalpodautoscaler", f"{APP}-{track}", namespace)
        assert hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == f"{APP}-{track}", hpa
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)
        pdb = kube.get("poddisruptionbudget", f"{APP}-{track}", namespace)
        assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1, pdb
        assert pdb["spec"]["selector"]["matchLabels"]["gateway-canary/track"] == track

    kube.run("scale", "deployment", f"{APP}-stable", "-n", namespace, "--replicas", "3").check()

    def scaled() -> bool:
        deployment = kube.get("deployment", f"{APP}-stable", namespace)
        return deployment is not None and deployment["spec"]["replicas"] == 3 and is_available(deployment)

    wait_for(scaled, timeout=120, what="the stable Deployment at 3 ready pods")
    stack.pulumi("config", "set", "canaryWeight", "25").check()
    stack.up("canary 25%").check()

    shown = kube.run(
        "get", "deployment", f"{APP}-stable", "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    after = json.loads(shown.check().stdout)
    assert after["spec"]["replicas"] == 3, "pulumi up reset the scaled replicas"
    managers = {entry["manager"] for entry in after["metadata"]["managedFields"]}
    assert any(m.startswith("pulumi-kubernetes") for m in managers), managers  # Pulumi applies the rest
    assert not any(owner.startswith("pulumi-kubernetes") for owner in replicas_owners(after)), after[
        "metadata"
    ]
    stack.preview("--refresh", "--expect-no-changes").check("nothing to change after a refresh")
