"""Run a Pulumi command with a deadline, interrupting it the way Ctrl-C does when it runs over.

Why this exists: the Kubernetes provider (pulumi-kubernetes 4.25.0) fills its watch caches before a
readiness wait starts its clock (`pkg/await/informers/factory.go`: `WaitForCacheSync` on the provider's
lifetime context, not the operation's timeout). When the apiserver stops answering at that moment,
`pulumi up` waits for it forever and `rolloutTimeout` never starts counting. One SIGINT makes the engine
cancel the provider's operations: the update ends as failed, the stack lock is released, no operation is
left pending, and once the apiserver is back the next `pulumi up` converges
(tests/integration/test_outage.py shows all of it on a real cluster).

A second SIGINT would make Pulumi exit at once and leave the lock behind, so only one is sent. If the CLI is
still running `grace` seconds after it, its process group is killed and the caller is told so: that case
needs the SIGKILL recovery of docs/reliability.md.

What the command prints after an interrupt of ours (the deadline's, or the user's Ctrl-C passed on) is
relayed, except the Python traceback of the KeyboardInterrupt that interrupt raised in the program: the
engine stops its plugins with SIGINT, and a program still importing `pulumi` (upstream's
pulumi-language-python-exec does that before any handler of its own) dies with Python's default traceback,
which Pulumi relays line by line. It is the interrupt the user asked for, not a fault, and the CLI's promise
is a message, never a traceback (InterruptEcho).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from pulumi import automation as auto
from pulumi.automation.errors import create_command_error

OnOutput = Callable[[str], Any]


class DeadlineExceeded(Exception):
    """The command ran past its deadline and was interrupted (or, failing that, killed)."""

    def __init__(self, deadline: float, result: auto.CommandResult, *, killed: bool) -> None:
        self.deadline = deadline
        self.result = result
        self.killed = killed
        how = "killed (it ignored the interrupt)" if killed else "interrupted like Ctrl-C"
        super().__init__(f"still running after {deadline:.0f}s: {how}")


class StoppedEarly(DeadlineExceeded):
    """The command was interrupted before its deadline because the caller's `stop` event was set (for
    example: the gateway already refused the route the update is waiting on); `why` says what set it."""

    def __init__(self, why: str, deadline: float, result: auto.CommandResult, *, killed: bool) -> None:
        super().__init__(deadline, result, killed=killed)
        self.why = why


class DeadlineCommand(auto.PulumiCommand):
    """A PulumiCommand whose commands, inside `with command.deadline(seconds)`, are interrupted when they
    run longer than that. Outside such a block it behaves exactly like PulumiCommand."""

    def __init__(self, grace: float = 120.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.grace = grace
        self._deadline: float | None = None
        self._stop: Stop | None = None

    @contextmanager
    def deadline(self, seconds: float | None, stop: Stop | None = None) -> Iterator[None]:
        """Commands run inside are interrupted after `seconds`, or as soon as `stop` is set."""
        previous = self._deadline, self._stop
        self._deadline, self._stop = seconds, stop
        try:
            yield
        finally:
            self._deadline, self._stop = previous

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> auto.CommandResult:
        if self._deadline is None:
            return super().run(args, cwd, additional_env, on_output, on_error)
        return run_with_deadline(
            [self.command, "--non-interactive", *args],
            cwd=cwd,
            env={**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"},
            deadline=self._deadline,
            grace=self.grace,
            on_output=on_output,
            on_error=on_error,
            stop=self._stop,
        )


class Stop:
    """A reason to interrupt a running command early, set from another thread (first reason wins)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.why = ""

    def set(self, why: str) -> None:
        if not self._event.is_set():
            self.why = why
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def run_with_deadline(
    cmd: list[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    deadline: float,
    grace: float,
    on_output: OnOutput | None = None,
    on_error: OnOutput | None = None,
    stop: Stop | None = None,
) -> auto.CommandResult:
    """Run `cmd`, streaming its lines to the callbacks. Past `deadline` seconds, or once `stop` is set: one
    SIGINT; past `grace` more: SIGKILL to its process group. Raises DeadlineExceeded (StoppedEarly for
    `stop`) after either and CommandError on a non-zero exit. The command runs in its own session, so a
    Ctrl-C of ours reaches it once, forwarded from here."""
    stdout: list[str] = []
    stderr: list[str] = []
    ours = threading.Event()  # set just before this function interrupts the command
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        start_new_session=True,
    ) as process:
        readers = [
            threading.Thread(target=_pump, args=(process.stdout, on_output, stdout, ours), daemon=True),
            threading.Thread(target=_pump, args=(process.stderr, on_error, stderr, ours), daemon=True),
        ]
        for reader in readers:
            reader.start()
        interrupted = killed = False
        try:
            _wait(process, deadline, stop)
        except subprocess.TimeoutExpired:
            interrupted = True
            ours.set()
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                killed = True
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        except KeyboardInterrupt:
            ours.set()
            _forward_interrupts(process)
            raise
        finally:
            for reader in readers:  # the last lines, e.g. Pulumi's "cancelling"
                reader.join(timeout=10)
    result = auto.CommandResult(stdout="\n".join(stdout), stderr="\n".join(stderr), code=process.returncode)
    if interrupted and stop is not None and stop.is_set():
        raise StoppedEarly(stop.why, deadline, result, killed=killed)
    if interrupted:
        raise DeadlineExceeded(deadline, result, killed=killed)
    if result.code != 0:
        raise create_command_error(result)
    return result


