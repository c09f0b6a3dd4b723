"""The fast rollback's pure parts (canary.ops.fast.write): config and state read as the engine has them, the
live route checked against the program's rendering, the apply body, the lock; and the CLI wiring (the
route written before the stack is opened, the `pulumi up` path when the fast one cannot be used)."""

from __future__ import annotations

import copy
import gzip
import io
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.cli import main as cli
from canary.ops.errors import Refused
from canary.ops.fast import write as rollback
from canary.ops.kube import https
from canary.ops.pulumi import local_backend
from canary.ops.pulumi.stack import Release
from canary.release.keys import config_string
from canary.release.routing import route_manifest
from canary.route_state import split_rule_index
from tests.unit.helpers import CANARY, REPO, raw_config, release_settings

UID = "6d1c7c1e-0000-4000-8000-000000000001"
STATE = rollback.StateRoute("urn:route", "shop", "web", UID, "pulumi-kubernetes-1234abcd", ())


def rendered(weight: str = "0", **overrides: Any) -> dict[str, Any]:
    settings = release_settings(
        appName="web", namespace="shop", canaryImage=CANARY, canaryWeight=weight, **overrides
    )
    return route_manifest(settings)


def as_live(manifest: dict[str, Any], uid: str = UID) -> dict[str, Any]:
    """The manifest as the apiserver returns it: metadata it adds and the CRD's defaults filled in."""
    live = copy.deepcopy(manifest)
    live["metadata"].update({"uid": uid, "resourceVersion": "42", "generation": 3})
    for parent in live["spec"]["parentRefs"]:
        parent.update({"group": "gateway.networking.k8s.io", "kind": "Gateway"})
    for rule in live["spec"]["rules"]:
        for ref in rule["backendRefs"]:
            ref.update({"group": "", "kind": "Service"})
            ref.setdefault("weight", 1)
    return live


def test_stack_config_is_read_as_the_engine_hands_it_to_the_program() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    stack = {
        "config": {
            "gateway-canary:canaryImage": CANARY,
            "gateway-canary:canaryWeight": "25",
            "gateway-canary:hostnames": ["b.example", "a.example"],
            "gateway-canary:tlsKey": {"secure": "v1:ciphertext"},
            "kubernetes:context": "elsewhere",
        }
    }
    raw, secure = local_backend.stack_raw_config(project, stack, config_string)
    assert raw == {
        **raw_config(),
        "canaryImage": CANARY,
        "canaryWeight": "25",
        "hostnames": '["b.example","a.example"]',
        "tlsKey": "",
    }
    assert secure == {"tlsKey"}
    assert local_backend.stack_raw_config(project, None, config_string) == (raw_config(), frozenset())


def test_a_stack_with_an_esc_environment_is_left_to_pulumi() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    with pytest.raises(local_backend.FastUnavailable, match="ESC environment"):
        local_backend.stack_raw_config(project, {"environment": ["prod"]}, config_string)


def test_the_route_in_state_is_the_one_the_outputs_name(tmp_path: Path) -> None:
    component = "urn:pulumi:s::p::gateway-canary:index:CanaryRelease::web"
    route: dict[str, Any] = {
        "urn": "urn:pulumi:s::p::gateway-canary:index:CanaryRelease$HTTPRoute::web-route",
        "type": "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
        "parent": component,
        "outputs": {
            "__fieldManager": "pulumi-kubernetes-1234abcd",
            "metadata": {"name": "web", "namespace": "shop", "uid": UID},
        },
    }
    other = {**route, "urn": "urn:other", "outputs": {"metadata": {"name": "other", "namespace": "shop"}}}
    stack = {"type": "pulumi:pulumi:Stack", "outputs": {"routeName": "web"}}
    stable = {"urn": "urn:stable", "type": "kubernetes:apps/v1:Deployment", "parent": component}
    another = {"urn": "urn:another", "type": "kubernetes:apps/v1:Deployment", "parent": "urn:other-release"}
    deleted = {**stable, "urn": "urn:canary", "delete": True}
    deployment = {"resources": [stack, other, stable, another, deleted, route]}
    assert rollback.route_in_state(deployment) == rollback.StateRoute(
        route["urn"], "shop", "web", UID, "pulumi-kubernetes-1234abcd", ("urn:stable",)
    )
    with pytest.raises(Refused, match="names no route of this release"):
        rollback.route_in_state({"resources": [stack]})

    backend = tmp_path / "backend"
    path = backend / ".pulumi" / "stacks" / "gateway-canary" / "dev.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(json.dumps({"checkpoint": {"latest": deployment}}).encode()))
    assert local_backend.file_backend_dir(f"file://{backend}") == backend
    assert local_backend.file_backend_dir("s3://bucket") is None
    found = local_backend.state_file(backend, "gateway-canary", "dev")
    assert found == path and local_backend.read_checkpoint(path) == deployment
    assert local_backend.state_file(backend, "gateway-canary", "prod") is None


