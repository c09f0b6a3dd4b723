"""Stack config -> validated, frozen release settings; every error names its key.

The engine hands a Python program its config as strings: plain values as typed, `array` values as JSON, and
the defaults declared in Pulumi.yaml filled in for every key the stack leaves unset. `parse_config` takes
exactly that map (key -> string, project namespace stripped) so it needs no Pulumi runtime and tests can
feed it directly. It checks every key, collects every problem and raises them together in one ConfigError,
before the program registers a single resource: bad config never reaches the cluster.

Pulumi.yaml is the one place a default lives; this module has none (ReleaseSettings has no field defaults
either, and canary.release.args.DEFAULTS is compared with Pulumi.yaml by a test). A key missing from the map
is an error.
"""

import difflib
import json
import re
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from canary.gateway_api import (
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HOSTNAMES,
    MAX_PARENT_REFS,
    ROUTE_KINDS,
)
from canary.names import MAX_APP_NAME, object_name
from canary.names import gateway_name as default_gateway_name
from canary.release.features import GATEWAY_FEATURE_MODES
from canary.release.keys import OPS_KEYS, RELEASE_KEYS, SECRET_KEYS
from canary.release.pod_template import app_container_index, merge, restricted_problems
from canary.release.route_rules import rule_problems
from canary.release.settings import (
    CANARY_MODES,
    PROTOCOLS,
    STABLE_MODES,
    Autoscaling,
    CanaryHeader,
    Capacity,
    ParentRef,
    Protocol,
    ReleaseSettings,
)
from canary.release.workload import BUILT_IN_CONTAINER, base_template, with_release_baseline
from canary.weights import parse_percent

CONFIG_KEYS = (*RELEASE_KEYS[:6], *OPS_KEYS, *RELEASE_KEYS[6:])
"""Every key Pulumi.yaml declares, in the order it declares them (a unit test keeps the two in step)."""

DEFERRED_PLACEHOLDERS = {
    "canaryImage": "deferred.invalid/canary:0",
    "tlsCert": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
    "tlsKey": "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
    "hostnames": "[]",
}
"""What a key not known yet (an Output) stands for while the release's shape is decided: an Output
canaryImage means a canary, Output TLS material means the release owns the Secret. Other keys stand for ""."""
PRESENCE_KEYS = frozenset({"canaryImage", "tlsCert", "tlsKey"})
"""Keys whose mere presence decides which objects exist; an Output for one must resolve to a value."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_INTEGER = re.compile(r"-?[0-9]+")
# RFC 7230 token; Gateway API's HTTPHeaderName pattern is the same character set.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
# Docker reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*)"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
MAX_IMAGE_NAME = 255
"""Longest repository name (domain and path) a Docker reference may have."""


class ConfigError(Exception):
    """Every problem found in the stack config, reported at once.

    `problems` keeps (key, message) pairs for callers and tests that need to know which keys were wrong.
    Inside a Pulumi program it is raised as canary.release.run_error.ProgramConfigError, also a
    pulumi.RunError, so the language host prints the message without a traceback (this module stays free
    of the Pulumi SDK, which the CLI's fast paths do not import).
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {message}" for _, message in self.problems)
        super().__init__(f"invalid stack config ({count} problem{'s' if count != 1 else ''}):\n{lines}")

    @property
    def keys(self) -> list[str]:
        """The config keys named by the problems, in the order found."""
        return [key for key, _ in self.problems]


class ConfigReader:
    """Reads keys from the raw map, recording problems instead of stopping at the first one.

    Each getter returns a placeholder when the key is bad, so later checks can run; checks that combine
    keys first ask `ok(...)`, so one bad value is reported once, under its own key.
    """

    def __init__(self, raw: Mapping[str, str], deferred: Collection[str] = ()) -> None:
        self.raw = raw
        self.problems: list[tuple[str, str]] = []
        self.failed: set[str] = set()
        self.deferred = frozenset(deferred)
        """Keys whose values are not known yet: every check on them waits until they resolve."""

    def reject(self, key: str, allowed: str) -> None:
        self.failed.add(key)
        value = self.raw.get(key)
        shown = "(value not shown)" if key in SECRET_KEYS and value else repr(value)
        self.problems.append((key, f"{key}: {shown} is not allowed: {allowed}"))

    def ok(self, *keys: str) -> bool:
        return not self.failed.intersection(keys) and not self.deferred.intersection(keys)

    def text(self, key: str) -> str:
        if key in self.deferred:
            return DEFERRED_PLACEHOLDERS.get(key, "")
        value = self.raw.get(key)
        if value is None:
            self.failed.add(key)
            self.problems.append(
                (key, f"{key}: not set: Pulumi.yaml declares its default; run the program through Pulumi")
            )
            return ""
        return value

    def matching(self, key: str, pattern: re.Pattern[str], max_len: int, allowed: str) -> str:
        value = self.text(key)
        if self.ok(key) and (len(value) > max_len or not pattern.fullmatch(value)):
            self.reject(key, allowed)
        return value

    def boolean(self, key: str) -> bool:
        value = self.text(key)
        if self.ok(key) and value not in ("true", "false"):
            self.reject(key, "true or false")
        return value == "true"

    def integer(self, key: str, low: int, high: int, allowed: str) -> int:
        value = self.text(key)
        if not self.ok(key):
            return low
        if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
            self.reject(key, allowed)
            return low
        return int(value)

    def percent(self, key: str) -> Decimal:
        value = self.text(key)
        if not self.ok(key):
            return Decimal(0)
        try:
            return parse_percent(value)
        except ValueError as err:
            self.reject(key, str(err))
            return Decimal(0)

    def problem(self, key: str, message: str) -> None:
        """A problem with a part of the key's value, said in full by `message` (which names the key and the
        part: a whole pod template is too large to repeat)."""
        self.failed.add(key)
        self.problems.append((key, message))

    def json_object(self, key: str, allowed: str) -> dict[str, Any]:
        value = self.text(key)
        if not self.ok(key):
            return {}
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            self.reject(key, allowed)
            return {}
        return parsed

    def json_list(self, key: str, allowed: str) -> list[object]:
        value = self.text(key)
        if not self.ok(key):
            return []
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list):
            self.reject(key, allowed)
            return []
        return parsed


