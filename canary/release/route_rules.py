"""The app's own HTTPRoute rules (routeRules): which get the split, and what Gateway API allows (pure).

A user writes rules as Gateway API does (`name`, `matches`, `filters`, `timeouts`). A rule without
`backendRefs` is the app's: the release gives it the stable/canary split (routing.split_rule) and, while the
header override is on, a twin that sends requests carrying the canary header to the canary with the same
matches, filters and timeouts (routing.header_rule). A rule with `backendRefs` (another Service, or `[]` for
a redirect) is the user's own and is rendered exactly as written.

`rule_problems` checks what the apiserver would refuse (the schema's limits and the CEL rules of Gateway API
v1.6's HTTPRoute that concern rules), so a bad rule is named, with its field, before anything is sent. The
schema's finer points (a header modifier's own fields, an extensionRef's target) are the apiserver's, which
`pulumi preview` asks with a server-side dry run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from canary.gateway_api import (
    MAX_BACKEND_REFS,
    MAX_FILTERS,
    MAX_HEADER_MATCHES,
    MAX_HEADER_NAME,
    MAX_MATCHES_PER_RULE,
    MAX_RULES,
)

KEY = "routeRules"
RULE_FIELDS = {
    "http": ("name", "matches", "filters", "timeouts", "backendRefs"),
    "grpc": ("name", "matches", "filters", "backendRefs"),
}
"""The HTTPRouteRule and GRPCRouteRule fields of Gateway API's standard channel (v1.6), by protocol."""
MATCH_FIELDS = {"http": ("path", "headers", "queryParams", "method"), "grpc": ("method", "headers")}
PATH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
MATCH_TYPES = ("Exact", "RegularExpression")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FILTER_FIELDS = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
    "CORS": "cors",
}
"""Filter type -> the field that carries its settings (exactly that one is set, a CEL rule)."""
GRPC_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef")
"""The filter types a GRPCRoute rule may have."""
REPEATABLE_FILTERS = frozenset({"RequestMirror", "ExtensionRef"})
"""Filter types a rule may list more than once; every other type at most once (CEL rules)."""
HEADER_RULE_SUFFIX = "-canary-header"
"""The header-override twin of a named rule is named `<name>-canary-header` (rule names are unique)."""
MAX_RULE_NAME = 253

_SECTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")
_DURATION_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_GRPC_SERVICE = re.compile(r"\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*", re.IGNORECASE)
_GRPC_METHOD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_PATH_CHARACTERS = re.compile(r"(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+")

Manifest = dict[str, Any]


def is_app_rule(rule: Mapping[str, Any]) -> bool:
    """A rule the release splits: one that names no backendRefs of its own."""
    return "backendRefs" not in rule


def header_rule_name(name: str) -> str:
    return f"{name}{HEADER_RULE_SUFFIX}"


def where(index: int, rule: object) -> str:
    """`routeRules[1]` or `routeRules[1] ('api')`: how a message names a rule."""
    name = rule.get("name") if isinstance(rule, dict) else None
    return f"{KEY}[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")