@pytest.mark.parametrize("weight", ["0", "5", "50", "0.5", "100"])
def test_a_route_the_program_rendered_at_any_weight_may_be_rolled_back(weight: str) -> None:
    assert rollback.live_problems(as_live(rendered(weight)), rendered("0"), STATE, "web") == []


def test_hand_edited_weights_are_what_a_rollback_undoes() -> None:
    live = as_live(rendered("25"))
    split = live["spec"]["rules"][split_rule_index(live, "web") or 0]
    split["backendRefs"][0]["weight"] = 3
    split["backendRefs"][1]["weight"] = 7
    assert rollback.live_problems(live, rendered("0"), STATE, "web") == []


def test_a_route_that_is_not_the_programs_is_refused_with_what_differs() -> None:
    want = rendered("0")
    other_uid = as_live(rendered("25"), uid="another")
    assert "not the one the stack created" in rollback.live_problems(other_uid, want, STATE, "web")[0]

    no_force = as_live(rendered("25"))
    del no_force["metadata"]["annotations"]["pulumi.com/patchForce"]
    assert rollback.live_problems(no_force, want, STATE, "web") == [
        "annotation pulumi.com/patchForce is None, the program sets 'true'"
    ]

    extra_backend = as_live(rendered("25"))
    split = split_rule_index(extra_backend, "web") or 0
    extra_backend["spec"]["rules"][split]["backendRefs"].append({"name": "web-v3", "port": 80, "weight": 1})
    other_parent = as_live(rendered("25"))
    other_parent["spec"]["parentRefs"][0]["name"] = "someone-elses-gateway"
    no_header_rule = as_live(rendered("25"))
    del no_header_rule["spec"]["rules"][1 - split]
    for live, where in [
        (extra_backend, f"spec.rules[{split}].backendRefs"),
        (other_parent, "spec.parentRefs[0].name"),
        (no_header_rule, "spec.rules"),
    ]:
        problems = rollback.live_problems(live, want, STATE, "web")
        assert len(problems) == 1 and problems[0].startswith(where), problems


def test_the_apply_body_is_the_programs_route_with_the_checked_resource_version() -> None:
    want = rendered("0")
    body = rollback.apply_body(want, "42")
    assert body["metadata"].pop("resourceVersion") == "42"
    assert body == want
    assert "resourceVersion" not in want["metadata"], "the rendering itself is left alone"
    split = want["spec"]["rules"][split_rule_index(want, "web") or 0]
    assert [ref["weight"] for ref in split["backendRefs"]] == [100, 0]


def test_a_lock_file_names_who_holds_the_stack(tmp_path: Path) -> None:
    assert local_backend.lock_holders(tmp_path, "gateway-canary", "dev") == []
    folder = tmp_path / ".pulumi" / "locks" / "organization" / "gateway-canary" / "dev"
    folder.mkdir(parents=True)
    holder = {"pid": 4242, "username": "ci", "hostname": "runner-1", "timestamp": "2026-12-01T22:00:00Z"}
    (folder / "a1b2.json").write_text(json.dumps(holder))
    assert local_backend.lock_holders(tmp_path, "gateway-canary", "dev") == [holder]
    assert local_backend.lock_holders(tmp_path, "gateway-canary", "prod") == []
    message = rollback.lock_message("dev", [holder])
    assert message.startswith("stack dev is locked by a running update (pid 4242, on runner-1, user ci")
    assert "nothing was written" in message and "Stop it first" in message


class FakeConnection:
    """Stands in for https.EarlyConnection: no network in unit tests; says when it opened and closed."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def __call__(self, env: object, timeout: float) -> FakeConnection:
        self.order.append("connect")
        return self

    def close(self) -> None:
        self.order.append("close")


def test_rollback_yes_writes_before_the_stack_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection opens first, the route is written (make_safe, given that connection), the connection
    closes, and only then is the stack opened for the record."""
    order: list[str] = []
    connection = FakeConnection(order)

    def make_safe(cwd: Path, stack: str | None, **kwargs: Any) -> rollback.AlreadyZero:
        assert kwargs["connection"] is connection
        order.append(f"make_safe {stack}")
        return rollback.AlreadyZero("dev")

    def open_(cls: type, cwd: Path, stack: str | None) -> object:
        order.append("open")
        return types.SimpleNamespace()  # main sets its actor

    monkeypatch.setattr(rollback, "make_safe", make_safe)
    monkeypatch.setattr(https, "EarlyConnection", connection)
    monkeypatch.setattr(Release, "open", classmethod(open_))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["rollback", "--yes", "--stack", "dev"], out=out, err=err) == 0, err.getvalue()
    assert order == ["connect", "make_safe dev", "close", "open"]
    assert "nothing to roll back" in out.getvalue()


