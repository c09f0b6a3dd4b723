"""Read the live rollout state from the apiserver: the HTTPRoute's split, and the Deployments' readiness.

`route_state` is pure (a live HTTPRoute dict in, a RouteState out) so it is unit tested without a cluster;
`LiveReader` fetches the objects with `kubectl` (whatever KUBECONFIG points at), which keeps the package
free of a second Kubernetes client next to the Pulumi provider.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from canary.weights import canary_percent
from canary.workload import object_name

Manifest = dict[str, Any]


@dataclass(frozen=True)
class RouteState:
    """What a live HTTPRoute does with traffic.

    stable_weight / canary_weight are the raw Gateway API weights of the split rule (canary None when the
    route has a single backend); canary_percent is the share they give the canary.
    """

    stable_weight: int
    canary_weight: int | None
    header_rule: tuple[str, str] | None
    mirror_percent: Decimal
    resource_version: str
    generation: int

    @property
    def canary_percent(self) -> Decimal:
        if self.canary_weight is None:
            return Decimal(0)
        return canary_percent(self.stable_weight, self.canary_weight)

    @property
    def stable_percent(self) -> Decimal:
        return Decimal(100) - self.canary_percent


def _weight(ref: Manifest) -> int:
    # Gateway API defaults an omitted weight to 1.
    return int(ref.get("weight", 1))


def route_state(route: Manifest, app_name: str) -> RouteState:
    """Interpret a live HTTPRoute rendered by this program (or edited by hand) for `app_name`.

    The split rule is the rule with no header matches; the header rule is a rule whose matches carry a
    header and whose only backend is the canary Service.
    """
    stable_name, canary_name = object_name(app_name, "stable"), object_name(app_name, "canary")
    stable_weight, canary_weight = 0, None
    header: tuple[str, str] | None = None
    mirror = Decimal(0)
    for rule in route.get("spec", {}).get("rules", []):
        matches = rule.get("matches", [])
        refs = {ref["name"]: ref for ref in rule.get("backendRefs", [])}
        headers = [h for m in matches for h in m.get("headers", [])]
        if headers:
            if list(refs) == [canary_name]:
                header = (headers[0]["name"], headers[0]["value"])
            continue
        if stable_name in refs:
            stable_weight = _weight(refs[stable_name])
        if canary_name in refs:
            canary_weight = _weight(refs[canary_name])
        for f in rule.get("filters", []):
            if f.get("type") == "RequestMirror":
                spec = f["requestMirror"]
                if "percent" in spec:
                    mirror = Decimal(spec["percent"])
                elif "fraction" in spec:
                    frac = spec["fraction"]
                    mirror = Decimal(frac["numerator"]) * 100 / Decimal(frac.get("denominator", 100))
                else:
                    mirror = Decimal(100)
    meta = route.get("metadata", {})
    return RouteState(
        stable_weight=stable_weight,
        canary_weight=canary_weight,
        header_rule=header,
        mirror_percent=mirror,
        resource_version=str(meta.get("resourceVersion", "")),
        generation=int(meta.get("generation", 0)),
    )


def json_stream(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Objects from concatenated, pretty-printed JSON documents (`kubectl get --watch -o json`)."""
    decoder = json.JSONDecoder()
    buffer = ""
    for line in lines:
        buffer += line
        while buffer.strip():
            try:
                obj, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break
            buffer = buffer.lstrip()[end:]
            if isinstance(obj, dict):
                yield obj


class LiveReader:
    """Fetches live objects with kubectl. `env` is the environment kubectl runs in (KUBECONFIG, PATH)."""

    def __init__(self, env: dict[str, str] | None = None, kubectl: str = "kubectl") -> None:
        self._env = env
        self._kubectl = kubectl

    def get(self, kind: str, name: str, namespace: str) -> Manifest | None:
        """The live object, or None when it does not exist."""
        proc = subprocess.run(
            [self._kubectl, "get", kind, name, "-n", namespace, "-o", "json"],
            capture_output=True,
            text=True,
            env=self._env,
            check=False,
        )
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise RuntimeError(f"kubectl get {kind} {name} -n {namespace} failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def route(self, app_name: str, namespace: str, route_name: str | None = None) -> RouteState | None:
        route = self.get("httproute.gateway.networking.k8s.io", route_name or app_name, namespace)
        return None if route is None else route_state(route, app_name)
