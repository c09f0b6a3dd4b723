"""Capacity follows traffic (issue 23), proven on the real data plane: real `pulumi up` and `canary`, the
real apiserver, Envoy Gateway's real Envoy, one real podinfo per Ready pod.

One release per mode (capacity.canary "traffic" with stable "full", and with stable "traffic"), R = 3
stable pods, walked under a steady load through the Gateway's Envoy:

  plain `pulumi config set canaryWeight N && pulumi up`: canary deployed at 0, then 5, 25, 50, 100, and a
  rollback to 0 the same way; then the CLI: `canary step` to 100 again, `canary rollback --yes`, `canary
  step` to 100 once more, and `canary promote --yes`.

What is recorded, and checked at the end of each walk:

- the invariant at every event: watches of the namespace's Pods and of the HTTPRoute, merged in
  resourceVersion order (one etcd's revision: an ordering witness on the local cluster), replayed; at every
  event a track with a share s > 0 of the route's split has at least ceil(R x s / 100) Ready pods that are
  not being deleted (canary.release.capacity.invariant_problems, the formula the release sizes tracks by);
- per-pod load: each pod's own podinfo counter of GET /version, read every second; over every window no pod
  served more than 1.5x the per-pod rate the stable pods served before the canary came;
- not one request of the load failed, and the walk's expected pod counts were reached at 100%.

The load's request count and duration are bounded (Stream, Load), every watch is stopped, and every stack is
destroyed by the fixture.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.gateway_api import ROUTE_TYPE
from canary.ops.verify.traffic import Stream, TrafficCounter
from canary.release.capacity import invariant_problems
from canary.route_state import route_state
from scripts.testbed.netcheck import check_target
from tests.integration.harness import (
    Kube,
    PulumiStack,
    Watch,
    planned_changes,
    release_stack,
    set_in_stack_file,
)
from tests.integration.test_traffic import (
    APP,
    EG_CLASS,
    HOST,
    WALK_TEMPLATE,
    canary,
    gateway_target,
    load,
    settle,
    version_count,
)
from tests.integration.test_traffic_bed import bed, dataplane_state

__all__ = ["bed"]  # the traffic bed's own readiness fixture (skips loudly, fails under CI)

FULL = 3
"""The stable's full size, R."""
RATE = 40.0
"""Requests per second of the load through the walk."""
WINDOW = 4.0
"""Seconds per window of the per-pod rate check."""
PER_POD_LIMIT = 1.5
"""No pod may serve more than this times the stable pods' per-pod rate before the canary."""
V1, V2 = "registry.example/web:1.0.0", "registry.example/web:1.1.0"
TRACK_LABEL = "gateway-canary/track"