def test_a_refused_fast_write_goes_through_the_one_error_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    def make_safe(*_: Any, **__: Any) -> None:
        raise Refused("stack dev is locked by a running update (pid 1): nothing was written")

    monkeypatch.setattr(rollback, "make_safe", make_safe)
    monkeypatch.setattr(https, "EarlyConnection", FakeConnection([]))
    monkeypatch.setattr(Release, "open", classmethod(lambda cls, cwd, stack: pytest.fail("opened")))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["rollback", "--yes", "--stack", "dev", "--json"], out=out, err=err) == 1
    assert err.getvalue() == "canary: stack dev is locked by a running update (pid 1): nothing was written\n"
    assert json.loads(out.getvalue())["ok"] is False


def test_the_exit_codes_are_the_commands_own() -> None:
    from canary.cli import commands

    assert (cli.EXIT_OK, cli.EXIT_REFUSED) == (commands.EXIT_OK, commands.EXIT_REFUSED)


def test_the_fast_path_imports_no_pulumi_before_the_write() -> None:
    """What `canary rollback --yes` imports up to the route's write (the CLI, the fast path and the modules
    make_safe imports inside: the program's validation and rendering) and what `canary status` imports
    on its quick path (canary.ops.rollout.status, the printer): not one module of the Pulumi SDK (`import
    pulumi` alone costs about 0.5 s)."""
    code = (
        "import sys, canary.cli.main, canary.cli.output, canary.ops.rollout.status, canary.ops.fast.write, "
        "canary.ops.core.plan, canary.ops.core.state, "
        "canary.release.keys, canary.release.routing, canary.release.validate, canary.route_state; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'grpc', 'google')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


def test_history_files_are_read_newest_first_as_pulumi_writes_them(tmp_path: Path) -> None:
    folder = tmp_path / ".pulumi" / "history" / "gateway-canary" / "dev"
    folder.mkdir(parents=True)
    older = {"kind": "update", "startTime": 1700000000, "endTime": 1700000003, "result": "succeeded"}
    newer = {
        "kind": "update",
        "startTime": 1700000100,
        "endTime": 1700000102,
        "result": "failed",
        "message": "canary 25%",
        "environment": {"git.author": "Ada"},
        "config": {"gateway-canary:canaryWeight": "25", "gateway-canary:tlsKey": {"secure": "v1:abc"}},
        "resourceChanges": {"update": 1, "same": 6},
    }
    (folder / "dev-1700000000000000000.history.json").write_text(json.dumps(older))
    (folder / "dev-1700000100000000000.history.json.gz").write_bytes(
        gzip.compress(json.dumps(newer).encode())
    )
    (folder / "dev-1700000100000000000.checkpoint.json").write_text("{}")
    files = local_backend.history_files(tmp_path, "gateway-canary", "dev")
    assert [f.name.split(".")[0] for f in files] == ["dev-1700000100000000000", "dev-1700000000000000000"]
    entry = local_backend.history_entry_of(local_backend.read_json(files[0]))
    assert (entry.kind, entry.result, entry.message) == ("update", "failed", "canary 25%")
    assert entry.duration is not None and entry.duration.total_seconds() == 2
    assert entry.config == {"gateway-canary:canaryWeight": "25", "gateway-canary:tlsKey": "[secret]"}
    assert (entry.environment, entry.resource_changes) == ({"git.author": "Ada"}, {"update": 1, "same": 6})
    assert local_backend.history_files(tmp_path, "gateway-canary", "prod") == []


def _local_stack(tmp_path: Path, config: dict[str, str]) -> local_backend.LocalStack:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(
        yaml.safe_dump({"config": {f"gateway-canary:{k}": v for k, v in config.items()}})
    )
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    return local_backend.LocalStack(tmp_path, project, "dev", tmp_path / "backend")


def _no_validation(*_: object, **__: object) -> None:
    raise AssertionError("the program's validation ran")


def test_a_config_rendered_before_gets_its_rendering_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"appName": "web", "namespace": "shop", "canaryImage": CANARY, "canaryWeight": "25"}
    local = _local_stack(tmp_path, config)
    first = rollback.rendered_at_zero(local)
    assert first.route == rendered("0") and first.app_name == "web"

    from canary.release import validate

    monkeypatch.setattr(validate, "parse_config", _no_validation)
    again = rollback.rendered_at_zero(local)
    assert again == first

    _local_stack(tmp_path, {**config, "canaryHeader": "x-beta: yes"})  # another config: rendered anew
    with pytest.raises(AssertionError, match="validation ran"):
        rollback.rendered_at_zero(local)