def rule_problems(
    rules: list[object], service_names: tuple[str, ...], canary_header: str | None, protocol: str = "http"
) -> list[str]:
    """Everything wrong with the routeRules list, each message naming the rule and field.

    `service_names` are the release's own Services (a user rule may not send to them: the split does);
    `canary_header` the header override's name, which no match may test itself (the override adds it);
    `protocol` says whether they are HTTPRoute or GRPCRoute rules.
    """
    problems: list[str] = []
    if len(rules) > MAX_RULES:
        problems.append(f"{KEY}: {len(rules)} rules given, over Gateway API's limit of {MAX_RULES}")
    names: list[str] = []
    twins: set[str] = set()
    for index, rule in enumerate(rules):
        at = where(index, rule)
        if not isinstance(rule, dict):
            problems.append(f"{at}: {rule!r} is not allowed: an HTTPRoute rule (an object)")
            continue
        known = RULE_FIELDS[protocol]
        for unknown in sorted(set(rule) - set(known)):
            problems.append(f"{at}.{unknown}: unknown field (known: {', '.join(known)})")
        name = rule.get("name")
        if name is not None:
            problems += _name_problems(at, name, is_app_rule(rule))
            if isinstance(name, str):
                names.append(name)
                if is_app_rule(rule):
                    twins.add(header_rule_name(name))
        problems += _match_problems(at, rule.get("matches"), canary_header, protocol)
        problems += _filter_problems(at, rule, rule.get("filters"), protocol)
        if protocol == "http":
            problems += _timeout_problems(at, rule.get("timeouts"))
        if not is_app_rule(rule):
            problems += _backend_problems(at, rule["backendRefs"], service_names)
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{KEY}: the rule name {name!r} is used twice: rule names are unique in a route")
    for name in sorted(twins.intersection(names)) if canary_header is not None else []:
        problems.append(
            f"{KEY}: the rule name {name!r} is taken by the header-override twin of "
            f"{name.removesuffix(HEADER_RULE_SUFFIX)!r}: rename it"
        )
    return problems


def _name_problems(at: str, name: object, app_rule: bool) -> list[str]:
    longest = MAX_RULE_NAME - (len(HEADER_RULE_SUFFIX) if app_rule else 0)
    if isinstance(name, str) and len(name) <= longest and _SECTION_NAME.fullmatch(name):
        return []
    return [
        f"{at}.name: {name!r} is not allowed: a DNS-1123 subdomain (lowercase, digits, '-' and '.') of at "
        "most "
        f"{longest} characters"
        + (f" (its header-override twin adds {HEADER_RULE_SUFFIX!r})" if app_rule else "")
    ]


def _match_problems(at: str, matches: object, canary_header: str | None, protocol: str) -> list[str]:
    if matches is None:
        return []
    if not isinstance(matches, list) or not all(isinstance(m, dict) for m in matches):
        return [f"{at}.matches: {matches!r} is not allowed: a list of HTTPRouteMatch objects"]
    problems = []
    if len(matches) > MAX_MATCHES_PER_RULE:
        problems.append(
            f"{at}.matches: {len(matches)} given, over Gateway API's limit of {MAX_MATCHES_PER_RULE} per rule"
        )
    for i, match in enumerate(matches):
        here = f"{at}.matches[{i}]"
        known = MATCH_FIELDS[protocol]
        for unknown in sorted(set(match) - set(known)):
            problems.append(f"{here}.{unknown}: unknown field (known: {', '.join(known)})")
        problems += _header_match_problems(here, match.get("headers"), canary_header)
        method = match.get("method")
        if protocol == "grpc":
            problems += _grpc_method_problems(here, method)
            continue
        problems += _path_problems(here, match.get("path"))
        if method is not None and method not in METHODS:
            problems.append(f"{here}.method: {method!r} is not allowed: one of {', '.join(METHODS)}")
    return problems


def _grpc_method_problems(here: str, method: object) -> list[str]:
    """A GRPCRoute match's method: service and/or method, names as the CEL rules allow for Exact."""
    if method is None:
        return []
    if not isinstance(method, dict) or not ({"service", "method"} & set(method)):
        return [f"{here}.method: {method!r} is not allowed: an object with service and/or method"]
    problems = []
    kind = method.get("type", "Exact")
    if kind not in MATCH_TYPES:
        problems.append(f"{here}.method.type: {kind!r} is not allowed: one of {', '.join(MATCH_TYPES)}")
    for name, pattern in (("service", _GRPC_SERVICE), ("method", _GRPC_METHOD)):
        value = method.get(name)
        if value is not None and (
            not isinstance(value, str) or (kind == "Exact" and not pattern.fullmatch(value))
        ):
            problems.append(f"{here}.method.{name}: {value!r} is not allowed: a gRPC {name} name")
    return problems


