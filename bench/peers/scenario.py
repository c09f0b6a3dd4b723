"""The side-by-side scenarios (issue 26): one plan, one set of thresholds and one load for the three tools,
and the figures read back from what the bench saw. Pure: the drivers (bench/peers/drivers.py) act, this
module only decides what to ask for and what a run's observations mean, so all of it is unit-tested.

What is the same for every tool (`docs/performance.md` lists where a tool could not be configured alike):
- the app: podinfo, 2 stable pods, behind a Gateway of class `eg` (Envoy Gateway, a real Envoy), a route
  hostname of the tool's own; the same paced load (RATE GETs of /version per second, each on a new
  connection), counted at the load's client;
- the plan: canary weights 5, 25, 50, 100, then promote;
- the checks: every INTERVAL_SECONDS (Flagger's floor), success rate (not 5xx) at least SUCCESS_MIN_PERCENT
  and p99 at most P99_MAX_MS over at most WINDOW_SECONDS, read from podinfo's own histogram in the bed's
  Prometheus; traffic leaves the canary at the FAILED_CHECKS-th failed check.

Scenarios: `faulty` (the canary image answers about one request in three with an error), `healthy` (to 100%
and promoted), `abort` (a person stops the release ABORT_AFTER_SECONDS after the route reached 50%).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.measure import pod_seconds
from bench.peers.controllers import PLUGIN_LABEL

PLAN = (5, 25, 50, 100)
INTERVAL_SECONDS = 10
SUCCESS_MIN_PERCENT = 99
P99_MAX_MS = 500
WINDOW_SECONDS = 30
FAILED_CHECKS = 2
"""Traffic leaves the canary at the second failed check: Flagger `threshold: 2`, Argo `failureLimit: 1`,
ours `analysis.failureLimit: 1`."""
REPLICAS = 2
RATE = 50.0
"""Requests per second of the load, the same for every tool (2.5 per second reach the canary at 5%)."""
ABORT_AT = 50
ABORT_AFTER_SECONDS = 3.0
"""The person watching sees the route at ABORT_AT and aborts this long after (the same for every tool)."""
TAIL_SECONDS = 60.0
"""Canary pod-seconds of a faulty run count until this long after the canary's last answer: what a tool
keeps running after it took traffic away (Argo scales the canary down 30 s after an abort, by default)."""

STABLE_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.0"
CANARY_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1"
FAULTY_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1-faulty"
"""The bed runs an image whose reference contains `faulty` with podinfo's --random-error."""

OURS, FLAGGER, ARGO = "gateway-canary", "flagger", "argo-rollouts"
TOOLS = (OURS, FLAGGER, ARGO)
PEERS = (FLAGGER, ARGO)
SCENARIOS = ("faulty", "healthy", "abort")


def canary_image(scenario: str) -> str:
    return FAULTY_IMAGE if scenario == "faulty" else CANARY_IMAGE


def version_of(image: str) -> str:
    """The version podinfo reports for an image in the bed: its tag."""
    return image.rsplit(":", 1)[1]


def tool_label(tool: str) -> str:
    """How a tool is named in every table: Argo's figures always say which plugin moved its route."""
    return (
        f"Argo Rollouts ({PLUGIN_LABEL})"
        if tool == ARGO
        else {OURS: "gateway-canary", FLAGGER: "Flagger"}[tool]
    )


def canary_percent(route: Mapping[str, Any]) -> float | None:
    """The canary's share (percent) of the route's first rule: the backendRef named `*-canary` over the sum
    of its rule's weights (a weight left out is 1, as Gateway API says). None when the rule has no canary
    ref or no weight at all. The first rule is each tool's split (ours appends its header rule after it)."""
    rules = route.get("spec", {}).get("rules") or []
    refs = (rules[0].get("backendRefs") or []) if rules else []
    weights = {str(ref["name"]): int(ref.get("weight", 1)) for ref in refs}
    total = sum(weights.values())
    canary = [w for name, w in weights.items() if name.endswith("-canary")]
    if not canary or total == 0:
        return None
    return 100.0 * canary[0] / total


@dataclass(frozen=True)
class Answer:
    """One request of the load: when it was sent and answered (monotonic seconds), the version that answered
    (None: no 2xx with a version) and whether it succeeded."""

    sent: float
    answered: float
    version: str | None
    ok: bool


