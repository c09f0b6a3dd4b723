"""Measuring helpers: wall time, peak memory of a process tree, and when a watch sees a route change."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canary.live import route_state


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass
class Run:
    """One timed command: seconds, exit code, and peak RSS (MiB) per process name in its tree."""

    seconds: float
    code: int
    peak_mib: dict[str, float]
    stdout: str
    stderr: str


def timed(args: list[str], env: dict[str, str], cwd: Path | None = None, sample_every: float = 0.05) -> Run:
    """Run a command, sampling the RSS of its whole process tree (engine, language host, Python, provider)."""
    peaks: dict[str, int] = {}
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            stack, seen = [proc.pid], set()
            while stack:
                pid = stack.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                name = _name(pid)
                peaks[name] = max(peaks.get(name, 0), _rss_kib(pid))
                stack += _children(pid)
            done.wait(sample_every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    return Run(seconds, proc.returncode, {k: v / 1024 for k, v in peaks.items() if v}, out, err)


def check(run: Run, what: str) -> Run:
    if run.code != 0:
        raise SystemExit(f"bench: {what} failed (exit {run.code})\n{run.stdout}\n{run.stderr}")
    return run


def time_until_route(
    env: dict[str, str],
    namespace: str,
    app: str,
    action: Callable[[], None],
    want_canary_weight: int,
    timeout: float = 120,
) -> float:
    """Seconds from calling `action` until a watch on the apiserver sees the route's canary weight reach
    `want_canary_weight`. The watch starts (and has listed the current object) before the clock does."""
    route = "httproute.gateway.networking.k8s.io"
    proc = subprocess.Popen(
        ["kubectl", "get", route, app, "-n", namespace, "--watch", "-o", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    decoder = json.JSONDecoder()
    seen = threading.Event()
    listed = threading.Event()
    state: dict[str, float] = {}

    def read() -> None:
        assert proc.stdout is not None
        buffer = ""
        for line in proc.stdout:
            buffer += line
            while buffer.strip():
                try:
                    obj, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                listed.set()
                if route_state(obj, app).canary_weight == want_canary_weight and "t0" in state:
                    state["seen"] = time.monotonic()
                    seen.set()
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not listed.wait(30):
        proc.kill()
        raise SystemExit("bench: the route watch never listed the route")
    state["t0"] = time.monotonic()
    action()
    ok = seen.wait(timeout)
    proc.kill()
    proc.wait()
    if not ok:
        raise SystemExit(f"bench: the route never reached canary weight {want_canary_weight}")
    return state["seen"] - state["t0"]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return f"{os.cpu_count()} cores, {cpu}, {int(mem) // 1024 // 1024} GiB RAM"
