"""TLS material from secret config: validation that never echoes a value, the Secret manifest, and wiring
that hands the data to Pulumi as a secret."""

import base64
from typing import Any

import pulumi
import pytest

from canary.gateway_api import GATEWAY_TYPE as GATEWAY
from canary.release.access import tls_secret_manifest
from canary.release.args import args_from_config
from canary.release.component import CanaryRelease
from canary.release.render import render
from canary.release.stack_config import read_secret_keys
from canary.release.validate import ConfigError, parse_config
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import PROJECT, project_schema, raw_config, release_settings

CERT = "-----BEGIN CERTIFICATE-----\nTUlJQ0VydGlmaWNhdGVQbGFjZWhvbGRlcg==\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbC1kby1ub3QtbGVhaw==\n-----END PRIVATE KEY-----\n"
EC_KEY = "-----BEGIN EC PRIVATE KEY-----\nZWMta2V5\n-----END EC PRIVATE KEY-----"
SECRET = "kubernetes:core/v1:Secret"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
"""Pulumi's signature of a secret value on the wire."""


def tls(**overrides: Any) -> dict[str, str]:
    return raw_config(**{"tlsSecretName": "web-tls", "tlsCert": CERT, "tlsKey": KEY, **overrides})


def problems(raw: dict[str, str], secret_keys: Any = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, secret_keys)
    for _, message in caught.value.problems:
        assert "c2VjcmV0" not in message and "TUlJQ0Vy" not in message, "a message repeated key material"
    assert "c2VjcmV0" not in str(caught.value)
    return caught.value.problems


def test_keys_are_declared_empty_by_default() -> None:
    schema = project_schema()
    for key in ("tlsCert", "tlsKey"):
        assert (schema[key]["type"], schema[key]["default"]) == ("string", "")
    assert "--secret" in schema["tlsKey"]["description"]
    args = release_settings()
    assert (args.tls_cert, args.tls_key) == (None, None)
    assert render(args).tls_secret is None


def test_both_set_with_a_secret_name() -> None:
    args = parse_config(tls(), secret_keys={"tlsCert", "tlsKey"})
    assert (args.tls_cert, args.tls_key, args.tls_secret_name) == (CERT, KEY, "web-tls")
    assert parse_config(tls(tlsKey=EC_KEY), secret_keys={"tlsKey"}).tls_key == EC_KEY


def test_key_material_is_not_in_repr() -> None:
    args = parse_config(tls())
    assert "c2VjcmV0" not in repr(args) and "TUlJQ0Vy" not in repr(args)


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        ({"tlsKey": ""}, "tlsKey", "set together with tlsCert (both or neither)"),
        ({"tlsCert": ""}, "tlsCert", "set together with tlsKey (both or neither)"),
        ({"tlsSecretName": ""}, "tlsSecretName", "the name of the Secret to create from tlsCert and tlsKey"),
        ({"tlsCert": "not a cert"}, "tlsCert", "'' or a PEM certificate"),
        ({"tlsKey": KEY.replace("PRIVATE KEY", "PUBLIC KEY")}, "tlsKey", "'' or a PEM private key"),
    ],
)
def test_bad_tls_material_names_the_key_without_its_value(
    overrides: dict[str, str], key: str, allowed: str
) -> None:
    found = problems(tls(**overrides))
    assert [k for k, _ in found] == [key]
    message = found[0][1]
    assert message.startswith(f"{key}: ")
    assert allowed in message
    if overrides[key]:
        assert message.startswith(f"{key}: (value not shown) is not allowed: ")


def test_a_plaintext_key_is_refused_when_the_program_knows_which_keys_are_secret() -> None:
    found = problems(tls(), secret_keys={"tlsCert"})
    assert found == [
        (
            "tlsKey",
            "tlsKey: (value not shown) is not allowed: a secret: set it with "
            "`pulumi config set --secret tlsKey` (only ciphertext is stored)",
        )
    ]
    # Callers that only read config (the CLI) pass no secret keys and are not refused.
    assert parse_config(tls()).tls_key == KEY


def test_tls_material_with_an_existing_gateway_is_refused() -> None:
    found = problems(tls(createGateway=False, gatewayName="shared"))
    assert [k for k, _ in found] == ["tlsSecretName"]


def test_read_secret_keys_strips_the_namespace(pulumi_mocks: object) -> None:
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:tlsKey": KEY, f"{PROJECT}:appName": "web", "kubernetes:context": "x"},
        secret_keys=[f"{PROJECT}:tlsKey", "kubernetes:context"],
    )
    assert read_secret_keys(PROJECT) == frozenset({"tlsKey"})


@pytest.mark.parametrize(("env", "expected"), [("null", set()), ('["gateway-canary:tlsKey"]', {"tlsKey"})])
def test_read_secret_keys_from_the_environment(
    pulumi_mocks: object, monkeypatch: pytest.MonkeyPatch, env: str, expected: set[str]
) -> None:
    """What the language host passes: a JSON list, or null when no key is secret."""
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", env)
    assert read_secret_keys(PROJECT) == expected


def test_secret_manifest_is_kubernetes_tls_with_base64_data() -> None:
    manifest = tls_secret_manifest(parse_config(tls(namespace="shop", appName="web")))
    assert manifest["type"] == "kubernetes.io/tls"
    assert manifest["metadata"] == {
        "name": "web-tls",
        "namespace": "shop",
        "labels": {"app.kubernetes.io/name": "web"},
    }
    assert base64.b64decode(manifest["data"]["tls.key"]).decode() == KEY
    assert base64.b64decode(manifest["data"]["tls.crt"]).decode() == CERT


def test_secret_does_not_depend_on_the_weight() -> None:
    from tests.unit.helpers import CANARY

    at = [render(parse_config(tls(canaryImage=CANARY, canaryWeight=w))) for w in ("5", "50")]
    assert at[0].tls_secret == at[1].tls_secret


@pulumi.runtime.test
def test_component_passes_the_data_as_a_secret(
    pulumi_mocks: PulumiMocks, monkeypatch: pytest.MonkeyPatch
) -> pulumi.Output[None]:
    seen: dict[str, Any] = {}
    register = pulumi_mocks.monitor.RegisterResource

    def spy(request: Any) -> Any:
        if request.type == SECRET:
            obj = request.object  # a protobuf Struct: nested Structs index like dicts
            seen["object"] = {"type": obj["type"], "data": dict(obj["data"].items())}
            seen["secret_outputs"] = list(request.additionalSecretOutputs)
        return register(request)

    monkeypatch.setattr(pulumi_mocks.monitor, "RegisterResource", spy)
    release = CanaryRelease("web", args_from_config(tls(appName="web")))
    assert release.tls_secret is not None

    def check(_: Any) -> None:
        data = seen["object"]["data"]
        assert data.get("4dabf18193072939515e22adb298388d") == SECRET_SIG, "data is not sent as a secret"
        assert set(seen["secret_outputs"]) >= {"data", "stringData"}
        assert seen["object"]["type"] == "kubernetes.io/tls"
        gateway_deps = pulumi_mocks.monitor.dependencies[(GATEWAY, "web-gateway")]
        assert any(f"{SECRET}::web-tls" in urn for urn in gateway_deps), (
            "the Gateway must wait for its Secret"
        )

    return pulumi.Output.all(release.urn, release.tls_secret.urn, release.route.urn).apply(check)