@dataclass
class Observed:
    """Everything one run saw, on one monotonic clock. `start`: the release began (image or config change);
    `done`: the tool's end state was read back; `abort`: the abort was issued (abort runs only)."""

    tool: str
    scenario: str
    start: float
    done: float
    answers: list[Answer]
    route: list[tuple[float, float | None]]
    """(arrival time, canary percent) of every state of the route a watch saw."""
    canary_pods: list[tuple[float, dict[str, Any]]]
    """(arrival time, watch event) of the pods running the canary image."""
    abort: float | None = None
    cpu_seconds: float = 0.0
    peak_mib: float = 0.0
    peak_requests_per_pod: float | None = None
    outcome: str = ""
    """What the tool ended in (`promoted`, `rolled back`, `aborted`, and its own words)."""
    notes: list[str] = field(default_factory=list)


def first_at_zero(route: Sequence[tuple[float, float | None]], after: float) -> float | None:
    """When the route was first seen with the canary at 0% at or after `after` (None: never)."""
    for at, percent in sorted(route, key=lambda item: item[0]):
        if at >= after and percent == 0:
            return at
    return None


def first_at(route: Sequence[tuple[float, float | None]], percent: float) -> float | None:
    """When the route was first seen with the canary at `percent`."""
    return next((at for at, p in sorted(route, key=lambda item: item[0]) if p == percent), None)


def timeline(route: Sequence[tuple[float, float | None]], start: float) -> list[list[float | None]]:
    """[seconds since `start`, canary percent] at each change of the route's split (the first state kept)."""
    out: list[list[float | None]] = []
    for at, percent in sorted(route, key=lambda item: item[0]):
        if not out or out[-1][1] != percent:
            out.append([round(at - start, 2), percent])
    return out


def figures(obs: Observed) -> dict[str, Any]:
    """The figures of one run (seconds, counts, MiB); None where the run did not reach that point."""
    canary_version = version_of(canary_image(obs.scenario))
    canary = [a for a in obs.answers if a.version == canary_version]
    out: dict[str, Any] = {
        "failedRequests": sum(1 for a in obs.answers if not a.ok),
        "requests": len(obs.answers),
        "cpuSeconds": obs.cpu_seconds,
        "peakMiB": obs.peak_mib,
        "outcome": obs.outcome,
        "routeTimeline": timeline(obs.route, obs.start),
    }
    if obs.scenario == "faulty":
        # The stable never fails here: a failed request is the canary's (its errors carry no version).
        hits = [a for a in obs.answers if a.sent >= obs.start and _is_canary(a, canary_version)]
        first = min((a.sent for a in hits), default=None)
        last = max((a.answered for a in hits), default=None)
        at_zero = first_at_zero(obs.route, first) if first is not None else None
        out["toZeroApiserver"] = None if first is None or at_zero is None else at_zero - first
        out["toZeroEnvoy"] = None if first is None or last is None else last - first
        end = (last if last is not None else obs.done) + TAIL_SECONDS
        out["canaryPodSeconds"] = pod_seconds(obs.canary_pods, obs.start, end)
        out["canaryAnswers"] = len(canary)
    elif obs.scenario == "healthy":
        out["wallSeconds"] = obs.done - obs.start
        out["peakRequestsPerPod"] = obs.peak_requests_per_pod
    elif obs.scenario == "abort" and obs.abort is not None:
        at_zero = first_at_zero(obs.route, obs.abort)
        last = max((a.answered for a in canary), default=None)
        out["safeApiserver"] = None if at_zero is None else at_zero - obs.abort
        out["safeEnvoy"] = None if last is None else max(0.0, last - obs.abort)
    return out


def _is_canary(answer: Answer, version: str) -> bool:
    """The canary answered, or the request failed: a faulty canary's first answers may be its errors."""
    return answer.version == version or not answer.ok


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure of a scenario, lower is better unless `higher_better`."""

    scenario: str
    key: str
    label: str
    unit: str
    higher_better: bool = False


ROWS = (
    Row("faulty", "toZeroApiserver", "faulty canary: first canary request -> route at 0% (apiserver)", "s"),
    Row("faulty", "toZeroEnvoy", "faulty canary: first canary request -> last canary answer (Envoy)", "s"),
    Row("faulty", "failedRequests", "faulty canary: user requests failed", ""),
    Row(
        "faulty",
        "canaryPodSeconds",
        f"faulty canary: canary pod-seconds (until {TAIL_SECONDS:.0f} s after)",
        "s",
    ),
    Row("healthy", "wallSeconds", "healthy canary: change -> 100% and promoted", "s"),
    Row("healthy", "failedRequests", "healthy canary: user requests failed", ""),
    Row("healthy", "peakRequestsPerPod", "healthy canary: peak requests/s of one pod", "/s"),
    Row("abort", "safeApiserver", "abort at 50%: abort -> route at 0% (apiserver)", "s"),
    Row("abort", "safeEnvoy", "abort at 50%: abort -> last canary answer (Envoy)", "s"),
    Row("abort", "failedRequests", "abort at 50%: user requests failed", ""),
    Row("all", "cpuSeconds", "per release: CPU seconds (the controller meanwhile; our CLI's processes)", "s"),
    Row("all", "peakMiB", "per release: peak memory (the controller; our CLI's processes)", "MiB"),
)


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """tool -> `scenario.key` -> {median, n, values} over runs ({tool, scenario, figures}); the `all` rows
    take every scenario's runs (CPU seconds: the median run; memory: the largest)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in ROWS:
        for tool in TOOLS:
            mine = [r for r in runs if r["tool"] == tool and row.scenario in ("all", r["scenario"])]
            values = [r["figures"].get(row.key) for r in mine]
            present = [v for v in values if v is not None]
            value = max(present, default=None) if row.key == "peakMiB" else median(values)
            out.setdefault(tool, {})[f"{row.scenario}.{row.key}"] = {
                "median": value,
                "n": len(present),
                "values": values,
            }
    return out


