"""`canary verify` through the CLI's error boundary: a fake stack and apiserver, real requests to a real
HTTP server on 127.0.0.1 (tests/unit/podinfo_server.py). The verdict, the report, exit codes, bad input."""

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canary.cli import main as cli
from canary.gateway_api import GATEWAY_RESOURCE, GRPC_ROUTE_KIND, ROUTE_RESOURCE, ROUTE_RESOURCES
from canary.ops.core.state import StackState, deployed_from_outputs
from canary.ops.pulumi.stack import Release
from tests.unit.ops.verify.test_grpc_versions import server
from tests.unit.podinfo_server import Podinfo, podinfo

GRPC_ROUTE_RESOURCE = ROUTE_RESOURCES[GRPC_ROUTE_KIND]
__all__ = ["server"]  # a real grpcio server on loopback (the gRPC client's own tests)

STABLE, CANARY = "ghcr.io/stefanprodan/podinfo:6.7.0", "ghcr.io/stefanprodan/podinfo:6.7.1"


@dataclass
class Value:
    value: Any


def http_route(
    stable: int, canary: int, generation: int = 3, hostnames: list[str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "gc-web", "generation": generation, "resourceVersion": "9"},
        "spec": {
            "parentRefs": [{"name": "web-gateway"}],
            "hostnames": hostnames if hostnames is not None else ["app.example.com"],
            "rules": [
                {
                    "matches": [{"headers": [{"name": "x-canary", "value": "true"}]}],
                    "backendRefs": [{"name": "web-canary", "port": 80}],
                },
                {
                    "backendRefs": [
                        {"name": "web-stable", "port": 80, "weight": stable},
                        {"name": "web-canary", "port": 80, "weight": canary},
                    ]
                },
            ],
        },
    }


class FakeLive:
    def __init__(self, objects: dict[tuple[str, str, str | None], dict[str, Any]]) -> None:
        self.objects = objects
        self.reads: list[tuple[str, str, str | None]] = []

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.reads.append((kind, name, namespace))
        return self.objects.get((kind, name, namespace))


class FakeStack:
    def __init__(self, outputs: dict[str, Any]) -> None:
        self._outputs = outputs

    def outputs(self) -> dict[str, Value]:
        return {name: Value(value) for name, value in self._outputs.items()}


class FakeRelease:
    name = "dev"
    project = "gateway-canary"
    kind = "HTTPRoute"
    """The route's kind in the (fake) state."""

    def __init__(self, outputs: dict[str, Any], live: FakeLive) -> None:
        self.stack = FakeStack(outputs)
        self.live = live

    def stack_state(self) -> StackState:
        """The route's kind is the state's (an HTTPRoute here unless a test says otherwise)."""
        deployed = deployed_from_outputs(dict(self.stack._outputs))
        if deployed is not None:
            deployed = dataclasses.replace(deployed, route_kind=self.kind)
        return StackState(deployed, "urn:route", None)


OUTPUTS = {
    "phase": "canary 25%",
    "canaryWeight": 25.0,
    "stableImage": STABLE,
    "canaryImage": CANARY,
    "routeName": "web",
    "namespace": "gc-web",
    "gatewayName": "web-gateway",
}


DRIFT = (
    "FAIL: the live route sends 50% to canary, the stack says 25%: edited outside Pulumi (`canary status` "
    "shows the drift, `pulumi up --refresh` restores the stack's split)"
)


@pytest.fixture
def app():
    with podinfo() as server:
        server.version = lambda i: "6.7.1" if i % 4 == 0 else "6.7.0"  # exactly 25% canary
        yield server


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, app: Podinfo):
    """A fake apiserver holding the route at 75/25 and a Gateway whose address is the test server."""
    gateway = {
        "metadata": {"name": "web-gateway", "namespace": "gc-web"},
        "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": app.port}]},
        "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.1"}]},
    }
    live = FakeLive(
        {
            (ROUTE_RESOURCE, "web", "gc-web"): http_route(75, 25),
            (GATEWAY_RESOURCE, "web-gateway", "gc-web"): gateway,
        }
    )
    outputs = dict(OUTPUTS)
    monkeypatch.setattr(Release, "open", classmethod(lambda cls, cwd, stack: FakeRelease(outputs, live)))
    return live, outputs


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_correct_split_passes_through_the_gateway_address(app: Podinfo, cluster) -> None:
    live, _ = cluster
    code, out, err = run(["verify", "--requests", "400"])
    assert (code, err) == (0, ""), out
    gateway, *lines = out.splitlines()
    assert gateway == "gateway      gc-web/web-gateway"
    assert (
        lines[0]
        == f"target       http://127.0.0.1:{app.port}/version, Host: app.example.com (127.0.0.1: loopback)"
    )
    assert lines[1] == (
        "intent       live route gc-web/web, generation 3: route weights stable 75 / canary 25 (canary 25%)"
    )
    assert lines[2].startswith("sent         400 of 400 requests in ")
    assert lines[3:6] == [
        "version        track    count    share  intended  99.9% interval",
        "6.7.0          stable     300    75.0%       75%  271-328",
        "6.7.1          canary     100    25.0%       25%  72-129",
    ]
    assert (
        lines[6]
        == "PASS: canary answered 100 of 400, inside the 99.9% interval 72-129 for 25%; no failed requests"
    )
    assert {h["host"] for h in app.seen} == {"app.example.com"}
    assert (GATEWAY_RESOURCE, "web-gateway", "gc-web") in live.reads


