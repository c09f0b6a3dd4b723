"""The kwok Stages of the local cluster: kwok's own defaults, with the pod lifecycle of a readiness probe.

kwok's default `pod-ready` Stage makes a pod Ready the moment it is scheduled, in the same patch that gives
it its IP. The supervisor can only start a pod's podinfo once it knows the IP, so every new pod of a rollout
was an endpoint in Envoy for a few hundred milliseconds before anything listened on it (503 UF "connection
refused" under load, seen by tests/integration/test_traffic.py). A real kubelet holds a pod unready until
its readiness probe passes; here the supervisor is the probe:

- `pod-started` (a release pod: `apps.gated`): kwok's `pod-ready` with Ready and ContainersReady "False"
  and the containers not ready: the pod has its IP and runs, and is no endpoint yet;
- the supervisor starts its podinfo processes and, once each accepts a connection, sets the pod's
  annotation `LISTENING` to "true";
- `pod-listening`: a started, annotated, unready pod turns Ready (conditions merged by type, as the kubelet
  patches them).

Test hook `late-ready` (apps.LATE_READY): such a pod turns Ready `apps.LATE_SECONDS` after it could, so a
rollout of it is still waiting when a test acts on it (tests/integration/test_outage.py kills the apiserver
then): a delayed copy of `pod-ready` (`pod-ready-late`), and the supervisor's wait before it announces.

Every other pod (Envoy Gateway's own, kube-system's) keeps kwok's `pod-ready`, and so does every pod of a
cluster without a data plane (no supervisor: a private cluster of tests/integration/test_outage.py, a
non-root user): `--gated` only where the supervisor runs. Test hook: a pod running an
image whose reference contains "never-ready" matches neither `pod-ready` nor `pod-started`, so it never runs
and a Deployment of it never becomes Available (tests of a canary that fails to start).

The text comes from the pinned kwok module (its `kustomize/stage`), changed by exact replacements that fail
loudly when upstream's text moves.

Usage: python -m scripts.testbed.stages KWOK_STAGE_DIR [--gated] > kwok-stages.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

from scripts.testbed.apps import LATE_READY, LATE_SECONDS, LISTENING, SYSTEM_NAMESPACES

NEVER_READY = "never-ready"

_MATCH = "    matchExpressions:\n"
GATED_QUERY = (
    ".metadata | select(.namespace | IN({namespaces}) | not)"
    ' | select(any(.ownerReferences[]?; .kind == "ReplicaSet")) | .name'
).format(namespaces=", ".join(f'"{n}"' for n in sorted(SYSTEM_NAMESPACES)))
"""A jq query with a result exactly for the pods `apps.gated` accepts."""


def requirement(key: str, operator: str, values: tuple[str, ...] = ()) -> str:
    text = f"    - key: '{key}'\n      operator: '{operator}'\n"
    if values:
        text += "      values:\n" + "".join(f"      - '{v}'\n" for v in values)
    return text


def image_query(word: str) -> str:
    """A jq query with a result for a pod with a container whose image reference contains `word`."""
    return f'.spec.containers.[] | select(.image | contains("{word}")) | .name'


NOT_NEVER_READY = requirement(image_query(NEVER_READY), "DoesNotExist")

POD_LISTENING = f"""apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-listening
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
{requirement(".metadata.deletionTimestamp", "DoesNotExist")}\
{requirement(".status.podIP", "Exists")}\
{requirement(f'.metadata.annotations["{LISTENING}"]', "In", ("true",))}\
{requirement('.status.conditions[]? | select(.type == "Ready") | .status', "In", ("False",))}\
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}

      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: ContainersReady

      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
"""


def replace_once(text: str, old: str, new: str, what: str) -> str:
    """`text` with the first `old` replaced; an error naming `what` when `old` is not there."""
    if old not in text:
        raise ValueError(f"kwok's pod-ready Stage changed: no {what} ({old!r}) to replace")
    return text.replace(old, new, 1)


def pod_ready(upstream: str, gated: bool) -> str:
    """kwok's pod-ready for every pod that is neither never-ready nor late-ready (nor gated, when `gated`)."""
    selector = _MATCH + NOT_NEVER_READY + requirement(image_query(LATE_READY), "DoesNotExist")
    selector += requirement(GATED_QUERY, "DoesNotExist") if gated else ""
    return replace_once(upstream, _MATCH, selector, "selector")


def pod_ready_late(upstream: str, gated: bool) -> str:
    """kwok's pod-ready, LATE_SECONDS late, for late-ready pods (not gated ones, when `gated`)."""
    text = replace_once(upstream, "name: pod-ready\n", "name: pod-ready-late\n", "name")
    selector = _MATCH + NOT_NEVER_READY + requirement(image_query(LATE_READY), "Exists")
    selector += requirement(GATED_QUERY, "DoesNotExist") if gated else ""
    text = replace_once(text, _MATCH, selector, "selector")
    delay = f"  delay:\n    durationMilliseconds: {LATE_SECONDS * 1000}\n  next:\n"
    return replace_once(text, "  next:\n", delay, "next")


def pod_started(upstream: str) -> str:
    """kwok's pod-ready for gated pods, leaving them running but unready."""
    text = replace_once(upstream, "name: pod-ready\n", "name: pod-started\n", "name")
    selector = _MATCH + NOT_NEVER_READY + requirement(GATED_QUERY, "Exists")
    text = replace_once(text, _MATCH, selector, "selector")
    for condition in ("Ready", "ContainersReady"):
        text = replace_once(
            text,
            f'status: "True"\n        type: {condition}\n',
            f'status: "False"\n        type: {condition}\n',
            f"{condition} condition",
        )
    # The first container list is .spec.containers (init containers follow and stay as kwok has them).
    return replace_once(text, "ready: true\n", "ready: false\n", "container readiness")


def stages(kwok_stage_dir: Path, gated: bool) -> str:
    """Every Stage of the local cluster, as one multi-document YAML; `gated`: release pods Ready once the
    supervisor says they listen."""
    upstream = (kwok_stage_dir / "pod/fast/pod-ready.yaml").read_text()
    docs = [
        (kwok_stage_dir / "node/fast/node-initialize.yaml").read_text(),
        (kwok_stage_dir / "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml").read_text(),
        pod_ready(upstream, gated),
        pod_ready_late(upstream, gated),
        *((pod_started(upstream), POD_LISTENING) if gated else ()),
        (kwok_stage_dir / "pod/fast/pod-complete.yaml").read_text(),
        (kwok_stage_dir / "pod/fast/pod-delete.yaml").read_text(),
    ]
    return "---\n".join(doc if doc.endswith("\n") else doc + "\n" for doc in docs)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[1:] not in ([], ["--gated"]):
        print(__doc__.rsplit("Usage: ", 1)[1], file=sys.stderr, end="")
        return 2
    try:
        sys.stdout.write(stages(Path(argv[0]), gated=argv[1:] == ["--gated"]))
    except (OSError, ValueError) as err:
        print(f"stages: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
