"""canary.release.features: what a release asks of its gateway, held against the GatewayClasses' lists."""

from typing import Any

import pytest

from canary.release import features
from canary.release.component import CanaryRelease
from canary.release.features import Need, judge, needs, supported_features
from canary.release.validate import ConfigError
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import CANARY, component_args, release_settings

TRAEFIK = frozenset(
    {
        "BackendTLSPolicy",
        "GRPCRoute",
        "Gateway",
        "GatewayPort8080",
        "HTTPRoute",
        "HTTPRouteBackendProtocolH2C",
        "HTTPRouteBackendProtocolWebSocket",
        "HTTPRouteDestinationPortMatching",
        "HTTPRouteHostRewrite",
        "HTTPRouteMethodMatching",
        "HTTPRoutePathRedirect",
        "HTTPRoutePathRewrite",
        "HTTPRoutePortRedirect",
        "HTTPRouteQueryParamMatching",
        "HTTPRouteResponseHeaderModification",
        "HTTPRouteSchemeRedirect",
        "ReferenceGrant",
        "TLSRoute",
    }
)
"""Traefik v3.6.12's GatewayClass status.supportedFeatures, as it published them here (traefik-notes.md)."""


def test_a_plain_release_needs_only_its_route_kind() -> None:
    assert needs(release_settings(canaryImage=CANARY, canaryWeight="25")) == [Need("HTTPRoute", "protocol")]
    assert needs(release_settings(protocol="grpc")) == [Need("GRPCRoute", "protocol")]


def test_the_mirror_and_the_rules_name_what_they_need_and_where() -> None:
    rule = {
        "name": "api",
        "matches": [
            {"path": {"value": "/api"}, "method": "GET", "queryParams": [{"name": "v", "value": "2"}]}
        ],
        "filters": [
            {
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": {"add": [{"name": "a", "value": "b"}]},
            },
            {"type": "URLRewrite", "urlRewrite": {"hostname": "x.example.com"}},
        ],
        "timeouts": {"request": "10s", "backendRequest": "2s"},
    }
    redirect = {
        "backendRefs": [],
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 308}}],
    }
    args = release_settings(
        canaryImage=CANARY,
        mirrorPercent="5",
        routeRules=[rule, redirect],
        parentRefs=[{"name": "edge", "namespace": "infra", "port": 443}],
    )
    assert [(n.feature, n.key) for n in needs(args)] == [
        ("HTTPRoute", "protocol"),
        ("HTTPRouteRequestMirror", "mirrorPercent"),
        ("HTTPRouteRequestPercentageMirror", "mirrorPercent"),
        ("HTTPRouteNamedRouteRule", "routeRules[0] ('api').name"),
        ("HTTPRouteMethodMatching", "routeRules[0] ('api').matches[0].method"),
        ("HTTPRouteQueryParamMatching", "routeRules[0] ('api').matches[0].queryParams"),
        ("HTTPRouteResponseHeaderModification", "routeRules[0] ('api').filters[0]"),
        ("HTTPRouteHostRewrite", "routeRules[0] ('api').filters[1].urlRewrite.hostname"),
        ("HTTPRouteRequestTimeout", "routeRules[0] ('api').timeouts.request"),
        ("HTTPRouteBackendTimeout", "routeRules[0] ('api').timeouts.backendRequest"),
        ("HTTPRouteSchemeRedirect", "routeRules[1].filters[0].requestRedirect.scheme"),
        ("HTTPRoute308RedirectStatusCode", "routeRules[1].filters[0].requestRedirect.statusCode"),
        ("HTTPRouteParentRefPort", "parentRefs (infra/edge).port"),
    ]
    full = needs(release_settings(canaryImage=CANARY, mirrorPercent="100"))
    assert [n.feature for n in full] == ["HTTPRoute", "HTTPRouteRequestMirror"]


def test_a_mirror_asked_of_traefik_is_refused_naming_feature_class_and_key() -> None:
    verdict = judge(
        needs(release_settings(canaryImage=CANARY, mirrorPercent="10")), {"traefik": TRAEFIK}, False
    )
    assert verdict.warnings == []
    assert verdict.problems == [
        (
            "mirrorPercent",
            "mirrorPercent: needs the Gateway API feature HTTPRouteRequestMirror, which GatewayClass "
            "'traefik' does not list in status.supportedFeatures (its gateway could accept the route and "
            "not serve it as asked): leave it out, or attach to a class that supports it",
        ),
        (
            "mirrorPercent",
            "mirrorPercent: needs the Gateway API feature HTTPRouteRequestPercentageMirror, which "
            "GatewayClass 'traefik' does not list in status.supportedFeatures (its gateway could accept the "
            "route and not serve it as asked): leave it out, or attach to a class that supports it",
        ),
    ]
    plain = needs(release_settings(canaryImage=CANARY, canaryWeight="30"))
    assert judge(plain, {"traefik": TRAEFIK}, False).problems == []


def test_a_class_listing_nothing_passes_core_and_refuses_more_unless_assumed() -> None:
    plain = needs(release_settings(canaryImage=CANARY, canaryWeight="30"))
    assert judge(plain, {"legacy": None}, False) == features.Verdict([], [])
    mirrored = needs(release_settings(canaryImage=CANARY, mirrorPercent="100"))
    (problem,) = judge(mirrored, {"legacy": None}, False).problems
    assert problem[0] == "mirrorPercent" and "set gatewayFeatures to 'assume'" in problem[1]
    assumed = judge(mirrored, {"legacy": None}, True)
    assert assumed.problems == [] and assumed.warnings == [
        "GatewayClass 'legacy' lists no supportedFeatures; assumed (gatewayFeatures: assume): "
        "HTTPRouteRequestMirror (mirrorPercent)"
    ]


def test_supported_features_reads_objects_and_plain_names() -> None:
    listed = {"status": {"supportedFeatures": [{"name": "HTTPRoute"}, "Gateway"]}}
    assert supported_features(listed) == frozenset({"HTTPRoute", "Gateway"})
    assert supported_features({"status": {}}) is None and supported_features({}) is None


def test_gateway_features_takes_check_or_assume() -> None:
    with pytest.raises(ConfigError, match=r"gatewayFeatures: 'trust' is not allowed: one of 'check'"):
        release_settings(gatewayFeatures="trust")


def test_the_program_refuses_before_registering_anything(pulumi_mocks: PulumiMocks) -> None:
    """A GatewayClass without mirroring: the component raises the refusal at construction, so not one
    resource (not even the component) is registered."""
    pulumi_mocks.mocks.gateway_classes = {"gateway-canary": TRAEFIK}
    args: Any = component_args(canaryImage=CANARY, mirrorPercent="10")
    with pytest.raises(
        ConfigError, match="mirrorPercent: needs the Gateway API feature HTTPRouteRequestMirror"
    ):
        CanaryRelease("podinfo", args)
    assert pulumi_mocks.mocks.resources == []
