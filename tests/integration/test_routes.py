"""Routes as real apps have them, end to end through Envoy Gateway (#24): the app's own rules, several
Gateways, and an existing stack upgraded without a change.

Every answer is a real podinfo's (the version it reports is its image's tag), every status is read back from
the apiserver, and every update goes through the real engine and provider.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.ops.verify.split import canary_interval
from canary.ops.verify.traffic import Load, Tally, Target, TrafficCounter, send
from canary.route_state import refusal_of, route_state
from devtools.pulumi_cli import REPO, private_project
from tests.integration.harness import (
    Kube,
    PulumiStack,
    canary,
    gateway_settings,
    release_stack,
    route_accepted_by,
    set_in_stack_file,
    shared_gateway,
    unique,
    wait_for,
)
from tests.integration.test_traffic import HOST, V1, V2, gateway_target, settle
from tests.integration.test_traffic_bed import bed

__all__ = ["bed"]  # the traffic bed's own readiness fixture (skips loudly, fails under CI)

APP = "web"
ASSETS = "registry.example/assets:9.9.9"
"""The other app a user rule sends /static to: a podinfo reporting 9.9.9."""
HEADER = {"x-canary": "true"}
STRIP_PREFIX = {
    "type": "URLRewrite",
    "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
}
API = {
    "name": "api",
    "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
    "filters": [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"set": [{"name": "x-tier", "value": "api"}]},
        },
        STRIP_PREFIX,
    ],
    "timeouts": {"request": "2s"},
}
STATIC = {
    "name": "static",
    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
    "filters": [STRIP_PREFIX],
    "backendRefs": [{"name": "assets", "port": 80}],
}
OLD_COMMIT = "6df6ac2"
"""The last commit before routeRules and parentRefs: an existing stack deployed by it must plan no change."""


def other_app(kube: Kube, namespace: str) -> None:
    """The Deployment and Service `assets` a user rule sends to (not the release's)."""
    kube.apply(
        f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: assets, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: assets}}}}
  template:
    metadata: {{labels: {{app: assets}}}}
    spec:
      containers:
      - name: assets
        image: {ASSETS}
        ports: [{{containerPort: 9898}}]
        readinessProbe: {{httpGet: {{path: /readyz, port: 9898}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: assets, namespace: {namespace}}}
spec:
  selector: {{app: assets}}
  ports: [{{port: 80, targetPort: 9898}}]
"""
    ).check()
    kube.run("rollout", "status", "deployment/assets", "-n", namespace, "--timeout=120s").check()


def counted(where: Target, requests: int, headers: dict[str, str] | None = None) -> Tally:
    """`requests` GETs (each on its own connection) through the Gateway, tallied by the version that
    answered; every one sent."""
    run = send(Load(where, requests, host=HOST, headers=headers or {}, concurrency=8, time_limit=240))
    assert run.not_sent == 0, f"{run.not_sent} of {requests} not sent within the bound"
    return TrafficCounter().extend(run.results).tally()


def fetch(
    where: Target, path: str, headers: dict[str, str] | None = None
) -> tuple[int, float, dict[str, object]]:
    """One GET of `path` at the (netchecked) Gateway address: status, seconds, the JSON body ({} if none)."""
    connection = http.client.HTTPConnection(where.connect, where.port, timeout=15)
    started = time.monotonic()
    try:
        connection.request("GET", path, headers={"Host": HOST, **(headers or {})})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {}
    return response.status, time.monotonic() - started, parsed if isinstance(parsed, dict) else {}


def in_interval(tally: Tally, share: Fraction) -> None:
    """The canary's count lands in the 99.9% binomial interval of `share` (canary.ops.verify.split)."""
    assert tally.failed == 0, tally
    interval = canary_interval(tally.sent, share)
    count = tally.by_version.get(V2.rsplit(":", 1)[1], 0)
    assert interval.low <= count <= interval.high, (tally.by_version, interval)


def accepted_by_every_parent(kube: Kube, namespace: str, parents: int) -> dict[str, Any]:
    return route_accepted_by(kube, ROUTE, APP, namespace, parents)


@dataclass
class Release:
    """What the ordered tests of a class share."""

    stack: PulumiStack
    kube: Kube
    namespace: str
    shared_namespace: str = ""
    """The shared Gateway's namespace (TestSeveralGateways)."""
    addresses: dict[str, Target] = field(default_factory=dict)


@pytest.fixture(scope="class")
def rules(bed: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """A release whose route has the app's /api rule (split) and a /static rule to another Service."""
    namespace = unique("gc-rules")
    kube.run("create", "namespace", namespace).check()
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("rules"),
        "rules",
        {
            "appName": APP,
            "namespace": namespace,
            "createNamespace": "false",
            "stableImage": V1,
            "canaryImage": V2,
            "canaryWeight": "25",
            "stableReplicas": "1",
            "gatewayClassName": "eg",
            # Named rules, a path rewrite and a timeout are Extended features, and Envoy Gateway v1.9 lists
            # no supportedFeatures: taken on trust (docs/gateways.md).
            "gatewayFeatures": "assume",
        },
    )
    set_in_stack_file(stack, {"hostnames": [HOST], "routeRules": [API, STATIC]})
    try:
        yield Release(stack, kube, namespace)
    finally:
        stack.destroy()
        kube.run("delete", "namespace", namespace, "--wait=false")


class TestTheAppsOwnRules:
    def test_1_the_route_keeps_the_users_rules_and_adds_the_split_and_twin(self, rules: Release) -> None:
        other_app(rules.kube, rules.namespace)
        rules.stack.up(message="canary 25% on /api").check()
        route = accepted_by_every_parent(rules.kube, rules.namespace, 1)
        spec = route["spec"]
        assert isinstance(spec, dict)
        assert [r.get("name") for r in spec["rules"]] == ["api", "static", "api-canary-header"]
        assert spec["rules"][1]["backendRefs"][0]["name"] == "assets"
        state = route_state(route, APP)
        assert (state.stable_weight, state.canary_weight, state.header_rule) == (75, 25, ("x-canary", "true"))
        rules.addresses["api"] = gateway_target(rules.kube, rules.namespace, path="/api/version")
        rules.addresses["static"] = gateway_target(rules.kube, rules.namespace, path="/static/version")
        settle(rules.addresses["static"], {"plain": "9.9.9"})

    def test_2_the_split_applies_to_api_only_and_static_reaches_its_own_backend(self, rules: Release) -> None:
        api = counted(rules.addresses["api"], 400)
        print(f"\n/api at 25%: {api.by_version}")
        in_interval(api, Fraction(1, 4))
        static = counted(rules.addresses["static"], 100)
        static_header = counted(rules.addresses["static"], 50, HEADER)
        print(f"/static: {static.by_version}, with x-canary: {static_header.by_version}")
        assert static.by_version == {"9.9.9": 100} and static_header.by_version == {"9.9.9": 50}
        header = counted(rules.addresses["api"], 50, HEADER)
        assert header.by_version == {"1.1.0": 50}, header
        verified = canary(rules.stack, "verify", "-n", "400", "--path", "/api/version", "--json")
        report = json.loads(verified.stdout)
        assert verified.code == 0 and report["ok"], verified.output
        assert report["target"]["url"].endswith("/api/version") and report["gateway"].endswith("/web-gateway")

    def test_3_the_rules_filters_and_timeout_apply_to_canary_traffic_too(self, rules: Release) -> None:
        where = rules.addresses["api"]
        for headers, version in (({}, None), (HEADER, "1.1.0")):
            status, _, seen = fetch(where, "/api/headers", headers)
            assert status == 200 and seen.get("X-Tier") == ["api"], (headers, status, seen)
            status, took, _ = fetch(where, "/api/delay/4", headers)
            print(f"/api/delay/4 {headers}: HTTP {status} after {took:.1f}s (request timeout 2s)")
            assert status == 504, (headers, status)
            if version is not None:
                status, _, body = fetch(where, "/api/version", headers)
                assert body.get("version") == version, body
        status, _, seen = fetch(rules.addresses["static"], "/static/headers")
        assert status == 200 and "X-Tier" not in seen, seen

    def test_4_what_only_the_apiserver_checks_fails_the_preview_and_nothing_is_sent(
        self, rules: Release
    ) -> None:
        """A header modifier's own fields are the apiserver's to check (docs/routes.md): the provider's
        server-side dry run in `pulumi preview` refuses it, and the live route keeps its generation."""
        before = rules.kube.get(ROUTE, APP, rules.namespace) or {}
        bad = {
            **API,
            "filters": [
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"set": [{"name": "bad name", "value": "x"}]},
                }
            ],
        }
        set_in_stack_file(rules.stack, {"routeRules": [bad, STATIC]})
        refused = rules.stack.preview()
        print(f"\npreview of a bad header modifier: exit {refused.code}")
        print(
            "\n".join(line for line in refused.output.splitlines() if "requestHeaderModifier" in line)[:600]
        )
        assert refused.code != 0 and "requestHeaderModifier" in refused.output, refused.output
        after = rules.kube.get(ROUTE, APP, rules.namespace) or {}
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        set_in_stack_file(rules.stack, {"routeRules": [API, STATIC]})
        # Without gatewayFeatures: assume, eg (which lists no supportedFeatures) is not trusted with them.
        rules.stack.pulumi("config", "set", "gatewayFeatures", "check").check()
        unchecked = rules.stack.preview()
        assert unchecked.code != 0, unchecked.output
        for feature in ("HTTPRouteNamedRouteRule", "HTTPRoutePathRewrite", "HTTPRouteRequestTimeout"):
            assert (
                f"needs the Gateway API feature {feature}, and GatewayClass 'eg' lists no" in unchecked.output
            )
        rules.stack.pulumi("config", "set", "gatewayFeatures", "assume").check()

    def test_5_the_fast_rollback_renders_the_same_rules(self, rules: Release) -> None:
        before = rules.kube.get(ROUTE, APP, rules.namespace)
        assert before is not None
        canary(rules.stack, "rollback", "--yes").check()
        after = accepted_by_every_parent(rules.kube, rules.namespace, 1)
        assert route_state(after, APP).canary_weight == 0
        names = [r.get("name") for r in after["spec"]["rules"]]  # type: ignore[index]
        assert names == ["api", "static", "api-canary-header"]
        api = counted(rules.addresses["api"], 200)
        assert api.by_version == {"1.0.0": 200}, api
        assert counted(rules.addresses["api"], 20, HEADER).by_version == {"1.1.0": 20}
        rules.stack.preview("--expect-no-changes", "--refresh").check()


