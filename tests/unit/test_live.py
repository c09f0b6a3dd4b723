"""canary.release.live: the live route's weight read with kubectl (a stand-in kubectl on PATH here), and the
default provider's cluster as kubectl's arguments."""

import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from canary.release.live import live_canary_percent, provider_args
from canary.release.render import render
from tests.unit.helpers import CANARY, release_settings


def fake_kubectl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stdout: str, stderr: str, code: int
) -> Path:
    """A `kubectl` first on PATH that prints what it is given and exits `code`; its argv goes to args.json."""
    (tmp_path / "out.txt").write_text(stdout)
    (tmp_path / "err.txt").write_text(stderr)
    script = tmp_path / "kubectl"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(tmp_path / 'args.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write(open({str(tmp_path / 'out.txt')!r}).read())\n"
        f"sys.stderr.write(open({str(tmp_path / 'err.txt')!r}).read())\n"
        f"sys.exit({code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "args.json"


def test_the_live_route_s_weight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    route = render(release_settings(canaryImage=CANARY, canaryWeight="25")).route
    argv = fake_kubectl(tmp_path, monkeypatch, json.dumps(route), "", 0)
    warned: list[str] = []
    found = live_canary_percent("podinfo", "shop", "podinfo", ["--context", "prod"], warned.append)
    assert found == Decimal(25) and warned == []
    assert json.loads(argv.read_text())[:3] == ["--context", "prod", "get"]


def test_no_route_yet_is_unknown_and_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kubectl(tmp_path, monkeypatch, "", 'Error from server (NotFound): httproutes "podinfo" not found', 1)
    warned: list[str] = []
    assert live_canary_percent("podinfo", "shop", "podinfo", [], warned.append) is None
    assert warned == []


def test_an_unreadable_route_is_unknown_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kubectl(tmp_path, monkeypatch, "", "The connection to the server was refused", 1)
    warned: list[str] = []
    assert live_canary_percent("podinfo", "shop", "podinfo", [], warned.append) is None
    assert len(warned) == 1 and "connection to the server was refused" in warned[0], warned


def test_no_kubectl_is_unknown_and_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    warned: list[str] = []
    assert live_canary_percent("podinfo", "shop", "podinfo", [], warned.append) is None
    assert len(warned) == 1 and "scaled before the route" in warned[0]


def test_provider_args_for_a_path_an_inline_kubeconfig_and_a_context(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("apiVersion: v1\n")
    assert provider_args(str(path), None) == (["--kubeconfig", str(path)], None)
    args, written = provider_args("apiVersion: v1\nkind: Config\n", "prod")
    try:
        assert written is not None and args == ["--kubeconfig", written, "--context", "prod"]
        assert Path(written).read_text() == "apiVersion: v1\nkind: Config\n"
    finally:
        if written is not None:
            os.unlink(written)
    assert provider_args(None, None) == ([], None)
