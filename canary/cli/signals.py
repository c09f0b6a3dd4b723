"""The signal dispositions a command runs under, from after the fast rollback's write until main returns.

- SIGTERM (`kill PID`, a cancelled CI job, a stopped container) raises canary.ops.errors.Terminated, a
  KeyboardInterrupt, so it ends a command as Ctrl-C does: a running update gets one interrupt and ends
  consistent (canary.ops.pulumi.deadline), the stack lock is released, and the command says what it leaves (a
  fast rollback: traffic safe, how to finish the record). Python's default would die at once: the lock stays
  behind and the update, in a session of its own, loses its output pipe mid-way.
- SIGINT, when the command started with it ignored (a shell's background job: `canary step ... &` in a
  script), stays ignored by the command but through a handler that does nothing. exec resets a handled
  signal to its default and keeps an ignored one ignored, and Pulumi's engine stops each plugin with SIGINT,
  waiting 5 s before it kills one that does not exit (sdk/go/common/resource/plugin/plugin.go, v3.274.1:
  InterruptChildren, then a 5-second wait): plugins that inherited SIGINT ignored made every `pulumi
  preview` and `up` about 4.7 s slower (measured: a `pulumi up` of an empty program 1.16 s with SIGINT at its
  default, 5.87 s with it ignored).

Installed after the fast rollback's write: before it nothing is half-done by a kill (the write is one
request; a dead holder's lock is taken over on its host) and importing signal would cost the write 0.4 ms.
Only the main thread can install a handler; called from another (a test running main in a thread), nothing
changes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from canary.ops.errors import Terminated


def command_signals() -> Callable[[], None]:
    """Install the module docstring's dispositions; the function that puts the previous ones back."""
    try:
        previous_term = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        return _nothing
    restore_int = children_get_default_sigint()

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous_term)
        restore_int()

    return restore


def children_get_default_sigint() -> Callable[[], None]:
    """When SIGINT is ignored, keep ignoring it here, but so that processes started from now on get it at its
    default (the module docstring); the undo. The bench calls it too: what it measures then does not depend
    on whether it was started as a background job."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return _nothing
    try:
        signal.signal(signal.SIGINT, _ignore)
    except ValueError:  # not the main thread
        return _nothing
    return _ignore_again


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _ignore(signum: int, frame: object) -> None:
    """SIGINT ignored by this process, yet at its default in the processes it starts."""


def _ignore_again() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _nothing() -> None:
    """The undo when nothing was installed."""
