"""Reads of `pulumi stack export`'s `deployment` section that the fast path and the stack's status share
(pure, and light enough for the fast path's start-up: no import beyond the standard library)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

STACK_TYPE = "pulumi:pulumi:Stack"
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"


def stack_outputs(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The stack's outputs (those of its root Stack resource)."""
    for resource in resources:
        if resource.get("type") == STACK_TYPE and "parent" not in resource:
            return dict(resource.get("outputs") or {})
    return {}


def deployments_beside(resources: list[dict[str, Any]], route: Mapping[str, Any]) -> tuple[str, ...]:
    """URNs of the Deployments of the route's release (the same parent: the CanaryRelease component), the
    ones whose pod count a weight change may move (canary.release.capacity)."""
    return tuple(
        str(resource["urn"])
        for resource in resources
        if resource.get("type") == DEPLOYMENT_TYPE
        and resource.get("parent") == route.get("parent")
        and not resource.get("delete")
    )
