"""Fixtures for the integration tests: the real Pulumi engine and provider against the local apiserver.

Skipping is never silent: under CI (CI=true) a missing tool or cluster fails the run; locally the skip
reason says exactly what did not run, and the session ends with a banner listing it (built from the skip
reports, so it works when pytest-xdist runs the tests in worker processes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from tests.integration.harness import Kube, project_env

NOT_RUN = "integration tests NOT RUN: "


def not_run(why: str) -> NoReturn:
    """Stop a test that cannot run here (a tool or the cluster missing): a failure under CI (CI=true), else a
    skip that says loudly what did not run (its reason starts with NOT_RUN, so the run's summary lists it)."""
    reason = NOT_RUN + why
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    """The project environment, after checking the toolchain and the cluster are really there."""
    env = project_env()
    problems = [
        f"{tool} not found on PATH (run `make tools`)"
        for tool in ("pulumi", "kubectl")
        if shutil.which(tool, path=env["PATH"]) is None
    ]
    if not problems:
        kube = Kube(env)
        ready = kube.run("get", "--raw", "/readyz")
        if ready.code != 0:
            problems.append(
                f"no Kubernetes apiserver at KUBECONFIG={env.get('KUBECONFIG')} "
                f"(run `make cluster-up`): {ready.stderr.strip()[:200]}"
            )
    if problems:
        not_run("; ".join(problems))
    return env


@pytest.fixture(scope="session")
def kube(env: dict[str, str]) -> Kube:
    return Kube(env)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons = set()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if NOT_RUN in message:
            reasons.add(message[message.index(NOT_RUN) :])
    if reasons:
        terminalreporter.section("INTEGRATION TESTS DID NOT RUN", sep="!", red=True, bold=True)
        for reason in sorted(reasons):
            terminalreporter.line(reason, red=True)
