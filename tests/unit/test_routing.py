"""canary.release.routing: Gateway listeners and HTTPRoute rules (pure)."""

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.gateway_api import API_VERSION, GATEWAY_PROGRAMMED, ROUTE_ACCEPTED
from canary.release.routing import (
    gateway_manifest,
    limit_problems,
    listeners,
    mirror_filter,
    parent_refs,
    route_manifest,
    route_rules,
)
from canary.route_state import refusal_of, route_state
from tests.unit.helpers import CANARY, percents, release_settings

PREFIX = {"path": {"type": "PathPrefix", "value": "/"}}


def weights(rule: dict[str, Any]) -> dict[str, int | None]:
    return {ref["name"]: ref.get("weight") for ref in rule["backendRefs"]}


def test_stable_only_route_has_one_rule_with_one_backend() -> None:
    rules = route_rules(release_settings())
    assert rules == [{"matches": [PREFIX], "backendRefs": [{"name": "podinfo-stable", "port": 80}]}]


def test_canary_at_zero_keeps_both_backends_split_first_then_the_header_rule() -> None:
    rules = route_rules(release_settings(canaryImage=CANARY))
    assert len(rules) == 2
    split, header = rules
    assert header == {
        "matches": [{**PREFIX, "headers": [{"type": "Exact", "name": "x-canary", "value": "true"}]}],
        "backendRefs": [{"name": "podinfo-canary", "port": 80}],
    }
    assert split["matches"] == [PREFIX]
    assert weights(split) == {"podinfo-stable": 100, "podinfo-canary": 0}
    assert "filters" not in split


@pytest.mark.parametrize(
    ("percent", "stable", "canary"),
    [("5", 95, 5), ("25", 75, 25), ("50", 50, 50), ("100", 0, 100), ("0.5", 995, 5)],
)
def test_split_weights_in_the_route(percent: str, stable: int, canary: int) -> None:
    split = route_rules(release_settings(canaryImage=CANARY, canaryWeight=percent))[0]
    assert weights(split) == {"podinfo-stable": stable, "podinfo-canary": canary}


def test_header_rule_can_be_switched_off() -> None:
    rules = route_rules(release_settings(canaryImage=CANARY, canaryWeight="25", canaryHeader=""))
    assert len(rules) == 1
    assert weights(rules[0]) == {"podinfo-stable": 75, "podinfo-canary": 25}


def test_custom_header() -> None:
    header = route_rules(release_settings(canaryImage=CANARY, canaryHeader="x-beta: yes"))[1]
    assert header["matches"][0]["headers"] == [{"type": "Exact", "name": "x-beta", "value": "yes"}]


def test_mirror_only_when_asked() -> None:
    split = route_rules(release_settings(canaryImage=CANARY, canaryWeight="5", mirrorPercent="10"))[0]
    assert split["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "podinfo-canary", "port": 80}, "percent": 10},
        }
    ]
    assert "filters" not in route_rules(release_settings(canaryImage=CANARY, canaryWeight="5"))[0]


def test_fractional_mirror_uses_an_exact_fraction() -> None:
    mirror = mirror_filter(release_settings(canaryImage=CANARY, mirrorPercent="0.5"))["requestMirror"]
    assert mirror["fraction"] == {"numerator": 5, "denominator": 1000}
    assert "percent" not in mirror


def test_route_manifest_names_namespace_and_sorted_hostnames() -> None:
    route = route_manifest(release_settings(hostnames=["b.example.com", "a.example.com"], namespace="shop"))
    assert route["apiVersion"] == API_VERSION
    assert route["kind"] == "HTTPRoute"
    assert route["metadata"] == {
        "name": "podinfo",
        "namespace": "shop",
        "annotations": {"pulumi.com/patchForce": "true", "pulumi.com/waitFor": ROUTE_ACCEPTED},
    }
    assert route["spec"]["hostnames"] == ["a.example.com", "b.example.com"]
    assert route["spec"]["parentRefs"] == [{"name": "podinfo-gateway"}]


def test_empty_fields_are_left_out() -> None:
    spec = route_manifest(release_settings())["spec"]
    assert set(spec) == {"parentRefs", "rules"}


def test_parent_ref_to_an_existing_gateway_in_another_namespace() -> None:
    args = release_settings(createGateway=False, gatewayName="shared", gatewayNamespace="infra")
    assert parent_refs(args) == [{"name": "shared", "namespace": "infra"}]
    same = release_settings(createGateway=False, gatewayName="shared")
    assert parent_refs(same) == [{"name": "shared"}]


def test_gateway_http_only_without_tls() -> None:
    gateway = gateway_manifest(release_settings(waitForGateway=False))
    assert gateway["metadata"] == {"name": "podinfo-gateway", "namespace": "gateway-canary"}
    assert gateway["spec"] == {
        "gatewayClassName": "gateway-canary",
        "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
    }


def test_gateway_https_listener_terminates_tls() -> None:
    found = listeners(release_settings(tlsSecretName="podinfo-tls"))
    assert found == [
        {"name": "http", "protocol": "HTTP", "port": 80},
        {
            "name": "https",
            "protocol": "HTTPS",
            "port": 443,
            "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "podinfo-tls"}]},
        },
    ]


