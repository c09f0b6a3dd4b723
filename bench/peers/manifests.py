"""What each peer is given: the same podinfo behind a Gateway of class `eg`, in the peer's own namespace.

Flagger owns its HTTPRoute and its three Services (`<app>`, `<app>-primary`, `<app>-canary`) and copies the
target Deployment to `<app>-primary`: it is given only the Deployment, a Gateway and a Canary. Argo Rollouts
needs the route and the two Services to exist first (it adds `rollouts-pod-template-hash` to their
selectors); our stand-in plugin moves the route's two weights. Each peer's route has a hostname of its own.
"""

from __future__ import annotations

from typing import Any

from bench.peers import scenario
from bench.peers.controllers import rollout_plugin
from scripts.testbed import objects

APP = "podinfo"
PORT = 9898
GATEWAY = "eg"
GATEWAY_CLASS = "eg"
IMAGE_V1 = scenario.STABLE_IMAGE
IMAGE_V2 = scenario.CANARY_IMAGE


def host(peer: str) -> str:
    return f"{peer}.peers.example"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def gateway(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": ns},
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


CONTAINER: dict[str, Any] = {
    "ports": [{"name": "http", "containerPort": PORT}],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": PORT}, "periodSeconds": 1},
}
"""podinfo with a named port and a readiness probe (the bed asks it before a pod turns Ready); the container
is named after the app, so `kubectl set image deployment/podinfo podinfo=...` reads as a user's would."""


def pod_template(image: str) -> dict[str, Any]:
    return objects.pod_template(APP, image, CONTAINER, container_name=APP)


def deployment(ns: str, image: str, replicas: int = 2) -> dict[str, Any]:
    return objects.deployment(APP, image, replicas, CONTAINER, namespace=ns, container_name=APP)


def canary(ns: str, rollback_hook: str | None = None) -> dict[str, Any]:
    """Flagger's Canary over the Deployment, routed through the Gateway by Flagger's gatewayapi:v1 router:
    the bench's plan as `stepWeights` (promotion after the last), its interval and thresholds, through
    Flagger's two built-in checks (they read podinfo's histogram through the bed's label aliases). With
    `rollback_hook`, a `type: rollback` webhook at that URL: Flagger's manual abort (a 2xx answer rolls the
    canary back at the next tick, as its docs' load tester gate does)."""
    window = f"{scenario.WINDOW_SECONDS}s"
    analysis: dict[str, Any] = {
        "interval": f"{scenario.INTERVAL_SECONDS}s",
        "threshold": scenario.FAILED_CHECKS,
        "stepWeights": list(scenario.PLAN),
        "metrics": [
            {
                "name": "request-success-rate",
                "interval": window,
                "thresholdRange": {"min": scenario.SUCCESS_MIN_PERCENT},
            },
            {"name": "request-duration", "interval": window, "thresholdRange": {"max": scenario.P99_MAX_MS}},
        ],
    }
    if rollback_hook:
        analysis["webhooks"] = [{"name": "manual-abort", "type": "rollback", "url": rollback_hook}]
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "progressDeadlineSeconds": 60,
            "service": {
                "port": PORT,
                "targetPort": PORT,
                "hosts": [host("flagger")],
                "gatewayRefs": [{"name": GATEWAY, "namespace": ns}],
            },
            "analysis": analysis,
        },
    }


def service(ns: str, name: str) -> dict[str, Any]:
    return objects.service(name, {"name": "http", "port": PORT, "targetPort": "http"}, app=APP, namespace=ns)


