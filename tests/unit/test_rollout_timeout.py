"""rolloutTimeout: how long `pulumi up` waits for a Deployment, validated like every other key."""

import pytest

from canary.config import ConfigError, parse_config
from tests.unit.helpers import project_schema, raw_config, release_args


def test_default_is_declared_in_pulumi_yaml_only() -> None:
    assert project_schema()["rolloutTimeout"]["default"] == 600
    assert release_args().rollout_timeout == 600


@pytest.mark.parametrize("value", [10, 90, 3600])
def test_accepts_seconds_in_range(value: int) -> None:
    assert release_args(rolloutTimeout=value).rollout_timeout == value


@pytest.mark.parametrize("value", ["9", "3601", "-1", "1m", "abc", ""])
def test_rejects_out_of_range_or_not_an_integer(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw_config(rolloutTimeout=value))
    assert caught.value.keys == ["rolloutTimeout"]
    assert caught.value.problems[0][1] == (
        f"rolloutTimeout: {value!r} is not allowed: a number of seconds from 10 to 3600"
    )
