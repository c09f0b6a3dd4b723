"""scripts/testbed/traefik: the bed's Traefik command line."""

from __future__ import annotations

import subprocess
import sys

from scripts.testbed.traefik import CONTROLLER, ENTRYPOINT, PORT, command
from tests.unit.helpers import REPO


def test_one_entrypoint_on_the_address_and_the_same_address_as_status() -> None:
    argv = command("/bin/traefik", "10.242.0.17", "/x/access.log")
    assert argv[0] == "/bin/traefik"
    assert f"--entryPoints.{ENTRYPOINT}.address=10.242.0.17:80" in argv
    assert "--providers.kubernetesGateway.statusAddress.ip=10.242.0.17" in argv
    assert "--accessLog.filePath=/x/access.log" in argv
    assert [a for a in argv if a.lower().startswith("--entrypoints.")] == [
        f"--entryPoints.{ENTRYPOINT}.address=10.242.0.17:{PORT}"
    ]
    assert CONTROLLER == "traefik.io/gateway-controller"


def test_nothing_dials_out_and_nothing_else_listens() -> None:
    argv = command("traefik", "10.242.0.17", "a.log")
    assert "--global.checkNewVersion=false" in argv and "--global.sendAnonymousUsage=false" in argv
    # --ping, --api and metrics would each add an entryPoint `traefik` on :8080.
    assert not [a for a in argv if a.lower().startswith(("--ping", "--api", "--metrics"))], argv
    providers = {a.split("=", 1)[0].split(".")[1].lower() for a in argv if a.startswith("--providers.")}
    assert providers == {"kubernetesgateway"}, argv


def test_the_module_prints_one_argument_per_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "scripts.testbed.traefik", "command", "T", "10.241.0.17", "L"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == command("T", "10.241.0.17", "L")
    bad = subprocess.run([sys.executable, "-m", "scripts.testbed.traefik"], cwd=REPO, capture_output=True)
    assert bad.returncode == 2