def parse_config(
    raw: Mapping[str, str],
    secret_keys: Collection[str] | None = None,
    *,
    deferred: Collection[str] = (),
    present: Collection[str] = (),
) -> ReleaseSettings:
    """Validate the raw stack config and return the release settings, or raise ConfigError.

    `raw` maps config keys without the project namespace ("canaryWeight", not "gateway-canary:canaryWeight")
    to strings, defaults included, as the engine passes them (see read_stack_config). `secret_keys` names the
    keys set as secrets (read_secret_keys); when given, a tlsKey that is not one is refused, so a private key
    is never kept in plaintext in Pulumi.<stack>.yaml or the state. None skips that check (for callers that
    only read the config, such as the CLI).

    The library way in (CanaryReleaseArgs with Outputs) validates twice with the same rules: at construction
    with the Output keys `deferred` (every check on them, alone or combined, waits; the settings returned
    then hold placeholders for them and only decide which objects exist), and again once they resolve, with
    `present` naming the deferred keys whose presence was assumed (PRESENCE_KEYS).
    """
    r = ConfigReader(raw, deferred)
    for key in sorted(set(raw) - set(CONFIG_KEYS)):
        guess = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
        hint = f"did you mean {guess[0]}?" if guess else f"known keys are {', '.join(CONFIG_KEYS)}"
        r.problems.append((key, f"{key}: unknown config key ({hint})"))

    app_name = r.matching(
        "appName",
        _DNS_1035_LABEL,
        MAX_APP_NAME,
        f"a DNS-1035 label of at most {MAX_APP_NAME} characters (lowercase letters, digits and '-', "
        "starting with a letter), since it names Services such as '<appName>-canary'",
    )
    namespace = r.matching("namespace", _DNS_LABEL, 63, "a DNS-1123 label (lowercase, digits, '-', <= 63)")
    create_namespace = r.boolean("createNamespace")
    stable_image = _image(r, "stableImage", required=True)
    canary_image = _image(r, "canaryImage", required=False) or None
    canary_percent = r.percent("canaryWeight")
    stable_replicas = r.integer(
        "stableReplicas",
        1,
        1000,
        "an integer from 1 to 1000 (a rollback sends traffic back to stable at once)",
    )
    canary_replicas = r.integer(
        "canaryReplicas", 1, 1000, "an integer from 1 to 1000 (the canary Service must select a ready pod)"
    )
    container_port = r.integer("containerPort", 1, 65535, "a port number from 1 to 65535")
    protocol = r.text("protocol")
    if r.ok("protocol") and protocol not in PROTOCOLS:
        r.reject("protocol", f"one of {', '.join(map(repr, PROTOCOLS))} (what the app speaks)")
    rollout_timeout = r.integer("rolloutTimeout", 10, 3600, "a number of seconds from 10 to 3600")
    wait_for_gateway = r.boolean("waitForGateway")
    gateway_features = r.text("gatewayFeatures")
    if r.ok("gatewayFeatures") and gateway_features not in GATEWAY_FEATURE_MODES:
        r.reject(
            "gatewayFeatures",
            "one of 'check' (refuse what a GatewayClass does not list) and 'assume' (take a class that lists "
            "nothing at its word)",
        )
    health_path = r.text("healthPath")
    if r.ok("healthPath") and (not health_path.startswith("/") or re.search(r"\s", health_path)):
        r.reject("healthPath", "an HTTP path starting with '/' and without whitespace, e.g. '/readyz'")
    pod_template, canary_pod_template, app_container = _pod_templates(
        r, container_port, health_path, protocol
    )
    autoscaling = _autoscaling(r)
    disruption_budget = _disruption_budget(r)
    capacity = _capacity(r, autoscaling is not None)
    hostnames = _hostnames(r)
    canary_header = _header(r)
    route_rules = _route_rules(r, app_name, canary_header, "grpc" if protocol == "grpc" else "http")
    create_gateway = r.boolean("createGateway")
    gateway_class_name = r.text("gatewayClassName")
    gateway_name = r.text("gatewayName")
    gateway_namespace = r.text("gatewayNamespace")
    tls_secret_name = r.text("tlsSecretName")
    extra_parents = _parent_refs(r, namespace)
    _gateway(
        r,
        create_gateway,
        gateway_class_name,
        gateway_name,
        gateway_namespace,
        namespace,
        tls_secret_name,
        bool(extra_parents),
    )
    first_parent = (
        [ParentRef(gateway_name or default_gateway_name(app_name), gateway_namespace or namespace)]
        if create_gateway or gateway_name or not extra_parents
        else []
    )
    parents = _distinct_parents(r, (*first_parent, *extra_parents))
    mirror_percent = r.percent("mirrorPercent")
    rollout_operator = _rollout_operator(r)
    tls_cert, tls_key = _tls_material(r, tls_secret_name, secret_keys)
    for key in sorted(present):
        if r.ok(key) and not raw.get(key):
            r.reject(
                key,
                "a value, since it was given as an Output and an Output counts as set when the release "
                "decides which objects to create (pass '' as a plain value for none)",
            )

    if canary_image is None and r.ok("canaryImage"):
        if r.ok("canaryWeight") and canary_percent > 0:
            r.reject("canaryWeight", "0 while canaryImage is empty (there is no canary to send traffic to)")
        if r.ok("mirrorPercent") and mirror_percent > 0:
            r.reject("mirrorPercent", "0 while canaryImage is empty (there is no canary to mirror to)")

    if r.problems:
        raise ConfigError(r.problems)
    return ReleaseSettings(
        app_name=app_name,
        namespace=namespace,
        create_namespace=create_namespace,
        stable_image=stable_image,
        canary_image=canary_image,
        canary_percent=canary_percent,
        stable_replicas=stable_replicas,
        canary_replicas=canary_replicas,
        container_port=container_port,
        protocol="grpc" if protocol == "grpc" else "http",
        health_path=health_path,
        pod_template=pod_template or None,
        canary_pod_template=canary_pod_template or None,
        app_container=app_container or None,
        autoscaling=autoscaling,
        pod_disruption_budget=disruption_budget,
        capacity=capacity,
        hostnames=hostnames,
        route_rules=route_rules,
        gateway_class_name=gateway_class_name,
        create_gateway=create_gateway,
        gateway_name=parents[0].name,
        gateway_namespace=parents[0].namespace,
        parents=parents,
        tls_secret_name=tls_secret_name or None,
        canary_header=canary_header,
        mirror_percent=mirror_percent,
        rollout_timeout=rollout_timeout,
        wait_for_gateway=wait_for_gateway,
        gateway_features="assume" if gateway_features == "assume" else "check",
        rollout_operator=rollout_operator or None,
        tls_cert=tls_cert or None,
        tls_key=tls_key or None,
    )


