"""Stack config -> validated, frozen release settings; every error names its key.

The engine hands a Python program its config as strings: plain values as typed, `array` values as JSON, and
the defaults declared in Pulumi.yaml filled in for every key the stack leaves unset. `parse_config` takes
exactly that map (key -> string, project namespace stripped) so it needs no Pulumi runtime and tests can
feed it directly. It checks every key, collects every problem and raises them together in one ConfigError,
before the program registers a single resource: bad config never reaches the cluster.

Pulumi.yaml is the one place a default lives; this module has none. A key missing from the map is an error.
"""

import difflib
import itertools
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env, is_config_secret

from canary.weights import format_percent, parse_percent

CONFIG_KEYS = (
    "appName",
    "namespace",
    "createNamespace",
    "stableImage",
    "canaryImage",
    "canaryWeight",
    "canaryPlan",
    "stableReplicas",
    "canaryReplicas",
    "containerPort",
    "healthPath",
    "hostnames",
    "gatewayClassName",
    "createGateway",
    "gatewayName",
    "gatewayNamespace",
    "tlsSecretName",
    "canaryHeader",
    "mirrorPercent",
    "rolloutOperator",
    "rolloutTimeout",
    "tlsCert",
    "tlsKey",
)
"""Every key Pulumi.yaml declares, in the order it declares them (a unit test keeps the two in step)."""

# Gateway API (v1) schema limits. A route that breaks them is rejected by the apiserver after the
# Deployments already rolled out, so they are checked here and again on the specs routing.py builds.
MAX_HOSTNAMES = 16
"""HTTPRoute spec.hostnames maxItems."""
MAX_RULES = 16
"""HTTPRoute spec.rules maxItems."""
MAX_BACKEND_REFS = 16
"""HTTPRouteRule backendRefs maxItems."""
MAX_MATCHES_PER_RULE = 64
"""HTTPRouteRule matches maxItems."""
MAX_MATCHES = 128
"""Matches across all rules of one HTTPRoute (a CEL rule on the route)."""
MAX_LISTENERS = 64
"""Gateway spec.listeners maxItems."""
MAX_HEADER_NAME = 256
"""HTTPHeaderName maxLength."""
MAX_HEADER_VALUE = 4096
"""HTTPHeaderMatch value maxLength."""

TRACK_SUFFIX = "-canary"
"""The longer of the two suffixes appName gets in object names (`<app>-stable`, `<app>-canary`)."""
MAX_APP_NAME = 63 - len(TRACK_SUFFIX)
"""appName becomes a Service name with a suffix, and Service names are DNS-1035 labels (<= 63)."""

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

SECRET_VALUE_KEYS = frozenset({"tlsCert", "tlsKey"})
"""Keys whose values no error message repeats (they are meant to be set with `pulumi config set --secret`)."""

PHASE_STABLE = "stable"
"""No canary: one Deployment, one backend."""
PHASE_HEADER_ONLY = "canary deployed, header-only"
"""Canary running at weight 0; only requests carrying canaryHeader reach it."""


