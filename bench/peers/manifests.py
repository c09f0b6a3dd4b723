"""What each peer is given: the same podinfo behind a Gateway of class `eg`, in the peer's own namespace.

Flagger owns its HTTPRoute and its three Services (`<app>`, `<app>-primary`, `<app>-canary`) and copies the
target Deployment to `<app>-primary`: it is given only the Deployment, a Gateway and a Canary. Argo Rollouts
needs the route and the two Services to exist first (it adds `rollouts-pod-template-hash` to their
selectors); our stand-in plugin moves the route's two weights. Each peer's route has a hostname of its own.
"""

from __future__ import annotations

from typing import Any

from bench.peers.controllers import rollout_plugin

APP = "podinfo"
PORT = 9898
GATEWAY = "eg"
GATEWAY_CLASS = "eg"
IMAGE_V1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
IMAGE_V2 = "ghcr.io/stefanprodan/podinfo:6.7.1"


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


def pod_template(image: str) -> dict[str, Any]:
    """podinfo with a named port and a readiness probe (the bed asks it before a pod turns Ready)."""
    container = {
        "name": APP,
        "image": image,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": PORT}, "periodSeconds": 1},
    }
    return {"metadata": {"labels": {"app": APP}}, "spec": {"containers": [container]}}


def deployment(ns: str, image: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": ns, "labels": {"app": APP}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "template": pod_template(image),
        },
    }


def canary(ns: str, interval: str = "10s") -> dict[str, Any]:
    """Flagger's Canary over the Deployment, routed through the Gateway by Flagger's gatewayapi:v1 router,
    with its two built-in checks (they read podinfo's histogram through the bed's label aliases)."""
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
            "analysis": {
                "interval": interval,
                "threshold": 2,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": [
                    {"name": "request-success-rate", "interval": "30s", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "30s", "thresholdRange": {"max": 500}},
                ],
            },
        },
    }


def service(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
    }


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


def rollout(ns: str, image: str, steps: list[dict[str, Any]], replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "template": pod_template(image),
            "strategy": {
                "canary": {
                    "stableService": f"{APP}-stable",
                    "canaryService": f"{APP}-canary",
                    "trafficRouting": rollout_plugin(APP, ns),
                    "steps": steps,
                }
            },
        },
    }


def flagger_objects(ns: str) -> list[dict[str, Any]]:
    return [gateway(ns), deployment(ns, IMAGE_V1), canary(ns)]


def argo_objects(ns: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        gateway(ns),
        service(ns, f"{APP}-stable"),
        service(ns, f"{APP}-canary"),
        argo_route(ns),
        rollout(ns, IMAGE_V1, steps),
    ]


def backend_weights(route: dict[str, Any]) -> dict[str, int]:
    """name -> weight of every backendRef of the route's rules (weight 1 when unset, as Gateway API says)."""
    return {
        ref["name"]: ref.get("weight", 1)
        for rule in route.get("spec", {}).get("rules", [])
        for ref in rule.get("backendRefs", [])
    }
