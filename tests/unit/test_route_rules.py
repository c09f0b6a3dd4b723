"""routeRules and parentRefs: the app's own rules with the split, several Gateways (rendering, validation)."""

import json
from decimal import Decimal
from typing import Any

import pytest

from canary.gateway_api import ROUTE_ACCEPTED, WAIT_FOR_ANNOTATION
from canary.ops.fast import write as rollback
from canary.release.render import render
from canary.release.routing import route_manifest, route_rules
from canary.release.validate import ConfigError
from canary.route_state import route_state, split_rule_indices
from tests.unit.helpers import CANARY, REPO, release_settings

BEFORE = json.loads((REPO / "tests" / "unit" / "data" / "routes-v1.json").read_text())
"""Routes and Gateways as the program rendered them before routeRules and parentRefs existed (6df6ac2)."""

REQUEST_HEADER = {
    "type": "RequestHeaderModifier",
    "requestHeaderModifier": {"set": [{"name": "x-tier", "value": "api"}]},
}
API = {
    "name": "api",
    "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
    "filters": [REQUEST_HEADER],
    "timeouts": {"request": "10s"},
}
STATIC = {
    "name": "static",
    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
    "backendRefs": [{"name": "assets", "port": 8080}],
}
HEADER = {"type": "Exact", "name": "x-canary", "value": "true"}


def settings_with(**overrides: Any) -> Any:
    return release_settings(canaryImage=CANARY, canaryWeight="25", **overrides)


@pytest.mark.parametrize("case", BEFORE, ids=[case["case"] for case in BEFORE])
def test_an_existing_stack_renders_exactly_what_it_rendered_before(case: dict[str, Any]) -> None:
    rendered = render(release_settings(**case["config"]))
    assert rendered.route == case["route"]
    assert rendered.gateway == case["gateway"]


def test_app_rules_get_the_split_and_a_twin_user_rules_stay_as_written() -> None:
    split, static, twin = route_rules(settings_with(routeRules=[API, STATIC]))
    assert split == {
        **API,
        "backendRefs": [
            {"name": "podinfo-stable", "port": 80, "weight": 75},
            {"name": "podinfo-canary", "port": 80, "weight": 25},
        ],
    }
    assert static == STATIC
    assert twin == {
        "name": "api-canary-header",
        "matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "headers": [HEADER]}],
        "filters": API["filters"],
        "timeouts": {"request": "10s"},
        "backendRefs": [{"name": "podinfo-canary", "port": 80}],
    }


