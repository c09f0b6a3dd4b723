"""The app's own pod template (`podTemplate`), and what the component adds to it (pure).

A team moves its Deployment's pod template into the release; both tracks run it. The component adds only:

- the track's labels (the user's labels kept; the track labels win, since selectors depend on them);
- the image of the app container (`appContainer`, default the first container): stableImage on stable and
  canaryImage on canary. A template that sets that image itself is refused (one place sets the version);
- a secure baseline where the user said nothing: the restricted security contexts, requests and limits on
  every container without `resources`, a readiness probe on the app container from healthPath and
  containerPort when it has none (for protocol grpc, the standard gRPC health check on that port), and a port
  named after the protocol (`http`, or `grpc`) when the app container declares none.

`canaryPodTemplate` is merged over the template for the canary only: objects key by key, containers (and
initContainers, volumes, env, ports, volumeMounts) by name, any other list replaced whole.

`restricted_problems` checks the rendered template against Pod Security Standards "restricted" (the level
the component's namespace enforces), so a template the apiserver would refuse is refused before anything is
registered, naming the field.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Manifest = dict[str, Any]

NAMED_LISTS = frozenset({"containers", "initContainers", "volumes", "env", "ports", "volumeMounts"})
"""Lists whose items merge by `name` (their key in Kubernetes' strategic merge); others are replaced."""

PORT_NAME = "http"
"""Name of the port the Services and the default readiness probe target."""


def merge(base: Any, over: Any) -> Any:
    """`over` merged over `base`: mappings key by key, NAMED_LISTS item by item by name, anything else
    replaced. Neither argument is changed."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        merged = {key: copy.deepcopy(value) for key, value in base.items()}
        for key, value in over.items():
            if key in merged and key in NAMED_LISTS and _named(merged[key]) and _named(value):
                merged[key] = _merge_named(merged[key], value)
            else:
                merged[key] = merge(merged.get(key), value) if key in merged else copy.deepcopy(value)
        return merged
    return copy.deepcopy(over)


def _named(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, Mapping) and "name" in i for i in items)


def _merge_named(base: list[Manifest], over: list[Manifest]) -> list[Manifest]:
    merged = [copy.deepcopy(item) for item in base]
    index = {item["name"]: i for i, item in enumerate(merged)}
    for item in over:
        if item["name"] in index:
            merged[index[item["name"]]] = merge(merged[index[item["name"]]], item)
        else:
            merged.append(copy.deepcopy(item))
    return merged


def app_container_index(template: Mapping[str, Any], app_container: str | None) -> int | None:
    """Index of the app container in the template's containers (the first when `app_container` is None);
    None when there is no such container."""
    containers = (template.get("spec") or {}).get("containers") or []
    if app_container is None:
        return 0 if containers else None
    for i, container in enumerate(containers):
        if isinstance(container, Mapping) and container.get("name") == app_container:
            return i
    return None


def with_baseline(
    template: Mapping[str, Any],
    *,
    labels: Mapping[str, str],
    image: str,
    app_container: str | None,
    container_port: int,
    health_path: str,
    pod_security: Manifest,
    container_security: Manifest,
    resources: Manifest,
    protocol: str = "http",
) -> Manifest:
    """The user's template as one track runs it: the track's labels and image, and the baseline where the
    user said nothing (module docstring). Validation (validate.py) has made sure the app container exists."""
    rendered: Manifest = copy.deepcopy(dict(template))
    metadata = rendered.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    spec = rendered.setdefault("spec", {})
    if "automountServiceAccountToken" not in spec and not spec.get("serviceAccountName"):
        spec["automountServiceAccountToken"] = False
    spec["securityContext"] = {**pod_security, **(spec.get("securityContext") or {})}
    index = app_container_index(rendered, app_container)
    assert index is not None, "validate.py refuses a template without its app container"
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            container["securityContext"] = {**container_security, **(container.get("securityContext") or {})}
            container.setdefault("resources", copy.deepcopy(resources))
    app = spec["containers"][index]
    app["image"] = image
    if not app.get("ports"):
        app["ports"] = [{"name": port_name(protocol), "containerPort": container_port, "protocol": "TCP"}]
    if "readinessProbe" not in app:
        check: Manifest = (
            {"grpc": {"port": serving_port_number(app, protocol)}}
            if protocol == "grpc"
            else {"httpGet": {"path": health_path, "port": serving_port(app, protocol)}}
        )
        app["readinessProbe"] = {**check, "periodSeconds": 5, "failureThreshold": 3}
    return rendered


def port_name(protocol: str) -> str:
    """The app port's name the baseline gives and the Services look for: `http`, or `grpc` (the
    Kubernetes convention, which the test bed also reads to serve gRPC there)."""
    return "grpc" if protocol == "grpc" else PORT_NAME


def serving_port(app: Mapping[str, Any], protocol: str = "http") -> str | int:
    """The app container's port the Service targets: the one named after the protocol (`http`, `grpc`),
    else its first port (by name when it has one)."""
    ports = list(app.get("ports") or [])
    for port in ports:
        if port.get("name") == port_name(protocol):
            return port_name(protocol)
    first = ports[0]
    return str(first["name"]) if first.get("name") else int(first["containerPort"])


def serving_port_number(app: Mapping[str, Any], protocol: str) -> int:
    """The number of serving_port (a gRPC probe takes a number, never a port's name)."""
    wanted = serving_port(app, protocol)
    for port in app.get("ports") or []:
        if wanted in (port.get("name"), port.get("containerPort")):
            return int(port["containerPort"])
    raise AssertionError("serving_port names one of the container's ports")


# --- Pod Security Standards "restricted" -------------------------------------------------------------------

ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
"""Volume types "restricted" admits (Pod Security Standards, Restricted: Volume Types)."""
ALLOWED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def restricted_problems(template: Mapping[str, Any], where: str) -> list[str]:
    """What in a rendered pod template Pod Security "restricted" refuses, each naming its field under
    `where` (the config key the template came from); empty when it would be admitted."""
    return _Restricted(where).pod(template.get("spec") or {})


class _Restricted:
    """The checks of Pod Security Standards "restricted" (and "baseline", which it includes) that a pod
    template can fail, collecting one problem per field."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[str] = []

    def refuse(self, path: str, value: Any, rule: str) -> None:
        self.problems.append(
            f'{self.where}.spec.{path}: {value!r} is not allowed under Pod Security "restricted": {rule}'
        )

    def pod(self, spec: Mapping[str, Any]) -> list[str]:
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                self.refuse(key, spec[key], "host namespaces must not be shared")
        for i, volume in enumerate(spec.get("volumes") or []):
            for kind in (key for key in volume if key != "name"):
                if kind not in ALLOWED_VOLUME_TYPES:
                    self.refuse(
                        f"volumes[{i}].{kind}",
                        volume[kind],
                        f"one of {', '.join(sorted(ALLOWED_VOLUME_TYPES))}",
                    )
        context = spec.get("securityContext") or {}
        if context.get("runAsNonRoot") is False:
            self.refuse("securityContext.runAsNonRoot", False, "pods must run as non-root")
        if context.get("runAsUser") == 0:
            self.refuse("securityContext.runAsUser", 0, "pods must not run as UID 0")
        if (context.get("seccompProfile") or {}).get("type") not in SECCOMP_TYPES:
            self.refuse(
                "securityContext.seccompProfile", context.get("seccompProfile"), "RuntimeDefault or Localhost"
            )
        if context.get("sysctls"):
            self.refuse("securityContext.sysctls", context["sysctls"], "no sysctls")
        for kind in ("initContainers", "containers", "ephemeralContainers"):
            for i, container in enumerate(spec.get(kind) or []):
                self.container(container, f"{kind}[{i}]", context)
        return self.problems

    def container(self, container: Mapping[str, Any], path: str, pod_context: Mapping[str, Any]) -> None:
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            self.refuse(f"{path}.securityContext.privileged", True, "no privileged containers")
        if context.get("allowPrivilegeEscalation") is not False:
            self.refuse(
                f"{path}.securityContext.allowPrivilegeEscalation",
                context.get("allowPrivilegeEscalation"),
                "must be false",
            )
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            self.refuse(
                f"{path}.securityContext.capabilities.drop", capabilities.get("drop"), "must include ALL"
            )
        added = set(capabilities.get("add") or []) - ALLOWED_CAPABILITIES
        if added:
            self.refuse(f"{path}.securityContext.capabilities.add", sorted(added), "only NET_BIND_SERVICE")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            self.refuse(
                f"{path}.securityContext.runAsNonRoot", non_root, "must be true (here or for the whole pod)"
            )
        if context.get("runAsUser") == 0:
            self.refuse(f"{path}.securityContext.runAsUser", 0, "containers must not run as UID 0")
        seccomp = context.get("seccompProfile")
        if seccomp is not None and seccomp.get("type") not in SECCOMP_TYPES:
            self.refuse(f"{path}.securityContext.seccompProfile", seccomp, "RuntimeDefault or Localhost")
        for j, port in enumerate(container.get("ports") or []):
            if port.get("hostPort"):
                self.refuse(f"{path}.ports[{j}].hostPort", port["hostPort"], "no host ports")
