"""`canary rollback --yes` is read without argparse before the route is written (canary.cli.main
quick_rollback_args): it must give argparse's namespace exactly, or step aside (None) for argparse."""

from __future__ import annotations

import pytest

from canary.cli.entry import quick_rollback_args
from canary.cli.main import build_parser

SAME = [
    ["rollback", "--yes"],
    ["rollback", "-y", "--stack", "dev"],
    ["--stack", "dev", "rollback", "--yes"],
    ["rollback", "--yes", "--stack=dev", "--cwd", "/tmp/project", "--json"],
    ["-s", "prod", "rollback", "--json", "--yes", "--actor", "Ada Lovelace"],
    ["rollback", "--actor=ci-bot", "--yes", "--cwd=relative/dir"],
    ["--cwd", "x", "--json", "rollback", "-y"],
]

ARGPARSE_ONLY = [
    ["rollback"],  # no --yes: it asks first
    ["rollback", "--yes", "--no-fast"],
    ["rollback", "--yes", "--deadline", "60"],
    ["rollback", "--yes", "--sta", "dev"],  # an abbreviation argparse accepts
    ["rollback", "--yes", "-s=dev"],  # argparse reads "=dev"
    ["rollback", "--yes", "--stack", "dev", "--stack", "prod"],  # argparse keeps the last
    ["rollback", "--yes", "--stack"],  # argparse's error
    ["rollback", "--yes", "--stack", "--json"],
    ["rollback", "--yes", "--stack="],
    ["rollback", "rollback", "--yes"],
    ["step", "--yes"],
    ["--yes"],
    ["rollback", "--yes", "--help"],
]


@pytest.mark.parametrize("argv", SAME, ids=" ".join)
def test_plain_fast_rollbacks_read_as_argparse_reads_them(argv: list[str]) -> None:
    quick = quick_rollback_args(argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", ARGPARSE_ONLY, ids=" ".join)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert quick_rollback_args(argv) is None
