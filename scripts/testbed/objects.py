"""Hand-written workload objects for the bed, outside any release of ours: a Deployment whose pods the bed
runs as real podinfo processes (apps.py: the image reference decides the version and the test hooks), and a
Service selecting them. One builder for the tests' hand-written bed objects (tests/integration/harness.py:
the gRPC and Traefik bed tests) and the peers bench (bench/peers/manifests.py: what Flagger and Argo Rollouts
are given)."""

from __future__ import annotations

from typing import Any


def _meta(name: str, namespace: str | None, **fields: Any) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {}), **fields}


def pod_template(
    app: str, image: str, container: dict[str, Any], container_name: str = "app"
) -> dict[str, Any]:
    """Pods labelled app=`app`, one container `container_name` running `image` plus the `container` fields
    given (ports, readinessProbe, securityContext...)."""
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": container_name, "image": image, **container}]},
    }


def deployment(
    name: str,
    image: str,
    replicas: int,
    container: dict[str, Any],
    *,
    namespace: str | None = None,
    container_name: str = "app",
) -> dict[str, Any]:
    """A Deployment `name` (label and selector app=<name>) of `pod_template`'s pods."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, labels=labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(name, image, container, container_name),
        },
    }


def service(
    name: str, port: dict[str, Any], *, app: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """A Service `name` with its one `port`, selecting the pods labelled app=`app` (default: `name`)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace),
        "spec": {"selector": {"app": app or name}, "ports": [port]},
    }