def _path_problems(here: str, path: object) -> list[str]:
    """The path match's type and, for Exact and PathPrefix, the value rules of Gateway API's CEL."""
    if path is None:
        return []
    if not isinstance(path, dict):
        return [f"{here}.path: {path!r} is not allowed: an object with type and value"]
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    if kind not in PATH_TYPES:
        return [f"{here}.path.type: {kind!r} is not allowed: one of {', '.join(PATH_TYPES)}"]
    if not isinstance(value, str) or not value or len(value) > 1024:
        return [f"{here}.path.value: {value!r} is not allowed: a path of 1 to 1024 characters"]
    if kind == "RegularExpression":
        return []
    broken = [
        reason
        for reason, bad in (
            ("start with '/'", not value.startswith("/")),
            ("not contain '//', '/./', '/../', '%2f', '%2F' or '#'", _has_any(value)),
            ("not end with '/.' or '/..'", value.endswith(("/.", "/.."))),
            (
                "only contain path characters (RFC 3986, '%' only as an escape)",
                not _PATH_CHARACTERS.fullmatch(value),
            ),
        )
        if bad
    ]
    article = "an" if kind[0] in "AEIOU" else "a"
    return [
        f"{here}.path.value: {value!r} is not allowed: {article} {kind} path must {b}" for b in broken[:1]
    ]


def _has_any(value: str) -> bool:
    return any(part in value for part in ("//", "/./", "/../", "%2f", "%2F", "#"))


def _header_match_problems(here: str, headers: object, canary_header: str | None) -> list[str]:
    if headers is None:
        return []
    if not isinstance(headers, list) or not all(isinstance(h, dict) for h in headers):
        return [f"{here}.headers: {headers!r} is not allowed: a list of {{name, value}} header matches"]
    problems = []
    limit = MAX_HEADER_MATCHES - (1 if canary_header else 0)
    if len(headers) > limit:
        problems.append(
            f"{here}.headers: {len(headers)} given, over the limit of {limit}"
            + (" (Gateway API's 16, less the canary header the override adds)" if canary_header else "")
        )
    seen: list[str] = []
    for j, header in enumerate(headers):
        name, value = header.get("name"), header.get("value")
        if not isinstance(name, str) or len(name) > MAX_HEADER_NAME or not _HEADER_NAME.fullmatch(name):
            problems.append(f"{here}.headers[{j}].name: {name!r} is not allowed: an HTTP header name")
            continue
        if not isinstance(value, str) or not 1 <= len(value) <= 4096:
            problems.append(f"{here}.headers[{j}].value: {value!r} is not allowed: 1 to 4096 characters")
        if header.get("type", "Exact") not in MATCH_TYPES:
            problems.append(
                f"{here}.headers[{j}].type: {header.get('type')!r} is not allowed: one of "
                + ", ".join(MATCH_TYPES)
            )
        if name.lower() in seen:
            problems.append(f"{here}.headers[{j}].name: {name!r} is matched twice in one match")
        seen.append(name.lower())
        if canary_header is not None and name.lower() == canary_header.lower():
            problems.append(
                f"{here}.headers[{j}].name: {name!r} is the canaryHeader's name: the header override adds "
                "that match itself (leave it out, or change canaryHeader)"
            )
    return problems


