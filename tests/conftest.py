"""What every test process starts from, however pytest was launched.

The tests stand for a user at a terminal, where Ctrl-C raises KeyboardInterrupt and the processes a command
starts get SIGINT at its default. A launcher can start pytest with SIGINT ignored instead (a shell's
background job, `nohup`, some CI runners), and every process, xdist worker and `canary` command under it
would inherit that: `canary` then keeps ignoring SIGINT by design (canary/cli/signals.py), so a test that
sends the user's Ctrl-C would see a background job's behaviour instead. So SIGINT is put back to Python's
default here; the background-job case is tested on purpose (tests/unit/cli/test_signals.py sets it up).
"""

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
