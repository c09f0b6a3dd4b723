"""canary.ops.core.state (pure): the deployed release from outputs and state, drift, pending config."""

from decimal import Decimal
from typing import Any

from canary.gateway_api import ROUTE_TYPE
from canary.ops.core.state import (
    StackState,
    deployed_from_outputs,
    drift,
    pending,
    read_state,
    replicas_of,
)
from canary.ops.pulumi.exported import STACK_TYPE
from canary.release.render import render
from canary.route_state import route_state
from tests.unit.ops.fakes import V1, V2, config, deployed, live


def state_of(weight: str = "50", header: tuple[str, str] | None = ("x-canary", "true")) -> StackState:
    return StackState(deployed(weight), "urn:route", live(100 - int(weight), int(weight), header))


def test_no_drift_when_the_live_route_matches() -> None:
    assert drift(state_of("50"), live(50, 50, ("x-canary", "true"))) == []


def test_drift_names_the_live_and_the_stack_weight() -> None:
    assert drift(state_of("50"), live(20, 80, ("x-canary", "true"))) == [
        "DRIFT: live route sends 80% to canary, stack says 50%"
    ]


def test_drift_in_header_and_mirror() -> None:
    found = drift(state_of("50"), live(50, 50, None, mirror=10))
    assert found == [
        "DRIFT: live route header rule is off, stack says 'x-canary: true'",
        "DRIFT: live route mirrors 10% to canary, stack says 0%",
    ]


def test_drift_when_the_route_is_gone_and_none_when_unreadable() -> None:
    assert drift(state_of("50"), None) == ["DRIFT: live route ns/web not found, stack says it exists"]
    assert drift(state_of("50"), None, "connection refused") == []


def test_pending_lists_undeployed_config() -> None:
    assert pending(config("25"), deployed("5")) == ["canaryWeight 5 -> 25"]
    assert pending(config("0", canary=""), deployed("0")) == [f"canaryImage {V2} -> (none)"]
    assert pending(config("5"), deployed("5")) == []


def outputs(**overrides: Any) -> dict[str, Any]:
    return {
        "phase": "canary 0.5%",
        "canaryWeight": 0.5,
        "stableWeight": 99.5,
        "stableImage": V1,
        "canaryImage": V2,
        "routeName": "web",
        "namespace": "ns",
        **overrides,
    }


def test_deployed_from_outputs_reads_weights_exactly() -> None:
    found = deployed_from_outputs(outputs())
    assert found is not None
    assert found.canary_percent == Decimal("0.5") and found.stable_percent == Decimal("99.5")
    assert found.app_name == "web"
    no_canary = deployed_from_outputs(outputs(canaryImage="", canaryWeight=0))
    assert no_canary is not None and no_canary.canary_image is None
    assert deployed_from_outputs({}) is None


def test_read_state_finds_outputs_and_the_route_urn() -> None:
    route = render(config("25")).route
    urn = f"urn:pulumi:dev::gateway-canary::gateway-canary:index:CanaryRelease${ROUTE_TYPE}::web-route"
    deployment = {
        "resources": [
            {"urn": "urn:stack", "type": STACK_TYPE, "outputs": outputs(canaryWeight=25, phase="canary 25%")},
            {"urn": "urn:other", "type": "kubernetes:apps/v1:Deployment", "outputs": {}},
            {"urn": urn, "type": ROUTE_TYPE, "parent": "urn:component", "outputs": route},
        ]
    }
    state = read_state(deployment)
    assert state.route_urn == urn
    assert state.deployed is not None and state.deployed.canary_percent == Decimal(25)
    assert state.route == route_state(route, "web")
    assert state.route is not None and (state.route.stable_weight, state.route.canary_weight) == (75, 25)


def test_read_state_of_an_empty_stack() -> None:
    assert read_state(None) == StackState(None, None, None)
    assert read_state({"resources": []}) == StackState(None, None, None)


def test_replicas_of_a_live_deployment() -> None:
    dep = {"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}
    found = replicas_of(dep)
    assert found is not None and (found.ready, found.desired) == (2, 3)
    fresh = replicas_of({"spec": {"replicas": 1}, "status": {}})
    assert fresh is not None and fresh.ready == 0
    assert replicas_of(None) is None
