"""The one way bench/peers talks to the apiserver: kubectl with the bed's environment, and a poll.

Every failure is a SystemExit naming the command and kubectl's own message (a bench prints it and stops)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"peers: kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def get(env: dict[str, str], kind: str, name: str, ns: str) -> dict[str, Any]:
    out = kubectl(env, "get", kind, name, "-n", ns, "-o", "json", "--ignore-not-found", check=False)
    return json.loads(out) if out.strip() else {}


def apply(env: dict[str, str], objects: list[dict[str, Any]]) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": objects}
    kubectl(env, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(items))


def wait(what: str, check: Callable[[], Any], seconds: float = 180, every: float = 0.5) -> float:
    """Poll until `check()` is truthy; the seconds it took (SystemExit naming `what` after `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(every)
    raise SystemExit(f"peers: timed out after {seconds:.0f} s waiting for {what}")
