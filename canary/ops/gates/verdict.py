"""Numbers -> a verdict: pass, fail, no data or error, with the figures behind it (pure).

Outcomes, in the order they are decided:
- NO_DATA: the canary served fewer than minRequests requests in the window (or none at all). Never a pass,
  whatever the other figures say: too few samples prove nothing (argo-rollouts#4479, flagger "no values").
- ERROR: a figure a check needs could not be read: Prometheus unreachable or timing out, a bad query, NaN,
  no result, several series. Never a pass, never a fail: nobody knows.
- FAIL: a check's figure is outside its threshold.
- PASS: every enabled check was evaluated on valid numbers and is within its threshold.

A check relative to stable (maxDrop, maxIncreaseMs) needs stable traffic in the same window; with fewer than
minRequests stable requests (at 100%, stable gets none) it is skipped and says so, and the absolute
thresholds still apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from canary.ops.core.analysis import AnalysisSettings
from canary.ops.gates.prometheus import Answer, Empty, Failure, Value


class Outcome(Enum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no data"
    ERROR = "error"


@dataclass(frozen=True)
class Figures:
    """What Prometheus answered for one window: the built-in figures per track, the custom checks'."""

    window: int
    canary_requests: Answer
    canary_success: Answer
    canary_p99: Answer
    stable_requests: Answer
    stable_success: Answer
    stable_p99: Answer
    custom: tuple[tuple[str, Answer], ...] = ()


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    """pass, fail, error or skipped"""
    text: str


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    checks: tuple[Check, ...]
    numbers: dict[str, float | None]
    """canaryRequests, canarySuccess, canaryP99Ms, stableRequests, stableSuccess, stableP99Ms (None: none)"""
    window: int

    def summary(self) -> str:
        """One line for the update message and the progress output: outcome, then the numbers."""
        n = self.numbers
        figures = (
            f"canary {_count(n['canaryRequests'])} req, success {_pct(n['canarySuccess'])}, "
            f"p99 {_ms(n['canaryP99Ms'])}; stable {_count(n['stableRequests'])} req, "
            f"success {_pct(n['stableSuccess'])}, p99 {_ms(n['stableP99Ms'])}; window {self.window}s"
        )
        bad = [c.text for c in self.checks if c.status in ("fail", "error")]
        if self.outcome is Outcome.NO_DATA:
            bad = [c.text for c in self.checks if c.name == "requests"]
        head = self.outcome.value.upper() if self.outcome is not Outcome.PASS else "pass"
        return f"{head}" + (f" ({'; '.join(bad)})" if bad else "") + f": {figures}"


def _count(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}%"


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}ms"


def _number(answer: Answer) -> float | None:
    return answer.number if isinstance(answer, Value) else None


def _requests(answer: Answer) -> float | None:
    """A request count: no series at all is 0 requests; a failed query is unknown (None)."""
    if isinstance(answer, Empty):
        return 0.0
    return _number(answer)


def _why(answer: Answer) -> str:
    return answer.reason if isinstance(answer, Failure) else "no result"


def judge(settings: AnalysisSettings, figures: Figures) -> Verdict:
    """The verdict on one window's figures under `settings`' thresholds."""
    canary_n, stable_n = _requests(figures.canary_requests), _requests(figures.stable_requests)
    numbers = {
        "canaryRequests": canary_n,
        "canarySuccess": _number(figures.canary_success),
        "canaryP99Ms": _number(figures.canary_p99),
        "stableRequests": stable_n,
        "stableSuccess": _number(figures.stable_success),
        "stableP99Ms": _number(figures.stable_p99),
    }
    checks: list[Check] = []
    if canary_n is None:
        checks.append(Check("requests", "error", f"canary requests: {_why(figures.canary_requests)}"))
        return Verdict(Outcome.ERROR, tuple(checks), numbers, figures.window)
    if canary_n < settings.min_requests:
        text = (
            f"canary served {canary_n:.0f} requests in {figures.window}s, "
            f"fewer than minRequests {settings.min_requests}"
        )
        checks.append(Check("requests", "fail", text))
        return Verdict(Outcome.NO_DATA, tuple(checks), numbers, figures.window)
    checks.append(Check("requests", "pass", f"canary served {canary_n:.0f} requests"))
    stable_ok = stable_n is not None and stable_n >= settings.min_requests
    s = settings
    sr, p99 = numbers["canarySuccess"], numbers["canaryP99Ms"]
    ssr, sp99 = numbers["stableSuccess"], numbers["stableP99Ms"]

    def check(name: str, answers: tuple[Answer, ...], bad: bool, text: str) -> None:
        failed = next((a for a in answers if not isinstance(a, Value)), None)
        if failed is not None:
            checks.append(Check(name, "error", f"{name}: {_why(failed)}"))
        else:
            checks.append(Check(name, "fail" if bad else "pass", text))

    def skip_relative(name: str) -> bool:
        if not stable_ok:
            why = f"stable served {_count(stable_n)} requests (< minRequests {s.min_requests})"
            checks.append(Check(name, "skipped", f"{name}: {why}"))
        return not stable_ok

    if s.success_min is not None:
        bad = sr is not None and sr < s.success_min
        text = f"success rate {_pct(sr)} {'<' if bad else '>='} min {s.success_min:g}%"
        check("success rate", (figures.canary_success,), bad, text)
    if s.success_max_drop is not None and not skip_relative("success vs stable"):
        bad = sr is not None and ssr is not None and ssr - sr > s.success_max_drop
        text = (
            f"success rate {_pct(sr)} vs stable {_pct(ssr)}: "
            f"{'more' if bad else 'no more'} than {s.success_max_drop:g} points below"
        )
        check("success vs stable", (figures.canary_success, figures.stable_success), bad, text)
    if s.p99_max_ms is not None:
        bad = p99 is not None and p99 > s.p99_max_ms
        check(
            "p99", (figures.canary_p99,), bad, f"p99 {_ms(p99)} {'>' if bad else '<='} max {s.p99_max_ms:g}ms"
        )
    if s.p99_max_increase_ms is not None and not skip_relative("p99 vs stable"):
        bad = p99 is not None and sp99 is not None and p99 - sp99 > s.p99_max_increase_ms
        text = (
            f"p99 {_ms(p99)} vs stable {_ms(sp99)}: "
            f"{'more' if bad else 'no more'} than {s.p99_max_increase_ms:g}ms above"
        )
        check("p99 vs stable", (figures.canary_p99, figures.stable_p99), bad, text)
    answers = dict(figures.custom)
    for custom in s.queries:
        answer = answers.get(custom.name, Failure("not queried"))
        value = _number(answer)
        low = -math.inf if custom.min is None else custom.min
        high = math.inf if custom.max is None else custom.max
        bad = value is not None and not low <= value <= high
        text = f"{custom.name} {_g(value)} {'outside' if bad else 'within'} [{low:g}, {high:g}]"
        check(custom.name, (answer,), bad, text)

    statuses = {c.status for c in checks if c.name != "requests"}
    if "error" in statuses:
        outcome = Outcome.ERROR
    elif "fail" in statuses:
        outcome = Outcome.FAIL
    elif "pass" in statuses:
        outcome = Outcome.PASS
    else:  # never a pass with nothing evaluated
        checks.append(Check("checks", "error", "no check could be evaluated (each is off or skipped)"))
        outcome = Outcome.ERROR
    return Verdict(outcome, tuple(checks), numbers, figures.window)


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"