def test_a_route_patched_to_another_split_fails(app: Podinfo, cluster) -> None:
    live, _ = cluster
    live.objects[(ROUTE_RESOURCE, "web", "gc-web")] = http_route(50, 50, generation=4)
    code, out, _ = run(["verify", "-n", "400", "--url", app.url])
    assert code == 1
    assert (
        "FAIL: canary answered 100 of 400 requests (25%), outside the 99.9% interval 167-233 for 50%" in out
    )
    assert DRIFT in out


def test_a_patched_route_fails_even_when_traffic_follows_it(app: Podinfo, cluster) -> None:
    live, _ = cluster
    live.objects[(ROUTE_RESOURCE, "web", "gc-web")] = http_route(50, 50, generation=4)
    app.version = lambda i: "6.7.1" if i % 2 else "6.7.0"
    code, out, _ = run(["verify", "-n", "400", "--url", app.url])
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [DRIFT]


def test_json_result(app: Podinfo, cluster) -> None:
    code, out, _ = run(["verify", "-n", "40", "--url", app.url, "--json"])
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    assert data["canaryCount"] == 10 and data["counted"] == 40 and data["sent"] == 40
    assert data["target"] == {"url": app.url, "host": "app.example.com", "checked": "127.0.0.1: loopback"}
    assert data["route"] == {"name": "gc-web/web", "generation": 3, "stableWeight": 75, "canaryWeight": 25}
    assert [v["count"] for v in data["versions"]] == [30, 10]


def test_header_requests_must_reach_the_canary(app: Podinfo, cluster) -> None:
    code, out, _ = run(
        ["verify", "-n", "20", "--url", app.url, "--header", "x-canary: true", "--host", "h.test"]
    )
    assert code == 1
    assert "FAIL: 15 of 20 header requests reached stable, not the canary" in out
    assert {(h["x-canary"], h["host"]) for h in app.seen} == {("true", "h.test")}
    app.version = lambda i: "6.7.1"
    code, out, _ = run(["verify", "-n", "20", "--url", app.url, "--header", "x-canary: true"])
    assert code == 0 and "intent       live route gc-web/web, generation 3: header 'x-canary: true'" in out
    assert out.splitlines()[-1] == "PASS: all 20 header requests reached the canary; no failed requests"


def test_failed_requests_fail_the_verdict(app: Podinfo, cluster) -> None:
    app.status = lambda i: 500 if i == 7 else 200
    code, out, _ = run(["verify", "-n", "40", "--url", app.url])
    assert code == 1 and "FAIL: 1 of 40 requests failed (HTTP 500 x1)" in out
    assert "(failed)       HTTP 500      1" in out


def test_the_route_changing_during_the_run_fails(app: Podinfo, cluster) -> None:
    live, _ = cluster
    routes = iter([http_route(75, 25, generation=3), http_route(100, 0, generation=4)])
    live.get = lambda kind, name, namespace=None: next(routes) if kind == ROUTE_RESOURCE else None
    code, out, _ = run(["verify", "-n", "40", "--url", app.url])
    assert code == 1 and "FAIL: the live route changed during the run (generation 3 -> 4)" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["-n", "0"], 2, "canary: --requests must be between 1 and 20000, not 0\n"),
        (["-n", "-3"], 2, "canary: --requests must be between 1 and 20000, not -3\n"),
        (
            ["--header", "x-canary"],
            2,
            "canary: --header 'x-canary' is not a header: write it as 'Name: value'",
        ),
        (["--confidence", "abc"], 2, "canary: --confidence 'abc' is not a percent from 50 to below 100"),
        (["--url", "http://203.0.113.7/version"], 1, "canary: refusing to send load to 203.0.113.7: "),
        (["--url", "http://app.example.com/"], 1, "canary: 'app.example.com' is not an IP address"),
    ],
)
def test_bad_input_is_one_line(cluster, argv: list[str], code: int, message: str) -> None:
    got, out, err = run(["verify", *argv])
    assert (got, out) == (code, "")
    assert err.startswith(message) and err.count("\n") == 1, err


