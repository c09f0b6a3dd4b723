"""scripts/testbed/apps.readiness_checks: the readiness probes the bed asks of a pod before it turns Ready."""

from __future__ import annotations

from typing import Any

from scripts.testbed.apps import ReadinessCheck, readiness_checks


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
