"""The cluster reader of the commands timed in milliseconds: canary.ops.kube.kubectl's LiveReader, its routes
and Deployments read over this process's own HTTPS connection (canary.ops.kube.https) instead of a `kubectl`
process each, and kubectl for the kubeconfigs only kubectl understands."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from canary.gateway_api import (
    API_VERSION,
    GATEWAY_CLASS_RESOURCE,
    GATEWAY_RESOURCE,
    ROUTE_PLURALS,
    ROUTE_RESOURCES,
)
from canary.ops.errors import ClusterUnreachable
from canary.ops.kube.https import ApiClient, EarlyConnection, Unsupported
from canary.ops.kube.kubectl import LiveReader

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import Any

    Manifest = dict[str, Any]


def object_path(api_version: str, plural: str, namespace: str | None, name: str) -> str:
    """The REST path of an object (`group/version`, or `v1` for the core API), namespaced unless
    `namespace` is None."""
    prefix = "/apis" if "/" in api_version else "/api"
    scope = "" if namespace is None else f"/namespaces/{namespace}"
    return f"{prefix}/{api_version}{scope}/{plural}/{name}"


RESOURCE_PATHS = {
    **{ROUTE_RESOURCES[kind]: (API_VERSION, plural) for kind, plural in ROUTE_PLURALS.items()},
    "deployment": ("apps/v1", "deployments"),
    GATEWAY_RESOURCE: (API_VERSION, "gateways"),
    GATEWAY_CLASS_RESOURCE: (API_VERSION, "gatewayclasses"),
}
"""The kinds the direct reader serves (LiveReader's kind names -> API group/version and plural)."""
CLUSTER_SCOPED = frozenset({GATEWAY_CLASS_RESOURCE})
"""Of those, the kinds without a namespace."""


class DirectReader(LiveReader):
    """A LiveReader that asks the apiserver over its own HTTPS connection; other kinds go to kubectl."""

    def __init__(self, client: ApiClient, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.client = client

    def get(self, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        if kind not in RESOURCE_PATHS or (namespace is None) != (kind in CLUSTER_SCOPED):
            return super().get(kind, name, namespace)
        try:
            return self.client.get(object_path(*RESOURCE_PATHS[kind], namespace, name))
        except ClusterUnreachable as err:
            raise ClusterUnreachable(
                f"cannot read {kind} {namespace}/{name} from the apiserver ({err}); nothing was changed"
            ) from err


def live_reader(env: Mapping[str, str] | None, timeout: float) -> LiveReader:
    """The fastest reader of the cluster kubectl would talk to in `env` (None: this process's), connecting
    at its first request."""
    environ = dict(os.environ if env is None else env)
    return _direct_or_kubectl(lambda: ApiClient.from_env(environ, timeout), environ, timeout)


def reader_over(connection: EarlyConnection) -> LiveReader:
    """The reader over a connection opened early. What else failed opening it is raised."""
    return _direct_or_kubectl(connection.client, connection.environ, connection.timeout)


def _direct_or_kubectl(
    client: Callable[[], ApiClient], environ: dict[str, str], timeout: float
) -> LiveReader:
    """Direct HTTPS over `client()`, else kubectl (with the same timeout) when the kubeconfig is one only
    kubectl understands (Unsupported)."""
    try:
        return DirectReader(client(), environ)
    except Unsupported:
        return LiveReader(environ, request_timeout=kubectl_timeout(timeout))


def kubectl_timeout(seconds: float) -> str:
    """Seconds as kubectl's --request-timeout (for kubeconfigs the direct client does not support)."""
    return f"{seconds:.0f}s"