def _pod_templates(
    r: ConfigReader, container_port: int, health_path: str, protocol: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """podTemplate, canaryPodTemplate and appContainer, checked together: a template with named containers,
    an app container it has and whose image it leaves to stableImage/canaryImage, and both tracks' rendered
    templates admitted by Pod Security "restricted" (canary.release.pod_template)."""
    allowed = (
        "an object: a Kubernetes PodTemplateSpec (metadata, spec) as `kubectl get -o yaml` shows it, or {}"
    )
    template = r.json_object("podTemplate", allowed)
    canary_fields = r.json_object("canaryPodTemplate", allowed)
    app_container = r.text("appContainer")
    if not r.ok("podTemplate", "canaryPodTemplate", "appContainer"):
        return template, canary_fields, app_container
    if not template and app_container not in ("", BUILT_IN_CONTAINER):
        r.reject(
            "appContainer",
            f'"" while podTemplate is {{}} (the built-in template\'s container is {BUILT_IN_CONTAINER!r})',
        )
        return template, canary_fields, app_container
    base = base_template(template)
    for key, value in (("podTemplate", template), ("canaryPodTemplate", canary_fields)):
        for message in _unnamed_containers(key, value, required=key == "podTemplate" and bool(template)):
            r.problem(key, message)
    if not r.ok("podTemplate", "canaryPodTemplate"):
        return template, canary_fields, app_container
    index = app_container_index(base, app_container or None)
    if index is None:
        names = [c["name"] for c in base["spec"]["containers"]]
        r.reject("appContainer", f"the name of a container of podTemplate: {', '.join(map(repr, names))}")
        return template, canary_fields, app_container
    app_name = base["spec"]["containers"][index]["name"]
    for key, value in (("podTemplate", template), ("canaryPodTemplate", canary_fields)):
        for i, container in enumerate(((value.get("spec") or {}).get("containers")) or []):
            if container.get("name") == app_name and "image" in container:
                r.problem(
                    key,
                    f"{key}.spec.containers[{i}].image: {container['image']!r} is not allowed: the app "
                    "container's image is set by stableImage and canaryImage (one place sets the version); "
                    "remove it",
                )
    rendered = {  # checked even after an image problem: every problem is reported at once
        track: with_release_baseline(
            fields,
            labels={},
            image=DEFERRED_PLACEHOLDERS["canaryImage"],
            app_container=app_container or None,
            container_port=container_port,
            health_path=health_path,
            protocol=protocol,
        )
        for track, fields in (("stable", base), ("canary", merge(base, canary_fields)))
    }
    stable_problems = restricted_problems(rendered["stable"], "podTemplate")
    for message in stable_problems:
        r.problem("podTemplate", message)
    for message in restricted_problems(rendered["canary"], "canaryPodTemplate"):
        if message.replace("canaryPodTemplate.", "podTemplate.", 1) not in stable_problems:
            r.problem("canaryPodTemplate", f"{message} (with canaryPodTemplate merged over it)")
    return template, canary_fields, app_container


AUTOSCALING_FIELDS = ("minReplicas", "maxReplicas", "cpuUtilization", "memoryUtilization", "metrics")


def _autoscaling(r: ConfigReader) -> Autoscaling | None:
    """The `autoscaling` object: {} (off), or replica bounds and at least one metric."""
    key = "autoscaling"
    given = r.json_object(
        key, "an object with minReplicas, maxReplicas and cpuUtilization, memoryUtilization or metrics, or {}"
    )
    if not given or not r.ok(key):
        return None
    for field_name in sorted(set(given) - set(AUTOSCALING_FIELDS)):
        r.problem(key, f"{key}.{field_name}: unknown field (known: {', '.join(AUTOSCALING_FIELDS)})")

    def count(name: str, low: int, high: int, *, required: bool) -> int | None:
        value = given.get(name)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            r.problem(key, f"{key}.{name}: {value!r} is not allowed: an integer from {low} to {high}")
            return None
        return value

    low = count("minReplicas", 1, 1000, required=True)
    high = count("maxReplicas", 1, 1000, required=True)
    if low is not None and high is not None and high < low:
        r.problem(key, f"{key}.maxReplicas: {high} is not allowed: at least minReplicas ({low})")
    metrics: list[dict[str, Any]] = []
    for resource in ("cpu", "memory"):
        percent = count(f"{resource}Utilization", 1, 1000, required=False)
        if percent is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": resource,
                        "target": {"type": "Utilization", "averageUtilization": percent},
                    },
                }
            )
    raw = given.get("metrics")
    if raw is not None:
        if not isinstance(raw, list) or not all(
            isinstance(m, dict) and isinstance(m.get("type"), str) for m in raw
        ):
            r.problem(
                key,
                f"{key}.metrics: {raw!r} is not allowed: a list of autoscaling/v2 MetricSpecs, each with a "
                "type",
            )
        else:
            metrics += raw
    if not metrics and r.ok(key):
        r.problem(
            key,
            f"{key}: {given!r} is not allowed: cpuUtilization, memoryUtilization or metrics must say what "
            "to scale on",
        )
    if not r.ok(key) or low is None or high is None:
        return None
    return Autoscaling(min_replicas=low, max_replicas=high, metrics=tuple(metrics))


