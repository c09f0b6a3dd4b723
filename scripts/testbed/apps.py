"""One podinfo process per Ready pod: what it reports and which test hooks it carries, from the pod's image.

- `/version` answers the image reference's tag (`ghcr.io/stefanprodan/podinfo:6.7.0` -> "6.7.0"; a digest
  reference reports its digest, a reference without either "latest"). Every image runs the same app: the pods
  are fake, the image is only a label for the version.
- An image reference containing `faulty` runs podinfo with `--random-error` (about one response in three
  fails, with 500, 400 or 409, each request on its own: podinfo's per-request reseed is a no-op in
  Go >= 1.24).
- One containing `slow` runs it with `--random-delay`, here 100-500 ms per request.
- (`never-ready` is a kwok Stage hook, `stages`: such pods never run, so no process runs.)

A release pod (`gated`) turns Ready only once its processes listen and its containers' own readiness probes
pass (`readiness_checks`: httpGet and tcpSocket, asked of the pod's podinfo as a kubelet would): the
supervisor then sets the annotation `LISTENING`, which kwok's `pod-listening` Stage waits for (`stages`). A
pod that was Ready stays Ready (kwok has no Stage back); a failing probe keeps a new pod from ever turning
Ready, which is what holds a rollout, and the route, back.

Metrics (`/metrics`, `http_request_duration_seconds`) are served on a port of their own per pod (podinfo binds
its metrics port on every address of the namespace, so each pod gets a distinct one; see `state.json`), where
the injected errors and delays do not reach them. The bed's Prometheus scrapes them (`prometheus`), labelled
with the pod's release labels (`app`, `track`: canary/names.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canary.names import NAME_LABEL, TRACK_LABEL

EG_NAMESPACE = "envoy-gateway-system"
SYSTEM_NAMESPACES = frozenset({EG_NAMESPACE, "kube-system", "kube-public", "kube-node-lease"})
"""Namespaces whose pods are no release's: no podinfo, and kwok's own pod-ready Stage."""
LISTENING = "testbed.gateway-canary/listening"
"""The pod annotation the supervisor sets to "true" once every podinfo of the pod accepts connections."""
LATE_READY = "late-ready"
LATE_SECONDS = 15
"""A pod whose image reference contains LATE_READY turns Ready this long after it could (`stages`)."""
FAULTY = "faulty"
SLOW = "slow"
SLOW_FLAGS = (
    "--random-delay",
    "--random-delay-unit",
    "ms",
    "--random-delay-min",
    "100",
    "--random-delay-max",
    "500",
)


def image_version(image: str) -> str:
    """The tag of a Docker image reference (the registry's own `host:port` is not a tag)."""
    if "@" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


@dataclass(frozen=True)
class App:
    """What one pod's podinfo process is: where it answers, what it reports, and its hooks."""

    namespace: str
    pod: str
    ip: str
    port: int
    image: str
    app: str = ""
    """The pod's app.kubernetes.io/name label (empty when it has none)."""
    track: str = ""
    """The pod's gateway-canary/track label: stable or canary (empty when it has none)."""

    @property
    def version(self) -> str:
        return image_version(self.image)

    @property
    def hooks(self) -> tuple[str, ...]:
        return tuple(h for h in (FAULTY, SLOW) if h in self.image)

    def command(self, podinfo: str, metrics_port: int) -> list[str]:
        cmd = [podinfo, "--host", self.ip, "--port", str(self.port), "--port-metrics", str(metrics_port)]
        cmd += ["--level", "warn"]
        if FAULTY in self.hooks:
            cmd.append("--random-error")
        if SLOW in self.hooks:
            cmd += SLOW_FLAGS
        return cmd

    def env(self) -> dict[str, str]:
        """PODINFO_VERSION is read by our build of podinfo (tools/podinfo/overlay/version_env.go)."""
        return {"PODINFO_VERSION": self.version}


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}


def gated(pod: dict[str, Any]) -> bool:
    """A release pod: a ReplicaSet's (a Deployment's), outside the system namespaces. It runs podinfo, and
    is Ready only once that listens (kwok Stages `pod-started` and `pod-listening`, in `stages`)."""
    meta = pod.get("metadata") or {}
    return meta.get("namespace") not in SYSTEM_NAMESPACES and any(
        o.get("kind") == "ReplicaSet" for o in meta.get("ownerReferences") or []
    )


def late(pod: dict[str, Any]) -> bool:
    return any(LATE_READY in c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or [])


def running(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


def ready(pod: dict[str, Any]) -> bool:
    return conditions(pod).get("Ready") == "True" and running(pod)


def apps_of(pod: dict[str, Any]) -> list[App]:
    """One App per declared TCP container port of a running release pod (`gated`), Ready or not yet."""
    if not gated(pod) or not running(pod):
        return []
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod["status"]
    labels = meta.get("labels") or {}
    apps = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("protocol", "TCP") == "TCP":
                apps.append(
                    App(
                        meta["namespace"],
                        meta["name"],
                        status["podIP"],
                        int(port["containerPort"]),
                        container["image"],
                        labels.get(NAME_LABEL, ""),
                        labels.get(TRACK_LABEL, ""),
                    )
                )
    return apps


@dataclass(frozen=True)
class ReadinessCheck:
    """One container's readinessProbe as the bed asks it: an HTTP GET (2xx or 3xx passes) or a TCP
    connect, on a port of the pod."""

    port: int
    path: str | None
    """The httpGet path; None for a tcpSocket probe."""


def readiness_checks(pod: dict[str, Any]) -> list[ReadinessCheck]:
    """The httpGet and tcpSocket readiness probes of a pod's containers, their ports resolved (a name to the
    container's port of that name); exec and gRPC probes are not asked (nothing here can run them)."""
    checks = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        probe = container.get("readinessProbe") or {}
        action = probe.get("httpGet") or probe.get("tcpSocket")
        if not action:
            continue
        port = action.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = [p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port]
            if not named:
                continue  # a kubelet would fail it; kwok's readiness stays the LISTENING gate's
            port = named[0]
        path = str(probe["httpGet"].get("path") or "/") if "httpGet" in probe else None
        checks.append(ReadinessCheck(int(port), path))
    return checks
