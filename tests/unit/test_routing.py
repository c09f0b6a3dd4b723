"""canary.routing: Gateway listeners and HTTPRoute rules (pure)."""

from typing import Any

import pytest

from canary.routing import (
    GATEWAY_API_VERSION,
    gateway_manifest,
    limit_problems,
    listeners,
    mirror_filter,
    parent_ref,
    route_manifest,
    route_rules,
)
from tests.unit.helpers import CANARY, release_args

PREFIX = {"path": {"type": "PathPrefix", "value": "/"}}


def weights(rule: dict[str, Any]) -> dict[str, int | None]:
    return {ref["name"]: ref.get("weight") for ref in rule["backendRefs"]}


def test_stable_only_route_has_one_rule_with_one_backend() -> None:
    rules = route_rules(release_args())
    assert rules == [{"matches": [PREFIX], "backendRefs": [{"name": "podinfo-stable", "port": 80}]}]


def test_canary_at_zero_keeps_both_backends_and_header_rule_first() -> None:
    rules = route_rules(release_args(canaryImage=CANARY))
    assert len(rules) == 2
    header, split = rules
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
    split = route_rules(release_args(canaryImage=CANARY, canaryWeight=percent))[-1]
    assert weights(split) == {"podinfo-stable": stable, "podinfo-canary": canary}


def test_header_rule_can_be_switched_off() -> None:
    rules = route_rules(release_args(canaryImage=CANARY, canaryWeight="25", canaryHeader=""))
    assert len(rules) == 1
    assert weights(rules[0]) == {"podinfo-stable": 75, "podinfo-canary": 25}


def test_custom_header() -> None:
    header = route_rules(release_args(canaryImage=CANARY, canaryHeader="x-beta: yes"))[0]
    assert header["matches"][0]["headers"] == [{"type": "Exact", "name": "x-beta", "value": "yes"}]


def test_mirror_only_when_asked() -> None:
    split = route_rules(release_args(canaryImage=CANARY, canaryWeight="5", mirrorPercent="10"))[-1]
    assert split["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "podinfo-canary", "port": 80}, "percent": 10},
        }
    ]
    assert "filters" not in route_rules(release_args(canaryImage=CANARY, canaryWeight="5"))[-1]


def test_fractional_mirror_uses_an_exact_fraction() -> None:
    mirror = mirror_filter(release_args(canaryImage=CANARY, mirrorPercent="0.5"))["requestMirror"]
    assert mirror["fraction"] == {"numerator": 5, "denominator": 1000}
    assert "percent" not in mirror


def test_route_manifest_names_namespace_and_sorted_hostnames() -> None:
    route = route_manifest(release_args(hostnames=["b.example.com", "a.example.com"], namespace="shop"))
    assert route["apiVersion"] == GATEWAY_API_VERSION
    assert route["kind"] == "HTTPRoute"
    assert route["metadata"] == {
        "name": "podinfo",
        "namespace": "shop",
        "annotations": {"pulumi.com/patchForce": "true"},
    }
    assert route["spec"]["hostnames"] == ["a.example.com", "b.example.com"]
    assert route["spec"]["parentRefs"] == [{"name": "podinfo-gateway"}]


def test_empty_fields_are_left_out() -> None:
    spec = route_manifest(release_args())["spec"]
    assert set(spec) == {"parentRefs", "rules"}


def test_parent_ref_to_an_existing_gateway_in_another_namespace() -> None:
    args = release_args(createGateway=False, gatewayName="shared", gatewayNamespace="infra")
    assert parent_ref(args) == {"name": "shared", "namespace": "infra"}
    same = release_args(createGateway=False, gatewayName="shared")
    assert parent_ref(same) == {"name": "shared"}


def test_gateway_http_only_without_tls() -> None:
    gateway = gateway_manifest(release_args())
    assert gateway["metadata"] == {"name": "podinfo-gateway", "namespace": "gateway-canary"}
    assert gateway["spec"] == {
        "gatewayClassName": "gateway-canary",
        "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
    }


def test_gateway_https_listener_terminates_tls() -> None:
    found = listeners(release_args(tlsSecretName="podinfo-tls"))
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
    found = listeners(release_args(hostnames=["b.example.com", "*.a.example.com"], tlsSecretName="tls"))
    assert [(item["name"], item["port"], item.get("hostname")) for item in found] == [
        ("http-0", 80, "*.a.example.com"),
        ("http-1", 80, "b.example.com"),
        ("https-0", 443, "*.a.example.com"),
        ("https-1", 443, "b.example.com"),
    ]


def test_no_limit_problems_for_the_largest_valid_config() -> None:
    args = release_args(
        canaryImage=CANARY,
        canaryWeight="5",
        mirrorPercent="1",
        hostnames=[f"h{i}.example.com" for i in range(16)],
        tlsSecretName="tls",
    )
    assert limit_problems(route_manifest(args), gateway_manifest(args)) == []


def test_limit_problems_name_what_is_over() -> None:
    route = route_manifest(release_args(canaryImage=CANARY))
    route["spec"]["rules"] = route["spec"]["rules"] * 9
    route["spec"]["rules"][0] = {**route["spec"]["rules"][0], "backendRefs": [{"name": "x", "port": 80}] * 17}
    keys = [key for key, _ in limit_problems(route, None)]
    assert keys == ["HTTPRoute spec.rules", "HTTPRoute spec.rules[0]"]