def test_gateway_listener_per_hostname() -> None:
    found = listeners(release_settings(hostnames=["b.example.com", "*.a.example.com"], tlsSecretName="tls"))
    assert [(item["name"], item["port"], item.get("hostname")) for item in found] == [
        ("http-0", 80, "*.a.example.com"),
        ("http-1", 80, "b.example.com"),
        ("https-0", 443, "*.a.example.com"),
        ("https-1", 443, "b.example.com"),
    ]


def test_no_limit_problems_for_the_largest_valid_config() -> None:
    args = release_settings(
        canaryImage=CANARY,
        canaryWeight="5",
        mirrorPercent="1",
        hostnames=[f"h{i}.example.com" for i in range(16)],
        tlsSecretName="tls",
    )
    assert limit_problems(args, route_manifest(args), gateway_manifest(args)) == []


def test_limit_problems_name_what_is_over() -> None:
    route = route_manifest(release_settings(canaryImage=CANARY))
    route["spec"]["rules"] = route["spec"]["rules"] * 9
    route["spec"]["rules"][0] = {**route["spec"]["rules"][0], "backendRefs": [{"name": "x", "port": 80}] * 17}
    found = limit_problems(release_settings(canaryImage=CANARY), route, None)
    assert [message.split(" renders")[0] for _, message in found] == [
        "HTTPRoute spec.rules:",
        "HTTPRoute spec.rules: HTTPRoute spec.rules[0]",
    ]


@settings(max_examples=200, deadline=None)
@given(percents, percents, st.booleans())
def test_route_state_reads_back_what_route_manifest_renders(
    canary: Decimal, mirror: Decimal, header: bool
) -> None:
    """The one reader of live routes (status, drift, rollback, tests, bench) agrees with the one writer on
    every representable split, mirror and header setting."""
    base = release_settings(canaryImage=CANARY, canaryHeader="x-canary: true" if header else "")
    rendered = dataclasses.replace(base, canary_percent=canary, mirror_percent=mirror)
    state = route_state(route_manifest(rendered), rendered.app_name)
    assert state.canary_percent == canary
    assert state.stable_percent == 100 - canary
    assert state.mirror_percent == mirror
    assert state.header_rule == (("x-canary", "true") if header else None)
    assert state.phase == rendered.phase


def test_route_state_of_a_stable_only_route() -> None:
    stable_only = release_settings()
    state = route_state(route_manifest(stable_only), stable_only.app_name)
    assert state.canary_weight is None and state.header_rule is None
    assert state.canary_percent == 0
    assert state.phase == stable_only.phase == "stable"


def test_waiting_for_the_gateway_is_the_current_generations_verdict_reason_first() -> None:
    """Accepted and ResolvedRefs, each only for the route's current generation (not the naive form that the
    previous generation's status satisfies), the reason checked first so a refusal's reason is logged."""

    def pair(kind: str, prefix: str = ".status.parents[*].conditions") -> list[str]:
        where = f"{prefix}[?@.type=='{kind}' && @.observedGeneration==$.metadata.generation]"
        return [f"jsonpath={{{where}.reason}}={kind}", f"jsonpath={{{where}.status}}=True"]

    assert json.loads(ROUTE_ACCEPTED) == [*pair("Accepted"), *pair("ResolvedRefs")]
    gateway = gateway_manifest(release_settings())
    assert gateway["metadata"]["annotations"] == {"pulumi.com/waitFor": GATEWAY_PROGRAMMED}
    assert json.loads(GATEWAY_PROGRAMMED) == pair("Programmed", ".status.conditions")


def test_the_wait_can_be_turned_off_and_changes_only_metadata() -> None:
    on, off = (release_settings(canaryImage=CANARY, waitForGateway=w) for w in (True, False))
    assert route_manifest(on)["spec"] == route_manifest(off)["spec"]
    assert route_manifest(off)["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    assert "annotations" not in gateway_manifest(off)["metadata"]


def refused(generation: int, observed: int, reason: str, status: str = "False") -> dict[str, Any]:
    condition = {"type": "Accepted", "status": status, "reason": reason, "observedGeneration": observed}
    condition["message"] = "No listeners included by this parent ref allowed this attachment."
    return {"metadata": {"generation": generation}, "status": {"parents": [{"conditions": [condition]}]}}


def test_refusal_of_the_current_generation_names_reason_and_message() -> None:
    assert refusal_of(refused(2, 2, "NotAllowedByListeners")) == (
        "Accepted=False, NotAllowedByListeners: "
        "No listeners included by this parent ref allowed this attachment."
    )


@pytest.mark.parametrize(
    "route",
    [
        refused(3, 2, "NotAllowedByListeners"),  # a verdict on the previous spec
        refused(2, 2, "Pending"),  # not judged yet
        refused(2, 2, "Accepted", status="True"),
        {"metadata": {"generation": 1}},  # no status at all
    ],
    ids=["stale", "pending", "accepted", "no-status"],
)
def test_no_refusal_unless_the_controller_judged_this_generation(route: dict[str, Any]) -> None:
    assert refusal_of(route) is None


def test_the_split_keeps_rule_index_0_whether_or_not_there_is_a_canary() -> None:
    """Envoy Gateway names a rule's cluster by its index: the split must not move when a canary comes or goes
    (with the header rule first, the stable-only rule/0 turned into the header rule's canary cluster)."""
    for settings_ in (
        release_settings(),
        release_settings(canaryImage=CANARY),
        release_settings(canaryImage=CANARY, canaryWeight="25"),
    ):
        rule = route_rules(settings_)[0]
        assert "headers" not in rule["matches"][0] and "podinfo-stable" in weights(rule)
