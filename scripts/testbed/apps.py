"""One podinfo process per Ready pod: what it reports and which test hooks it carries, from the pod's image.

- `/version` answers the image reference's tag (`ghcr.io/stefanprodan/podinfo:6.7.0` -> "6.7.0"; a digest
  reference reports its digest, a reference without either "latest"). Every image runs the same app: the pods
  are fake, the image is only a label for the version.
- An image reference containing `faulty` runs podinfo with `--random-error` (about one response in three
  fails, with 500, 400 or 409, each request on its own: podinfo's per-request reseed is a no-op in
  Go >= 1.24).
- One containing `slow` runs it with `--random-delay`, here 100-500 ms per request.
- (`never-ready` is a kwok Stage hook, `stages`: such pods never run, so no process runs.)

A container port named `grpc` (exactly: the Kubernetes naming convention for a gRPC port, no appProtocol on
a container port) runs podinfo's gRPC server on it (`--grpc-port`: podinfo's VersionService answers the
same version, with reflection and the standard health service, service name `podinfo`); that process's
HTTP server goes to the first port from GRPC_HTTP_PORTS up that no container of the pod declares (outside
the metrics ports, which podinfo binds on every address). Our podinfo build binds gRPC on the pod's IP
(tools/podinfo/overlay/grpc_server.go; upstream binds every address). The `faulty` and `slow` hooks do not
reach gRPC calls: podinfo's gRPC server has no random error or delay.

A release pod (`gated`) turns Ready only once its processes listen and its containers' own readiness probes
pass (`readiness_checks`: httpGet, tcpSocket and grpc, asked of the pod's podinfo as a kubelet would): the
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
GRPC_PORT_NAME = "grpc"
GRPC_HTTP_PORTS = range(40000, 41000)
"""Where a gRPC port's podinfo serves HTTP: the first of these the pod does not declare (podinfo always
serves HTTP; it must not take a port of the pod's, nor one of the supervisor's metrics ports, 20000-29999)."""


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
    http_port: int | None = None
    """For a gRPC port (`port` is podinfo's --grpc-port): the port its HTTP server takes; None otherwise."""

    @property
    def grpc(self) -> bool:
        return self.http_port is not None

    @property
    def version(self) -> str:
        return image_version(self.image)

    @property
    def hooks(self) -> tuple[str, ...]:
        return tuple(h for h in (FAULTY, SLOW) if h in self.image)

    def command(self, podinfo: str, metrics_port: int) -> list[str]:
        if self.http_port is None:
            cmd = [podinfo, "--host", self.ip, "--port", str(self.port)]
        else:
            cmd = [podinfo, "--host", self.ip, "--port", str(self.http_port), "--grpc-port", str(self.port)]
        cmd += ["--port-metrics", str(metrics_port)]
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
    """One App per declared TCP container port of a running release pod (`gated`), Ready or not yet; a port
    named `grpc` gets a gRPC server, its HTTP server on a free port of GRPC_HTTP_PORTS."""
    if not gated(pod) or not running(pod):
        return []
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod["status"]
    labels = meta.get("labels") or {}
    containers = spec.get("containers") or []
    declared = {int(p["containerPort"]) for c in containers for p in c.get("ports") or []}
    spare = (p for p in GRPC_HTTP_PORTS if p not in declared)
    apps = []
    for container in containers:
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
                        next(spare) if port.get("name") == GRPC_PORT_NAME else None,
                    )
                )
    return apps


@dataclass(frozen=True)
class ReadinessCheck:
    """One container's readinessProbe as the bed asks it, on a port of the pod: an HTTP GET (2xx or 3xx
    passes), a TCP connect, or a gRPC health check (grpc.health.v1 Check of `service`; SERVING passes)."""

    port: int
    path: str | None = None
    """The httpGet path; None for a tcpSocket or grpc probe."""
    grpc_service: str | None = None
    """The grpc probe's service ("" when the probe names none: the server as a whole); None otherwise."""


def readiness_checks(pod: dict[str, Any]) -> list[ReadinessCheck]:
    """The httpGet, tcpSocket and grpc readiness probes of a pod's containers, their ports resolved (a name
    to the container's port of that name; a grpc probe's port is a number in the API); exec probes are not
    asked (nothing here can run them)."""
    checks = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        probe = container.get("readinessProbe") or {}
        action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
        if not action:
            continue
        port = action.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = [p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port]
            if not named:
                continue  # a kubelet would fail it; kwok's readiness stays the LISTENING gate's
            port = named[0]
        if "httpGet" in probe:
            checks.append(ReadinessCheck(int(port), path=str(probe["httpGet"].get("path") or "/")))
        elif "tcpSocket" in probe:
            checks.append(ReadinessCheck(int(port)))
        else:
            checks.append(ReadinessCheck(int(port), grpc_service=str(probe["grpc"].get("service") or "")))
    return checks
