"""Who acts: the actor every update of the `canary` CLI records, and how it is written into and read back
from an update's message.

Pulumi's DIY backends (file, postgres://) record no person for an update: its environment holds the HEAD
commit's author (`git.author`), CI detection (`ci.system`, `ci.build.id`...) and Pulumi's own flags, and there
is no way to add a key of our own to it (cmd/pulumi/metadata/metadata.go, v3.274.1; docs/teams-notes.md). The
message is the one field an update records verbatim, so the actor travels there, as a trailer
`<message> [by <actor>]` that `pulumi stack history` shows as it is and `canary history` reads back.

The actor is, in order: `--actor NAME`; else CANARY_ACTOR; else the CI system's identity, for the systems
Pulumi detects (the same variables as its ciutil) whose environment names the user who started the job;
else git's `user.name`; else the OS user. `resolve_actor` is pure (the environment, git's answer and the OS
user are passed in); `local_actor` asks this machine's git and OS.
"""

from __future__ import annotations

import os
import select
import time
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path

from canary.ops.errors import UsageProblem
from canary.records import Record

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

ENV_VAR = "CANARY_ACTOR"
MAX_LENGTH = 100

FLAG, ENVIRONMENT, CI, GIT, OS_USER = "flag", "env", "ci", "git", "os"
"""Where an actor came from (Actor.source)."""


class CiSystem(Record):
    """A CI system as Pulumi detects it (`detect`: a variable that is set in its jobs) and the variables that
    name who started the job, first found wins, and the job's id."""

    name: str
    detect: str
    user: tuple[str, ...]
    build: tuple[str, ...] = ()


CI_SYSTEMS: tuple[CiSystem, ...] = (
    # pulumi/sdk/go/common/util/ciutil/detect.go: PULUMI_CI_SYSTEM first (the generic one), then by name.
    CiSystem("generic CI", "PULUMI_CI_SYSTEM", (), ("PULUMI_CI_BUILD_ID",)),
    CiSystem("Azure Pipelines", "TF_BUILD", ("BUILD_REQUESTEDFOR",), ("BUILD_BUILDID",)),
    CiSystem(
        "Bitbucket Pipelines",
        "BITBUCKET_COMMIT",
        ("BITBUCKET_STEP_TRIGGERER_UUID",),
        ("BITBUCKET_BUILD_NUMBER",),
    ),
    CiSystem(
        "Buildkite",
        "BUILDKITE",
        ("BUILDKITE_BUILD_CREATOR", "BUILDKITE_BUILD_AUTHOR"),
        ("BUILDKITE_BUILD_ID",),
    ),
    CiSystem("CircleCI", "CIRCLECI", ("CIRCLE_USERNAME",), ("CIRCLE_BUILD_NUM",)),
    CiSystem(
        "GitHub Actions", "GITHUB_ACTIONS", ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"), ("GITHUB_RUN_ID",)
    ),
    CiSystem("GitLab CI", "GITLAB_CI", ("GITLAB_USER_LOGIN", "GITLAB_USER_NAME"), ("CI_JOB_ID",)),
    CiSystem("Jenkins", "JENKINS_URL", ("BUILD_USER_ID", "BUILD_USER"), ("BUILD_NUMBER",)),
    CiSystem("Travis CI", "TRAVIS", (), ("TRAVIS_BUILD_ID",)),
)
"""The systems whose job environment can say who started it; any other system Pulumi detects records
`ci.system` in the update's environment, which `canary history` shows when no actor was recorded."""

CI_VARIABLES: frozenset[str] = frozenset(
    {"PULUMI_DISABLE_CI_DETECTION"}
    | {name for system in CI_SYSTEMS for name in (system.detect, *system.user, *system.build)}
)
"""Every variable the CI step reads (a test of the fallback removes them all)."""


class Actor(Record):
    name: str
    source: str
    """FLAG, ENVIRONMENT, CI, GIT or OS_USER."""


def resolve_actor(
    flag: str | None,
    environ: Mapping[str, str],
    git_user: Callable[[], str | None],
    os_user: Callable[[], str | None],
) -> Actor:
    """The actor of one command (module docstring for the order). A given --actor or CANARY_ACTOR must be a
    valid name (check_name); git's and the OS's answers are cleaned to one (clean_name) and skipped when
    empty. `git_user` and `os_user` are called only when needed."""
    if flag is not None:
        return Actor(check_name(flag, "--actor"), FLAG)
    if environ.get(ENV_VAR):
        return Actor(check_name(environ[ENV_VAR], ENV_VAR), ENVIRONMENT)
    ci = ci_identity(environ)
    if ci is not None:
        return Actor(ci, CI)
    for source, ask in ((GIT, git_user), (OS_USER, os_user)):
        name = clean_name(ask() or "")
        if name:
            return Actor(name, source)
    return Actor("unknown", OS_USER)