_PERCENT = re.compile(r"(100|[1-9]?[0-9])%")


CAPACITY_FIELDS = ("canary", "stable", "settleSeconds")


def _capacity(r: ConfigReader, autoscaled: bool) -> Capacity:
    """The `capacity` object: each field one of its modes, missing fields at Capacity's defaults."""
    key = "capacity"
    given = r.json_object(key, 'an object such as {"canary": "traffic", "stable": "full"}, or {}')
    defaults = Capacity()
    for field_name in sorted(set(given) - set(CAPACITY_FIELDS)):
        r.problem(key, f"{key}.{field_name}: unknown field (known: {', '.join(CAPACITY_FIELDS)})")

    def mode(name: str, allowed: tuple[str, ...], default: str) -> str:
        value = given.get(name, default)
        if value not in allowed:
            r.problem(key, f"{key}.{name}: {value!r} is not allowed: one of {', '.join(map(repr, allowed))}")
            return default
        return str(value)

    canary = mode("canary", CANARY_MODES, defaults.canary)
    stable = mode("stable", STABLE_MODES, defaults.stable)
    settle = given.get("settleSeconds", defaults.settle_seconds)
    if isinstance(settle, bool) or not isinstance(settle, int) or not 0 <= settle <= 600:
        r.problem(key, f"{key}.settleSeconds: {settle!r} is not allowed: an integer from 0 to 600")
        settle = defaults.settle_seconds
    if autoscaled and stable == "traffic":
        r.problem(
            key,
            f"{key}.stable: 'traffic' is not allowed with autoscaling: the stable's autoscaler owns its pod "
            "count (use stable 'full', or autoscaling {})",
        )
    return Capacity(
        canary="fixed" if canary == "fixed" else "traffic",
        stable="traffic" if stable == "traffic" else "full",
        settle_seconds=settle,
    )