@pytest.fixture(scope="class")
def gateways(bed: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """A release on its owned Gateway plus a shared one in another namespace."""
    shared_ns = unique("gc-shared")
    kube.run("create", "namespace", shared_ns).check()
    shared_gateway(kube, shared_ns, "All")
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("gateways"),
        "gws",
        {
            "appName": APP,
            "stableImage": V1,
            "canaryImage": V2,
            "canaryWeight": "25",
            "stableReplicas": "1",
            "gatewayClassName": "eg",
        },
    )
    set_in_stack_file(
        stack, {"hostnames": [HOST], "parentRefs": [{"name": "shared", "namespace": shared_ns}]}
    )
    try:
        yield Release(stack, kube, "", shared_ns)
    finally:
        stack.destroy()
        kube.run("delete", "namespace", shared_ns, "--wait=false")


class TestSeveralGateways:
    def test_1_the_update_waits_for_both_gateways(self, gateways: Release) -> None:
        gateways.stack.up(message="canary 25% on two gateways").check()
        gateways.namespace = str(gateways.stack.outputs()["namespace"])
        route = accepted_by_every_parent(gateways.kube, gateways.namespace, 2)
        assert route["spec"]["parentRefs"][1]["name"] == "shared"  # type: ignore[index]
        shared_ns = gateways.shared_namespace
        gateways.addresses["owned"] = gateway_target(gateways.kube, gateways.namespace)
        gateways.addresses["shared"] = gateway_target(gateways.kube, shared_ns, "shared")
        for where in ("owned", "shared"):
            settle(gateways.addresses[where], {"header": "1.1.0"})

    def test_2_the_split_is_seen_through_both_addresses(self, gateways: Release) -> None:
        assert gateways.addresses["owned"].connect != gateways.addresses["shared"].connect
        for where in ("owned", "shared"):
            tally = counted(gateways.addresses[where], 400)
            print(f"\n{where} gateway at 25%: {tally.by_version}")
            in_interval(tally, Fraction(1, 4))
        verified = canary(gateways.stack, "verify", "-n", "400", "--json")
        report = json.loads(verified.stdout)
        assert verified.code == 0 and report["ok"], verified.output
        urls = {g["gateway"]: g["target"]["url"] for g in report["gateways"]}
        assert set(urls) == {f"{gateways.namespace}/{APP}-gateway", f"{gateways.shared_namespace}/shared"}
        assert len(set(urls.values())) == 2, urls
        one = canary(gateways.stack, "verify", "-n", "100", "--gateway", "shared")
        assert one.code == 0 and one.stdout.startswith(f"gateway      {gateways.shared_namespace}/shared\n")

    def test_3_a_refused_second_parent_fails_the_update_naming_it(self, gateways: Release) -> None:
        stack, kube = gateways.stack, gateways.kube
        shared_ns = gateways.shared_namespace
        shared_gateway(kube, shared_ns, "Same")
        wait_for(
            lambda: refusal_of(kube.get(ROUTE, APP, gateways.namespace) or {}) is not None, 60, "EG to refuse"
        )
        stack.pulumi("config", "set", "canaryWeight", "50").check()
        stack.pulumi("config", "set", "rolloutTimeout", "20").check()
        refused = stack.up(message="canary 50% while the shared gateway refuses")
        assert refused.code != 0, refused.output
        assert f"@.parentRef.name=='shared' && @.parentRef.namespace=='{shared_ns}'" in refused.output
        assert 'found "NotAllowedByListeners"' in refused.output, refused.output
        print("\n" + next(line for line in refused.output.splitlines() if "NotAllowedByListeners" in line))
        route = kube.get(ROUTE, APP, gateways.namespace) or {}
        by_parent = {
            p["parentRef"]["name"]: {c["type"]: c["status"] for c in p["conditions"]}
            for p in route["status"]["parents"]
        }
        assert (
            by_parent[f"{APP}-gateway"]["Accepted"] == "True" and by_parent["shared"]["Accepted"] == "False"
        )
        shared_gateway(kube, shared_ns, "All")
        stack.up(message="the shared gateway allows it again").check()
        accepted_by_every_parent(kube, gateways.namespace, 2)