def _wait(process: subprocess.Popen[str], deadline: float, stop: Stop | None) -> None:
    """Until the process exits; TimeoutExpired past `deadline` or once `stop` is set."""
    if stop is None:
        process.wait(timeout=deadline)
        return
    ends = time.monotonic() + deadline
    while True:
        try:
            process.wait(timeout=min(0.2, max(0.0, ends - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            if stop.is_set() or time.monotonic() >= ends:
                raise


def _forward_interrupts(process: subprocess.Popen[str]) -> None:
    """Pass the user's Ctrl-C on, and each further one, until the command exits. It runs in its own session,
    so the terminal's signal does not reach it; Pulumi cancels on the first and exits at once on the second,
    exactly as when it runs in the foreground."""
    while True:
        process.send_signal(signal.SIGINT)
        try:
            process.wait()
            return
        except KeyboardInterrupt:
            continue


def _pump(stream: IO[str] | None, callback: OnOutput | None, lines: list[str], ours: threading.Event) -> None:
    if stream is None:
        return
    echo = InterruptEcho(ours)
    for line in iter(stream.readline, ""):
        for kept in echo.feed(line.rstrip()):
            if callback is not None:
                callback(kept)
            lines.append(kept)
    for kept in echo.flush():
        if callback is not None:
            callback(kept)
        lines.append(kept)


TRACEBACK = "Traceback (most recent call last):"


class InterruptEcho:
    """One output stream's lines, less the program's KeyboardInterrupt traceback once `ours` is set (the
    module docstring says why). A traceback is held from its first line, with whatever Pulumi prefixed it
    (indentation, a resource's row), through its frames (that prefix and deeper indentation) to the line
    naming the exception: dropped when that is KeyboardInterrupt, passed on whole when it is any other
    exception. A traceback cut short (Pulumi stops relaying a cancelled program's output mid-way, seen in CI:
    the frames end without an exception line) is the interrupt's echo too, and dropped. Lines before `ours`
    is set, and every other line, pass unchanged and in order."""

    def __init__(self, ours: threading.Event) -> None:
        self.ours = ours
        self.held: list[str] = []
        self.prefix = ""

    def feed(self, line: str) -> list[str]:
        """The lines to pass on now, given the next line of the stream."""
        if self.held:
            if line.startswith(self.prefix) and line[len(self.prefix) :].startswith((" ", "\t")):
                self.held.append(line)  # a frame
                return []
            held, self.held = self.held, []
            if not line.startswith(self.prefix) or not line[len(self.prefix) :].strip():
                return self.feed(line)  # cut short: the interrupt's echo, dropped
            if line[len(self.prefix) :].startswith("KeyboardInterrupt"):
                return []  # the interrupt's echo: dropped with its frames
            return held + self.feed(line)  # another exception: the program's own error
        at = line.find(TRACEBACK)
        if at >= 0 and self.ours.is_set():
            self.prefix = line[:at]
            self.held = [line]
            return []
        return [line]

    def flush(self) -> list[str]:
        """What is still held when the stream ends: a traceback cut short, dropped (the class docstring)."""
        self.held = []
        return []