def _disruption_budget(r: ConfigReader) -> dict[str, int | str] | None:
    """The `podDisruptionBudget` object: {} (none), or exactly one of minAvailable and maxUnavailable."""
    key = "podDisruptionBudget"
    given = r.json_object(
        key, 'an object with minAvailable or maxUnavailable (pods, or a percent like "50%"), or {}'
    )
    if not given or not r.ok(key):
        return None
    fields = set(given)
    if len(fields) != 1 or not fields <= {"minAvailable", "maxUnavailable"}:
        r.reject(key, 'exactly one of minAvailable and maxUnavailable, e.g. {"maxUnavailable": 1}')
        return None
    ((name, value),) = given.items()
    counted = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if not counted and not (isinstance(value, str) and _PERCENT.fullmatch(value)):
        r.problem(
            key,
            f'{key}.{name}: {value!r} is not allowed: a number of pods (0 or more) or a percent like "50%"',
        )
        return None
    return {name: value}


def _unnamed_containers(key: str, template: Mapping[str, Any], *, required: bool) -> list[str]:
    """What is wrong with a template's containers: none at all (when `required`), or one without a name."""
    spec = template.get("spec")
    if spec is not None and not isinstance(spec, dict):
        return [f"{key}.spec: {spec!r} is not allowed: an object (a PodSpec)"]
    containers = (spec or {}).get("containers")
    if containers is None and not required:
        return []
    if not isinstance(containers, list) or (required and not containers):
        return [f"{key}.spec.containers: {containers!r} is not allowed: a list of at least one container"]
    names = [c.get("name") if isinstance(c, dict) else None for c in containers]
    problems = [
        f"{key}.spec.containers[{i}].name: {name!r} is not allowed: every container has a name, once (a "
        "DNS-1123 label)"
        for i, name in enumerate(names)
        if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name) or names.count(name) > 1
    ]
    return problems