def test_a_rendering_is_remembered_for_the_config_and_the_programs_code() -> None:
    key = json.loads(rollback.rendering_key({"canaryWeight": "25"}, frozenset({"tlsKey"})))
    assert key["config"] == {"canaryWeight": "25"} and key["secure"] == ["tlsKey"]
    modules = {entry[0] for entry in key["code"]}
    assert {"release/routing.py", "release/validate.py", "weights.py", "route_state.py"} <= modules


def test_an_invalid_config_is_refused_and_not_remembered(tmp_path: Path) -> None:
    from canary.release.validate import ConfigError

    local = _local_stack(tmp_path, {"appName": "web", "canaryImage": CANARY, "canaryWeight": "250"})
    for _ in range(2):  # both times the program's validation says no
        with pytest.raises(ConfigError, match="canaryWeight"):
            rollback.rendered_at_zero(local)


BEFORE_THE_CONNECTION = ("argparse", "contextlib", "decimal", "pathlib", "tempfile", "typing", "urllib.parse")


def test_what_loads_before_the_connection_opens_is_what_the_connection_needs() -> None:
    """The CLI's entry and the HTTPS client load without pathlib, typing, contextlib, urllib.parse,
    decimal or argparse: `canary rollback --yes` starts its connection's thread right after them, and
    each of those (2-4 ms together) would hold the TLS handshake back (docs/performance.md)."""
    code = (
        "import sys, canary.cli.main, canary.cli.entry, canary.ops.kube.https; "
        f"print(sorted(m for m in sys.modules if m in {BEFORE_THE_CONNECTION!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


@pytest.mark.parametrize(
    ("full", "percent", "short"),
    [(3, "50", 2), (3, "25", None), (10, "5", None), (10, "25", 8), (1, "100", None), (4, "100", 1)],
)
def test_a_stable_following_traffic_is_short_of_a_rollback_s_pods(
    full: int, percent: str, short: int | None
) -> None:
    """With capacity.stable 'traffic' the fast write is refused (left to pulumi up, which scales the stable
    first) exactly when the stable runs fewer pods than 100% needs."""
    from decimal import Decimal

    from canary.ops.fast.write import stable_short

    assert stable_short(full, Decimal(percent)) == short


class ClassReader:
    """A LiveReader holding GatewayClasses and Gateways; counts what it was asked."""

    def __init__(self, objects: dict[tuple[str, str, str | None], dict[str, Any]]) -> None:
        self.objects = objects
        self.asked: list[tuple[str, str, str | None]] = []

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.asked.append((kind, name, namespace))
        return self.objects.get((kind, name, namespace))


def test_the_fast_rollback_checks_the_gateways_features_as_the_program_does(tmp_path: Path) -> None:
    """The rendering a rollback writes asks the same features the program checks at preview: a mirror on a
    class that does not list mirroring (Traefik's list) is refused before anything is written; a route of
    Core features reads nothing."""
    from canary.gateway_api import GATEWAY_CLASS_RESOURCE, GATEWAY_RESOURCE
    from tests.unit.test_features import TRAEFIK

    def rendering(**overrides: Any) -> rollback.Rendering:
        raw = raw_config(appName="web", namespace="shop", canaryImage=CANARY, **overrides)
        local = types.SimpleNamespace(raw_config=lambda _: (raw, frozenset()), cwd=tmp_path, stack="dev")
        return rollback.rendered_at_zero(local)  # type: ignore[arg-type]

    traefik = {"status": {"supportedFeatures": [{"name": name} for name in sorted(TRAEFIK)]}}
    reader = ClassReader(
        {
            (GATEWAY_CLASS_RESOURCE, "traefik", None): traefik,
            (GATEWAY_RESOURCE, "shared", "infra"): {"spec": {"gatewayClassName": "traefik"}},
        }
    )
    plain = rendering(gatewayClassName="traefik")
    assert rollback.feature_problems(plain, reader) == [] and reader.asked == []  # type: ignore[arg-type]
    mirrored = rendering(
        createGateway=False, parentRefs=[{"name": "shared", "namespace": "infra"}], mirrorPercent="100"
    )
    (problem,) = rollback.feature_problems(mirrored, reader)  # type: ignore[arg-type]
    assert problem.startswith(
        "mirrorPercent: needs the Gateway API feature HTTPRouteRequestMirror, which GatewayClass 'traefik'"
    )
    assert reader.asked == [(GATEWAY_RESOURCE, "shared", "infra"), (GATEWAY_CLASS_RESOURCE, "traefik", None)]
