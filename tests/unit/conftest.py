"""Fixtures for unit tests: fresh recording Pulumi mocks per test, no engine and no cluster."""

from collections.abc import Iterator
from dataclasses import dataclass

import pulumi
import pytest

from tests.unit.helpers import PROJECT, RecordingMocks, RecordingMonitor


@dataclass
class PulumiMocks:
    mocks: RecordingMocks
    monitor: RecordingMonitor


@pytest.fixture
def pulumi_mocks() -> Iterator[PulumiMocks]:
    """Pulumi in mock mode for project gateway-canary, stack dev, with empty config."""
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({})
    yield PulumiMocks(mocks, monitor)
    pulumi.runtime.set_all_config({})


@pytest.fixture(autouse=True)
def _own_canary_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own cache of remembered YAML parses (canary.ops.yaml_files), never the user's."""
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path_factory.mktemp("canary-cache")))