def _image(r: ConfigReader, key: str, *, required: bool) -> str:
    value = r.text(key)
    if not r.ok(key) or (value == "" and not required):
        return value
    match = _IMAGE.fullmatch(value)
    if match is None or len(match.group("name")) > MAX_IMAGE_NAME:
        optional = "" if required else ", or '' for no canary"
        r.reject(
            key, f"an image reference such as 'ghcr.io/org/app:1.2.3' or 'app@sha256:<digest>'{optional}"
        )
    return value


def _hostnames(r: ConfigReader) -> tuple[str, ...]:
    allowed = (
        f"a JSON array of at most {MAX_HOSTNAMES} distinct lowercase DNS names (labels of at most 63 "
        "characters, at most 253 in all; '*.' only as the whole first label; no IP addresses)"
    )
    items = r.json_list("hostnames", allowed)
    if not r.ok("hostnames"):
        return ()
    names = [item for item in items if isinstance(item, str)]
    invalid = [name for name in names if not _valid_hostname(name)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if len(names) != len(items):
        r.reject("hostnames", f"{allowed}; every entry must be a string")
    elif len(names) > MAX_HOSTNAMES:
        r.reject("hostnames", f"{allowed}; {len(names)} given")
    elif invalid:
        r.reject("hostnames", f"{allowed}; {invalid[0]!r} is not")
    elif repeated:
        r.reject("hostnames", f"{allowed}; {repeated[0]!r} is repeated")
    else:
        return tuple(sorted(names))
    return ()


def _valid_hostname(name: str) -> bool:
    """RFC 1123 DNS name as Gateway API's Hostname type allows it: lowercase, optional leading '*.', no IP."""
    bare = name[2:] if name.startswith("*.") else name
    labels = bare.split(".")
    return (
        len(name) <= 253
        and bool(_DNS_SUBDOMAIN.fullmatch(bare))
        and all(len(label) <= 63 for label in labels)
        and not all(label.isdigit() for label in labels)
    )


def _gateway(
    r: ConfigReader,
    create_gateway: bool,
    class_name: str,
    name: str,
    gateway_namespace: str,
    namespace: str,
    tls_secret_name: str,
    has_parent_refs: bool,
) -> None:
    """Check the Gateway keys together: an owned Gateway needs a class, an existing one needs a name (or
    parentRefs)."""
    subdomain = "a DNS-1123 subdomain (lowercase, digits, '-' and '.', <= 253)"
    if r.ok("gatewayName") and name and (len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name)):
        r.reject("gatewayName", f"{subdomain}, or '' for '<appName>-gateway'")
    if r.ok("gatewayNamespace") and gateway_namespace and not _DNS_LABEL.fullmatch(gateway_namespace):
        r.reject("gatewayNamespace", "a DNS-1123 label, or '' for the release namespace")
    if (
        r.ok("tlsSecretName")
        and tls_secret_name
        and (len(tls_secret_name) > 253 or not _DNS_SUBDOMAIN.fullmatch(tls_secret_name))
    ):
        r.reject("tlsSecretName", f"{subdomain}, or '' for no HTTPS listener")
    if not r.ok("createGateway"):
        return
    if create_gateway:
        if r.ok("gatewayClassName") and (len(class_name) > 253 or not _DNS_SUBDOMAIN.fullmatch(class_name)):
            r.reject(
                "gatewayClassName", f"{subdomain} naming a GatewayClass (required when createGateway is true)"
            )
        if r.ok("gatewayNamespace", "namespace") and gateway_namespace not in ("", namespace):
            r.reject(
                "gatewayNamespace",
                "'' or the release namespace when createGateway is true "
                "(the owned Gateway lives beside the route)",
            )
    else:
        if r.ok("gatewayName", "parentRefs") and not name and not has_parent_refs:
            r.reject(
                "gatewayName",
                "the name of an existing Gateway (required when createGateway is false and parentRefs is "
                "empty)",
            )
        if r.ok("tlsSecretName") and tls_secret_name:
            r.reject("tlsSecretName", "'' when createGateway is false (TLS belongs to the existing Gateway)")