def test_an_existing_stack_plans_no_change_after_the_upgrade(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    """A stack deployed by the program before routeRules and parentRefs existed, previewed by today's."""
    git = shutil.which("git")
    assert git is not None, "git is needed to read the program before the upgrade"
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(
        [git, "-C", str(REPO), "archive", OLD_COMMIT, "canary", "Pulumi.yaml", "__main__.py"],
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, f"git archive {OLD_COMMIT}: {archive.stderr.decode()} (a shallow clone?)"
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    project = private_project(tmp_path / "project", src=old)
    stack = PulumiStack(project, unique("upgrade"), {**env, "PYTHONPATH": str(old)}).init()
    config = {
        "namespace": unique("gc-upgrade"),
        "appName": APP,
        "stableImage": V1,
        "canaryImage": V2,
        "canaryWeight": "25",
        "mirrorPercent": "5",
        "stableReplicas": "1",
    }
    stack.set_config({**config, **gateway_settings(config)})
    try:
        # The old program is the one that runs: it does not know routeRules yet.
        stack.pulumi("config", "set", "routeRules", "[]").check()
        unknown = stack.preview()
        assert unknown.code != 0 and "routeRules: unknown config key" in unknown.output, unknown.output
        stack.pulumi("config", "rm", "routeRules").check()
        stack.up(message="deployed before the upgrade").check()
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy(REPO / name, project / name)
        upgraded = PulumiStack(project, stack.name, env)
        # Today's program checks the GatewayClass's features: this class lists none, so the mirror the stack
        # already runs is refused until the user takes it on trust; nothing else changes.
        refused = upgraded.preview()
        assert refused.code != 0, refused.output
        assert "mirrorPercent: needs the Gateway API feature HTTPRouteRequestMirror, and GatewayClass " in (
            refused.output
        )
        upgraded.pulumi("config", "set", "gatewayFeatures", "assume").check()
        found = upgraded.preview("--expect-no-changes", "--diff")
        assert found.code == 0, found.output
        assert "lists no supportedFeatures; assumed (gatewayFeatures: assume)" in found.output
    finally:
        stack.destroy()
