"""The PromQL the checks run: built-in ones over the app's own histogram, and the custom ones' placeholders.

Built-ins read `http_request_duration_seconds` (podinfo's, and Flagger's choice for Gateway API: Envoy
Gateway shares one Envoy cluster between a rule's weighted backends, so Envoy's per-cluster figures mix
stable and canary; docs/analysis-notes.md). A track's pods are selected by the target labels `namespace`,
`app` and `track` (the release's pod labels app.kubernetes.io/name and gateway-canary/track, as the test
bed's Prometheus attaches them to every scraped series; a cluster's Prometheus relabels them the same way).

- requests: `increase` of the request count over the window (no series at all = 0 requests);
- success rate: percent of requests not answered 5xx. The 5xx side is `or vector(0)` so a window with no
  5xx reads 100, not "no result", and a window where every request failed reads 0, not "no result";
- p99: `histogram_quantile(0.99, ...)` of the buckets' rate, in milliseconds.

Each is a pure function of (selector, window); tests/unit/test_promql_rules.py runs them through
`promtool test rules` on synthetic series.
"""

from __future__ import annotations

from dataclasses import dataclass

from canary.names import Track

METRIC = "http_request_duration_seconds"
SERVER_ERROR = '"5.."'


@dataclass(frozen=True)
class Selector:
    """The pods of one track of one release, as Prometheus label matchers."""

    namespace: str
    app: str
    track: Track

    def matchers(self, extra: str = "") -> str:
        parts = [f'namespace="{self.namespace}"', f'app="{self.app}"', f'track="{self.track}"']
        return "{" + ", ".join([*parts, *([extra] if extra else [])]) + "}"


def window_text(seconds: int) -> str:
    """A PromQL range: whole seconds."""
    return f"{max(1, int(seconds))}s"


def requests(sel: Selector, window: int) -> str:
    return f"sum(increase({METRIC}_count{sel.matchers()}[{window_text(window)}]))"


def success_rate(sel: Selector, window: int) -> str:
    w = window_text(window)
    errors = f"sum(rate({METRIC}_count{sel.matchers(f'status=~{SERVER_ERROR}')}[{w}]))"
    total = f"sum(rate({METRIC}_count{sel.matchers()}[{w}]))"
    return f"100 * (1 - ({errors} or vector(0)) / {total})"


def p99_ms(sel: Selector, window: int) -> str:
    rate = f"sum by (le) (rate({METRIC}_bucket{sel.matchers()}[{window_text(window)}]))"
    return f"1000 * histogram_quantile(0.99, {rate})"


def custom(query: str, sel: Selector, window: int) -> str:
    """A custom check's query with its placeholders filled (the config has refused unknown ones)."""
    values = {
        "namespace": sel.namespace,
        "app": sel.app,
        "track": sel.track,
        "window": window_text(window),
    }
    for name, value in values.items():
        query = query.replace("{" + name + "}", value)
    return query
