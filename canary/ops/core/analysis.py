"""The `analysis` config key: what the metric gates of `canary run`, `step --gate` and `analyze` check.

An object in stack config (`pulumi config set --path analysis.interval 5`). Pulumi.yaml declares it with every
field's default; a stack that sets the key replaces the whole object, so fields the stack leaves out are
taken from that declared default (field by field, nested checks too). Every problem names its path
(`analysis.successRate.min`), the value and what is allowed, and is reported together with the rest of the
config's problems (canary.ops.core.settings).

Numbers may be JSON numbers or strings of one (`pulumi config set --path` stores `0.5` as a string).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

KEY = "analysis"
PLACEHOLDERS = ("namespace", "app", "track", "window")
"""What a custom query may name in braces: `{namespace}`, `{app}`, `{track}` (always canary) and `{window}`
(the range of the check, e.g. `30s`). A PromQL label matcher `{a="b"}` is never one (it has an operator)."""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CHECK_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
FIELDS = (
    "prometheusUrl",
    "interval",
    "window",
    "timeout",
    "minRequests",
    "checksPerStep",
    "successRate",
    "latencyP99",
    "queries",
    "failureLimit",
    "errorLimit",
    "noDataLimit",
)
NESTED = {"successRate": ("min", "maxDrop"), "latencyP99": ("maxMs", "maxIncreaseMs")}
QUERY_FIELDS = ("name", "query", "min", "max")


@dataclass(frozen=True)
class CustomCheck:
    """A PromQL query of the user's, evaluated for the canary; its one value must lie within [min, max]."""

    name: str
    query: str
    min: float | None
    max: float | None


@dataclass(frozen=True)
class AnalysisSettings:
    """The validated `analysis` object (field docs: Pulumi.yaml)."""

    prometheus_url: str
    interval: int
    window: int
    timeout: float
    min_requests: int
    checks_per_step: int
    success_min: float | None
    success_max_drop: float | None
    p99_max_ms: float | None
    p99_max_increase_ms: float | None
    queries: tuple[CustomCheck, ...]
    failure_limit: int
    error_limit: int
    no_data_limit: int


class _Reader:
    """Reads fields of the merged object, recording (path, message) problems instead of stopping."""

    def __init__(self, value: Mapping[str, Any], problems: list[tuple[str, str]]) -> None:
        self.value = value
        self.problems = problems

    def reject(self, path: str, value: object, allowed: str) -> None:
        self.problems.append((path, f"{path}: {json.dumps(value)} is not allowed: {allowed}"))

    def get(self, obj: Mapping[str, Any], path: str, name: str) -> Any:
        if name not in obj:
            self.problems.append(
                (f"{path}.{name}", f"{path}.{name}: not set: Pulumi.yaml declares its default")
            )
            return None
        return obj[name]

    def number(self, value: object, path: str, low: float, high: float, allowed: str) -> float | None:
        number = _as_number(value)
        if number is None or not low <= number <= high:
            self.reject(path, value, allowed)
            return None
        return number

    def integer(self, value: object, path: str, low: int, high: int) -> int:
        number = _as_number(value)
        if number is None or number != int(number) or not low <= number <= high:
            self.reject(path, value, f"a whole number in {low}..{high}")
            return low
        return int(number)

    def unknown(self, obj: Mapping[str, Any], path: str, known: tuple[str, ...]) -> None:
        for name in sorted(set(obj) - set(known)):
            guess = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {guess[0]}?" if guess else f"known fields are {', '.join(known)}"
            self.problems.append((f"{path}.{name}", f"{path}.{name}: unknown field ({hint})"))


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _object(text: str | None, what: str, problems: list[tuple[str, str]]) -> dict[str, Any] | None:
    if text is None:
        problems.append((KEY, f"{KEY}: not set: Pulumi.yaml declares its default; run through Pulumi"))
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if not isinstance(value, dict):
        problems.append((KEY, f"{KEY}: {text!r} is not allowed: {what}"))
        return None
    return value


def merged(value: Mapping[str, Any], default: Mapping[str, Any]) -> dict[str, Any]:
    """The stack's object over the declared default, field by field (nested check objects too)."""
    out = {**default, **value}
    for name in NESTED:
        if isinstance(default.get(name), dict) and isinstance(value.get(name), dict):
            out[name] = {**default[name], **value[name]}
    return out


