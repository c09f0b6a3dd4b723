"""Settings only the operations side reads: canaryPlan and analysis (the metric gates).

They live in the same stack config as the release's keys (declared with their defaults in Pulumi.yaml) but
are not inputs of the component: the program accepts and ignores them (canary.release.keys.OPS_KEYS), and
the CLI validates them here with the same reader, so every problem names its key, its value and the rule.
"""

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from canary.ops.core.analysis import KEY as ANALYSIS
from canary.ops.core.analysis import AnalysisSettings, parse_analysis
from canary.release.validate import ConfigError, ConfigReader


@dataclass(frozen=True)
class OpsSettings:
    """Validated operations-only settings; build them with parse_ops_settings."""

    canary_plan: tuple[Decimal, ...]
    """The percents `canary step` walks through, strictly increasing within (0, 100]."""
    analysis: AnalysisSettings
    """The metric gates (canary.ops.gates)."""


def parse_ops_settings(raw: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> OpsSettings:
    """Validate the operations-only keys of the raw stack config, or raise ConfigError naming each one.

    `defaults` are Pulumi.yaml's (Release.defaults): a stack's `analysis` object takes the fields it leaves
    out from the declared one. Without them, `raw`'s own value must be complete."""
    r = ConfigReader(raw)
    plan = _plan(r)
    analysis = parse_analysis(raw.get(ANALYSIS), (defaults or {}).get(ANALYSIS), r.problems)
    if r.problems or analysis is None:
        raise ConfigError(r.problems)
    return OpsSettings(canary_plan=plan, analysis=analysis)


def _plan(r: ConfigReader) -> tuple[Decimal, ...]:
    allowed = "a non-empty JSON array of strictly increasing whole percents in 1..100, e.g. [5, 25, 50, 100]"
    items = r.json_list("canaryPlan", allowed)
    if not r.ok("canaryPlan"):
        return ()
    steps = [item for item in items if isinstance(item, int) and not isinstance(item, bool)]
    if (
        not items
        or len(steps) != len(items)
        or any(not 0 < step <= 100 for step in steps)
        or any(a >= b for a, b in itertools.pairwise(steps))
    ):
        r.reject("canaryPlan", allowed)
        return ()
    return tuple(Decimal(step) for step in steps)
