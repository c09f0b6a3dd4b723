"""canary.ops.team.actor: who acts, in which order it is looked for, and the `[by NAME]` trailer round
trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.cli.main import main
from canary.ops.core.history import split_actor, with_actor
from canary.ops.errors import UsageProblem
from canary.ops.team.actor import (
    CI,
    CI_VARIABLES,
    ENVIRONMENT,
    FLAG,
    GIT,
    MAX_LENGTH,
    OS_USER,
    Actor,
    check_name,
    ci_identity,
    clean_name,
    resolve_actor,
)


def never() -> str:
    raise AssertionError("must not be asked")


def resolve(
    flag: str | None = None, git: str | None = "Git User", os_user: str | None = "osuser", **env: str
):
    return resolve_actor(flag, env, lambda: git, lambda: os_user)


def test_the_flag_wins_over_everything() -> None:
    actor = resolve_actor("Alice Ops", {"CANARY_ACTOR": "bob", "GITHUB_ACTIONS": "true"}, never, never)
    assert actor == Actor("Alice Ops", FLAG)


def test_then_canary_actor() -> None:
    assert resolve_actor(None, {"CANARY_ACTOR": " bob ", "GITHUB_ACTIONS": "true"}, never, never) == Actor(
        "bob", ENVIRONMENT
    )


def test_an_empty_canary_actor_counts_as_unset() -> None:
    assert resolve(CANARY_ACTOR="") == Actor("Git User", GIT)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_RUN_ID": "42"},
            "octocat via GitHub Actions 42",
        ),
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": "re-runner"},
            "re-runner via GitHub Actions",
        ),
        ({"GITLAB_CI": "true", "GITLAB_USER_LOGIN": "alice", "CI_JOB_ID": "7"}, "alice via GitLab CI 7"),
        ({"BUILDKITE": "true", "BUILDKITE_BUILD_CREATOR": "Bo B"}, "Bo B via Buildkite"),
        ({"TRAVIS": "true", "TRAVIS_BUILD_ID": "99"}, "Travis CI 99"),
        ({"PULUMI_CI_SYSTEM": "Tekton", "PULUMI_CI_BUILD_ID": "run-3"}, "Tekton run-3"),
    ],
)
def test_then_the_ci_job(env: dict[str, str], expected: str) -> None:
    assert resolve_actor(None, env, never, never) == Actor(expected, CI)


def test_plain_ci_true_is_no_ci_system_pulumi_detects() -> None:
    assert ci_identity({"CI": "true"}) is None
    assert resolve(CI="true") == Actor("Git User", GIT)


def test_pulumi_disable_ci_detection_turns_it_off() -> None:
    assert (
        ci_identity({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "x", "PULUMI_DISABLE_CI_DETECTION": "1"})
        is None
    )


def test_then_git_then_the_os_user() -> None:
    assert resolve() == Actor("Git User", GIT)
    assert resolve(git=None) == Actor("osuser", OS_USER)
    assert resolve(git="  ") == Actor("osuser", OS_USER)
    assert resolve(git=None, os_user=None) == Actor("unknown", OS_USER)


def test_ci_variables_lists_every_variable_read() -> None:
    assert {
        "GITHUB_ACTIONS",
        "GITHUB_ACTOR",
        "PULUMI_CI_SYSTEM",
        "PULUMI_DISABLE_CI_DETECTION",
    } <= CI_VARIABLES


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("x" * (MAX_LENGTH + 1), f"it has {MAX_LENGTH + 1} characters"),
        ("alice [admin]", "square bracket"),
        ("alice\nbob", "control character"),
    ],
)
def test_bad_names_are_refused_naming_where_value_and_what_is_allowed(name: str, problem: str) -> None:
    with pytest.raises(UsageProblem) as err:
        check_name(name, "CANARY_ACTOR")
    text = str(err.value)
    assert text.startswith(f"CANARY_ACTOR {name!r} is not an actor name")
    assert problem in text and f"1 to {MAX_LENGTH} printable characters without [ or ]" in text


def test_names_from_git_are_cleaned_not_refused() -> None:
    assert clean_name("  Al [ice]\tOps\n") == "Al ice Ops"
    assert len(clean_name("y" * 300)) == MAX_LENGTH


@pytest.mark.parametrize(
    ("message", "actor"),
    [
        ("canary 0% -> 5% (img:1)", "alice"),
        ("rollback (fast: route written first)", "Bo B via GitHub Actions 1"),
    ],
)
def test_trailer_round_trip(message: str, actor: str) -> None:
    recorded = with_actor(message, actor)
    assert recorded == f"{message} [by {actor}]"
    assert split_actor(recorded) == (message, actor)


def test_a_message_without_a_trailer_has_no_actor() -> None:
    assert split_actor("deploy by hand") == ("deploy by hand", None)
    assert split_actor("see [by the way] here") == ("see [by the way] here", None)
    assert split_actor("[by carol]") == ("", "carol")


@given(
    st.text(min_size=0, max_size=60),
    st.text(min_size=1, max_size=MAX_LENGTH).filter(lambda name: clean_name(name) == name and name.strip()),
)
def test_any_message_and_valid_name_round_trip(message: str, name: str) -> None:
    assert split_actor(with_actor(message, check_name(name, "--actor")))[1] == name.strip()


def test_a_bad_actor_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["step", "--actor", "a[b]", "--cwd", str(tmp_path), "--yes"])
    assert code == 2
    assert "--actor 'a[b]' is not an actor name" in capsys.readouterr().err


def test_git_user_name_is_what_git_says_in_that_folder(tmp_path: Path) -> None:
    """The real git (spawned without subprocess): a repository's own user.name, and None where git has
    nothing to say (a folder that is gone)."""
    import shutil
    import subprocess

    from canary.ops.team.actor import git_user_name

    if shutil.which("git") is None:
        pytest.fail("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.name", "Grace Hopper"], check=True)
    assert git_user_name(tmp_path) == "Grace Hopper"
    assert git_user_name(tmp_path / "gone") is None


def test_no_git_is_no_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from canary.ops.team.actor import git_user_name

    monkeypatch.setenv("PATH", str(tmp_path))  # no git there
    assert git_user_name(tmp_path) is None


def test_a_git_that_does_not_answer_is_given_up_on() -> None:
    import os
    import time

    from canary.ops.team.actor import _read_until

    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "rb") as out:
            assert _read_until(out, time.monotonic() + 0.2) is None
    finally:
        os.close(write_end)