def parse_analysis(
    text: str | None, default_text: str | None, problems: list[tuple[str, str]]
) -> AnalysisSettings | None:
    """Validate the `analysis` value (JSON text, as the engine passes config) over its declared default;
    append every problem to `problems` and return None when there is one."""
    start = len(problems)
    allowed = "a JSON object (see Pulumi.yaml for its fields and their defaults)"
    value = _object(text, allowed, problems)
    default = _object(default_text, allowed, []) if default_text is not None else {}
    if value is None:
        return None
    obj = merged(value, default or {})
    r = _Reader(obj, problems)
    r.unknown(value, KEY, FIELDS)

    url = r.get(obj, KEY, "prometheusUrl")
    if url is not None and not _url_ok(url):
        r.reject(
            f"{KEY}.prometheusUrl", url, 'an http:// or https:// URL such as "http://127.0.0.1:9090", or ""'
        )
    interval = r.integer(r.get(obj, KEY, "interval"), f"{KEY}.interval", 1, 3600)
    window = r.integer(r.get(obj, KEY, "window"), f"{KEY}.window", 1, 86400)
    timeout = r.number(
        r.get(obj, KEY, "timeout"), f"{KEY}.timeout", 0.1, 300, "seconds per Prometheus query, 0.1..300"
    )
    min_requests = r.integer(r.get(obj, KEY, "minRequests"), f"{KEY}.minRequests", 1, 10**9)
    checks_per_step = r.integer(r.get(obj, KEY, "checksPerStep"), f"{KEY}.checksPerStep", 1, 1000)
    failure_limit = r.integer(r.get(obj, KEY, "failureLimit"), f"{KEY}.failureLimit", 0, 1000)
    error_limit = r.integer(r.get(obj, KEY, "errorLimit"), f"{KEY}.errorLimit", 1, 1000)
    no_data_limit = r.integer(r.get(obj, KEY, "noDataLimit"), f"{KEY}.noDataLimit", 1, 100000)

    thresholds: dict[str, float | None] = {}
    for name, fields in NESTED.items():
        nested = r.get(obj, KEY, name)
        path = f"{KEY}.{name}"
        if nested is None and name in obj:
            thresholds.update(dict.fromkeys(fields))  # null: the whole check off
            continue
        if not isinstance(nested, dict):
            if nested is not None:
                r.reject(path, nested, f"an object with {' and '.join(fields)} (each a number, or null: off)")
            continue
        r.unknown(nested, path, fields)
        for field in fields:
            raw = r.get(nested, path, field)
            limits = _LIMITS[(name, field)]
            thresholds[field] = None if raw is None else r.number(raw, f"{path}.{field}", *limits)

    queries = _queries(r, r.get(obj, KEY, "queries"))
    if len(problems) > start:
        return None
    return AnalysisSettings(
        prometheus_url=str(url).rstrip("/"),
        interval=interval,
        window=window,
        timeout=float(timeout or 0),
        min_requests=min_requests,
        checks_per_step=checks_per_step,
        success_min=thresholds["min"],
        success_max_drop=thresholds["maxDrop"],
        p99_max_ms=thresholds["maxMs"],
        p99_max_increase_ms=thresholds["maxIncreaseMs"],
        queries=queries,
        failure_limit=failure_limit,
        error_limit=error_limit,
        no_data_limit=no_data_limit,
    )


_LIMITS = {
    ("successRate", "min"): (0.0, 100.0, "a percent of requests not answered 5xx, 0..100, or null (off)"),
    ("successRate", "maxDrop"): (0.0, 100.0, "percentage points below stable's rate, 0..100, or null (off)"),
    ("latencyP99", "maxMs"): (0.001, 3.6e6, "milliseconds above 0, or null (off)"),
    ("latencyP99", "maxIncreaseMs"): (0.0, 3.6e6, "milliseconds above stable's p99, >= 0, or null (off)"),
}


def _url_ok(url: object) -> bool:
    if url == "":
        return True
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query


def _queries(r: _Reader, value: object) -> tuple[CustomCheck, ...]:
    path = f"{KEY}.queries"
    if value is None:
        return ()
    if not isinstance(value, list):
        r.reject(path, value, "a JSON array of {name, query, min, max} objects")
        return ()
    checks, names = [], set()
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        if not isinstance(item, dict):
            r.reject(at, item, "an object {name, query, min, max}")
            continue
        r.unknown(item, at, QUERY_FIELDS)
        name, query = item.get("name"), item.get("query")
        if not isinstance(name, str) or len(name) > 63 or not _CHECK_NAME.fullmatch(name):
            r.reject(f"{at}.name", name, "a name of lowercase letters, digits and '-' (<= 63)")
        elif name in names:
            r.reject(f"{at}.name", name, "a name no other query has")
        names.add(str(name))
        if not isinstance(query, str) or not query.strip():
            r.reject(f"{at}.query", query, "a PromQL expression (a non-empty string)")
        else:
            bad = sorted({p for p in _PLACEHOLDER.findall(query) if p not in PLACEHOLDERS})
            if bad:
                r.reject(
                    f"{at}.query",
                    query,
                    f"unknown placeholder {', '.join('{' + b + '}' for b in bad)}; "
                    f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                )
        bounds = []
        for side in ("min", "max"):
            raw = item.get(side)
            bounds.append(
                None
                if raw is None
                else r.number(raw, f"{at}.{side}", -math.inf, math.inf, "a number or null")
            )
        low, high = bounds
        if item.get("min") is None and item.get("max") is None:
            r.reject(at, item, "a min or a max (or both): a check with neither can never fail")
        elif low is not None and high is not None and low > high:
            r.reject(f"{at}.min", item.get("min"), f"at most max ({high:g})")
        checks.append(CustomCheck(str(name), str(query), low, high))
    return tuple(checks)
