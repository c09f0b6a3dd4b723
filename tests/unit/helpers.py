"""Test helpers: stack config as the engine passes it, and Pulumi mocks that record what was registered."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pulumi
import yaml
from hypothesis import strategies as st
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs

from canary.release.args import CanaryReleaseArgs, args_from_config
from canary.release.keys import config_string
from canary.release.settings import ReleaseSettings
from canary.release.validate import parse_config

REPO = Path(__file__).resolve().parents[2]
PROJECT = "gateway-canary"


def project_schema() -> dict[str, dict[str, Any]]:
    """The `config:` section of Pulumi.yaml."""
    return yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]


def project_defaults() -> dict[str, str]:
    """Every declared key with its Pulumi.yaml default, as the engine passes defaults."""
    return {key: config_string(decl["default"]) for key, decl in project_schema().items()}


def stack_file_config(stack: str) -> dict[str, str]:
    """The project-namespace values set in Pulumi.<stack>.yaml, namespace stripped."""
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    return {key.removeprefix(prefix): config_string(v) for key, v in values.items() if key.startswith(prefix)}


def raw_config(**overrides: Any) -> dict[str, str]:
    """Defaults plus overrides (Python values converted as the engine would), key -> string."""
    return {**project_defaults(), **{key: config_string(value) for key, value in overrides.items()}}


def release_settings(**overrides: Any) -> ReleaseSettings:
    """Validated settings from the defaults plus overrides (config keys, camelCase)."""
    return parse_config(raw_config(**overrides))


def component_args(**overrides: Any) -> CanaryReleaseArgs:
    """The component's args for the defaults plus overrides, as the program builds them from config."""
    raw = raw_config(**overrides)
    parse_config(raw)
    return args_from_config(raw)


percents = st.integers(min_value=0, max_value=100 * 10**4).map(lambda n: Decimal(n).scaleb(-4))
"""Every percent the config accepts: 0..100 in steps of 0.0001 (a hypothesis strategy)."""

CANARY = "ghcr.io/stefanprodan/podinfo:6.7.1"
"""A canary image for tests (the default stable image is 6.7.0)."""


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back as state and remember every new_resource call."""

    def __init__(self) -> None:
        self.resources: list[MockResourceArgs] = []
        self.live_percent: Decimal | None = None
        self.gateway_classes: dict[str, frozenset[str] | None] | None = None
        """The canary percent the live route carries (canary.release.live; None: no route yet)."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> MockResourceArgs:
        matches = [r for r in self.of_type(typ) if r.name == name]
        assert len(matches) == 1, (
            f"expected one {typ} named {name}, got {[r.name for r in self.of_type(typ)]}"
        )
        return matches[0]


class RecordingMonitor(MockMonitor):
    """A mock resource monitor that also keeps each registration's dependencies (URNs) and parent."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[tuple[str, str], list[str]] = {}
        self.parents: dict[tuple[str, str], str] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.dependencies[(request.type, request.name)] = list(request.dependencies)
        self.parents[(request.type, request.name)] = request.parent
        return super().RegisterResource(request)


def set_stack_config(raw: dict[str, str]) -> None:
    """Replace the program's config with `raw` in the project namespace, as the engine would set it."""
    pulumi.runtime.set_all_config({f"{PROJECT}:{key}": value for key, value in raw.items()})
