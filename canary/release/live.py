"""What the program reads from the cluster while it runs (previews included): the canary weight the live
route carries now, so that the release can order its pod count changes around the route
(canary.release.capacity), and the features its GatewayClasses list (canary.release.features).

Read with `kubectl get` against the cluster the default Kubernetes provider uses: KUBECONFIG (or
~/.kube/config), with the stack's `kubernetes:kubeconfig` and `kubernetes:context` when set. The live route
is the truth a rollback leaves behind (the fast rollback writes it before Pulumi runs), and reading it needs
no state of the stack's own: a StackReference to the stack itself was tried first and failed now and then
with "failed to load checkpoint: EOF" on the file backend, reading the checkpoint the running update was
writing. A read that fails (no kubectl, no route yet, no cluster) is "unknown": every Deployment then comes
before the route, as in a first deploy, and the reason is logged.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from canary.gateway_api import GATEWAY_CLASS_RESOURCE, ROUTE_RESOURCE
from canary.release.features import supported_features
from canary.release.settings import ReleaseSettings
from canary.route_state import route_state

READ_TIMEOUT = 20.0
"""Seconds the read may take before the weight counts as unknown."""

Warn = Callable[[str], None]


def provider_args(kubeconfig: str | None, context: str | None) -> tuple[list[str], str | None]:
    """kubectl's arguments for the default provider's cluster, and a temporary kubeconfig file to remove
    afterwards (when `kubernetes:kubeconfig` holds the kubeconfig's text rather than a path)."""
    args: list[str] = []
    written = None
    if kubeconfig:
        if os.path.exists(os.path.expanduser(kubeconfig)):
            args += ["--kubeconfig", os.path.expanduser(kubeconfig)]
        else:
            handle, written = tempfile.mkstemp(prefix="gateway-canary-kubeconfig-")
            with os.fdopen(handle, "w") as out:
                out.write(kubeconfig)
            args += ["--kubeconfig", written]
    if context:
        args += ["--context", context]
    return args, written


def live_canary_percent(
    app_name: str,
    namespace: str,
    route_name: str,
    kubectl_args: Sequence[str],
    warn: Warn,
    resource: str = ROUTE_RESOURCE,
) -> Decimal | None:
    """The live route's canary percent, or None when it cannot be read (said through `warn`, except for a
    route that does not exist yet: a first deploy). `resource`: the route's kind for kubectl (an HTTPRoute,
    or a GRPCRoute's canary.gateway_api.ROUTE_RESOURCES entry)."""
    argv = ["kubectl", *kubectl_args, "get", resource, route_name, "-n", namespace, "-o", "json"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=READ_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        warn(f"cannot read the live route {namespace}/{route_name} ({err}): pods are scaled before the route")
        return None
    if proc.returncode != 0:
        if "NotFound" not in proc.stderr:
            warn(
                f"cannot read the live route {namespace}/{route_name} ({proc.stderr.strip()}): pods are "
                "scaled before the route"
            )
        return None
    return route_state(json.loads(proc.stdout), app_name).canary_percent


def gateway_classes(
    settings: ReleaseSettings, kubectl_args: Sequence[str], warn: Warn
) -> dict[str, frozenset[str] | None] | None:
    """The GatewayClass of each Gateway the route attaches to, with the features it lists
    (canary.release.features.supported_features; None when it lists none or does not exist), read from the
    cluster: the owned Gateway's class is gatewayClassName, another Gateway's is its spec.gatewayClassName.
    None when the cluster cannot be read (said through `warn`): the check is then skipped."""
    names: list[str] = []
    for index, parent in enumerate(settings.parents):
        if index == 0 and settings.create_gateway:
            names.append(settings.gateway_class_name)
            continue
        gateway = _get(
            kubectl_args, ["gateway.gateway.networking.k8s.io", parent.name, "-n", parent.namespace]
        )
        if isinstance(gateway, str):
            warn(
                f"cannot read Gateway {parent.namespace}/{parent.name} ({gateway}): its class's features are "
                "not checked"
            )
            continue
        if gateway is not None:
            names.append(str(gateway["spec"]["gatewayClassName"]))
    listed = _get(kubectl_args, [GATEWAY_CLASS_RESOURCE])
    if isinstance(listed, str) or listed is None:
        warn(
            f"cannot read the GatewayClasses ({listed or 'none served'}): the gateway's features are not "
            "checked"
        )
        return None
    by_name = {str(item["metadata"]["name"]): item for item in listed.get("items", [])}
    return {name: supported_features(by_name.get(name, {})) for name in dict.fromkeys(names)}


def _get(kubectl_args: Sequence[str], what: list[str]) -> dict[str, Any] | str | None:
    """`kubectl get <what> -o json`: the object, None when it does not exist, or the error text."""
    argv = ["kubectl", *kubectl_args, "get", *what, "-o", "json"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=READ_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    if proc.returncode != 0:
        return None if "NotFound" in proc.stderr else proc.stderr.strip()
    found: dict[str, Any] = json.loads(proc.stdout)
    return found