class ConfigError(pulumi.RunError):
    """Every problem found in the stack config, reported at once.

    A pulumi.RunError, so the Python language host prints the message without a traceback. `problems`
    keeps (key, message) pairs for callers and tests that need to know which keys were wrong.
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


@dataclass(frozen=True)
class CanaryHeader:
    """A request header that routes to canary regardless of weight (exact match)."""

    name: str
    value: str


@dataclass(frozen=True)
class CanaryReleaseArgs:
    """Validated settings for one CanaryRelease; build it with parse_config.

    Field names are the config keys in snake_case. Optional parts are None or empty rather than "" so the
    component never has to know which string meant "off".
    """

    app_name: str
    """Base of every object name: `<app>` (route), `<app>-stable`, `<app>-canary`."""
    namespace: str
    """Namespace of every object the release creates."""
    create_namespace: bool
    """Create the namespace, labelled for Pod Security Standards "restricted"."""
    stable_image: str
    """Image of the stable Deployment."""
    canary_image: str | None
    """Image of the canary Deployment; None means no canary objects and a single-backend route."""
    canary_weight: Decimal
    """Percent of traffic sent to canary (0..100, up to 4 decimal places); 0 when there is no canary."""
    canary_plan: tuple[Decimal, ...]
    """The weights `canary step` walks through, strictly increasing within (0, 100]."""
    stable_replicas: int
    """Pods of the stable Deployment."""
    canary_replicas: int
    """Pods of the canary Deployment."""
    container_port: int
    """Port the application listens on."""
    health_path: str
    """HTTP path of the readiness probe."""
    hostnames: tuple[str, ...]
    """Hostnames of the route (and of the owned Gateway's listeners), sorted; empty matches any host."""
    gateway_class_name: str
    """GatewayClass of the owned Gateway."""
    create_gateway: bool
    """Own a Gateway (True) or attach the route to an existing one (False)."""
    gateway_name: str
    """Name of the Gateway the route attaches to (owned or existing)."""
    gateway_namespace: str
    """Namespace of that Gateway."""
    tls_secret_name: str | None
    """Secret with the certificate for the owned Gateway's HTTPS listener; None means HTTP only."""
    canary_header: CanaryHeader | None
    """Header that forces canary; None turns the header rule off."""
    mirror_percent: Decimal
    """Percent of requests copied to canary (RequestMirror); 0 is off."""
    rollout_timeout: int = 600
    """Seconds `pulumi up` waits for a Deployment to become Available before failing the update."""
    rollout_operator: str | None = None
    """ServiceAccount that may move traffic (patch the HTTPRoute) and nothing more; None creates no RBAC."""
    tls_cert: str | None = field(default=None, repr=False)
    """PEM certificate (chain) for the Secret `tls_secret_name`; None when the Secret is managed elsewhere."""
    tls_key: str | None = field(default=None, repr=False)
    """PEM private key matching tls_cert; kept out of repr so it never lands in a log or a traceback."""

    @property
    def has_canary(self) -> bool:
        """True when a canary Deployment, Service and backend exist."""
        return self.canary_image is not None

    @property
    def header_route(self) -> CanaryHeader | None:
        """The header rule actually rendered: only when there is a canary to route to."""
        return self.canary_header if self.has_canary else None

    @property
    def stable_percent(self) -> Decimal:
        """Percent of traffic sent to stable."""
        return Decimal(100) - self.canary_weight

    @property
    def phase(self) -> str:
        """The rollout state in words, a stack output.

        "stable" (no canary); "canary deployed, header-only" (weight 0, header rule on); "canary 0%"
        (weight 0, no header rule: canary pods warm, no traffic but mirrored requests); "canary N%" for
        0 < N <= 100, e.g. "canary 25%", "canary 0.5%", "canary 100%".
        """
        if not self.has_canary:
            return PHASE_STABLE
        if self.canary_weight == 0 and self.canary_header is not None:
            return PHASE_HEADER_ONLY
        return f"canary {format_percent(self.canary_weight)}%"


class _Reader:
    """Reads keys from the raw map, recording problems instead of stopping at the first one.

    Each getter returns a placeholder when the key is bad, so later checks can run; checks that combine
    keys first ask `ok(...)`, so one bad value is reported once, under its own key.
    """

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[tuple[str, str]] = []
        self.failed: set[str] = set()

    def reject(self, key: str, allowed: str) -> None:
        self.failed.add(key)
        value = self.raw.get(key)
        shown = "(value not shown)" if key in SECRET_VALUE_KEYS and value else repr(value)
        self.problems.append((key, f"{key}: {shown} is not allowed: {allowed}"))

    def ok(self, *keys: str) -> bool:
        return not self.failed.intersection(keys)

    def text(self, key: str) -> str:
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


def parse_config(raw: Mapping[str, str], secret_keys: Collection[str] | None = None) -> CanaryReleaseArgs:
    """Validate the raw stack config and return the release settings, or raise ConfigError.

    `raw` maps config keys without the project namespace ("canaryWeight", not "gateway-canary:canaryWeight")
    to strings, defaults included, as the engine passes them (see read_stack_config). `secret_keys` names the
    keys set as secrets (read_secret_keys); when given, a tlsKey that is not one is refused, so a private key
    is never kept in plaintext in Pulumi.<stack>.yaml or the state. None skips that check (for callers that
    only read the config, such as the CLI).
    """
    r = _Reader(raw)
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
    canary_weight = r.percent("canaryWeight")
    canary_plan = _plan(r)
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
    rollout_timeout = r.integer("rolloutTimeout", 10, 3600, "a number of seconds from 10 to 3600")
    health_path = r.text("healthPath")
    if r.ok("healthPath") and (not health_path.startswith("/") or re.search(r"\s", health_path)):
        r.reject("healthPath", "an HTTP path starting with '/' and without whitespace, e.g. '/readyz'")
    hostnames = _hostnames(r)
    create_gateway = r.boolean("createGateway")
    gateway_class_name = r.text("gatewayClassName")
    gateway_name = r.text("gatewayName")
    gateway_namespace = r.text("gatewayNamespace")
    tls_secret_name = r.text("tlsSecretName")
    _gateway(
        r, create_gateway, gateway_class_name, gateway_name, gateway_namespace, namespace, tls_secret_name
    )
    canary_header = _header(r)
    mirror_percent = r.percent("mirrorPercent")
    rollout_operator = _rollout_operator(r)
    tls_cert, tls_key = _tls_material(r, tls_secret_name, secret_keys)

    if canary_image is None and r.ok("canaryImage"):
        if r.ok("canaryWeight") and canary_weight > 0:
            r.reject("canaryWeight", "0 while canaryImage is empty (there is no canary to send traffic to)")
        if r.ok("mirrorPercent") and mirror_percent > 0:
            r.reject("mirrorPercent", "0 while canaryImage is empty (there is no canary to mirror to)")

    if r.problems:
        raise ConfigError(r.problems)
    return CanaryReleaseArgs(
        app_name=app_name,
        namespace=namespace,
        create_namespace=create_namespace,
        stable_image=stable_image,
        canary_image=canary_image,
        canary_weight=canary_weight,
        canary_plan=canary_plan,
        stable_replicas=stable_replicas,
        canary_replicas=canary_replicas,
        container_port=container_port,
        health_path=health_path,
        hostnames=hostnames,
        gateway_class_name=gateway_class_name,
        create_gateway=create_gateway,
        gateway_name=gateway_name or f"{app_name}-gateway",
        gateway_namespace=gateway_namespace or namespace,
        tls_secret_name=tls_secret_name or None,
        canary_header=canary_header,
        mirror_percent=mirror_percent,
        rollout_timeout=rollout_timeout,
        rollout_operator=rollout_operator or None,
        tls_cert=tls_cert or None,
        tls_key=tls_key or None,
    )


def _image(r: _Reader, key: str, *, required: bool) -> str:
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


def _plan(r: _Reader) -> tuple[Decimal, ...]:
    allowed = "a non-empty JSON array of strictly increasing whole percents in 1..100, e.g. [5, 25, 50, 100]"
    items = r.json_list("canaryPlan", allowed)
    if not r.ok("canaryPlan"):
        return ()
    steps = [item for item in items if isinstance(item, int) and not isinstance(item, bool)]
    if (
        not items
        or len(steps) != len(items)
        or any(not 0 < step <= 100 for step in steps)
        or any(a >= b for a, b in itertools.pairwise(steps))
    ):
        r.reject("canaryPlan", allowed)
        return ()
    return tuple(Decimal(step) for step in steps)


def _hostnames(r: _Reader) -> tuple[str, ...]:
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
    r: _Reader,
    create_gateway: bool,
    class_name: str,
    name: str,
    gateway_namespace: str,
    namespace: str,
    tls_secret_name: str,
) -> None:
    """Check the Gateway keys together: an owned Gateway needs a class, an existing one needs a name."""
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
        if r.ok("gatewayName") and not name:
            r.reject("gatewayName", "the name of an existing Gateway (required when createGateway is false)")
        if r.ok("tlsSecretName") and tls_secret_name:
            r.reject("tlsSecretName", "'' when createGateway is false (TLS belongs to the existing Gateway)")


