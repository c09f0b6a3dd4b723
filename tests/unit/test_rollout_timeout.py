"""rolloutTimeout: how long `pulumi up` waits for a Deployment, validated like every other key."""

import dataclasses

import pytest

from canary.release.settings import ReleaseSettings
from canary.release.validate import ConfigError, parse_config
from tests.unit.helpers import project_schema, raw_config, release_settings


def test_default_is_declared_in_pulumi_yaml_only() -> None:
    """The settings declare no defaults of their own: every value comes from the config map, so a default
    in code could not silently differ from Pulumi.yaml's (the library's DEFAULTS are checked in test_args)."""
    assert [f.name for f in dataclasses.fields(ReleaseSettings) if f.default is not dataclasses.MISSING] == []
    assert [
        f.name for f in dataclasses.fields(ReleaseSettings) if f.default_factory is not dataclasses.MISSING
    ] == []
    assert release_settings().rollout_timeout == project_schema()["rolloutTimeout"]["default"] == 600


@pytest.mark.parametrize("value", [10, 90, 3600])
def test_accepts_seconds_in_range(value: int) -> None:
    assert release_settings(rolloutTimeout=value).rollout_timeout == value


@pytest.mark.parametrize("value", ["9", "3601", "-1", "1m", "abc", ""])
def test_rejects_out_of_range_or_not_an_integer(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_config(rolloutTimeout=value))
    assert caught.value.keys == ["rolloutTimeout"]
    assert caught.value.problems[0][1] == (
        f"rolloutTimeout: {value!r} is not allowed: a number of seconds from 10 to 3600"
    )