def _route_rules(
    r: ConfigReader, app_name: str, header: CanaryHeader | None, protocol: Protocol
) -> tuple[dict[str, Any], ...]:
    """The `routeRules` list: Gateway API HTTPRoute (or, for protocol grpc, GRPCRoute) rules, each checked
    (canary.release.route_rules)."""
    key = "routeRules"
    kind = ROUTE_KINDS[protocol]
    rules = r.json_list(key, f"a JSON array of {kind} rules (name, matches, filters, ...), or []")
    if not r.ok(key):
        return ()
    services = tuple(object_name(app_name, track) for track in ("stable", "canary"))
    for message in rule_problems(rules, services, header.name if header is not None else None, protocol):
        r.problem(key, message)
    if not r.ok(key):
        return ()
    return tuple(rule for rule in rules if isinstance(rule, dict))


PARENT_FIELDS = ("name", "namespace", "sectionName", "port")


def _parent_refs(r: ConfigReader, namespace: str) -> tuple[ParentRef, ...]:
    """The `parentRefs` list: existing Gateways, each {name, namespace, sectionName, port}."""
    key = "parentRefs"
    given = r.json_list(key, 'a JSON array of Gateways such as [{"name": "internal", "namespace": "infra"}]')
    if not r.ok(key):
        return ()
    if len(given) >= MAX_PARENT_REFS:
        r.problem(
            key, f"{key}: {len(given)} given, over Gateway API's limit of {MAX_PARENT_REFS} parents in all"
        )
    parents = []
    for index, ref in enumerate(given):
        at = f"{key}[{index}]"
        if not isinstance(ref, dict):
            r.problem(
                key, f"{at}: {ref!r} is not allowed: an object with name (and namespace, sectionName, port)"
            )
            continue
        for unknown in sorted(set(ref) - set(PARENT_FIELDS)):
            r.problem(key, f"{at}.{unknown}: unknown field (known: {', '.join(PARENT_FIELDS)})")
        name, where = ref.get("name"), ref.get("namespace", namespace)
        section, port = ref.get("sectionName"), ref.get("port")
        if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            r.problem(key, f"{at}.name: {name!r} is not allowed: a Gateway's name (a DNS-1123 subdomain)")
        if not isinstance(where, str) or not _DNS_LABEL.fullmatch(where):
            r.problem(
                key, f"{at}.namespace: {where!r} is not allowed: a DNS-1123 label (omit it for the release's)"
            )
        if section is not None and (
            not isinstance(section, str) or len(section) > 253 or not _DNS_SUBDOMAIN.fullmatch(section)
        ):
            r.problem(key, f"{at}.sectionName: {section!r} is not allowed: a listener's name")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            r.problem(key, f"{at}.port: {port!r} is not allowed: a port number from 1 to 65535")
        if r.ok(key):
            parents.append(ParentRef(str(name), str(where), section, port))
    return tuple(parents) if r.ok(key) else ()


