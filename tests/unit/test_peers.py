"""The peers of the side-by-side bench (issue 26): their pins, wrapper modules, stand-in plugin, command
lines, plugin ConfigMap, CRD lists and manifests. Nothing here builds, starts or applies anything."""

import re
import time
from pathlib import Path

import pytest
import yaml

from bench.peers import controllers, manifests
from scripts.testbed import prometheus
from tests.unit.helpers import REPO
from tests.unit.test_versions import versions_env

TOOLS = REPO / "tools"
ARGO = "github.com/argoproj/argo-rollouts"


def requires(tool: str) -> dict[str, str]:
    """module -> version of every require line of tools/<tool>/go.mod."""
    text = (TOOLS / tool / "go.mod").read_text()
    lines = re.findall(r"^\s*(?:require\s+)?([\w./~-]+)\s+(v\S+)", text, re.MULTILINE)
    return dict(lines)


def replaces(tool: str) -> dict[str, str]:
    text = (TOOLS / tool / "go.mod").read_text()
    return dict(re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+(\S+\s+v\S+)", text, re.MULTILINE))


def test_the_wrappers_require_the_pinned_releases() -> None:
    pins = versions_env()
    assert requires("flagger")["github.com/fluxcd/flagger"] == pins["FLAGGER_VERSION"] == "v1.44.0"
    assert requires("argo-rollouts")[ARGO] == pins["ARGO_ROLLOUTS_VERSION"] == "v1.10.1"
    assert requires("argo-gatewayapi-plugin")[ARGO] == pins["ARGO_ROLLOUTS_VERSION"]


def test_flagger_needs_no_replace_and_argo_carries_its_k8s_io_replaces() -> None:
    assert replaces("flagger") == {}
    argo = replaces("argo-rollouts")
    assert argo["k8s.io/kubelet"] == "k8s.io/kubelet v0.34.5"  # without it: k8s.io/kubelet@v0.0.0
    assert len(argo) == 32 and all(module.startswith("k8s.io/") for module in argo)


def test_the_plugin_is_built_against_the_controllers_own_module_graph() -> None:
    """Both ends of the go-plugin connection gob-encode the same v1alpha1 types: same module versions."""
    assert replaces("argo-gatewayapi-plugin") == replaces("argo-rollouts")
    plugin, controller = requires("argo-gatewayapi-plugin"), requires("argo-rollouts")
    shared = set(plugin) & set(controller)
    assert {"k8s.io/client-go", "github.com/hashicorp/go-plugin", ARGO} <= shared
    assert {m: plugin[m] for m in shared} == {m: controller[m] for m in shared}


def test_the_plugin_speaks_argos_handshake_under_our_name() -> None:
    source = (TOOLS / "argo-gatewayapi-plugin" / "main.go").read_text()
    assert f'const pluginName = "{controllers.PLUGIN_NAME}"' in source
    for fragment in (
        'MagicCookieKey:   "ARGO_ROLLOUTS_RPC_PLUGIN"',
        'MagicCookieValue: "trafficrouter"',
        "ProtocolVersion:  1",
        '"RpcTrafficRouterPlugin": &rpc.RpcTrafficRouterPlugin{',
        "return types.Verified, types.RpcError{}",
        'json:"httpRoute"',
        'json:"namespace"',
    ):
        assert fragment in source, fragment


def test_make_test_and_demo_never_build_the_peers() -> None:
    script = (REPO / "scripts" / "build-tools.sh").read_text()
    default = re.search(r"\|\| tools=\(([^)]*)\)", script)
    assert default is not None
    for peer in ("flagger", "argo-rollouts", "argo-gatewayapi-plugin", "peer-crds"):
        assert peer not in default.group(1).split()
    makefile = (REPO / "Makefile").read_text()
    targets = dict(re.findall(r"^([\w-]+):(.*)$", makefile, re.MULTILINE))
    assert "peers-tools" in targets
    for target in ("tools", "test", "demo", "integration", "cluster-up"):
        assert "peers" not in targets[target], target
    assert "scripts/build-tools.sh peers" in makefile


def test_crd_files_are_flaggers_one_file_and_argos_five(tmp_path: Path) -> None:
    files = controllers.crd_files(tmp_path)
    assert files["flagger"] == [tmp_path / "flagger" / "crd.yaml"]
    assert [f.name for f in files["argo-rollouts"]] == [
        "rollout-crd.yaml",
        "analysis-template-crd.yaml",
        "analysis-run-crd.yaml",
        "cluster-analysis-template-crd.yaml",
        "experiment-crd.yaml",
    ]
    with pytest.raises(FileNotFoundError, match="make peers-tools"):
        controllers.apply_crds("kubectl", files["flagger"], {})


def test_flagger_command() -> None:
    argv = controllers.flagger_command(
        Path("/b/flagger"), Path("/c/kubeconfig"), "http://127.0.0.1:29091", "peer-flagger", 31810
    )
    assert argv == [
        "/b/flagger",
        "-kubeconfig=/c/kubeconfig",
        "-mesh-provider=gatewayapi:v1",
        "-metrics-server=http://127.0.0.1:29091",
        "-namespace=peer-flagger",
        "-port=31810",
        "-log-level=info",
    ]


def test_argo_command_and_environment() -> None:
    ports = controllers.ports(1)
    argv = controllers.argo_command(Path("/b/rollouts-controller"), Path("/c/kubeconfig"), "peer-argo", ports)
    assert argv[1:] == [
        "--kubeconfig=/c/kubeconfig",
        "--leader-elect=false",
        "--namespaced",
        "--namespace=peer-argo",
        "--healthzPort=31811",
        "--metricsPort=31812",
        "--loglevel=info",
    ]
    env = controllers.argo_env({"PATH": "/x"}, Path("/c/kubeconfig"), "peer-argo", Path("/s/sockets"))
    assert env == {
        "PATH": "/x",
        "KUBECONFIG": "/c/kubeconfig",
        "POD_NAMESPACE": "peer-argo",
        "PLUGIN_UNIX_SOCKET_DIR": "/s/sockets",
    }


def test_every_instance_has_ports_of_its_own_outside_the_beds() -> None:
    """Both peers bind every address: instances 0-3 must never share a port, nor take the bed's."""
    used = [p for i in range(4) for p in vars(controllers.ports(i)).values()]
    assert len(used) == len(set(used))
    bed = {prometheus.port(i) for i in range(4)} | set(range(20000, 30000)) | set(range(40000, 41000))
    assert not bed & set(used)


def test_the_plugin_config_map() -> None:
    cm = controllers.plugin_config_map("peer-argo", Path("/cache/argo-gatewayapi-plugin"))
    assert cm["metadata"] == {"name": "argo-rollouts-config", "namespace": "peer-argo"}
    plugins = yaml.safe_load(cm["data"]["trafficRouterPlugins"])
    assert plugins == [
        {"name": "gateway-canary/gatewayapi", "location": "file:///cache/argo-gatewayapi-plugin"}
    ]
    assert re.fullmatch(r"^[a-zA-Z0-9-]+/[a-zA-Z0-9_.-]+$", plugins[0]["name"])  # Argo's own check
    with pytest.raises(ValueError, match="absolute"):
        controllers.plugin_config_map("peer-argo", Path("argo-gatewayapi-plugin"))


def test_the_rollout_routes_through_our_plugin_over_its_own_route_and_services() -> None:
    objects = manifests.argo_objects("peer-argo", [{"setWeight": 20}, {"pause": {}}])
    by_kind = {o["kind"]: o for o in objects}
    canary = by_kind["Rollout"]["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"] == {
        "plugins": {"gateway-canary/gatewayapi": {"httpRoute": "podinfo", "namespace": "peer-argo"}}
    }
    weights = manifests.backend_weights(by_kind["HTTPRoute"])
    assert weights == {canary["stableService"]: 100, canary["canaryService"]: 0}
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    assert services == set(weights)
    assert by_kind["Gateway"]["spec"]["gatewayClassName"] == "eg"


def test_flagger_is_given_a_deployment_a_gateway_and_a_canary() -> None:
    objects = manifests.flagger_objects("peer-flagger")
    assert [o["kind"] for o in objects] == ["Gateway", "Deployment", "Canary"]
    spec = objects[2]["spec"]
    assert spec["service"]["gatewayRefs"] == [{"name": "eg", "namespace": "peer-flagger"}]
    assert int(spec["analysis"]["interval"].removesuffix("s")) >= 10  # Flagger clamps shorter intervals
    assert manifests.host("flagger") != manifests.host("argo")


def test_backend_weights_defaults_to_one() -> None:
    route = {"spec": {"rules": [{"backendRefs": [{"name": "a", "weight": 3}, {"name": "b"}]}]}}
    assert manifests.backend_weights(route) == {"a": 3, "b": 1}


def test_prometheus_adds_the_label_aliases_flaggers_checks_use() -> None:
    relabels = prometheus.config(Path("/t.json"))["scrape_configs"][0]["relabel_configs"]
    assert {(r["source_labels"][0], r["target_label"]) for r in relabels} == {
        ("namespace", "kubernetes_namespace"),
        ("pod", "kubernetes_pod_name"),
    }


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    """A real child standing in for a controller with a plugin subprocess: both end, nothing is left."""
    child = tmp_path / "child.pid"
    controller = controllers.Controller(
        "stand-in",
        ["/bin/sh", "-c", f"sleep 60 & echo $! > {child}; wait"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "run",
        tmp_path / "run.log",
    )
    pid = controllers.start(controller)
    deadline = time.monotonic() + 10
    while not (child.exists() and child.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    sleeper = int(child.read_text())
    assert controllers.running(controller) == pid
    assert controllers.stop(controller, grace=5)
    assert (
        not Path(f"/proc/{sleeper}").exists() or b"sleep" not in Path(f"/proc/{sleeper}/cmdline").read_bytes()
    )
    assert controllers.running(controller) is None
    assert not controllers.stop(controller)
