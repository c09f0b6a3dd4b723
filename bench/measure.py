"""Measuring helpers: wall time, peak memory of a process tree, and when a watch sees a route change."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary.ops.kube.kubectl import RouteWatch

# Process roles in a `pulumi` process tree (keys of Run.peak_mib).
ENGINE = "pulumi"
LANGUAGE_HOST = "pulumi-language-python"
PROGRAM = "python-program"
"""The Python interpreter running the Pulumi program (a child of the language host)."""


def role(argv: list[str]) -> str:
    """What a process is, from its command line: the engine, the language host, the Python program under
    it, a provider plugin, or else the basename of its executable ("python", "kubectl", ...).

    /proc/PID/comm is cut at 15 characters ("pulumi-resource"), so the command line is used instead."""
    if not argv:
        return "?"
    exe = os.path.basename(argv[0])
    if exe.startswith("python"):
        if any(os.path.basename(arg) == "pulumi-language-python-exec" for arg in argv[1:]):
            return PROGRAM
        return "python"
    if exe == "pulumi":
        return ENGINE
    return exe or "?"


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


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (fields 14 and 15 of /proc/PID/stat, after the command name)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _argv(pid: int) -> list[str]:
    try:
        return [a for a in Path(f"/proc/{pid}/cmdline").read_text().split("\0") if a]
    except OSError:
        return []


def _tree(root: int) -> Iterator[int]:
    stack, seen = [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        yield pid
        stack += _children(pid)


@dataclass
class Run:
    """One timed command: seconds, exit code, peak RSS (MiB) and CPU seconds per process role in its tree.

    A role's RSS is summed over its processes alive at the same sample (two providers count twice), and
    the peak is over samples (every `sample_every` seconds). `cpu` is the user+system time of the whole
    tree (exact, from the kernel's accounting of waited-for children); `cpu_by_role` is each process's
    CPU time at the last sample that saw it (so it misses up to `sample_every` of each process's end)."""

    args: list[str]
    seconds: float
    code: int
    peak_mib: dict[str, float]
    stdout: str
    stderr: str
    cpu: float = 0.0
    cpu_by_role: dict[str, float] = field(default_factory=dict)
    peak_total_mib: float = 0.0
    """The largest sum of RSS over the whole tree at one sample."""

    def check(self, what: str | None = None) -> Run:
        if self.code != 0:
            raise SystemExit(
                f"bench: {what or ' '.join(self.args)} failed (exit {self.code})\n"
                f"{self.stdout}\n{self.stderr}"
            )
        return self


class Tracked:
    """A command started now and left running: its process tree sampled every `sample_every` seconds (RSS
    per role, CPU per process), its output collected, and its exit and exact CPU (the kernel's rusage of the
    child and every descendant it waited for: `os.wait4`) read by `wait`. `new_session` puts it in a process
    group of its own, so `interrupt` reaches the whole group, as Ctrl-C in a terminal does."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        sample_every: float = 0.05,
        new_session: bool = False,
    ) -> None:
        self.args = args
        self._peaks: dict[str, int] = {}
        self._cpu_seen: dict[int, tuple[str, float]] = {}
        self._output: dict[str, str] = {}
        self._total_peak = 0
        self._started = time.monotonic()
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=new_session,
        )
        self._new_session = new_session
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._sample, args=(sample_every,), daemon=True),
            *(
                threading.Thread(target=self._read, args=(name, stream), daemon=True)
                for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, name: str, stream: Any) -> None:
        self._output[name] = stream.read()
        stream.close()

    def _sample(self, every: float) -> None:
        while not self._done.is_set():
            now: dict[str, int] = {}
            for pid in _tree(self.proc.pid):
                # Classified at every sample: a forked child shows its parent's argv until it execs.
                argv = _argv(pid)
                if argv:
                    name = role(argv)
                    now[name] = now.get(name, 0) + _rss_kib(pid)
                    self._cpu_seen[pid] = (name, _cpu_seconds(pid))
            for name, kib in now.items():
                self._peaks[name] = max(self._peaks.get(name, 0), kib)
            self._total_peak = max(self._total_peak, sum(now.values()))
            self._done.wait(every)

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """`sig` to the command (its whole group when it has a session of its own)."""
        with contextlib.suppress(ProcessLookupError):
            if self._new_session:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def wait(self, timeout: float = 1800) -> Run:
        """Wait for the command (killed after `timeout` seconds) and return its Run."""
        deadline = self._started + timeout
        cpu = 0.0
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
                break
            if time.monotonic() > deadline:
                self.interrupt(signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.02)
        seconds = time.monotonic() - self._started
        self._done.set()
        for thread in self._threads:
            thread.join()
        by_role: dict[str, float] = {}
        for name, seconds_used in self._cpu_seen.values():
            by_role[name] = by_role.get(name, 0.0) + seconds_used
        peak_mib = {k: v / 1024 for k, v in self._peaks.items() if v}
        return Run(
            self.args,
            seconds,
            self.proc.returncode,
            peak_mib,
            self._output.get("stdout", ""),
            self._output.get("stderr", ""),
            cpu,
            by_role,
            self._total_peak / 1024,
        )


def timed(
    args: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    sample_every: float = 0.05,
    timeout: float = 1800,
) -> Run:
    """Run a command, sampling the RSS of its whole process tree (engine, language host, Python, provider)."""
    return Tracked(args, env, cwd, sample_every).wait(timeout)


def group_usage(pgid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) summed over the live processes of process group `pgid` (a controller and the
    plugin it runs)."""
    cpu, rss = 0.0, 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 12 and int(fields[2]) == pgid:
            pid = int(stat.parent.name)
            cpu += (int(fields[11]) + int(fields[12])) / _TICKS
            rss += _rss_kib(pid)
    return cpu, rss


class GroupSampler:
    """CPU seconds used and peak RSS (MiB) of a process group between `start()` and `stop()`, sampled every
    `every` seconds (a process that ends between samples loses its last interval)."""

    def __init__(self, pgid: int, every: float = 0.5) -> None:
        self.pgid, self.every = pgid, every
        self.peak_mib = 0.0
        self.cpu_seconds = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> GroupSampler:
        self._first, _ = group_usage(self.pgid)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._done.is_set():
            cpu, rss = group_usage(self.pgid)
            self.peak_mib = max(self.peak_mib, rss / 1024)
            self.cpu_seconds = cpu - self._first
            self._done.wait(self.every)

    def stop(self) -> GroupSampler:
        self._done.set()
        self._thread.join()
        cpu, rss = group_usage(self.pgid)
        self.peak_mib = max(self.peak_mib, rss / 1024)
        self.cpu_seconds = max(self.cpu_seconds, cpu - self._first)
        return self


def check(run: Run, what: str) -> Run:
    return run.check(what)


@dataclass(frozen=True)
class RouteTiming:
    """`safe`: seconds from the action's start until the watch saw the wanted canary weight.
    `exited`: seconds until the action returned (the command finished)."""

    safe: float
    exited: float


def time_until_route(
    env: dict[str, str],
    namespace: str,
    app: str,
    action: Callable[[], None],
    want_canary_weight: int,
    timeout: float = 120,
    route_name: str | None = None,
) -> RouteTiming:
    """Time `action` against a watch on the apiserver (canary.ops.kube.kubectl.RouteWatch): until the route's
    canary weight (a Gateway API weight) reaches `want_canary_weight`, and until `action` returns. The watch
    has listed the current object before the clock starts, so kubectl's own start-up is never counted."""
    with RouteWatch(app, namespace, route_name or app, env=env) as watch:
        if watch.wait_for(lambda _: True, 30) is None:
            raise SystemExit("bench: the route watch never listed the route")
        t0 = time.monotonic()
        action()
        exited = time.monotonic() - t0
        seen = watch.wait_for(
            lambda obj: watch.state(obj).canary_weight == want_canary_weight, timeout, after=t0
        )
        if seen is None:
            raise SystemExit(f"bench: the route never reached canary weight {want_canary_weight}")
    return RouteTiming(seen - t0, exited)


def pod_seconds(events: Sequence[tuple[float, Mapping[str, Any]]], start: float, end: float) -> float:
    """Integral over [start, end] of the number of pods that exist, from (arrival time, watch event) pairs:
    a pod exists from its first event until its DELETED event."""
    alive: set[str] = set()
    total, last = 0.0, start
    for at, event in sorted(events, key=lambda item: item[0]):
        if at > end:
            break
        if at > start:
            total += len(alive) * (at - last)
            last = at
        name = event["object"]["metadata"]["name"]
        if event["type"] == "DELETED":
            alive.discard(name)
        else:
            alive.add(name)
    return total + len(alive) * (end - max(last, start))


def summary(values: list[float]) -> dict[str, Any]:
    """n, min, median, max (None for an empty list)."""
    if not values:
        return {"n": 0, "min": None, "median": None, "max": None}
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
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{os.cpu_count()} cores, {cpu}, {int(mem) // 1024 // 1024} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, load average {load}"
    )


def load_average() -> float:
    """The 1-minute load average (other work on the machine makes figures noisy)."""
    return float(Path("/proc/loadavg").read_text().split()[0])
