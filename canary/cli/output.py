"""What the `canary` command prints: the status block, its --json document, and where output goes.

In --json documents a `*Percent` is a percent of traffic as exact text ("25", "0.5") and a `*Weight` is a
Gateway API backendRef weight (an integer), the same convention as the code.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

from canary.cli.timeline import format_duration
from canary.ops.core.history import format_time, split_actor, updated_by
from canary.ops.core.plan import PreviewReport
from canary.ops.core.state import RolloutState
from canary.ops.verify.split import Verdict as SplitVerdict
from canary.weights import format_percent, show_percent

if TYPE_CHECKING:
    from canary.ops.verify.flow import Verification


class Printer:
    """Where output goes: results to stdout; Pulumi's own output and notes to stderr in --json mode."""

    def __init__(self, as_json: bool, out: TextIO, err: TextIO) -> None:
        self.as_json = as_json
        self.out = out
        self.err = err

    def say(self, text: str = "") -> None:
        """Human output; none in --json mode, where stdout carries the JSON result only."""
        if not self.as_json:
            print(text, file=self.out, flush=True)

    def pulumi_line(self, line: str) -> None:
        """Pulumi's own output, streamed: stdout, or stderr in --json mode."""
        print(line, file=self.err if self.as_json else self.out, flush=True)

    def error_line(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def result(self, data: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2), file=self.out, flush=True)


def status_lines(state: RolloutState) -> list[str]:
    """The status block, one fact per line, then DRIFT / PENDING / CONFIG notes."""
    lines = [f"stack        {state.stack} (project {state.project})"]
    deployed = state.deployed
    if deployed is None:
        lines.append("phase        not deployed (no stack outputs): run `pulumi up`")
    else:
        canary = deployed.canary_image
        lines += [
            f"phase        {deployed.phase}",
            f"weights      stable {show_percent(deployed.stable_percent)}"
            + (f", canary {show_percent(deployed.canary_percent)}" if canary else ""),
            f"images       stable {deployed.stable_image}" + (f", canary {canary}" if canary else ""),
            f"replicas     {_replicas_text(state)}",
        ]
        live = state.live_route
        where = f"{deployed.namespace}/{deployed.route_name}"
        if state.live_error is not None:
            lines.append(f"live route   {where}: cannot read: {state.live_error}")
        elif live is None:
            lines.append(f"live route   {where}: not found")
        else:
            header = "off" if live.header_rule is None else f"{live.header_rule[0]}: {live.header_rule[1]}"
            mirror = "off" if live.mirror_percent == 0 else f"{show_percent(live.mirror_percent)} to canary"
            split = f"stable {live.stable_weight}" + (
                f" / canary {live.canary_weight}" if live.canary_weight is not None else ""
            )
            lines += [
                f"header rule  {header}" + (" -> canary" if live.header_rule else ""),
                f"mirror       {mirror}",
                f"live route   {where}: weights {split} "
                f"(canary {show_percent(live.canary_percent)}), generation {live.generation}",
            ]
            if live.refusal is not None:
                lines.append(f"REFUSED: the gateway refuses generation {live.generation}: {live.refusal}")
    lines.append(f"last update  {_last_update_text(state)}")
    lines += state.drift
    if state.pending:
        lines.append(
            "PENDING: stack config differs from the last update: "
            + "; ".join(state.pending)
            + " (see `canary preview`)"
        )
    if state.config_error is not None:
        lines.append(f"CONFIG: {state.config_error}")
    return lines


def _replicas_text(state: RolloutState) -> str:
    """Each track's ready/desired pods and the share of the split they carry (the live route's, else the
    last update's)."""
    parts = []
    shares = _shares(state)
    for track, replicas in state.replicas.items():
        if replicas is None:
            parts.append(f"{track} not found")
            continue
        share = f" carrying {show_percent(shares[track])}" if track in shares else ""
        parts.append(f"{track} {replicas.ready}/{replicas.desired} ready{share}")
    return ", ".join(parts) or "unknown"


def _shares(state: RolloutState) -> dict[str, Decimal]:
    """Each track's percent of the weighted split: the live route's when read, else the last update's."""
    live, deployed = state.live_route, state.deployed
    if live is not None:
        return {"stable": live.stable_percent, "canary": live.canary_percent}
    if deployed is not None:
        return {"stable": deployed.stable_percent, "canary": deployed.canary_percent}
    return {}