def test_the_twin_puts_the_canary_header_first_beside_the_rules_own_header_matches() -> None:
    rule = {"matches": [{"headers": [{"name": "x-plan", "value": "pro"}], "method": "POST"}, {}]}
    twin = route_rules(settings_with(routeRules=[rule]))[1]
    assert twin["matches"] == [
        {"headers": [HEADER, {"name": "x-plan", "value": "pro"}], "method": "POST"},
        {"headers": [HEADER]},
    ]
    no_matches = route_rules(settings_with(routeRules=[{"timeouts": {"request": "5s"}}]))[1]
    assert no_matches["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [HEADER]}]


def test_the_mirror_follows_the_rules_own_filters_on_split_rules_only() -> None:
    split, _, twin = route_rules(settings_with(routeRules=[API, STATIC], mirrorPercent="10"))
    assert [f["type"] for f in split["filters"]] == ["RequestHeaderModifier", "RequestMirror"]
    assert [f["type"] for f in twin["filters"]] == ["RequestHeaderModifier"]


def test_rule_indices_stay_when_the_canary_comes_and_goes() -> None:
    rules = [
        API,
        STATIC,
        {**API, "name": "admin", "matches": [{"path": {"type": "Exact", "value": "/admin"}}]},
    ]
    without = route_rules(release_settings(routeRules=rules))
    with_canary = route_rules(settings_with(routeRules=rules))
    assert [r.get("name") for r in without] == ["api", "static", "admin"]
    assert [r.get("name") for r in with_canary[:3]] == ["api", "static", "admin"]
    assert [r.get("name") for r in with_canary[3:]] == ["api-canary-header", "admin-canary-header"]
    assert without[0]["backendRefs"] == [{"name": "podinfo-stable", "port": 80}]


def test_route_state_reads_the_weights_and_header_of_a_route_with_several_rules() -> None:
    rules = [
        {
            **API,
            "name": "api-pro",
            "matches": [{"path": {"value": "/api"}, "headers": [{"name": "x-plan", "value": "pro"}]}],
        },
        STATIC,
        API,
    ]
    route = route_manifest(settings_with(routeRules=rules, mirrorPercent="10"))
    assert split_rule_indices(route, "podinfo") == [0, 2]
    state = route_state(route, "podinfo")
    assert (state.stable_weight, state.canary_weight) == (75, 25)
    assert state.header_rule == ("x-canary", "true")
    assert state.mirror_percent == 10


def test_the_fast_rollback_accepts_the_richer_route_at_any_weight_and_refuses_another() -> None:
    state = rollback.StateRoute("urn:route", "gateway-canary", "podinfo", None, None, ())
    rules = [API, STATIC]
    live = route_manifest(settings_with(routeRules=rules))
    want = route_manifest(release_settings(canaryImage=CANARY, routeRules=rules))
    assert rollback.live_problems(live, want, state, "podinfo") == []
    edited = json.loads(json.dumps(live))
    edited["spec"]["rules"][1]["backendRefs"][0]["port"] = 9090
    assert rollback.live_problems(edited, want, state, "podinfo") == [
        "spec.rules[1].backendRefs[0].port: is 9090, the program renders 8080"
    ]


def problems(**overrides: Any) -> list[str]:
    """What validation, or the check of the rendered route, says (the component runs both before it
    registers anything)."""
    with pytest.raises(ConfigError) as caught:
        render(settings_with(**overrides))
    return [message for _, message in caught.value.problems]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("{}", "routeRules: '{}' is not allowed: a JSON array of HTTPRoute rules"),
        (
            [{"nme": "x"}],
            "routeRules[0].nme: unknown field (known: name, matches, filters, timeouts, backendRefs)",
        ),
        ([{"name": "API"}], "routeRules[0] ('API').name: 'API' is not allowed: a DNS-1123 subdomain"),
        ([{"name": "a"}, {"name": "a"}], "routeRules: the rule name 'a' is used twice"),
        (
            [{"name": "a"}, {"name": "a-canary-header", "backendRefs": []}],
            "routeRules: the rule name 'a-canary-header' is taken by the header-override twin of 'a'",
        ),
        (
            [{"matches": [{"path": {"type": "PathPrefix", "value": "api"}}]}],
            "routeRules[0].matches[0].path.value: 'api' is not allowed: a PathPrefix path must start with",
        ),
        (
            [{"matches": [{"path": {"type": "Exact", "value": "/a//b"}}]}],
            "routeRules[0].matches[0].path.value: '/a//b' is not allowed: an Exact path must not contain",
        ),
        (
            [{"matches": [{"headers": [{"name": "X-Canary", "value": "1"}]}]}],
            "routeRules[0].matches[0].headers[0].name: 'X-Canary' is the canaryHeader's name",
        ),
        ([{"matches": [{"method": "FETCH"}]}], "routeRules[0].matches[0].method: 'FETCH' is not allowed"),
        (
            [{"matches": [{}] * 65}],
            "routeRules[0].matches: 65 given, over Gateway API's limit of 64 per rule",
        ),
        (
            [{"filters": [{"type": "Rewrite"}]}],
            "routeRules[0].filters[0].type: 'Rewrite' is not allowed: one of",
        ),
        (
            [{"filters": [{"type": "URLRewrite", "requestMirror": {}}]}],
            "routeRules[0].filters[0].urlRewrite: missing: a URLRewrite filter carries its settings there",
        ),
        (
            [{"filters": [REQUEST_HEADER, REQUEST_HEADER]}],
            "routeRules[0].filters: RequestHeaderModifier is listed twice",
        ),
        (
            [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}]}],
            "routeRules[0].filters: a RequestRedirect rule sends to no backend, so it cannot carry "
            'the split: give it "backendRefs": []',
        ),
        (
            [
                {
                    "matches": [{"path": {"value": "/a"}}, {"path": {"value": "/b"}}],
                    "filters": [
                        {
                            "type": "URLRewrite",
                            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
                        }
                    ],
                }
            ],
            "routeRules[0].filters: a URLRewrite with ReplacePrefixMatch needs exactly one PathPrefix match",
        ),
        (
            [{"timeouts": {"request": "10 s"}}],
            "routeRules[0].timeouts.request: '10 s' is not allowed: a Gateway API duration",
        ),
        (
            [{"timeouts": {"request": "1s", "backendRequest": "2s"}}],
            "routeRules[0].timeouts.backendRequest: '2s' is not allowed: at most request ('1s')",
        ),
        (
            [{"backendRefs": [{"name": "podinfo-canary", "port": 80}]}],
            "routeRules[0].backendRefs[0]: 'podinfo-canary' is a Service of this release",
        ),
        ([{"backendRefs": [{"name": "assets"}]}], "routeRules[0].backendRefs[0].port: missing"),
        ([{}] * 17, "routeRules: 17 rules given, over Gateway API's limit of 16"),
    ],
)
def test_a_bad_rule_is_named_with_its_field(rules: Any, expected: str) -> None:
    found = problems(routeRules=rules)
    assert any(message.startswith(expected) for message in found), found


