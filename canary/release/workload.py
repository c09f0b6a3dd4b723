"""Labels, pod template, Deployment and Service specs for the two tracks (pure).

Each track (stable, canary) is one Deployment and one Service with the same fixed name, `<app>-<track>`:
names are API (the route's backendRefs name the Services, dashboards name the Deployments), so they are
never Pulumi auto-names. A track's labels are built once and reused for the Deployment selector, its pod
template and its Service selector; the two tracks differ in `gateway-canary/track`, so no selector ever
matches the other track's pods.

Nothing here depends on the canary weight: a weight change must touch the HTTPRoute only.

Manifests are plain camelCase dicts, as `kubectl get -o yaml` shows them; empty fields are left out.
"""

from collections.abc import Mapping
from typing import Any

from canary.names import Track, object_name, track_labels
from canary.release import capacity
from canary.release.pod_template import app_container_index, merge, port_name, serving_port, with_baseline
from canary.release.settings import ReleaseSettings

Manifest = dict[str, Any]

SERVICE_PORT = 80
"""Port every Service exposes; the route's backendRefs use it, whatever port the app listens on."""

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


BUILT_IN_CONTAINER = "app"
"""The one container of the built-in template (podTemplate {}): the release's images, containerPort and
healthPath, and the baseline below. Rendered through the same path as a user's template."""


def base_template(pod_template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The template both tracks start from: the app's own (podTemplate), else the built-in one container."""
    return pod_template or {"spec": {"containers": [{"name": BUILT_IN_CONTAINER}]}}


def with_release_baseline(
    template: Mapping[str, Any],
    *,
    labels: Mapping[str, str],
    image: str,
    app_container: str | None,
    container_port: int,
    health_path: str,
    protocol: str,
) -> Manifest:
    """canary.release.pod_template.with_baseline with this module's baseline (security contexts, resources):
    the one rendering the component registers and validation checks."""
    return with_baseline(
        template,
        labels=labels,
        image=image,
        app_container=app_container,
        container_port=container_port,
        health_path=health_path,
        protocol=protocol,
        pod_security=pod_security_context(),
        container_security=container_security_context(),
        resources=container_resources(),
    )


def pod_template(args: ReleaseSettings, track: Track) -> Manifest:
    """Pod template of one track: the app's own template (podTemplate, with canaryPodTemplate merged over it
    for the canary) or the built-in one-container template, with the track's labels and image and the
    baseline where the template says nothing (canary.release.pod_template): restricted PSS, requests and
    limits, a readiness probe.

    The readiness probe is what makes the Deployment Available, and Pulumi waits for Available before the
    route (which depends on the Deployment) moves traffic.
    """
    base = base_template(args.pod_template)
    if track == "canary":
        assert args.canary_image is not None, "the canary track exists only with a canary image"
        template, image = merge(base, args.canary_pod_template or {}), args.canary_image
    else:
        template, image = base, args.stable_image
    return with_release_baseline(
        template,
        labels=track_labels(args.app_name, track),
        image=image,
        app_container=args.app_container,
        container_port=args.container_port,
        health_path=args.health_path,
        protocol=args.protocol,
    )


def app_port(args: ReleaseSettings) -> str | int:
    """The port the Services target: the app container's serving port (canary.release.pod_template), the
    same on both tracks."""
    template = pod_template(args, "stable")
    index = app_container_index(template, args.app_container)
    assert index is not None, "validate.py refuses a template without its app container"
    return serving_port(template["spec"]["containers"][index], args.protocol)


def deployment_manifest(args: ReleaseSettings, track: Track) -> Manifest:
    """The Deployment of one track, running the pods its share of traffic needs (canary.release.capacity).

    Rolling updates surge one pod and never drop below the desired count, so promoting (stable takes the
    canary image) keeps stable's capacity while it rolls.
    """
    labels = track_labels(args.app_name, track)
    spec: Manifest = {
        "replicas": capacity.replicas(args, track),
        "selector": {"matchLabels": labels},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": pod_template(args, track),
    }
    if args.autoscaling is not None:
        # The autoscaler owns spec.replicas: a manifest that set it would make every `pulumi up` write it
        # back over the autoscaler's (or `kubectl scale`'s) count, or fail on the server-side apply conflict
        # (pulumi-kubernetes#2491). Left out, the field is never Pulumi's.
        del spec["replicas"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": object_name(args.app_name, track),
            "namespace": args.namespace,
            "labels": labels,
        },
        "spec": spec,
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
            "ports": [service_port(args)],
        },
    }


def service_port(args: ReleaseSettings) -> Manifest:
    """The Service's one port, 80, to the app's serving port; for gRPC named `grpc` with appProtocol
    kubernetes.io/h2c (HTTP/2 without TLS), the standard way to tell a gateway to speak HTTP/2 upstream."""
    port: Manifest = {
        "name": port_name(args.protocol),
        "port": SERVICE_PORT,
        "targetPort": app_port(args),
        "protocol": "TCP",
    }
    if args.protocol == "grpc":
        port["appProtocol"] = "kubernetes.io/h2c"
    return port


def autoscaler_manifest(args: ReleaseSettings, track: Track) -> Manifest:
    """The HorizontalPodAutoscaler (autoscaling/v2) of one track's Deployment, named like it."""
    assert args.autoscaling is not None, "autoscalers exist only with autoscaling"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": object_name(args.app_name, track),
            "namespace": args.namespace,
            "labels": track_labels(args.app_name, track),
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": object_name(args.app_name, track),
            },
            "minReplicas": args.autoscaling.min_replicas,
            "maxReplicas": args.autoscaling.max_replicas,
            "metrics": [dict(metric) for metric in args.autoscaling.metrics],
        },
    }


def disruption_budget_manifest(args: ReleaseSettings, track: Track) -> Manifest:
    """The PodDisruptionBudget (policy/v1) of one track's pods: a drain cannot take all of them at once."""
    assert args.pod_disruption_budget is not None, "budgets exist only with podDisruptionBudget"
    labels = track_labels(args.app_name, track)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": object_name(args.app_name, track),
            "namespace": args.namespace,
            "labels": labels,
        },
        "spec": {**args.pod_disruption_budget, "selector": {"matchLabels": labels}},
    }
