"""The `canary` command (placeholder).

Only here so the console script entry point resolves; the real CLI (status, step, rollback, promote,
history, preview) lands in a later change.
"""

import sys

USAGE = "usage: canary {status,step,rollback,promote,history,preview} [options]"


def main(argv: list[str] | None = None) -> int:
    """Print usage and exit 2: no subcommand is implemented yet."""
    del argv
    print(USAGE, file=sys.stderr)
    return 2
