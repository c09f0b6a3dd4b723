"""`pulumi up` waits for the gateway's verdict on the route; a refusal fails it (Envoy Gateway, real status).

A shared Gateway of class `eg` in its own namespace stands for a platform team's Gateway. Its listener decides
whether routes from other namespaces may attach (allowedRoutes): with `Same`, Envoy Gateway refuses our route
with Accepted=False, NotAllowedByListeners. Nothing here or in the program writes status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.gateway_api import GATEWAY_RESOURCE, ROUTE_RESOURCE
from canary.route_state import refusal_of
from tests.integration.harness import (
    Kube,
    PulumiStack,
    canary,
    release_stack,
    shared_gateway,
    unique,
    wait_for,
)
from tests.integration.test_traffic_bed import bed  # noqa: F401  (the data plane is up, or a loud skip)

APP = "web"
V1 = "ghcr.io/stefanprodan/podinfo:6.7.0"
V2 = "ghcr.io/stefanprodan/podinfo:6.7.1"


@pytest.fixture
def attached(bed: dict[str, str], kube: Kube, tmp_path: Path) -> Iterator[tuple[PulumiStack, str]]:  # noqa: F811
    """A release in its own namespace whose route attaches to `shared` in another one."""
    shared_ns = unique("gc-shared")
    kube.run("create", "namespace", shared_ns).check()
    stack = release_stack(
        bed,
        tmp_path,
        "verdict",
        {
            "appName": APP,
            "stableImage": V1,
            "canaryImage": V2,
            "stableReplicas": "1",
            "gatewayClassName": "eg",
            "createGateway": "false",
            "gatewayName": "shared",
            "gatewayNamespace": shared_ns,
            "rolloutTimeout": "30",
        },
    )
    try:
        yield stack, shared_ns
    finally:
        stack.destroy()
        kube.run("delete", "namespace", shared_ns, "--wait=false")


def test_an_accepted_route_is_waited_for_and_a_refused_one_fails_the_update(
    attached: tuple[PulumiStack, str], kube: Kube
) -> None:
    stack, shared_ns = attached
    ns = str(stack.pulumi("config", "get", "namespace").check().stdout.strip())
    shared_gateway(kube, shared_ns, "Same")

    started = time.monotonic()
    refused = stack.up(message="attach to a gateway that allows only its own namespace")
    took = time.monotonic() - started
    print(f"\nrefused route: pulumi up failed after {took:.1f}s (rolloutTimeout 30)")
    assert refused.code != 0, refused.output
    assert 'found "NotAllowedByListeners"' in refused.output, refused.output
    route = kube.get(ROUTE_RESOURCE, APP, ns)
    assert route is not None
    why = refusal_of(route)
    assert why is not None and why.startswith("Accepted=False, NotAllowedByListeners"), route.get("status")
    assert stack.history()[0]["result"] == "failed"

    shared_gateway(kube, shared_ns, "All")
    wait_for(
        lambda: refusal_of(kube.get(ROUTE_RESOURCE, APP, ns) or {}) is None, 60, "EG to accept the route"
    )
    stack.up(message="the gateway allows it now").check()
    route = kube.get(ROUTE_RESOURCE, APP, ns)
    assert route is not None
    accepted = {
        c["type"]: (c["status"], c["observedGeneration"]) for c in route["status"]["parents"][0]["conditions"]
    }
    generation = route["metadata"]["generation"]
    assert accepted["Accepted"] == ("True", generation) and accepted["ResolvedRefs"] == ("True", generation)
    assert kube.get(GATEWAY_RESOURCE, "shared", shared_ns) is not None


def test_canary_step_stops_at_the_refusal_instead_of_waiting_out_the_timeout(
    attached: tuple[PulumiStack, str], kube: Kube
) -> None:
    """The platform team tightens the shared Gateway after the release attached: the next step's route is
    refused, and `canary step` interrupts its update at once, naming the controller's reason and message."""
    stack, shared_ns = attached
    ns = str(stack.pulumi("config", "get", "namespace").check().stdout.strip())
    shared_gateway(kube, shared_ns, "All")
    stack.pulumi("config", "set", "rolloutTimeout", "600").check()
    stack.up(message="deploy, header-only").check()

    shared_gateway(kube, shared_ns, "Same")
    wait_for(lambda: refusal_of(kube.get(ROUTE_RESOURCE, APP, ns) or {}) is not None, 60, "EG to refuse")
    started = time.monotonic()
    step = canary(stack, "step", "--yes")
    took = time.monotonic() - started
    print(f"\ncanary step on a refused route: exit {step.code} after {took:.1f}s (rolloutTimeout 600)")
    assert step.code == 1, step.output
    assert "the gateway refused the route's new spec (Accepted=False, NotAllowedByListeners" in step.stderr
    assert "No listeners included by this parent ref allowed this attachment" in step.stderr
    # The CLI did not crash (exit 1, not 3) and its own lines carry no traceback. Pulumi's log of the
    # interrupted program, which the CLI passes on in full, may hold one: the SDK prints the resource
    # monitor's shutdown as the engine cancels.
    ours = [line for line in step.stderr.splitlines() if line.startswith(("canary:", "the gateway refused"))]
    assert ours and not any("Traceback" in line for line in ours), ours
    history = stack.history()
    assert history[0]["result"] == "failed" and history[0]["message"].startswith("canary 0% -> 5%")
    assert stack.pulumi("config", "get", "canaryWeight").check().stdout.strip() == "5"
    exported = json.loads(stack.pulumi("stack", "export").check().stdout)
    assert not exported["deployment"].get("pending_operations"), "the interrupt left nothing pending"
    # Config, state and the live route agree: a refreshing preview plans nothing.
    stack.preview("--expect-no-changes", "--refresh").check()
    refused = canary(stack, "step", "--yes")
    assert refused.code == 1 and "the last update" in refused.stderr and "failed" in refused.stderr