def argo_route(ns: str) -> dict[str, Any]:
    """The route Argo's plugin moves: one rule, stable 100 and canary 0 to start."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "parentRefs": [{"name": GATEWAY}],
            "hostnames": [host("argo")],
            "rules": [
                {
                    "backendRefs": [
                        {"name": f"{APP}-stable", "port": PORT, "weight": 100},
                        {"name": f"{APP}-canary", "port": PORT, "weight": 0},
                    ]
                }
            ],
        },
    }


def rollout(
    ns: str,
    image: str,
    steps: list[dict[str, Any]],
    replicas: int = 2,
    analysis: dict[str, Any] | None = None,
) -> dict[str, Any]:
    canary: dict[str, Any] = {
        "stableService": f"{APP}-stable",
        "canaryService": f"{APP}-canary",
        "trafficRouting": rollout_plugin(APP, ns),
        "steps": steps,
    }
    if analysis:
        canary["analysis"] = analysis
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "template": pod_template(image),
            "strategy": {"canary": canary},
        },
    }


ANALYSIS_TEMPLATE = "gates"


def argo_steps() -> list[dict[str, Any]]:
    """The bench's plan as Argo steps: each weight held one interval (a pause), the last one too; Argo
    promotes once every step is done."""
    pause = {"pause": {"duration": f"{scenario.INTERVAL_SECONDS}s"}}
    return [step for weight in scenario.PLAN for step in ({"setWeight": weight}, pause)]


def argo_analysis() -> dict[str, Any]:
    """A background analysis from the first step on, over the canary's pods (their pod-template hash)."""
    return {
        "templates": [{"templateName": ANALYSIS_TEMPLATE}],
        "startingStep": 1,
        "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
    }


def analysis_template(ns: str, prometheus: str) -> dict[str, Any]:
    """Argo's AnalysisTemplate with the bench's two checks on the bed's Prometheus, over podinfo's own
    histogram of the canary's pods (`pod` = `podinfo-<hash>-*`): each measured every interval from one
    interval after the analysis starts (as Flagger's and ours first look one interval after a weight is
    set), the run failing at the FAILED_CHECKS-th failed measurement (failureLimit: the ones allowed)."""
    selector = f'namespace="{ns}",pod=~"{APP}-{{{{args.hash}}}}-.*"'
    window = f"{scenario.WINDOW_SECONDS}s"
    metric = "http_request_duration_seconds"
    success = (
        f'sum(rate({metric}_count{{{selector},status!~"5.."}}[{window}])) '
        f"/ sum(rate({metric}_count{{{selector}}}[{window}])) * 100"
    )
    p99 = f"histogram_quantile(0.99, sum by (le) (rate({metric}_bucket{{{selector}}}[{window}]))) * 1000"
    common = {
        "interval": f"{scenario.INTERVAL_SECONDS}s",
        "initialDelay": f"{scenario.INTERVAL_SECONDS}s",
        "failureLimit": scenario.FAILED_CHECKS - 1,
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": ANALYSIS_TEMPLATE, "namespace": ns},
        "spec": {
            "args": [{"name": "hash"}],
            "metrics": [
                {
                    "name": "success-rate",
                    **common,
                    "successCondition": f"result[0] >= {scenario.SUCCESS_MIN_PERCENT}",
                    "provider": {"prometheus": {"address": prometheus, "query": success}},
                },
                {
                    "name": "latency-p99",
                    **common,
                    "successCondition": f"result[0] <= {scenario.P99_MAX_MS}",
                    "provider": {"prometheus": {"address": prometheus, "query": p99}},
                },
            ],
        },
    }


def flagger_objects(ns: str, rollback_hook: str | None = None) -> list[dict[str, Any]]:
    return [gateway(ns), deployment(ns, IMAGE_V1), canary(ns, rollback_hook)]


def argo_objects(ns: str, steps: list[dict[str, Any]], prometheus: str | None = None) -> list[dict[str, Any]]:
    """Argo's objects; with `prometheus`, the bench's AnalysisTemplate and the Rollout's analysis too."""
    template = [analysis_template(ns, prometheus)] if prometheus else []
    return [
        gateway(ns),
        service(ns, f"{APP}-stable"),
        service(ns, f"{APP}-canary"),
        argo_route(ns),
        *template,
        rollout(ns, IMAGE_V1, steps, analysis=argo_analysis() if prometheus else None),
    ]


def backend_weights(route: dict[str, Any]) -> dict[str, int]:
    """name -> weight of every backendRef of the route's rules (weight 1 when unset, as Gateway API says)."""
    return {
        ref["name"]: ref.get("weight", 1)
        for rule in route.get("spec", {}).get("rules", [])
        for ref in rule.get("backendRefs", [])
    }