@dataclass
class Sampler:
    """Each pod's podinfo count of GET /version, read every second in a thread of its own: per pod, a list
    of (monotonic time, count). Pods come from the bed's supervisor state (the address of each running
    podinfo), checked by the bed's netcheck once per pod."""

    bed: dict[str, str]
    namespace: str
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for pod in dataplane_state(self.bed).get("pods", []):
                if pod["namespace"] != self.namespace:
                    continue
                address = str(pod["metrics"])
                try:
                    if address not in self.checked:
                        assert "into gcbed-apps" in check_target(address), address
                        self.checked.add(address)
                    count = version_count(address)
                except OSError:
                    continue  # a pod on its way out: its podinfo is gone
                self.samples.setdefault(str(pod["pod"]), []).append((time.monotonic(), count))

    def stop(self) -> dict[str, list[tuple[float, int]]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.samples


def window_rates(samples: list[tuple[float, int]], window: float) -> list[tuple[float, float]]:
    """(window start, requests per second) over consecutive windows of at least `window` seconds."""
    rates = []
    start = 0
    for i in range(1, len(samples)):
        (t0, c0), (t1, c1) = samples[start], samples[i]
        if t1 - t0 >= window:
            rates.append((t0, (c1 - c0) / (t1 - t0)))
            start = i
    return rates


def track_of(pod_name: str) -> str:
    return "canary" if pod_name.startswith(f"{APP}-canary-") else "stable"


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
    return conditions.get("Ready") == "True"


def replay(
    route_events: list[dict[str, Any]], pod_events: list[tuple[str, dict[str, Any]]], since: int
) -> list[str]:
    """Every event of both watches in resourceVersion order, and what broke the invariant after each one
    after revision `since` (before it: the watches' initial lists, a steady state replayed one object at a
    time)."""
    events: list[tuple[int, str, dict[str, Any]]] = [
        (int(obj["metadata"]["resourceVersion"]), "route", obj) for obj in route_events
    ] + [
        (int(obj["metadata"]["resourceVersion"]), "pod-deleted" if kind == "DELETED" else "pod", obj)
        for kind, obj in pod_events
    ]
    events.sort(key=lambda event: event[0])
    shares: dict[str, Decimal] = {"stable": Decimal(100), "canary": Decimal(0)}
    pods: dict[str, dict[str, Any]] = {}
    problems = []
    for revision, kind, obj in events:
        if kind == "route":
            state = route_state(obj, APP)
            shares = {"stable": state.stable_percent, "canary": state.canary_percent}
        elif kind == "pod-deleted":
            pods.pop(obj["metadata"]["name"], None)
        else:
            pods[obj["metadata"]["name"]] = obj
        ready: dict[str, int] = {"stable": 0, "canary": 0}
        for name, pod in pods.items():
            if is_ready(pod):
                ready[track_of(name)] += 1
        if revision > since:
            problems += [
                f"at revision {revision} ({kind}): {p}" for p in invariant_problems(FULL, shares, ready)
            ]
    return problems


@dataclass
class Walk:
    stack: PulumiStack
    kube: Kube
    bed: dict[str, str]
    namespace: str = ""
    stream: Stream | None = None
    sampler: Sampler | None = None
    routes: Watch | None = None
    pods: Watch | None = None
    baseline_until: float = 0.0
    since: int = 0
    """The cluster's revision once the watches had listed the steady state (stable only)."""
    peaks: dict[str, int] = field(default_factory=dict)

    def weight(self, percent: str) -> None:
        """`pulumi config set canaryWeight N && pulumi up`, the main workflow. What a reviewer sees first:
        the preview plans in-place updates of the route and at most the Deployments' spec.replicas (never a
        pod template: no pod restarts)."""
        self.stack.pulumi("config", "set", "canaryWeight", percent).check()
        planned = planned_changes(self.stack)
        assert [kind for _, kind, _ in planned].count(ROUTE_TYPE) == 1, planned
        for op, kind, diffs in planned:
            assert op == "update" and kind in (ROUTE_TYPE, DEPLOYMENT), planned
            if kind == ROUTE_TYPE:
                assert diffs and all(d.endswith(".weight") for d in diffs), planned
            else:
                assert diffs == ("spec.replicas",), planned
        self.stack.up(message=f"canary {percent}%").check()
        self.note_counts()

    def step(self) -> str:
        out = canary(self.stack, "step", "--yes").check().stdout
        self.note_counts()
        return out

    def note_counts(self) -> None:
        for track in ("stable", "canary"):
            deployment = self.kube.get("deployment", f"{APP}-{track}", self.namespace)
            if deployment is not None:
                ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
                self.peaks[track] = max(self.peaks.get(track, 0), ready)


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def start_walk(bed: dict[str, str], kube: Kube, where: Any, prefix: str, capacity: dict[str, Any]) -> Walk:
    stack = release_stack(
        bed,
        where,
        prefix,
        {"appName": APP, "stableImage": V1, "stableReplicas": str(FULL), "gatewayClassName": EG_CLASS},
    )
    stack.pulumi("config", "set", "--path", "hostnames[0]", HOST).check()
    set_in_stack_file(stack, {"podTemplate": WALK_TEMPLATE, "capacity": capacity})
    return Walk(stack, kube, bed)


def run_walk(walk: Walk, stable_mode: str) -> None:
    walk.stack.up(message="stable").check()
    walk.namespace = str(walk.stack.outputs()["namespace"])
    where = gateway_target(walk.kube, walk.namespace)
    settle(where, {"plain": "1.0.0"})
    walk.routes = Watch(walk.stack.env, ROUTE, walk.namespace)
    walk.pods = Watch(walk.stack.env, "pod", walk.namespace)
    listed = walk.kube.run("get", "--raw", f"/api/v1/namespaces/{walk.namespace}/pods").check().stdout
    walk.since = int(json.loads(listed)["metadata"]["resourceVersion"])
    walk.sampler = Sampler(walk.bed, walk.namespace).start()
    walk.stream = Stream(load(where, 20000, concurrency=4, time_limit=600), rate=RATE).start()
    time.sleep(3 * WINDOW)
    walk.baseline_until = time.monotonic()

    walk.stack.set_config({"canaryImage": V2, "canaryWeight": "0"})
    walk.stack.up(message="deploy canary").check()
    for percent in ("5", "25", "50", "100"):
        walk.weight(percent)
    assert walk.peaks["canary"] >= FULL, f"the canary never reached {FULL} ready pods at 100%: {walk.peaks}"
    walk.weight("0")  # the rollback the main workflow knows: a config change

    for percent in ("5", "25", "50", "100"):
        assert f"-> {percent}%" in walk.step()
    rolled = canary(walk.stack, "rollback", "--yes").check()
    if stable_mode == "traffic":
        # The stable ran 1 pod at 100%: the fast write is refused and pulumi up scales the stable first.
        assert "capacity.stable is 'traffic'" in rolled.output, rolled.output
    for percent in ("5", "25", "50", "100"):
        assert f"-> {percent}%" in walk.step()
    canary(walk.stack, "promote", "--yes").check()
    time.sleep(WINDOW)


def finish_walk(walk: Walk) -> list[str]:
    """Stop the recorders and return every problem the walk shows (empty: the walk held the invariant)."""
    assert walk.stream is not None and walk.sampler is not None
    assert walk.routes is not None and walk.pods is not None
    seen = walk.stream.stop()
    samples = walk.sampler.stop()
    route_events = [obj for _, obj in walk.routes.stop()]
    pod_events = walk.pods.stop()
    walk.stream = walk.sampler = walk.routes = walk.pods = None

    problems = replay(route_events, pod_events, walk.since)
    whole = TrafficCounter().extend([s.result for s in seen]).tally()
    if whole.failed:
        problems.append(f"{whole.failed} requests failed: {whole.failures}")
    if whole.sent < 0.8 * RATE * (seen[-1].sent - seen[0].sent):
        problems.append(f"the load fell behind its rate: {whole.sent} sent")

    baseline = [
        rate
        for pod, series in samples.items()
        if track_of(pod) == "stable"
        for start, rate in window_rates(series, WINDOW)
        if start < walk.baseline_until - WINDOW
    ]
    assert baseline, f"no per-pod rate before the canary: {samples}"
    per_pod = sum(baseline) / len(baseline)
    peak = {
        pod: max((r for _, r in window_rates(series, WINDOW)), default=0.0) for pod, series in samples.items()
    }
    print(
        f"\nper-pod rate before the canary {per_pod:.1f}/s; peak per pod "
        f"{ {pod: round(rate, 1) for pod, rate in sorted(peak.items())} }; requests {whole.sent}, "
        f"by version {whole.by_version}; {len(route_events)} route and {len(pod_events)} pod events"
    )
    assert per_pod > 0.5 * RATE / FULL, f"the stable pods' baseline is not the load's: {per_pod}"
    problems += [
        f"pod {pod} served {rate:.1f}/s, over {PER_POD_LIMIT}x the stable's {per_pod:.1f}/s per pod"
        for pod, rate in sorted(peak.items())
        if rate > PER_POD_LIMIT * per_pod
    ]
    return problems


def stop_all(walk: Walk) -> None:
    for recorder in (walk.stream, walk.sampler, walk.routes, walk.pods):
        if recorder is not None:
            recorder.stop()
    walk.stack.destroy()


@pytest.fixture
def traffic_full(bed: dict[str, str], kube: Kube, tmp_path: Any) -> Iterator[Walk]:
    walk = start_walk(bed, kube, tmp_path, "capfull", {"settleSeconds": 2})
    try:
        yield walk
    finally:
        stop_all(walk)


@pytest.fixture
def traffic_traffic(bed: dict[str, str], kube: Kube, tmp_path: Any) -> Iterator[Walk]:
    walk = start_walk(bed, kube, tmp_path, "captraf", {"stable": "traffic", "settleSeconds": 2})
    try:
        yield walk
    finally:
        stop_all(walk)


def test_canary_follows_traffic_and_the_stable_stays_full(traffic_full: Walk) -> None:
    run_walk(traffic_full, "full")
    problems = finish_walk(traffic_full)
    assert not problems, "\n".join(problems)


def test_both_tracks_follow_traffic(traffic_traffic: Walk) -> None:
    run_walk(traffic_traffic, "traffic")
    problems = finish_walk(traffic_traffic)
    assert not problems, "\n".join(problems)


def pod_event(name: str, revision: int, ready: bool, deleting: bool = False) -> tuple[str, dict[str, Any]]:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": str(revision)}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-06T00:00:00Z"
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return "MODIFIED", {"metadata": metadata, "status": status}


def route_at(canary_weight: int, revision: int) -> dict[str, Any]:
    refs = [
        {"name": f"{APP}-stable", "port": 80, "weight": 100 - canary_weight},
        {"name": f"{APP}-canary", "port": 80, "weight": canary_weight},
    ]
    return {
        "metadata": {"name": APP, "resourceVersion": str(revision), "generation": 1},
        "spec": {"rules": [{"backendRefs": refs}]},
    }


def test_the_replay_catches_traffic_sent_ahead_of_capacity() -> None:
    """The check the walks rely on can fail: the route at 50% while the canary has one ready pod of the two
    it needs (R = 3), and two of three stable pods deleted while the stable still carries 50%."""
    stable = [pod_event(f"{APP}-stable-a-{i}", i, ready=True) for i in (1, 2, 3)]
    canary_pod = pod_event(f"{APP}-canary-b-1", 4, ready=True)
    early = replay([route_at(50, 5)], [*stable, canary_pod], since=3)
    assert early == ["at revision 5 (route): canary carries 50% with 1 ready pods (needs 2)"], early
    second = pod_event(f"{APP}-canary-b-2", 5, ready=True)
    gone = [pod_event(f"{APP}-stable-a-{i}", 6 + i, ready=True, deleting=True) for i in (1, 2)]
    late = replay([route_at(50, 6)], [*stable, canary_pod, second, *gone], since=3)
    assert late == ["at revision 8 (pod): stable carries 50% with 1 ready pods (needs 2)"], late