def best(values: Mapping[str, float | None], higher_better: bool = False) -> float | None:
    present = [v for v in values.values() if v is not None]
    if not present:
        return None
    return max(present) if higher_better else min(present)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("", "/s") and float(value).is_integer():
        return f"{value:.0f}{unit}"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "s" and value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f}{unit}" if unit else f"{value:.1f}"


def ratio(value: float | None, reference: float | None) -> str:
    """`value / reference` as `1.00x`; `=` when both are 0; n/a when either is missing or only one is 0."""
    if value is None or reference is None:
        return "n/a"
    if reference == 0:
        return "=" if value == 0 else "n/a (peer 0)"
    return f"{value / reference:.2f}x"


def table(
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]],
    whole: Mapping[str, Mapping[str, float]] | None = None,
    footprint: Mapping[str, Mapping[str, int]] | None = None,
) -> str:
    """The markdown table: each tool's median (n runs), and ours over the best peer of the row; then what
    each tool cost over the whole bench (`whole`: a controller runs all along) and what it installs in the
    cluster (`footprint`), lower better in every row but the peak requests per pod (lower is better there
    too: the load spread over more pods)."""
    headers = ["figure (median of n runs)", *(tool_label(t) for t in TOOLS), "gateway-canary / best peer"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]

    def line(
        label: str, values: Mapping[str, float | None], unit: str, counts: Mapping[str, int] | None
    ) -> None:
        cells = [_fmt(values.get(t), unit) + (f" ({counts[t]})" if counts is not None else "") for t in TOOLS]
        ours = ratio(values.get(OURS), best({t: values.get(t) for t in PEERS}))
        lines.append("| " + " | ".join([label, *cells, ours]) + " |")

    for row in ROWS:
        key = f"{row.scenario}.{row.key}"
        line(
            row.label,
            {t: summary[t][key]["median"] for t in TOOLS},
            row.unit,
            {t: summary[t][key]["n"] for t in TOOLS},
        )
    if whole:
        minutes = max(w["benchSeconds"] for w in whole.values()) / 60
        line(
            f"whole bench ({minutes:.0f} min): CPU seconds (controller all along; CLI when run)",
            {t: whole[t]["cpuSeconds"] for t in whole},
            "s",
            None,
        )
        line("whole bench: peak memory", {t: whole[t]["peakMiB"] for t in whole}, "MiB", None)
    if footprint:
        for key, label in (
            ("crds", "in the cluster: CustomResourceDefinitions"),
            ("crdBytes", "in the cluster: bytes of CRDs"),
            ("controllers", "in or beside the cluster: controller processes"),
            ("clusterRoleRules", "in the cluster: rules of its ClusterRole"),
        ):
            line(label, {t: footprint[t][key] for t in footprint}, "", None)
    return "\n".join(lines)


def details(summary: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Every run's value behind each median, in run order, per tool (the medians' spread)."""
    headers = ["figure", *(tool_label(t) for t in TOOLS)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in ROWS:
        key = f"{row.scenario}.{row.key}"
        cells = [", ".join(_fmt(v, row.unit) for v in summary[t][key]["values"]) or "-" for t in TOOLS]
        lines.append("| " + " | ".join([row.label, *cells]) + " |")
    return "\n".join(lines)


def interleaved(repeats: int, tools: Sequence[str], scenarios: Sequence[str]) -> list[tuple[int, str, str]]:
    """(repeat, tool, scenario) in run order: every repeat runs each scenario once per tool, the tools'
    order rotated each repeat, so that no tool always runs first (a warm cache, a quiet machine)."""
    order = []
    for r in range(repeats):
        turn = list(tools[r % len(tools) :]) + list(tools[: r % len(tools)])
        for scenario in scenarios:
            order += [(r, tool, scenario) for tool in turn]
    return order