def _filter_problems(at: str, rule: Mapping[str, Any], filters: object, protocol: str) -> list[str]:
    if filters is None:
        return []
    if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
        return [f"{at}.filters: {filters!r} is not allowed: a list of HTTPRouteFilter objects"]
    problems = []
    if len(filters) > MAX_FILTERS:
        problems.append(f"{at}.filters: {len(filters)} given, over Gateway API's limit of {MAX_FILTERS}")
    kinds = []
    allowed = GRPC_FILTERS if protocol == "grpc" else tuple(FILTER_FIELDS)
    for i, entry in enumerate(filters):
        kind = entry.get("type")
        here = f"{at}.filters[{i}]"
        if kind not in allowed:
            problems.append(f"{here}.type: {kind!r} is not allowed: one of {', '.join(allowed)}")
            continue
        kinds.append(kind)
        wanted = FILTER_FIELDS[kind]
        if not isinstance(entry.get(wanted), dict):
            problems.append(f"{here}.{wanted}: missing: a {kind} filter carries its settings there")
        for other in sorted(set(FILTER_FIELDS.values()).intersection(entry) - {wanted}):
            problems.append(f"{here}.{other}: not allowed in a {kind} filter")
    for kind in sorted({k for k in kinds if kinds.count(k) > 1} - REPEATABLE_FILTERS):
        problems.append(f"{at}.filters: {kind} is listed twice: Gateway API allows it once per rule")
    if "RequestRedirect" in kinds and "URLRewrite" in kinds:
        problems.append(f"{at}.filters: RequestRedirect and URLRewrite together are not allowed")
    if "RequestRedirect" in kinds and is_app_rule(rule):
        problems.append(
            f"{at}.filters: a RequestRedirect rule sends to no backend, so it cannot carry the split: give "
            "it "
            '"backendRefs": [] and the release leaves it as written'
        )
    prefix_rewrites = [
        f
        for f in filters
        if isinstance(f.get("urlRewrite"), dict)
        and (f["urlRewrite"].get("path") or {}).get("type") == "ReplacePrefixMatch"
    ]
    matches = rule.get("matches") or [{}]
    if prefix_rewrites and (
        len(matches) != 1 or ((matches[0].get("path") or {}).get("type", "PathPrefix") != "PathPrefix")
    ):
        problems.append(
            f"{at}.filters: a URLRewrite with ReplacePrefixMatch needs exactly one PathPrefix match in the "
            "rule"
        )
    return problems


def _timeout_problems(at: str, timeouts: object) -> list[str]:
    if timeouts is None:
        return []
    if not isinstance(timeouts, dict):
        return [f"{at}.timeouts: {timeouts!r} is not allowed: an object with request and backendRequest"]
    problems = []
    for unknown in sorted(set(timeouts) - {"request", "backendRequest"}):
        problems.append(f"{at}.timeouts.{unknown}: unknown field (known: request, backendRequest)")
    for name in ("request", "backendRequest"):
        value = timeouts.get(name)
        if value is not None and (not isinstance(value, str) or not _DURATION.fullmatch(value)):
            problems.append(
                f"{at}.timeouts.{name}: {value!r} is not allowed: a Gateway API duration such as '10s', "
                "'1m30s' or '500ms'"
            )
    request, backend = timeouts.get("request"), timeouts.get("backendRequest")
    if (
        not problems
        and request is not None
        and backend is not None
        and _milliseconds(request) != 0
        and _milliseconds(backend) > _milliseconds(request)
    ):
        problems.append(
            f"{at}.timeouts.backendRequest: {backend!r} is not allowed: at most request ({request!r})"
        )
    return problems


def _milliseconds(duration: str) -> int:
    scale = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
    return sum(int(n) * scale[unit] for n, unit in _DURATION_PART.findall(duration))


def _backend_problems(at: str, refs: object, service_names: tuple[str, ...]) -> list[str]:
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        return [f"{at}.backendRefs: {refs!r} is not allowed: a list of backendRefs ([] for none)"]
    problems = []
    if len(refs) > MAX_BACKEND_REFS:
        problems.append(
            f"{at}.backendRefs: {len(refs)} given, over Gateway API's limit of {MAX_BACKEND_REFS}"
        )
    for i, ref in enumerate(refs):
        name = ref.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{at}.backendRefs[{i}].name: {name!r} is not allowed: the name of a Service")
        elif name in service_names and ref.get("kind", "Service") == "Service":
            problems.append(
                f"{at}.backendRefs[{i}]: {name!r} is a Service of this release: leave backendRefs out and "
                "the "
                "release adds the weighted split itself"
            )
        if ref.get("kind", "Service") == "Service" and not ref.get("group") and "port" not in ref:
            problems.append(f"{at}.backendRefs[{i}].port: missing: a Service backendRef needs its port")
    return problems
