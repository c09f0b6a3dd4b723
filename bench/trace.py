"""Where one `pulumi up` spends its time, from the engine's own OpenTelemetry trace (`--otel-traces file://`).

    python -m bench.trace TRACE.json      print the phases of a trace written by `pulumi ... --otel-traces`

The phases follow the RPCs the engine records: CLI start-up until its first output, then the language
runtime's Run (the Python program): interpreter start and `import pulumi` until the program's first call to
the resource monitor, the program's own imports and body until its first RegisterResource, the
registrations (with the provider's start, Configure, and every Check/Diff/Update), the program's exit, and
what follows it (state write, summary).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import table


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def read_spans(lines: Iterable[str]) -> list[Span]:
    """Spans of an OTLP JSON file (one export request per line), times in seconds."""
    spans = []
    for line in lines:
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            attrs = rs.get("resource", {}).get("attributes", [])
            service = next(
                (a["value"].get("stringValue", "?") for a in attrs if a.get("key") == "service.name"), "?"
            )
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    spans.append(
                        Span(
                            service,
                            s["name"],
                            int(s["startTimeUnixNano"]) / 1e9,
                            int(s["endTimeUnixNano"]) / 1e9,
                        )
                    )
    return spans


def _engine(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.service == "pulumi-cli" and s.name == name]


def phases(spans: list[Span]) -> list[dict[str, Any]]:
    """The phases of one engine run as {"phase", "start", "end", "seconds"} (times from the trace start);
    phases whose spans are missing are left out. Names starting with "- " are parts of the phase above."""
    if not spans:
        return []
    t0, t_end = min(s.start for s in spans), max(s.end for s in spans)
    found: list[dict[str, Any]] = []

    def add(phase: str, start: float | None, end: float | None) -> None:
        if start is not None and end is not None and end >= start:
            found.append({"phase": phase, "start": start - t0, "end": end - t0, "seconds": end - start})

    first_print = _engine(spans, "time-to-first-print")
    run = _engine(spans, "pulumirpc.LanguageRuntime/Run")
    monitor = [
        s for s in spans if s.service == "pulumi-cli" and s.name.startswith("pulumirpc.ResourceMonitor/")
    ]
    registers = [s for s in monitor if s.name == "pulumirpc.ResourceMonitor/RegisterResource"]
    add("CLI start-up, until its first output", t0, first_print[0].end if first_print else None)
    if run:
        add(
            "state read, plugins, until the program starts",
            first_print[0].end if first_print else t0,
            run[0].start,
        )
        add("Python program (language runtime Run)", run[0].start, run[0].end)
        first_call = min((s.start for s in monitor), default=None)
        add("- interpreter start, import pulumi", run[0].start, first_call)
        if registers:
            first, last = min(s.start for s in registers), max(s.end for s in registers)
            add("- program imports and body, until its first registration", first_call, first)
            add("- registrations, steps and provider calls", first, last)
            configure = _engine(spans, "pulumirpc.ResourceProvider/Configure")
            plugins = [s for s in _engine(spans, "newPlugin") if configure and s.end <= configure[0].start]
            if configure:
                add(
                    "- - provider start and Configure",
                    max((s.start for s in plugins), default=configure[0].start),
                    configure[0].end,
                )
            for call in ("Check", "Diff", "Update", "Read", "Create"):
                calls = _engine(spans, f"pulumirpc.ResourceProvider/{call}")
                if calls:
                    found.append(
                        {
                            "phase": f"- - provider {call} x{len(calls)} (sum of calls)",
                            "start": min(s.start for s in calls) - t0,
                            "end": max(s.end for s in calls) - t0,
                            "seconds": sum(s.seconds for s in calls),
                        }
                    )
            add("- program exit", last, run[0].end)
        add("after the program: state write, summary", run[0].end, t_end)
    add("total (traced)", t0, t_end)
    return found


def markdown(found: list[dict[str, Any]]) -> str:
    return table(
        ["phase", "from s", "to s", "seconds"],
        [[p["phase"], f"{p['start']:.2f}", f"{p['end']:.2f}", f"{p['seconds']:.2f}"] for p in found],
    )


def side_by_side(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Several traced runs' phases in one table: phase, then each run's seconds."""
    order: list[str] = []
    for found in runs.values():
        order += [p["phase"] for p in found if p["phase"] not in order]
    seconds = {label: {p["phase"]: p["seconds"] for p in found} for label, found in runs.items()}
    rows = [
        [phase, *(f"{seconds[label][phase]:.2f}" if phase in seconds[label] else "-" for label in runs)]
        for phase in order
    ]
    return table(["phase", *[f"{label} s" for label in runs]], rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(markdown(phases(read_spans(Path(argv[0]).read_text().splitlines()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
