"""What an integration test prints when a gate's verdict surprises it: Prometheus's answers (loopback
only), the background load as its client saw it, the scrapes, the route and the endpoints. Enough to tell
a product failure from a starved test bed (docs/analysis-notes.md)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.ops.verify.traffic import Stream
from canary.route_state import route_state
from tests.integration.harness import Kube


def query(url: str, promql: str) -> float | None:
    """One number from Prometheus (loopback only), None when there is no result or no answer."""
    try:
        result = query_vector(url, promql)
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


def query_vector(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result from Prometheus (loopback only); OSError when it does not answer."""
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(
        f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=5
    ) as response:
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
    return result


def targets(url: str, namespace: str) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"{url}/api/v1/targets?state=active", timeout=5) as response:
        active = json.loads(response.read())["data"]["activeTargets"]
    return [t["labels"] for t in active if t["labels"].get("namespace") == namespace]


def bed_report(stream: Stream | None, prometheus: str, kube: Kube, namespace: str, app: str) -> str:
    """How the background load fared and how Prometheus scrapes the release's pods: what a failed
    assertion on a verdict needs to tell a product failure from a starved test bed."""
    if stream is None:
        load_text = "stopped by the test"
    else:
        seen = stream.snapshot()
        outcomes = Counter(s.result.version if s.result.ok else s.result.failure for s in seen)
        load_text = f"{len(seen)} answered, {'running' if stream.running else 'over'}, {dict(outcomes)}"
        # Where the answers came from lately, 10 s at a time: Envoy not routing to the canary (all 1.0.0)
        # reads differently from Prometheus not counting what the canary served.
        if seen:
            end = max(s.answered for s in seen)
            buckets = [
                Counter(
                    s.result.version if s.result.ok else s.result.failure
                    for s in seen
                    if end - 10 * (i + 1) < s.answered <= end - 10 * i
                )
                for i in reversed(range(6))
            ]
            load_text += f"; last 60 s by 10 s: {[dict(b) for b in buckets]}"
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/targets?state=active", timeout=5) as response:
            active = json.loads(response.read())["data"]["activeTargets"]
        scrapes = [
            f"{t['labels'].get('track')} {t['scrapeUrl']} {t['health']} {t['lastScrapeDuration']:.3f}s "
            f"{t.get('lastError', '')}".strip()
            for t in active
            if t["labels"].get("namespace") == namespace
        ]
    except OSError as err:
        scrapes = [f"Prometheus targets not read: {err}"]
    return (
        f"load: {load_text}; scrapes: {scrapes}; canary requests Prometheus holds, by pod and status: "
        f"{counts_by_status(prometheus, namespace)}; {live_report(kube, namespace, app)}"
    )


def counts_by_status(prometheus: str, namespace: str) -> dict[str, float] | str:
    """The canary's request counters as Prometheus holds them now, `pod status` -> count: what the gate's
    queries read, next to what the load's client saw."""
    selector = f'namespace="{namespace}", track="canary"'
    try:
        result = query_vector(
            prometheus, f"sum by (pod, status) (http_request_duration_seconds_count{{{selector}}})"
        )
    except OSError as err:
        return f"not read: {err}"
    return {f"{r['metric'].get('pod')} {r['metric'].get('status')}": float(r["value"][1]) for r in result}


def live_report(kube: Kube, namespace: str, app: str) -> str:
    """The route's weights and status generations, and the ready endpoints of each track's Service (from
    their EndpointSlices, which Envoy Gateway turns into Envoy's endpoints)."""
    route = kube.get(ROUTE, app, namespace) if namespace else None
    if route is None:
        return "route: none"
    parents = [
        (c["type"], c["status"], c.get("observedGeneration"))
        for parent in (route.get("status") or {}).get("parents", [])
        for c in parent.get("conditions", [])
    ]
    ready = {
        sl["metadata"].get("labels", {}).get("kubernetes.io/service-name", "?"): [
            (e.get("addresses"), (e.get("conditions") or {}).get("ready")) for e in sl.get("endpoints") or []
        ]
        for sl in kube.list("endpointslices", namespace)
    }
    return (
        f"route: canary {route_state(route, app).canary_weight}%, generation "
        f"{route['metadata'].get('generation')}, status {parents}; endpoints {ready}"
    )