def _last_update_text(state: RolloutState) -> str:
    last = state.last_update
    if last is None:
        return "none"
    return (
        f"{format_time(last.start)}, {last.kind} {last.result} in {format_duration(last.duration)}, "
        f"by {updated_by(last.environment, last.message)}: {split_actor(last.message)[0] or '(no message)'!r}"
    )


def show_status(state: RolloutState, printer: Printer) -> None:
    """`canary status`: the lines, then the JSON result (with --json)."""
    for line in status_lines(state):
        printer.say(line)
    printer.result(status_json(state))


def status_json(state: RolloutState) -> dict[str, Any]:
    deployed, live, last = state.deployed, state.live_route, state.last_update
    shares = _shares(state)
    return {
        "ok": True,
        "stack": state.stack,
        "deployed": None
        if deployed is None
        else {
            "phase": deployed.phase,
            "stablePercent": format_percent(deployed.stable_percent),
            "canaryPercent": format_percent(deployed.canary_percent),
            "stableImage": deployed.stable_image,
            "canaryImage": deployed.canary_image or "",
            "namespace": deployed.namespace,
            "routeName": deployed.route_name,
        },
        "replicas": {
            track: None
            if r is None
            else {
                "ready": r.ready,
                "desired": r.desired,
                "sharePercent": None if track not in shares else show_percent(shares[track]).rstrip("%"),
            }
            for track, r in state.replicas.items()
        },
        "liveRoute": None
        if live is None
        else {
            "stableWeight": live.stable_weight,
            "canaryWeight": live.canary_weight,
            "stablePercent": show_percent(live.stable_percent).rstrip("%"),
            "canaryPercent": show_percent(live.canary_percent).rstrip("%"),
            "headerRule": None
            if live.header_rule is None
            else {"name": live.header_rule[0], "value": live.header_rule[1]},
            "mirrorPercent": format_percent(live.mirror_percent),
            "generation": live.generation,
            "refusal": live.refusal,
        },
        "liveError": state.live_error,
        "lastUpdate": None
        if last is None
        else {
            "kind": last.kind,
            "result": last.result,
            "start": last.start.isoformat(),
            "durationSeconds": None if last.duration is None else last.duration.total_seconds(),
            "by": updated_by(last.environment, last.message),
            "message": last.message,
        },
        "drift": state.drift,
        "pending": state.pending,
        "configError": None if state.config_error is None else str(state.config_error),
    }


def preview_lines(report: PreviewReport) -> list[str]:
    pods = [f"Pods:    {report.pods}"] if report.pods else []
    return [report.diff.rstrip(), "", f"Traffic: {report.summary}", *pods]


