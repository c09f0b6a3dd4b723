"""Bad input changes nothing: each case goes through a real `pulumi up` against a deployed release.

For every case the stack file is rewritten with one bad value, `pulumi up` must exit non-zero with one
message naming the key, the value and what is allowed, and every object in the release's namespace must keep
its resourceVersion (the apiserver saw no write at all). The release is deployed once, with a canary at 5%,
so every kind of object the program manages exists while the bad configs are tried.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import Kube, Result, release_stack

P = "gateway-canary:"
BASE = {
    "appName": "shop",
    "stableImage": "registry.example/shop:1.0.0",
    "canaryImage": "registry.example/shop:1.1.0",
    "canaryWeight": "5",
    "stableReplicas": 1,
    "canaryReplicas": 1,
}
BROKEN_YAML = "config:\n  gateway-canary:canaryWeight: [5\n"
SNAPSHOT_KINDS = (
    "deployments,replicasets,pods,services,endpointslices,configmaps,serviceaccounts,"
    "gateways.gateway.networking.k8s.io,httproutes.gateway.networking.k8s.io"
)


@dataclass(frozen=True)
class Case:
    """One bad stack config: overrides (None removes a key), and what the error must say."""

    id: str
    overrides: dict[str, Any]
    key: str
    says: tuple[str, ...] = ()
    raw_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("weight-negative", {"canaryWeight": "-1"}, "canaryWeight", ("'-1'", "between 0 and 100")),
    Case("weight-over-100", {"canaryWeight": "101"}, "canaryWeight", ("'101'", "between 0 and 100")),
    Case("weight-not-a-number", {"canaryWeight": "abc"}, "canaryWeight", ("'abc'",)),
    Case("weight-empty", {"canaryWeight": ""}, "canaryWeight", ("''",)),
    Case("weight-too-precise", {"canaryWeight": "12.345678901"}, "canaryWeight", ("'12.3456789", "decimal")),
    Case("weight-nan", {"canaryWeight": "NaN"}, "canaryWeight", ("'NaN'",)),
    Case("weight-without-canary", {"canaryImage": ""}, "canaryWeight", ("'5'", "canaryImage")),
    Case("canary-image-malformed", {"canaryImage": "registry.example/Shop App"}, "canaryImage", ("Shop",)),
    Case("stable-image-uppercase", {"stableImage": "Registry.Example/SHOP:1"}, "stableImage", ("SHOP",)),
    Case("stable-image-empty", {"stableImage": ""}, "stableImage", ("''",)),
    Case("stable-replicas-zero", {"stableReplicas": 0}, "stableReplicas", ("'0'",)),
    Case("canary-replicas-negative", {"canaryReplicas": -2}, "canaryReplicas", ("'-2'",)),
    Case("hostname-uppercase", {"hostnames": ["Shop.Example.com"]}, "hostnames", ("Shop.Example.com",)),
    Case("hostname-space", {"hostnames": ["shop example.com"]}, "hostnames", ("shop example.com",)),
    Case("hostname-inner-wildcard", {"hostnames": ["shop.*.example.com"]}, "hostnames", ("shop.*.example",)),
    Case("hostname-too-long", {"hostnames": [".".join(["a" * 63] * 4) + ".com"]}, "hostnames", ("aaaa",)),
    Case("header-name-space", {"canaryHeader": "x canary: true"}, "canaryHeader", ("'x canary: true'",)),
    Case("header-no-value", {"canaryHeader": "x-canary"}, "canaryHeader", ("'x-canary'",)),
    Case("mirror-over-100", {"mirrorPercent": "150"}, "mirrorPercent", ("'150'", "between 0 and 100")),
    Case("mirror-negative", {"mirrorPercent": "-5"}, "mirrorPercent", ("'-5'",)),
    Case("port-out-of-range", {"containerPort": 70000}, "containerPort", ("'70000'", "65535")),
    Case("health-path-relative", {"healthPath": "readyz"}, "healthPath", ("'readyz'", "/")),
    Case("attach-without-gateway-name", {"createGateway": False}, "gatewayName", ("''",)),
    Case("app-name-invalid", {"appName": "Shop_App"}, "appName", ("'Shop_App'",)),
    Case("typo-of-canary-weight", {"canaryWieght": "25"}, "canaryWieght", ("did you mean canaryWeight",)),
    # Declared types are checked by the engine itself before the program runs; its message names the key and
    # the type (not the value).
    Case("replicas-not-an-integer", {"stableReplicas": "many"}, "stableReplicas", ("type 'integer'",)),
    Case("stack-file-not-yaml", {}, "invalid YAML file", ("line 1",), raw_file=BROKEN_YAML),
]


def snapshot(kube: Kube, namespace: str) -> dict[str, str]:
    """resourceVersion of the namespace and of every object of the release's kinds in it."""
    items = kube.run("get", SNAPSHOT_KINDS, "-n", namespace, "-o", "json").check()
    found = {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in _items(items)}
    ns = kube.get("namespace", namespace)
    assert ns is not None
    found[f"Namespace/{namespace}"] = ns["metadata"]["resourceVersion"]
    return found


def _items(result: Result) -> list[dict[str, Any]]:
    return json.loads(result.stdout)["items"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def deployed(env: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory):
    stack = release_stack(env, tmp_path_factory.mktemp("bad"), "bad", {k: str(v) for k, v in BASE.items()})
    stack_file = stack.project_dir / f"Pulumi.{stack.name}.yaml"
    settings = yaml.safe_load(stack_file.read_text())
    namespace = settings["config"][P + "namespace"]
    stack_file.write_text(yaml.safe_dump(settings))
    stack.up().check()
    yield stack, namespace, settings
    stack.destroy()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_fails_before_touching_the_cluster(deployed, kube: Kube, case: Case) -> None:
    stack, namespace, settings = deployed
    stack_file: Path = stack.project_dir / f"Pulumi.{stack.name}.yaml"
    good = yaml.safe_dump(settings)
    before = snapshot(kube, namespace)
    assert any(k.startswith("Deployment/") for k in before), before

    if case.raw_file is not None:
        bad = case.raw_file
    else:
        config = {**settings["config"], **{P + k: v for k, v in case.overrides.items()}}
        bad = yaml.safe_dump({**settings, "config": config})
    stack_file.write_text(bad)
    try:
        result = stack.up()
    finally:
        stack_file.write_text(good)

    assert result.code != 0, f"pulumi up accepted {case.id}:\n{result.output}"
    assert case.key in result.output, result.output
    for fragment in case.says:
        assert re.search(re.escape(fragment), result.output, re.IGNORECASE), (fragment, result.output)
    if case.raw_file is None and case.id != "replicas-not-an-integer":
        # Our own validation: one message per bad key, "key: 'value' is not allowed: <what is>".
        assert f"{case.key}:" in result.output
        assert "Traceback" not in result.output, result.output
    assert snapshot(kube, namespace) == before, f"{case.id} changed the cluster"