def test_every_rule_problem_is_reported_at_once() -> None:
    found = problems(routeRules=[{"name": "A"}, {"timeouts": {"request": "x"}}], mirrorPercent="101")
    assert len(found) == 3


def test_the_twins_count_toward_the_rule_limit_and_the_message_says_how_to_turn_them_off() -> None:
    rules = [{"matches": [{"path": {"value": f"/p{i}"}}]} for i in range(9)]
    (message,) = problems(routeRules=rules)
    assert message == (
        "routeRules: renders 18 rules (9 of them header-override twins: canaryHeader '' turns them off), "
        "over "
        "Gateway API's limit of 16"
    )
    assert len(route_rules(settings_with(routeRules=rules, canaryHeader=""))) == 9


def test_the_mirror_counts_toward_a_rules_filter_limit() -> None:
    rule = {
        "filters": [
            {"type": "ExtensionRef", "extensionRef": {"group": "g", "kind": "K", "name": f"e{i}"}}
            for i in range(16)
        ]
    }
    assert len(route_rules(settings_with(routeRules=[rule]))[0]["filters"]) == 16
    (message,) = problems(routeRules=[rule], mirrorPercent="5")
    assert message == (
        "routeRules: HTTPRoute spec.rules[0] renders 17 filters (the mirror included), over Gateway API's "
        "limit of 16"
    )


SHARED = {"name": "shared", "namespace": "infra"}
STRIP = {
    "type": "URLRewrite",
    "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
}


def test_the_owned_gateway_comes_first_then_the_parent_refs() -> None:
    route = route_manifest(
        settings_with(parentRefs=[SHARED, {"name": "edge", "sectionName": "https", "port": 443}])
    )
    assert route["spec"]["parentRefs"] == [
        {"name": "podinfo-gateway"},
        {"name": "shared", "namespace": "infra"},
        {"name": "edge", "sectionName": "https", "port": 443},
    ]


def test_parent_refs_alone_replace_the_gateway_name_shorthand() -> None:
    args = settings_with(createGateway=False, parentRefs=[SHARED])
    assert route_manifest(args)["spec"]["parentRefs"] == [SHARED]
    assert (args.gateway_name, args.gateway_namespace) == ("shared", "infra")
    both = settings_with(createGateway=False, gatewayName="internal", parentRefs=[SHARED])
    assert route_manifest(both)["spec"]["parentRefs"] == [{"name": "internal"}, SHARED]


def test_one_parent_keeps_its_wait_and_several_wait_for_each() -> None:
    one = route_manifest(settings_with())["metadata"]["annotations"][WAIT_FOR_ANNOTATION]
    assert one == ROUTE_ACCEPTED
    several = json.loads(
        route_manifest(settings_with(parentRefs=[SHARED]))["metadata"]["annotations"][WAIT_FOR_ANNOTATION]
    )
    assert len(several) == 8
    owned, shared = several[:4], several[4:]
    assert all(
        "@.parentRef.name=='podinfo-gateway' && "
        "(!@.parentRef.namespace || @.parentRef.namespace=='gateway-canary')" in e
        for e in owned
    )
    assert all("@.parentRef.name=='shared' && @.parentRef.namespace=='infra'" in e for e in shared)
    assert [e.rsplit("=", 1)[1] for e in shared] == ["Accepted", "True", "ResolvedRefs", "True"]