def local_actor(flag: str | None, cwd: Path, environ: Mapping[str, str] | None = None) -> Actor:
    """resolve_actor with this process's environment, `git config user.name` as run in `cwd` (so a
    repository's own setting counts) and the OS login name."""
    return resolve_actor(
        flag, os.environ if environ is None else environ, lambda: git_user_name(cwd), os_user_name
    )


GIT_TIMEOUT = 10.0
"""Seconds `git config user.name` may take."""


def git_user_name(cwd: Path) -> str | None:
    """git's user.name for `cwd`, or None (git missing, not set, or cwd gone).

    Run with os.posix_spawnp and a pipe rather than subprocess: importing subprocess costs `canary
    rollback` 2.5 ms before its write, and this is the one program its fast path runs."""
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawnp(
            "git",
            ["git", "-C", str(cwd), "config", "user.name"],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_CLOSE, read_end),
            ],
        )
    except OSError:
        os.close(read_end)
        return None
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as out:
        output = _read_until(out, time.monotonic() + GIT_TIMEOUT)
    if output is None:
        import signal  # here: its enums cost 0.4 ms of a rollback's start-up, and git rarely hangs

        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if output is None or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return None
    return output.decode(errors="replace").strip() or None


def _read_until(out: BinaryIO, deadline: float) -> bytes | None:
    """All of `out` until its end, or None at `deadline`."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([out], [], [], left)[0]:
            return None
        chunk = os.read(out.fileno(), 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def os_user_name() -> str | None:
    """The OS login name (getpass: LOGNAME, USER, ... then the password database), or None. (getpass is
    imported here: with termios and warnings it is 0.8 ms of a rollback's start-up, and git usually
    answers first.)"""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def ci_identity(environ: Mapping[str, str]) -> str | None:
    """`<user> via <system> <build>` for the first CI system detected (as Pulumi detects them), or the
    system and build alone when its environment names no user; None outside CI or with
    PULUMI_DISABLE_CI_DETECTION set (Pulumi then records no CI either)."""
    if environ.get("PULUMI_DISABLE_CI_DETECTION"):
        return None
    for system in CI_SYSTEMS:
        if not environ.get(system.detect):
            continue
        name = environ[system.detect] if system.detect == "PULUMI_CI_SYSTEM" else system.name
        user = next((environ[var] for var in system.user if environ.get(var)), "")
        build = next((environ[var] for var in system.build if environ.get(var)), "")
        job = clean_name(f"{name} {build}".strip())
        return clean_name(f"{user} via {job}") if clean_name(user) else job
    return None


_FORBIDDEN = "[]"


def check_name(name: str, where: str) -> str:
    """A name given by the user: 1 to MAX_LENGTH printable characters, no square brackets (they delimit the
    trailer), not only spaces. Raises UsageProblem naming where it came from, the value and what is
    allowed."""
    stripped = name.strip()
    problems = []
    if not stripped:
        problems.append("it is empty")
    if len(stripped) > MAX_LENGTH:
        problems.append(f"it has {len(stripped)} characters")
    if any(ch in _FORBIDDEN or not _printable(ch) for ch in stripped):
        problems.append("it has a square bracket or a control character")
    if problems:
        raise UsageProblem(
            f"{where} {name!r} is not an actor name ({'; '.join(problems)}): give 1 to {MAX_LENGTH} "
            "printable characters without [ or ], e.g. --actor 'Alice Ops' or CANARY_ACTOR=ci-deploy-bot"
        )
    return stripped


def clean_name(name: str) -> str:
    """A name from git or the OS made fit for the trailer: whitespace made spaces and runs of it collapsed,
    other control characters and brackets dropped, cut to MAX_LENGTH."""
    spaced = "".join(" " if ch.isspace() else ch for ch in name)
    kept = "".join(ch for ch in spaced if ch not in _FORBIDDEN and _printable(ch))
    return " ".join(kept.split())[:MAX_LENGTH].strip()


def _printable(ch: str) -> bool:
    return ch == " " or not unicodedata.category(ch).startswith(("C", "Z"))
