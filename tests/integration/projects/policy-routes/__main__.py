"""Deliberately bad HTTPRoutes next to a good one, for `pulumi preview --policy-pack policy`.

The Services carry the real program's track labels, which is how the stack policy tells canary from stable.
"""

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from canary.names import track_labels

namespace = pulumi.Config().require("namespace")

for track in ("stable", "canary"):
    labels = track_labels("web", track)
    k8s.core.v1.Service(
        f"web-{track}",
        metadata={"name": f"web-{track}", "namespace": namespace, "labels": labels},
        spec={"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    )

HEADER_RULE = {
    "matches": [
        {"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "x-canary", "value": "true"}]}
    ],
    "backendRefs": [{"name": "web-canary", "port": 80}],
}


def split(stable: int, canary: int) -> dict[str, Any]:
    return {
        "backendRefs": [
            {"name": "web-stable", "port": 80, "weight": stable},
            {"name": "web-canary", "port": 80, "weight": canary},
        ]
    }


def route(name: str, rules: list[dict[str, Any]]) -> None:
    k8s.apiextensions.CustomResource(
        name,
        api_version="gateway.networking.k8s.io/v1",
        kind="HTTPRoute",
        metadata={"name": name, "namespace": namespace},
        spec={"parentRefs": [{"name": "web-gateway"}], "rules": rules},
    )


route("good", [HEADER_RULE, split(75, 25)])
route("all-zero", [HEADER_RULE, split(0, 0)])
route("no-header", [split(90, 10)])
route("full-canary", [HEADER_RULE, split(0, 100)])
