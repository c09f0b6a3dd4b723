"""canary.cli.signals: SIGTERM as Ctrl-C, and SIGINT ignored by a background command yet at its default in the
processes it starts (Pulumi's plugins, which the engine stops with SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from canary.cli.signals import children_get_default_sigint, command_signals
from canary.ops.errors import Terminated


def ignores_sigint(status: str) -> bool:
    """Whether a /proc/PID/status text says the process ignores SIGINT (SigIgn: a hex mask, bit N-1 for N)."""
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def child_ignores_sigint() -> bool:
    return ignores_sigint(subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True).stdout)


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """This process starts like a shell's background job: SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_background_command_still_ignores_sigint_but_its_children_do_not(sigint_ignored: None) -> None:
    assert child_ignores_sigint(), "the premise: an ignored SIGINT is inherited"
    restore = command_signals()
    try:
        assert not child_ignores_sigint()
        os.kill(os.getpid(), signal.SIGINT)  # still ignored here: nothing is raised
        time.sleep(0.05)
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert child_ignores_sigint()


def test_a_handled_sigint_is_left_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    restore = command_signals()
    try:
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_raises_terminated_until_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    restore = command_signals()
    try:
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert isinstance(Terminated(), KeyboardInterrupt)
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_children_get_default_sigint_alone_and_its_undo(sigint_ignored: None) -> None:
    restore = children_get_default_sigint()
    try:
        assert not child_ignores_sigint()
    finally:
        restore()
    assert child_ignores_sigint()