@pytest.mark.parametrize(
    ("refs", "overrides", "expected"),
    [
        ([{"name": "Shared"}], {}, "parentRefs[0].name: 'Shared' is not allowed: a Gateway's name"),
        (
            [{"name": "a", "ns": "x"}],
            {},
            "parentRefs[0].ns: unknown field (known: name, namespace, sectionName, port)",
        ),
        (
            [{"name": "a", "port": 0}],
            {},
            "parentRefs[0].port: 0 is not allowed: a port number from 1 to 65535",
        ),
        (
            [{"name": "podinfo-gateway"}],
            {},
            "parentRefs: the Gateway gateway-canary/podinfo-gateway is listed 2 times",
        ),
        ([SHARED, SHARED], {}, "parentRefs: the Gateway infra/shared is listed 2 times"),
        ([], {"createGateway": False}, "gatewayName: '' is not allowed: the name of an existing Gateway"),
    ],
)
def test_a_bad_parent_is_named(refs: Any, overrides: dict[str, Any], expected: str) -> None:
    found = problems(parentRefs=refs, **overrides)
    assert any(message.startswith(expected) for message in found), found


def test_one_gateway_twice_by_distinct_listeners_is_allowed() -> None:
    refs = [{**SHARED, "sectionName": "http"}, {**SHARED, "sectionName": "https"}]
    assert len(route_manifest(settings_with(parentRefs=refs))["spec"]["parentRefs"]) == 3


def test_a_grpc_release_renders_a_grpc_route_with_the_split_and_a_metadata_twin() -> None:
    rendered = render(settings_with(protocol="grpc", mirrorPercent="10"))
    route = rendered.route
    assert route["kind"] == "GRPCRoute"
    split, twin = route["spec"]["rules"]
    assert split["backendRefs"] == [
        {"name": "podinfo-stable", "port": 80, "weight": 75},
        {"name": "podinfo-canary", "port": 80, "weight": 25},
    ]
    assert "matches" not in split and [f["type"] for f in split["filters"]] == ["RequestMirror"]
    assert twin == {
        "matches": [{"headers": [HEADER]}],
        "backendRefs": [{"name": "podinfo-canary", "port": 80}],
    }
    assert rendered.services["canary"]["spec"]["ports"] == [
        {
            "name": "grpc",
            "port": 80,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        }
    ]
    app = rendered.deployments["canary"]["spec"]["template"]["spec"]["containers"][0]
    assert app["ports"] == [{"name": "grpc", "containerPort": 9898, "protocol": "TCP"}]
    assert app["readinessProbe"] == {"grpc": {"port": 9898}, "periodSeconds": 5, "failureThreshold": 3}
    state = route_state(route, "podinfo")
    assert (state.canary_percent, state.header_rule, state.mirror_percent) == (
        Decimal(25),
        ("x-canary", "true"),
        Decimal(10),
    )


def test_grpc_route_rules_match_methods_and_refuse_http_only_fields() -> None:
    rule = {"name": "greet", "matches": [{"method": {"service": "helloworld.Greeter", "method": "SayHello"}}]}
    split, twin = route_rules(settings_with(protocol="grpc", routeRules=[rule]))
    assert split["matches"] == rule["matches"]
    assert twin["matches"] == [
        {"method": {"service": "helloworld.Greeter", "method": "SayHello"}, "headers": [HEADER]}
    ]
    found = problems(
        protocol="grpc",
        routeRules=[
            {
                "timeouts": {"request": "1s"},
                "matches": [{"path": {"value": "/x"}, "method": {"service": "a b"}}],
            },
            {"filters": [STRIP]},
        ],
    )
    assert found == [
        "routeRules[0].timeouts: unknown field (known: name, matches, filters, backendRefs)",
        "routeRules[0].matches[0].path: unknown field (known: method, headers)",
        "routeRules[0].matches[0].method.service: 'a b' is not allowed: a gRPC service name",
        "routeRules[1].filters[0].type: 'URLRewrite' is not allowed: one of RequestHeaderModifier, "
        "ResponseHeaderModifier, RequestMirror, ExtensionRef",
    ]
    assert problems(protocol="h2") == [
        "protocol: 'h2' is not allowed: one of 'http', 'grpc' (what the app speaks)"
    ]


def test_the_operations_side_finds_a_grpc_route_in_the_state() -> None:
    route = {
        "type": "kubernetes:gateway.networking.k8s.io/v1:GRPCRoute",
        "urn": "urn:route",
        "outputs": {"metadata": {"name": "podinfo", "namespace": "ns", "uid": "u"}},
    }
    stack = {"type": "pulumi:pulumi:Stack", "urn": "urn:stack", "outputs": {}}
    found = rollback.route_in_state({"resources": [stack, route]})
    assert (found.kind, found.name) == ("GRPCRoute", "podinfo")
