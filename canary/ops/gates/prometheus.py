"""The Prometheus HTTP API, as the gates use it: one instant query -> one number, or why there is none.

`GET /api/v1/query?query=Q&time=T&timeout=S` answers `{"status": "success", "data": {"resultType",
"result"}}` or `{"status": "error", "errorType", "error"}` (HTTP 400 for a bad query, 422 for one that
cannot be executed, 503 on timeout); a vector result is a list of `{"metric", "value": [t, "text"]}`, the
value a string that may be "NaN" or "+Inf". Every answer here is one of:

- Value(number): exactly one finite sample;
- Empty: a vector with no samples (the caller decides: no traffic, or an error);
- Failure(reason): anything else (unreachable, timeout, HTTP error, bad JSON, an error status, NaN/Inf,
  several samples, a non-vector result). Warnings are kept with the answer.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Value:
    number: float
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Empty:
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Failure:
    reason: str


Answer = Value | Empty | Failure


def interpret(status: int, body: bytes) -> Answer:
    """An HTTP answer of /api/v1/query as Value, Empty or Failure (pure)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return Failure(f"HTTP {status}, not JSON: {body[:200]!r}")
    if not isinstance(doc, dict):
        return Failure(f"HTTP {status}, unexpected answer {str(doc)[:200]}")
    if doc.get("status") != "success":
        return Failure(f"HTTP {status}: {doc.get('errorType', 'error')}: {doc.get('error', doc)}")
    warnings = tuple(str(w) for w in doc.get("warnings") or ())
    data = doc.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        samples = [{"value": result}]
    elif kind == "vector" and isinstance(result, list):
        samples = result
    else:
        return Failure(f"a {kind} result; a check needs one number (an instant vector or scalar)")
    if not samples:
        return Empty(warnings)
    if len(samples) > 1:
        labels = ", ".join(json.dumps(s.get("metric", {}), sort_keys=True) for s in samples[:3])
        return Failure(f"{len(samples)} series ({labels}); a check needs exactly one (aggregate with sum)")
    try:
        number = float(samples[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return Failure(f"unreadable sample {samples[0]!r}")
    if not math.isfinite(number):
        return Failure(f"the value is {samples[0]['value'][1]} (no valid samples)")
    return Value(number, warnings)


@dataclass(frozen=True)
class Prometheus:
    """A Prometheus server's HTTP API at `url` (no trailing slash); `timeout` in seconds per query."""

    url: str
    timeout: float

    def query(self, promql: str, at: float | None = None) -> Answer:
        # Prometheus durations are whole units ("1500ms"): "1.5s" is refused (HTTP 400 bad_data)
        params = {"query": promql, "timeout": f"{max(1, round(self.timeout * 1000))}ms"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        request = urllib.request.Request(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}",
            headers={"Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout + 1) as response:
                return interpret(response.status, response.read())
        except urllib.error.HTTPError as err:
            return interpret(err.code, err.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            return Failure(f"Prometheus at {self.url} unreachable: {reason}")
        except OSError as err:
            return Failure(f"Prometheus at {self.url}: {err}")

    def reachable(self) -> str | None:
        """None when Prometheus answers a trivial query, else why not (before a step: refuse)."""
        answer = self.query("vector(1)")
        return answer.reason if isinstance(answer, Failure) else None