def test_an_unreachable_url_is_one_line(cluster) -> None:
    got, out, err = run(["verify", "--url", "http://127.0.0.1:9/version", "--timeout", "1"])
    assert (got, out) == (1, "")
    assert err == "canary: http://127.0.0.1:9/version does not answer: connection refused\n"


def test_answers_without_any_version_are_one_line(app: Podinfo, cluster) -> None:
    app.raw_body = b"<html>hello</html>"
    got, _, err = run(["verify", "-n", "10", "--url", app.url])
    assert got == 1
    assert err == (
        f"canary: none of the 10 answers from {app.url} named a version in a JSON field 'version': the app "
        "must report its version there (podinfo's /version does), or pass --version-field (and --path for a "
        "path a split rule of the route matches)\n"
    )


def test_each_gateway_of_the_route_is_verified_apart_or_one_by_name(app: Podinfo, cluster) -> None:
    """Two parents: the load goes through each Gateway's own address and each is judged; --gateway picks one,
    --path sets the path requested at each."""
    live, _ = cluster
    live.objects[(ROUTE_RESOURCE, "web", "gc-web")]["spec"]["parentRefs"].append(
        {"name": "shared", "namespace": "infra"}
    )
    shared = json.loads(json.dumps(live.objects[(GATEWAY_RESOURCE, "web-gateway", "gc-web")]))
    live.objects[(GATEWAY_RESOURCE, "shared", "infra")] = shared
    code, out, _ = run(["verify", "-n", "40", "--json"])
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert [(g["gateway"], g["target"]["url"]) for g in report["gateways"]] == [
        ("gc-web/web-gateway", f"http://127.0.0.1:{app.port}/version"),
        ("infra/shared", f"http://127.0.0.1:{app.port}/version"),
    ]
    assert len(app.seen) == 80  # one shared address here; the bed's test sends to two (test_routes.py)
    code, out, _ = run(["verify", "-n", "8", "--gateway", "infra/shared", "--path", "/api/version"])
    assert code == 0 and out.splitlines()[:2] == [
        "gateway      infra/shared",
        f"target       http://127.0.0.1:{app.port}/api/version, Host: app.example.com (127.0.0.1: loopback)",
    ]
    code, _, err = run(["verify", "--gateway", "edge"])
    assert code == 1 and "the live route attaches to no Gateway named 'edge'" in err
    code, _, err = run(["verify", "--url", app.url, "--gateway", "infra/shared"])
    assert code == 2 and "--url names the whole target" in err


def test_no_gateway_address_says_pass_url(cluster) -> None:
    live, _ = cluster
    del live.objects[(GATEWAY_RESOURCE, "web-gateway", "gc-web")]["status"]
    got, _, err = run(["verify"])
    assert got == 1 and "Gateway web-gateway has no status.addresses yet" in err and "pass --url" in err


def test_identical_tags_are_refused(cluster) -> None:
    _, outputs = cluster
    outputs["canaryImage"] = "other.registry/podinfo:6.7.0"
    got, _, err = run(["verify"])
    assert got == 1 and "same tag '6.7.0'" in err


def test_never_deployed(cluster) -> None:
    _, outputs = cluster
    outputs.clear()
    got, _, err = run(["verify", "--cwd", str(Path("."))])
    assert got == 1 and "never deployed" in err


def test_a_grpc_release_is_verified_with_real_version_calls(
    cluster, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release whose state holds a GRPCRoute: podinfo's Version rpc over grpcio (a real server on
    loopback that answers "b" to calls with x-canary metadata, "a" otherwise), judged like HTTP answers."""
    live, outputs = cluster
    live.objects[(GRPC_ROUTE_RESOURCE, "web", "gc-web")] = http_route(100, 0)
    outputs.update(stableImage="registry.example/web:a", canaryImage="registry.example/web:b", canaryWeight=0)
    monkeypatch.setattr(FakeRelease, "kind", GRPC_ROUTE_KIND)
    code, out, _ = run(["verify", "-n", "20", "--url", server])
    assert code == 0, out
    assert out.splitlines()[0] == (
        f"target       grpc://{server}/version.VersionService/Version, Host: app.example.com "
        "(127.0.0.1: loopback)"
    )
    code, out, _ = run(["verify", "-n", "10", "--url", server, "--header", "x-canary: true", "--json"])
    report = json.loads(out)
    assert code == 0 and report["headers"] == {"x-canary": "true"}, out
    assert [(row["version"], row["count"]) for row in report["versions"]] == [("a", 0), ("b", 10)]
