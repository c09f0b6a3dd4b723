"""canary.ops.pulumi.deadline against real child processes that act like `pulumi up` on SIGINT (or refuse
to)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

import pytest
from pulumi import automation as auto

from canary.cli.main import positive_seconds
from canary.ops.pulumi.deadline import DeadlineExceeded, InterruptEcho, Stop, StoppedEarly, run_with_deadline
from canary.ops.pulumi.stack import deadline_advice, update_deadline
from tests.unit.helpers import release_settings

# A stand-in for the Pulumi CLI: prints, then waits; on SIGINT it says so and exits 1 as Pulumi does after
# cancelling, or (IGNORE=1) keeps running, like a process that does not honour the interrupt.
FAKE_PULUMI = """
import os, signal, sys, time
def cancel(*_):
    print("^C received; cancelling.", flush=True)
    sys.exit(1)
signal.signal(signal.SIGINT, signal.SIG_IGN if os.environ.get("IGNORE") == "1" else cancel)
print("updating", flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(float(os.environ.get("SLEEP", "60")))
sys.exit(int(os.environ.get("CODE", "0")))
"""


def run_fake(
    tmp_path: Path, deadline: float, grace: float = 5.0, stop: Stop | None = None, **env: str
) -> auto.CommandResult:
    script = tmp_path / "fake_pulumi.py"
    script.write_text(FAKE_PULUMI)
    seen: list[str] = []
    return run_with_deadline(
        [sys.executable, str(script)],
        cwd=str(tmp_path),
        env={**os.environ, **env},
        deadline=deadline,
        grace=grace,
        on_output=seen.append,
        stop=stop,
    )


def test_a_command_that_finishes_in_time_returns_its_output(tmp_path: Path) -> None:
    result = run_fake(tmp_path, deadline=30, SLEEP="0")
    assert (result.code, result.stdout, result.stderr) == (0, "updating", "to stderr")


def test_a_failing_command_raises_the_automation_api_error(tmp_path: Path) -> None:
    with pytest.raises(auto.CommandError) as failure:
        run_fake(tmp_path, deadline=30, SLEEP="0", CODE="3")
    assert "code: 3" in str(failure.value)


def test_past_the_deadline_the_command_gets_one_interrupt_and_its_output_is_kept(tmp_path: Path) -> None:
    with pytest.raises(DeadlineExceeded) as over:
        run_fake(tmp_path, deadline=1.0)
    assert not over.value.killed
    assert over.value.result.code == 1
    assert over.value.result.stdout.splitlines() == ["updating", "^C received; cancelling."]


def test_a_stop_interrupts_it_early_once_and_says_why(tmp_path: Path) -> None:
    stop = Stop()
    threading.Timer(0.5, stop.set, args=("Accepted=False, NotAllowedByListeners",)).start()
    with pytest.raises(StoppedEarly) as stopped:
        run_fake(tmp_path, deadline=60, stop=stop)
    assert stopped.value.why == "Accepted=False, NotAllowedByListeners"
    assert not stopped.value.killed and stopped.value.result.code == 1
    assert stopped.value.result.stdout.splitlines() == ["updating", "^C received; cancelling."]


def test_an_unset_stop_changes_nothing(tmp_path: Path) -> None:
    result = run_fake(tmp_path, deadline=30, stop=Stop(), SLEEP="0")
    assert result.code == 0


def test_a_command_that_ignores_the_interrupt_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    with pytest.raises(DeadlineExceeded) as over:
        run_fake(tmp_path, deadline=1.0, grace=1.0, IGNORE="1")
    assert over.value.killed
    assert over.value.result.code == -9


def test_our_ctrl_c_is_passed_on_and_the_command_finishes_cancelling(tmp_path: Path) -> None:
    """The command runs in its own session, so only a forwarded SIGINT can reach it."""
    script = tmp_path / "fake_pulumi.py"
    script.write_text(FAKE_PULUMI)
    seen: list[str] = []
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    # A shell's background job inherits SIGINT ignored (bash without job control), and Python keeps that:
    # this test is about our handling of a Ctrl-C, so it makes sure one raises KeyboardInterrupt here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            run_with_deadline(
                [sys.executable, str(script)],
                cwd=str(tmp_path),
                env=dict(os.environ),
                deadline=60,
                grace=5,
                on_output=seen.append,
            )
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == ["updating", "^C received; cancelling."]


def test_advice_tells_whether_the_lock_is_released_or_the_kill_recovery_is_needed() -> None:
    result = auto.CommandResult(stdout="out", stderr="err", code=1)
    interrupted = deadline_advice(DeadlineExceeded(42, result, killed=False))
    assert "42s" in interrupted and "lock is released" in interrupted and interrupted.endswith("out\nerr")
    killed = deadline_advice(DeadlineExceeded(42, result, killed=True))
    assert "pulumi cancel" in killed and "--import-pending-creates" in killed


def test_default_deadline_follows_rollout_timeout() -> None:
    assert update_deadline(release_settings(rolloutTimeout=60)) == 60 + 900
    assert update_deadline(release_settings(rolloutTimeout=600)) == 600 + 900


@pytest.mark.parametrize("text", ["0", "-5", "abc", "", "nan", "inf"])
def test_deadline_option_rejects_what_is_not_a_positive_number_of_seconds(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a number of seconds above 0"):
        positive_seconds(text)


def test_deadline_option_accepts_seconds() -> None:
    assert positive_seconds("90") == 90.0
    assert positive_seconds("2.5") == 2.5


# A stand-in for `pulumi up` whose program is a real Python process: on SIGINT the stand-in passes it on, as
# the engine stops its plugins, and relays the program's stderr indented, as Pulumi relays diagnostics.
FAKE_PULUMI_WITH_PROGRAM = """
import signal, subprocess, sys
program = subprocess.Popen(
    [sys.executable, "-c", "import sys, time; print('importing', flush=True); time.sleep(60)"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
signal.signal(signal.SIGINT, lambda *_: program.send_signal(signal.SIGINT))
print("updating", flush=True)
for line in program.stdout:
    print("    " + line.rstrip(), flush=True)
program.wait()
print("error: the program was interrupted", flush=True)
sys.exit(1)
"""


def test_the_programs_keyboard_interrupt_traceback_is_not_relayed_after_our_interrupt(tmp_path: Path) -> None:
    """What a Ctrl-C during the program's imports looks like, with a real Python traceback: the lines
    around it pass, the traceback does not (canary.ops.pulumi.deadline.InterruptEcho)."""
    script = tmp_path / "fake_pulumi.py"
    script.write_text(FAKE_PULUMI_WITH_PROGRAM)
    stop = Stop()
    seen: list[str] = []

    def on_output(line: str) -> None:
        seen.append(line)
        if line == "    importing":  # the program runs: interrupt now, as a user would
            stop.set("the user's Ctrl-C")

    with pytest.raises(StoppedEarly) as stopped:
        run_with_deadline(
            [sys.executable, str(script)],
            cwd=str(tmp_path),
            env=dict(os.environ),
            deadline=60,
            grace=10,
            on_output=on_output,
            stop=stop,
        )
    assert seen == ["updating", "    importing", "error: the program was interrupted"], seen
    assert "Traceback" not in stopped.value.result.stdout


def echo_of(lines: list[str], ours: bool = True) -> list[str]:
    interrupted = threading.Event()
    if ours:
        interrupted.set()
    echo = InterruptEcho(interrupted)
    return [kept for line in lines for kept in echo.feed(line)] + echo.flush()


KEYBOARD_INTERRUPT = [
    "    Traceback (most recent call last):",
    '      File "/venv/bin/pulumi-language-python-exec", line 11, in <module>',
    "        import pulumi",
    "    KeyboardInterrupt",
]


def test_a_keyboard_interrupt_traceback_is_dropped_only_after_our_interrupt() -> None:
    lines = ["Updating (dev):", *KEYBOARD_INTERRUPT, "error: update canceled"]
    assert echo_of(lines) == ["Updating (dev):", "error: update canceled"]
    assert echo_of(lines, ours=False) == lines


def test_any_other_traceback_is_passed_on_whole() -> None:
    failure = [*KEYBOARD_INTERRUPT[:-1], "    ValueError: bad", "after"]
    assert echo_of(failure) == failure


def test_a_traceback_cut_short_after_our_interrupt_is_dropped() -> None:
    """As CI saw it: Pulumi stopped relaying the cancelled program's stderr in the middle of its frames, in
    the inline rows and again under Diagnostics (where a blank line follows)."""
    row = "    pulumi:pulumi:Stack gateway-canary-dev  "
    inline = [
        f"{row}Traceback (most recent call last):",
        f'{row}  File "/work/.tools/bin/pulumi-language-python-exec", line 5, in <module>',
        f"{row}    import asyncio",
        f'{row}  File "/usr/lib/python3.11/socket.py", line 51, in <module>',
        "    pulumi:pulumi:Stack gateway-canary-dev **failed** 1 error; 8 messages",
    ]
    assert echo_of(inline) == [inline[-1]]
    diagnostics = [
        "    error: update canceled",
        "",
        "    Traceback (most recent call last):",
        '      File "/work/.tools/bin/pulumi-language-python-exec", line 5, in <module>',
        "        import asyncio",
        "",
        "Resources:",
    ]
    assert echo_of(diagnostics) == ["    error: update canceled", "", "", "Resources:"]
    assert echo_of(KEYBOARD_INTERRUPT[:2]) == [], "the stream ended inside it"


def test_the_traceback_as_pulumi_shows_it_inline_is_dropped() -> None:
    """The shape seen from pulumi v3.274.1 when a Ctrl-C reached `canary rollback`'s record while the program
    imported pulumi: each line behind the stack's row (and again, indented, under Diagnostics)."""
    row = "    pulumi:pulumi:Stack gateway-canary-dev  "
    inline = [
        f"{row}error: update canceled",
        f"{row}Traceback (most recent call last):",
        f'{row}  File "/work/.tools/bin/pulumi-language-python-exec", line 17, in <module>',
        f"{row}    import pulumi",
        f'{row}  File "/work/.venv/lib/python3.11/site-packages/pulumi/__init__.py", line 23, in <module>',
        f"{row}    from .runtime import _instrumentation  # noqa: F401 - imported for side effects",
        f"{row}    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        f'{row}  File "<frozen importlib._bootstrap>", line 405, in parent',
        f"{row}KeyboardInterrupt",
        "    pulumi:pulumi:Stack gateway-canary-dev **failed** 1 error; 32 messages",
    ]
    assert echo_of(inline) == [inline[0], inline[-1]]
