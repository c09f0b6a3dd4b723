"""The canary weight the live route carries now, read from the cluster while the program runs (previews
included), so that the release can order its pod count changes around the route (canary.release.capacity).

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

from canary.gateway_api import ROUTE_RESOURCE
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
