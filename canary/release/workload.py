"""Labels, pod template, Deployment and Service specs for the two tracks (pure).

Each track (stable, canary) is one Deployment and one Service with the same fixed name, `<app>-<track>`:
names are API (the route's backendRefs name the Services, dashboards name the Deployments), so they are
never Pulumi auto-names. A track's labels are built once and reused for the Deployment selector, its pod
template and its Service selector; the two tracks differ in `gateway-canary/track`, so no selector ever
matches the other track's pods.

Nothing here depends on the canary weight: a weight change must touch the HTTPRoute only.

Manifests are plain camelCase dicts, as `kubectl get -o yaml` shows them; empty fields are left out.
"""

from typing import Any

from canary.names import Track, object_name, track_labels
from canary.release.settings import ReleaseSettings

Manifest = dict[str, Any]

SERVICE_PORT = 80
"""Port every Service exposes; the route's backendRefs use it, whatever port the app listens on."""
PORT_NAME = "http"
"""Name of the container port; the Service and the readiness probe target it by name."""

RUN_AS_USER = 65532
"""Non-root UID and GID the pods run as (the conventional "nonroot" user of distroless images)."""

CPU_REQUEST, MEMORY_REQUEST = "50m", "64Mi"
CPU_LIMIT, MEMORY_LIMIT = "500m", "128Mi"

POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
"""Namespace labels that make the apiserver reject pods not meeting Pod Security Standards "restricted"."""


def tracks(args: ReleaseSettings) -> tuple[Track, ...]:
    """The tracks that exist: stable always, canary only while a canary image is set."""
    return ("stable", "canary") if args.has_canary else ("stable",)


def namespace_manifest(name: str) -> Manifest:
    """A Namespace enforcing Pod Security Standards "restricted"."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(POD_SECURITY_LABELS)},
    }


def container_security_context() -> Manifest:
    """Container-level settings PSS "restricted" requires."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_resources() -> Manifest:
    """Requests let the scheduler place pods; limits keep a bad canary from starving stable on a node."""
    return {
        "requests": {"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST},
        "limits": {"cpu": CPU_LIMIT, "memory": MEMORY_LIMIT},
    }


def pod_security_context() -> Manifest:
    """Pod-level settings PSS "restricted" requires (repeated per container, where the check also looks)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_template(labels: dict[str, str], image: str, container_port: int, health_path: str) -> Manifest:
    """Pod template of one track: one container with a readiness probe, requests, limits, restricted PSS.

    The readiness probe is what makes the Deployment Available, and Pulumi waits for Available before the
    route (which depends on the Deployment) moves traffic.
    """
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": pod_security_context(),
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "ports": [{"name": PORT_NAME, "containerPort": container_port, "protocol": "TCP"}],
                    "readinessProbe": {
                        "httpGet": {"path": health_path, "port": PORT_NAME},
                        "periodSeconds": 5,
                        "failureThreshold": 3,
                    },
                    "resources": container_resources(),
                    "securityContext": container_security_context(),
                }
            ],
        },
    }


def deployment_manifest(args: ReleaseSettings, track: Track) -> Manifest:
    """The Deployment of one track.

    Rolling updates surge one pod and never drop below the desired count, so promoting (stable takes the
    canary image) keeps stable's capacity while it rolls.
    """
    labels = track_labels(args.app_name, track)
    if track == "stable":
        image, replicas = args.stable_image, args.stable_replicas
    else:
        assert args.canary_image is not None, "the canary track exists only with a canary image"
        image, replicas = args.canary_image, args.canary_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": object_name(args.app_name, track),
            "namespace": args.namespace,
            "labels": labels,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod_template(labels, image, args.container_port, args.health_path),
        },
    }


def service_manifest(args: ReleaseSettings, track: Track) -> Manifest:
    """The ClusterIP Service of one track, selecting exactly that track's pods."""
    labels = track_labels(args.app_name, track)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": object_name(args.app_name, track),
            "namespace": args.namespace,
            "labels": labels,
        },
        "spec": {
            "selector": labels,
            "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
