"""scripts/testbed/apps: the readiness probes the bed asks of a pod before it turns Ready, and the command
line of a gRPC port's podinfo."""

from __future__ import annotations

from typing import Any

from scripts.testbed.apps import GRPC_HTTP_PORTS, ReadinessCheck, apps_of, readiness_checks


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(containers)}}


def test_http_and_tcp_probes_with_named_and_numbered_ports() -> None:
    web = {
        "name": "web",
        "ports": [{"name": "http", "containerPort": 9898}, {"name": "admin", "containerPort": 9999}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
    }
    sidecar = {"name": "proxy", "readinessProbe": {"tcpSocket": {"port": 15000}}}
    plain = {"name": "no-probe", "ports": [{"containerPort": 8080}]}
    assert readiness_checks(pod(web, sidecar, plain)) == [
        ReadinessCheck(9898, "/ready"),
        ReadinessCheck(15000, None),
    ]


def test_probes_the_bed_cannot_ask_are_left_out() -> None:
    exec_probe = {"name": "a", "readinessProbe": {"exec": {"command": ["true"]}}}
    unknown_port = {"name": "b", "readinessProbe": {"httpGet": {"path": "/", "port": "missing"}}}
    default_path = {"name": "c", "readinessProbe": {"httpGet": {"port": 80}}}
    assert readiness_checks(pod(exec_probe, unknown_port, default_path)) == [ReadinessCheck(80, "/")]


def test_grpc_probe_with_and_without_service() -> None:
    plain = {
        "name": "a",
        "ports": [{"name": "grpc", "containerPort": 9000}],
        "readinessProbe": {"grpc": {"port": 9000}},
    }
    named = {"name": "b", "readinessProbe": {"grpc": {"port": 9001, "service": "podinfo"}}}
    assert readiness_checks(pod(plain, named)) == [
        ReadinessCheck(9000, grpc_service=""),
        ReadinessCheck(9001, grpc_service="podinfo"),
    ]


def release_pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "shop",
            "name": "shop-canary-1",
            "labels": {"app.kubernetes.io/name": "shop", "gateway-canary/track": "canary"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "shop-canary"}],
        },
        "spec": {"containers": list(containers)},
        "status": {"phase": "Running", "podIP": "10.244.0.7"},
    }


def test_a_port_named_grpc_runs_the_grpc_server_and_http_on_a_port_the_pod_does_not_declare() -> None:
    app = {
        "name": "app",
        "image": "registry.example/shop:1.1.0",
        "ports": [
            {"name": "grpc", "containerPort": 9000},
            {"name": "http", "containerPort": GRPC_HTTP_PORTS[0]},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        ],
    }
    grpc_app, http_app = apps_of(release_pod(app))
    assert grpc_app.grpc and grpc_app.http_port == GRPC_HTTP_PORTS[1]
    assert grpc_app.command("podinfo", 20001) == [
        "podinfo",
        "--host",
        "10.244.0.7",
        "--port",
        str(GRPC_HTTP_PORTS[1]),
        "--grpc-port",
        "9000",
        "--port-metrics",
        "20001",
        "--level",
        "warn",
    ]
    assert not http_app.grpc
    assert http_app.command("podinfo", 20002)[:5] == [
        "podinfo",
        "--host",
        "10.244.0.7",
        "--port",
        str(GRPC_HTTP_PORTS[0]),
    ]
    assert "--grpc-port" not in http_app.command("podinfo", 20002)


def test_only_the_exact_name_grpc_is_a_grpc_port() -> None:
    app = {
        "name": "app",
        "image": "registry.example/shop:1.1.0",
        "ports": [{"name": "grpc-web", "containerPort": 9000}, {"name": "GRPC", "containerPort": 9001}],
    }
    assert [a.grpc for a in apps_of(release_pod(app))] == [False, False]