def verify_lines(result: Verification) -> list[str]:
    """The `canary verify` report: target, intent, what was sent, one line per version, the verdict."""
    verdict, tally, sent = result.verdict, result.tally, result.sent
    host = f", Host: {result.host}" if result.host else ""
    headers = "".join(f", {name}: {value}" for name, value in sent.headers.items())
    p50, p99 = tally.latency_quantile(0.5), tally.latency_quantile(0.99)
    latency = (
        "" if p50 is None or p99 is None else f"; latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    level = show_percent(verdict.confidence * 100)
    gateway = [] if result.gateway is None else [f"gateway      {result.gateway}"]
    lines = [
        *gateway,
        f"target       {sent.url}{host}{headers} ({sent.checked})",
        f"intent       live route {result.route_where}, generation {result.route.generation}: "
        f"{result.intent.reason}",
        f"sent         {len(sent.results)} of {sent.requests} requests in {sent.seconds:.1f}s, "
        f"{sent.concurrency} at a time; {tally.failed} failed{latency}",
        f"{'version':<14} {'track':<7} {'count':>6} {'share':>8}  {'intended':>8}  {level} interval",
    ]
    for row in verdict.rows:
        share = "-" if not verdict.counted else f"{Decimal(row.count) * 100 / verdict.counted:.1f}%"
        intended = "-" if row.intended_percent is None else show_percent(row.intended_percent)
        interval = "-" if row.interval is None else row.interval.text()
        lines.append(
            f"{row.version:<14} {row.track or 'unknown':<7} {row.count:>6} {share:>8}  "
            f"{intended:>8}  {interval}"
        )
    if tally.without_version:
        lines.append(f"{'(no version)':<14} {'':<7} {tally.without_version:>6}")
    for kind, count in sorted(tally.failures.items()):
        lines.append(f"{'(failed)':<14} {kind:<7} {count:>6}")
    if verdict.ok and result.intent.by_header:
        lines.append(f"PASS: all {verdict.counted} header requests reached the canary; no failed requests")
    elif verdict.ok:
        lines.append(
            f"PASS: canary answered {verdict.canary} of {verdict.counted}, inside the {level} interval "
            f"{verdict.interval.text()} for {show_percent(result.intent.canary_percent)}; no failed requests"
        )
    else:
        lines += [f"FAIL: {reason}" for reason in verdict.reasons]
    lines += [f"note: {note}" for note in verdict.notes]
    return lines


def verify_json(result: Verification) -> dict[str, Any]:
    tally, sent = result.tally, result.sent
    p50, p99 = tally.latency_quantile(0.5), tally.latency_quantile(0.99)
    return {
        **verdict_json(result.verdict),
        "gateway": result.gateway,
        "target": {"url": sent.url, "host": result.host, "checked": sent.checked},
        "headers": dict(sent.headers),
        "route": {
            "name": result.route_where,
            "generation": result.route.generation,
            "stableWeight": result.route.stable_weight,
            "canaryWeight": result.route.canary_weight,
        },
        "requests": sent.requests,
        "sent": len(sent.results),
        "seconds": round(sent.seconds, 3),
        "failures": tally.failures,
        "withoutVersion": tally.without_version,
        "latencySeconds": {"p50": p50, "p99": p99},
    }


def verdict_json(verdict: SplitVerdict) -> dict[str, Any]:
    """The verdict for --json: percents as exact text, counts and interval bounds as integers."""
    return {
        "ok": verdict.ok,
        "reasons": verdict.reasons,
        "notes": verdict.notes,
        "confidence": format_percent(verdict.confidence * 100),
        "intent": {
            "canaryPercent": format_percent(verdict.intent.canary_percent),
            "byHeader": verdict.intent.by_header,
            "reason": verdict.intent.reason,
        },
        "counted": verdict.counted,
        "canaryCount": verdict.canary,
        "canaryInterval": {"low": verdict.interval.low, "high": verdict.interval.high},
        "versions": [
            {
                "version": row.version,
                "track": row.track,
                "count": row.count,
                "intendedPercent": None
                if row.intended_percent is None
                else format_percent(row.intended_percent),
                "interval": None
                if row.interval is None
                else {"low": row.interval.low, "high": row.interval.high},
            }
            for row in verdict.rows
        ],
    }


def render_markdown(report: PreviewReport) -> str:
    """A block for a pull-request comment: the traffic line, a before/after table, the diff folded away."""
    before, after = report.before, report.after
    rows = [
        ("phase", before.phase if before else "(not deployed)", after.phase),
        (
            "canary weight",
            show_percent(before.canary_percent) if before else "-",
            show_percent(after.canary_percent),
        ),
        (
            "stable weight",
            show_percent(before.stable_percent) if before else "-",
            show_percent(after.stable_percent),
        ),
        ("stable image", _code(before.stable_image) if before else "-", _code(after.stable_image)),
        (
            "canary image",
            _code(before.canary_image) if before else "-",
            _code(after.canary_image),
        ),
    ]
    fence = "```"
    while fence in report.diff:
        fence += "`"
    lines = [
        f"### Canary preview: stack `{report.stack}`",
        "",
        f"**{report.summary}**",
        "",
        *([f"Pods: {report.pods}", ""] if report.pods else []),
        "| | now | after `pulumi up` |",
        "|---|---|---|",
        *(f"| {name} | {now} | {then} |" for name, now, then in rows),
        "",
        "<details><summary>Full diff (<code>pulumi preview --diff</code>)</summary>",
        "",
        f"{fence}diff",
        report.diff.rstrip(),
        fence,
        "",
        "</details>",
    ]
    return "\n".join(lines) + "\n"


def _code(value: str | None) -> str:
    return f"`{value}`" if value else "(none)"
