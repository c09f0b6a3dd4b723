"""Fixtures for unit tests: fresh recording Pulumi mocks per test, no engine and no cluster."""

import gc
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pulumi
import pytest

from canary.release import live
from tests.unit.helpers import PROJECT, RecordingMocks, RecordingMonitor


@dataclass
class PulumiMocks:
    mocks: RecordingMocks
    monitor: RecordingMonitor


@pytest.fixture
def pulumi_mocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulumiMocks]:
    """Pulumi in mock mode for project gateway-canary, stack dev, with empty config; what the program reads
    from the cluster (canary.release.live) is the mocks': the live route's weight `live_percent`, the
    GatewayClasses' features `gateway_classes` (None: unreadable, the check skipped), never a cluster."""
    mocks = RecordingMocks()
    monkeypatch.setattr(live, "live_canary_percent", lambda *_: mocks.live_percent)
    monkeypatch.setattr(live, "gateway_classes", lambda *_: mocks.gateway_classes)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({})
    yield PulumiMocks(mocks, monitor)
    pulumi.runtime.set_all_config({})
    _collect_expected_failures()


def _collect_expected_failures() -> None:
    """A test whose program fails on purpose (bad config) leaves the SDK's registration futures holding
    that error, awaited by no one. Collected later, asyncio reports each as "Future exception was never
    retrieved" in whichever test the garbage collector happens to run (CI's output had 198 such lines).
    Collect them now, with asyncio's logger quiet for that moment only."""
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        gc.collect()
    finally:
        logger.setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def _own_canary_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session's own cache of remembered YAML parses and renderings (canary.ops.files.remembered), never
    the user's. Set once for the session: a per-test monkeypatch here changes when Pulumi mocks' futures are
    collected, and asyncio then reports their expected errors as never retrieved."""
    before = os.environ.get("CANARY_CACHE_DIR")
    os.environ["CANARY_CACHE_DIR"] = str(tmp_path_factory.mktemp("canary-cache"))
    yield
    if before is None:
        os.environ.pop("CANARY_CACHE_DIR", None)
    else:
        os.environ["CANARY_CACHE_DIR"] = before