def _distinct_parents(r: ConfigReader, parents: tuple[ParentRef, ...]) -> tuple[ParentRef, ...]:
    """Gateway API's rule for one Gateway listed twice: every entry for it names a sectionName, each a
    different one (the first entry is the owned or gatewayName Gateway)."""
    seen: dict[tuple[str, str], list[ParentRef]] = {}
    for parent in parents:
        seen.setdefault((parent.name, parent.namespace), []).append(parent)
    for (name, where), refs in seen.items():
        sections = [ref.section_name for ref in refs]
        if len(refs) > 1 and (None in sections or len(set(sections)) != len(sections)):
            r.problem(
                "parentRefs",
                f"parentRefs: the Gateway {where}/{name} is listed {len(refs)} times (the owned or "
                "gatewayName Gateway counts): list it once, or give each entry a different sectionName",
            )
    return parents


def _header(r: ConfigReader) -> CanaryHeader | None:
    allowed = (
        "'' (off) or 'name: value', e.g. 'x-canary: true', where name is an HTTP header name (RFC 7230 "
        f"token, <= {MAX_HEADER_NAME} characters) and value is 1..{MAX_HEADER_VALUE} printable characters"
    )
    value = r.text("canaryHeader")
    if not r.ok("canaryHeader") or value == "":
        return None
    name, colon, header_value = value.partition(":")
    name, header_value = name.strip(), header_value.strip()
    if (
        not colon
        or len(name) > MAX_HEADER_NAME
        or not _HEADER_NAME.fullmatch(name)
        or len(header_value) > MAX_HEADER_VALUE
        or not _HEADER_VALUE.fullmatch(header_value)
    ):
        r.reject("canaryHeader", allowed)
        return None
    return CanaryHeader(name=name, value=header_value)


def _rollout_operator(r: ConfigReader) -> str:
    value = r.text("rolloutOperator")
    if not r.ok("rolloutOperator") or value == "":
        return value
    if value == "default" or len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        r.reject(
            "rolloutOperator",
            "'' (no RBAC) or a ServiceAccount name to create: a DNS-1123 subdomain (lowercase, digits, '-' "
            "and '.', <= 253) other than 'default', which every namespace already has",
        )
    return value


PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\s.*-----END CERTIFICATE-----", re.DOTALL)
PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----\s.*-----END ([A-Z]+ )?PRIVATE KEY-----", re.DOTALL
)


def _tls_material(
    r: ConfigReader, tls_secret_name: str, secret_keys: Collection[str] | None
) -> tuple[str, str]:
    """tlsCert and tlsKey: both or neither; with both, the program owns the Secret tlsSecretName.

    Only the PEM framing is checked (the program never parses key material); messages never repeat a value.
    A deferred (Output) value counts as set for the checks that combine keys.
    """
    cert, key = r.text("tlsCert"), r.text("tlsKey")
    if r.failed.intersection(("tlsCert", "tlsKey")):
        return cert, key
    if cert and r.ok("tlsCert") and not PEM_CERTIFICATE.search(cert):
        r.reject(
            "tlsCert", "'' or a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
        )
    if key and r.ok("tlsKey") and not PEM_PRIVATE_KEY.search(key):
        r.reject(
            "tlsKey", "'' or a PEM private key (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)"
        )
    if secret_keys is not None and key and "tlsKey" not in secret_keys and r.ok("tlsKey"):
        r.reject(
            "tlsKey", "a secret: set it with `pulumi config set --secret tlsKey` (only ciphertext is stored)"
        )
    if bool(cert) != bool(key):
        missing = "tlsKey" if cert else "tlsCert"
        if r.ok(missing):
            r.reject(missing, "set together with " + ("tlsCert" if cert else "tlsKey") + " (both or neither)")
    elif cert and not tls_secret_name and r.ok("tlsSecretName"):
        r.reject(
            "tlsSecretName", "the name of the Secret to create from tlsCert and tlsKey (required with them)"
        )
    return cert, key
