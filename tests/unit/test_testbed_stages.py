"""The local cluster's kwok Stages (scripts/testbed/stages.py) and which pods they gate (apps.gated).

That kwok loads them and pods really turn Ready once podinfo listens is shown by every integration test on
the cluster (scripts/cluster.sh up fails when kwok refuses a Stage); here: the selectors say what
`apps.gated` says, and a change in kwok's upstream text is an error, not a silently ungated cluster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from scripts.testbed import apps, stages

# The shape of kwok's kustomize/stage/pod/fast/pod-ready.yaml, the parts stages.py changes.
UPSTREAM = """apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  selector:
    matchExpressions:
    - key: '.status.podIP'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      - name: {{ .name | Quote }}
        ready: true
      initContainerStatuses:
      - name: {{ .name | Quote }}
        ready: true
"""


def pod(namespace: str, owner: str | None, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": namespace, "name": "p", "uid": "u"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o"}]
    return {"metadata": meta, "status": status}


PODS = [
    pod("gc-web", "ReplicaSet"),
    pod("gc-web", "StatefulSet"),
    pod("gc-web", None),
    pod("envoy-gateway-system", "ReplicaSet"),
    pod("kube-system", "ReplicaSet"),
]


def test_gated_is_a_release_pod_outside_the_system_namespaces() -> None:
    assert [apps.gated(p) for p in PODS] == [True, False, False, False, False]


@pytest.mark.skipif(shutil.which("jq") is None, reason="NOT RUN: jq is not installed (the jq query check)")
@pytest.mark.parametrize("sample", PODS)
def test_the_stage_selector_query_agrees_with_gated(sample: dict[str, Any]) -> None:
    # jq and kwok's gojq read the same language; a result means the pod is gated (Exists).
    query = stages.GATED_QUERY
    out = subprocess.run(
        ["jq", "-c", query], input=json.dumps(sample), capture_output=True, text=True, check=True
    ).stdout.strip()
    assert bool(out) == apps.gated(sample), (query, out)


def test_pod_ready_excludes_gated_and_never_ready_pods() -> None:
    text = stages.pod_ready(UPSTREAM, gated=True)
    assert "name: pod-ready\n" in text
    assert 'contains("never-ready")' in text and text.count("operator: 'DoesNotExist'") == 4
    assert 'status: "True"\n        type: Ready' in text


def test_without_a_data_plane_only_never_ready_pods_are_held_back() -> None:
    text = stages.pod_ready(UPSTREAM, gated=False)
    assert 'contains("never-ready")' in text and stages.GATED_QUERY not in text


def test_late_ready_pods_are_made_ready_late() -> None:
    text = stages.pod_ready_late(UPSTREAM, gated=False)
    assert "name: pod-ready-late\n" in text and 'contains("late-ready")' in text
    assert f"delay:\n    durationMilliseconds: {apps.LATE_SECONDS * 1000}\n  next:" in text
    assert stages.GATED_QUERY in stages.pod_ready_late(UPSTREAM, gated=True)


def test_pod_started_gives_an_ip_but_leaves_the_pod_unready() -> None:
    text = stages.pod_started(UPSTREAM)
    assert "name: pod-started\n" in text and "operator: 'Exists'" in text
    assert 'status: "False"\n        type: Ready' in text
    assert 'status: "False"\n        type: ContainersReady' in text
    containers, init = text.split("initContainerStatuses:")
    assert "ready: false" in containers and "ready: true" in init


def test_pod_listening_waits_for_the_supervisors_annotation() -> None:
    assert f'.metadata.annotations["{apps.LISTENING}"]' in stages.POD_LISTENING
    assert "values:\n      - 'true'" in stages.POD_LISTENING
    assert 'status: "True"\n        type: Ready' in stages.POD_LISTENING


def test_a_change_in_kwoks_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="kwok's pod-ready Stage changed: no Ready condition"):
        stages.pod_started(UPSTREAM.replace("type: Ready\n", "type: Readyish\n"))
