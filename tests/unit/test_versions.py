"""The Python pins agree with tools/versions.env, the one place toolchain versions are pinned."""

import re
import tomllib

from tests.unit.helpers import REPO


def versions_env() -> dict[str, str]:
    pairs = {}
    for line in (REPO / "tools" / "versions.env").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pairs[key.strip()] = value.strip()
    return pairs


def pinned() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", requirement)
        assert match, f"{requirement!r} is not pinned exactly (name==version)"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_every_python_dependency_is_pinned_exactly() -> None:
    assert {"pulumi", "pulumi-kubernetes", "pyyaml"} <= set(pinned())


def test_kubernetes_sdk_matches_the_provider_binary() -> None:
    assert pinned()["pulumi-kubernetes"] == versions_env()["PULUMI_KUBERNETES_VERSION"]


def release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.removeprefix("v").split("."))


def test_the_python_sdk_is_not_newer_than_the_cli() -> None:
    """The engine supports older SDKs, not newer ones (tools/versions.env says why the two pins differ)."""
    assert release(pinned()["pulumi"]) <= release(versions_env()["PULUMI_VERSION"])
