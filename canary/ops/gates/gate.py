"""One analysis (the queries of every enabled check, then the verdict), and the policy of a gated run.

`analyze` reads one window of figures from Prometheus for the canary and the stable track of a release and
judges them (canary.ops.gates.verdict). The window is the configured one, but never reaches back before
`since` (when the current step's update finished): figures from the previous weight, or from before
traffic stopped, must not vouch for this one (flagger#1011).

`RunPolicy` counts verdicts over a run the way the config's limits say, and decides what each one means:
    PASS     -> count it; after checksPerStep passes at a weight, the next step
    FAIL     -> count it; past failureLimit (in total, never reset by passes), roll back to 0 now
    NO_DATA  -> wait; after noDataLimit in a row, stop with traffic as it is
    ERROR    -> wait; after errorLimit in a row, stop with traffic as it is
No step is ever taken on no data or an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from canary.ops.core.analysis import AnalysisSettings
from canary.ops.gates import queries
from canary.ops.gates.prometheus import Prometheus
from canary.ops.gates.verdict import Figures, Outcome, Verdict, judge


def window_for(settings: AnalysisSettings, since: float | None, now: float) -> int:
    """Seconds of data a check at `now` looks at: the configured window, cut at `since` (wall clock)."""
    if since is None:
        return settings.window
    return max(1, min(settings.window, int(now - since)))


def analyze(
    settings: AnalysisSettings,
    prometheus: Prometheus,
    namespace: str,
    app: str,
    *,
    since: float | None = None,
    now: float | None = None,
) -> Verdict:
    """Query every figure the enabled checks need at one instant and judge them."""
    at = time.time() if now is None else now
    window = window_for(settings, since, at)
    canary = queries.Selector(namespace, app, "canary")
    stable = queries.Selector(namespace, app, "stable")
    ask = prometheus.query
    figures = Figures(
        window=window,
        canary_requests=ask(queries.requests(canary, window), at),
        canary_success=ask(queries.success_rate(canary, window), at),
        canary_p99=ask(queries.p99_ms(canary, window), at),
        stable_requests=ask(queries.requests(stable, window), at),
        stable_success=ask(queries.success_rate(stable, window), at),
        stable_p99=ask(queries.p99_ms(stable, window), at),
        custom=tuple((c.name, ask(queries.custom(c.query, canary, window), at)) for c in settings.queries),
    )
    return judge(settings, figures)


class Decision(Enum):
    WAIT = "wait"
    """Check again after the interval."""
    STEP = "step"
    ROLLBACK = "rollback"
    STOP = "stop"
    """Give up, traffic left as it is (too many no-data or error checks in a row)."""


@dataclass
class RunPolicy:
    """The limits of `analysis`, applied to the verdicts of one run in order (see the module docstring)."""

    settings: AnalysisSettings
    failures: int = 0
    passes_here: int = 0
    errors_in_row: int = 0
    no_data_in_row: int = 0
    why: str = field(default="")

    def decide(self, verdict: Verdict) -> Decision:
        s = self.settings
        if verdict.outcome is Outcome.ERROR:
            self.errors_in_row += 1
            self.no_data_in_row = 0
            if self.errors_in_row >= s.error_limit:
                self.why = f"{self.errors_in_row} error checks in a row (errorLimit {s.error_limit})"
                return Decision.STOP
            return Decision.WAIT
        self.errors_in_row = 0
        if verdict.outcome is Outcome.NO_DATA:
            self.no_data_in_row += 1
            if self.no_data_in_row >= s.no_data_limit:
                self.why = f"{self.no_data_in_row} no-data checks in a row (noDataLimit {s.no_data_limit})"
                return Decision.STOP
            return Decision.WAIT
        self.no_data_in_row = 0
        if verdict.outcome is Outcome.FAIL:
            self.failures += 1
            if self.failures > s.failure_limit:
                self.why = f"{self.failures} failed checks (failureLimit {s.failure_limit})"
                return Decision.ROLLBACK
            return Decision.WAIT
        self.passes_here += 1
        if self.passes_here >= s.checks_per_step:
            return Decision.STEP
        return Decision.WAIT

    def stepped(self) -> None:
        """A new weight: its passes start from zero (failures are counted over the whole run)."""
        self.passes_here = 0