def _header(r: _Reader) -> CanaryHeader | None:
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


def _rollout_operator(r: _Reader) -> str:
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


def _tls_material(r: _Reader, tls_secret_name: str, secret_keys: Collection[str] | None) -> tuple[str, str]:
    """tlsCert and tlsKey: both or neither; with both, the program owns the Secret tlsSecretName.

    Only the PEM framing is checked (the program never parses key material); messages never repeat a value.
    """
    cert, key = r.text("tlsCert"), r.text("tlsKey")
    if not r.ok("tlsCert", "tlsKey"):
        return "", ""
    if cert and not PEM_CERTIFICATE.search(cert):
        r.reject(
            "tlsCert", "'' or a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
        )
    if key and not PEM_PRIVATE_KEY.search(key):
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


def read_secret_keys(project: str) -> frozenset[str]:
    """The keys of `project`'s config that were set as secrets, namespace stripped (for parse_config)."""
    prefix = f"{project}:"
    merged = {**get_config_env(), **CONFIG.get()}
    # The language host may pass PULUMI_CONFIG_SECRET_KEYS=null (no secret keys): the SDK then returns None.
    secret = set(get_config_secret_keys_env() or []) | {key for key in merged if is_config_secret(key)}
    return frozenset(key[len(prefix) :] for key in secret if key.startswith(prefix))


def read_stack_config(project: str) -> dict[str, str]:
    """The program's config in `project`'s namespace as parse_config wants it: key -> string.

    The engine passes every config value, the Pulumi.yaml defaults included, to the Python SDK, which keeps
    them in one map; reading that whole map (rather than one `Config.get` per known key) is what lets
    parse_config see, and reject, a misspelt key. Keys of other namespaces (e.g. `kubernetes:context`)
    belong to providers and are left out.
    """
    prefix = f"{project}:"
    merged = {**get_config_env(), **CONFIG.get()}
    return {key[len(prefix) :]: str(value) for key, value in merged.items() if key.startswith(prefix)}
