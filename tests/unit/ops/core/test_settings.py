"""canary.ops.core.settings: operations-only keys (canaryPlan) are validated by the CLI, not the program."""

import runpy
from decimal import Decimal
from typing import Any

import pytest

from canary.ops.core.settings import parse_ops_settings
from canary.release.component import CanaryRelease
from canary.release.validate import ConfigError
from tests.unit.conftest import PulumiMocks
from tests.unit.helpers import REPO, project_defaults, raw_config, set_stack_config

BAD_PLANS: list[Any] = [[5, 5, 50], [50, 25], [0, 50], [50, 150], [], [5, True], "5,25"]


def test_the_default_plan() -> None:
    assert parse_ops_settings(project_defaults()).canary_plan == tuple(Decimal(p) for p in (5, 25, 50, 100))


@pytest.mark.parametrize("plan", BAD_PLANS, ids=repr)
def test_a_bad_plan_is_named_with_its_value_and_rule(plan: Any) -> None:
    raw = raw_config(canaryPlan=plan)
    with pytest.raises(ConfigError) as caught:
        parse_ops_settings(raw)
    assert caught.value.keys == ["canaryPlan"]
    assert f"canaryPlan: {raw['canaryPlan']!r} is not allowed: " in str(caught.value)
    assert "strictly increasing whole percents in 1..100" in str(caught.value)


@pytest.mark.parametrize("plan", BAD_PLANS[:2], ids=repr)
def test_the_program_accepts_and_ignores_the_plan(pulumi_mocks: PulumiMocks, plan: Any) -> None:
    """canaryPlan is not an input of the release: a bad one is the CLI's to refuse, not `pulumi up`'s."""
    set_stack_config(raw_config(canaryPlan=plan))
    program = runpy.run_path(str(REPO / "__main__.py"), run_name="__pulumi_program__")
    assert isinstance(program["release"], CanaryRelease)
    assert "canary_plan" not in program["args"]
