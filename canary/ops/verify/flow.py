"""`canary verify` end to end: the target and the intent from the stack and the live objects, the load, the
verdict (canary.ops.verify.split judges, canary.ops.verify.traffic sends).

The intent is the LIVE route's: the question is whether the data plane does what the route object says, so
the counts are held against the live weights. A live route that differs from the stack's split (patched by
hand) fails the run too, whatever the counts: traffic then follows a split nobody declared. The route is read
again after the load; if it changed meanwhile the run does not pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from pulumi import automation as auto

from canary.gateway_api import GATEWAY_RESOURCE, GRPC_ROUTE_KIND, ROUTE_KIND, ROUTE_RESOURCES
from canary.names import Track
from canary.ops.core.state import output_percent
from canary.ops.errors import PulumiFailed, Refused, TrafficProblem
from canary.ops.verify.split import (
    CONFIDENCE,
    VERSION_FIELD,
    VERSION_PATH,
    Intent,
    Verdict,
    gateway_address,
    intent_of,
    judge,
    versions_by_track,
)
from canary.ops.verify.traffic import Load, Outcome, Tally, TrafficCounter, send, target
from canary.route_state import RouteState, route_state
from canary.weights import show_percent

Manifest = dict[str, Any]


class Getter(Protocol):
    """What verify needs of the apiserver: canary.ops.kube.kubectl.LiveReader.get."""

    def get(self, kind: str, name: str, namespace: str | None = None) -> Manifest | None: ...


@dataclass(frozen=True)
class VerifyOptions:
    """The command's options, already validated by the parser."""

    requests: int
    url: str | None = None
    gateway: str | None = None
    """Only this parent Gateway of the route (`name` or `namespace/name`); None means every one."""
    path: str = VERSION_PATH
    """The path requested at each Gateway's address (a path a split rule of the route matches)."""
    host: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    version_field: str = VERSION_FIELD
    confidence: Decimal = CONFIDENCE
    concurrency: int = 8
    timeout: float = 5.0
    time_limit: float = 120.0
    allow_any_target: bool = False


@dataclass(frozen=True)
class Sent:
    """What one run sent, over HTTP or gRPC: where (checked by the network guard), how, and what came back
    (traffic.Result or grpc_versions.Call per request, tallied alike by traffic.TrafficCounter)."""

    url: str
    """http://address/path, or grpc://address/version.VersionService/Version."""
    checked: str
    """Why the network guard let it go there."""
    requests: int
    concurrency: int
    headers: Mapping[str, str]
    """HTTP headers, or gRPC metadata, sent with every request."""
    results: tuple[Outcome, ...]
    seconds: float


@dataclass(frozen=True)
class Verification:
    """One `canary verify` through one Gateway: where it sent, what the route intended, what came back, the
    verdict."""

    sent: Sent
    host: str | None
    gateway: str | None
    """The parent Gateway (`namespace/name`) the requests went through; None with --url."""
    route_where: str
    route: RouteState
    versions: dict[str, Track]
    intent: Intent
    tally: Tally
    verdict: Verdict


def stack_outputs(stack: auto.Stack) -> dict[str, Any]:
    """The stack's outputs (secrets as their values), by name."""
    try:
        return {name: output.value for name, output in stack.outputs().items()}
    except auto.CommandError as err:
        raise PulumiFailed("pulumi stack output", str(err)) from err


def gateway_addresses(
    live: Getter, route: Manifest, namespace: str, options: VerifyOptions
) -> dict[str, str]:
    """`namespace/name` -> `address[:port]` (status.addresses[0].value and the first HTTP listener's port)
    for each Gateway the live route attaches to (spec.parentRefs, a ref's namespace defaulting to the
    route's), or the one --gateway names."""
    found: dict[str, str] = {}
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if ref.get("kind", "Gateway") != "Gateway":
            continue
        where = f"{ref.get('namespace') or namespace}/{ref['name']}"
        if options.gateway is not None and options.gateway not in (where, ref["name"]):
            continue
        gateway = live.get(GATEWAY_RESOURCE, str(ref["name"]), where.split("/", 1)[0])
        if gateway is None:
            raise Refused(f"Gateway {where} not found: pass --url")
        try:
            address, port = gateway_address(gateway)
        except ValueError as err:
            raise Refused(str(err)) from None
        host = f"[{address}]" if ":" in address else address
        found[where] = f"{host}:{port}"
    if not found:
        named = "" if options.gateway is None else f" named {options.gateway!r}"
        raise Refused(
            f"the live route attaches to no Gateway{named}: pass --url, or --gateway with one of its parents"
        )
    return found


def route_host(route: Manifest) -> str | None:
    """The Host header a client needs: the route's first hostname (None when the route matches any host)."""
    hostnames = (route.get("spec") or {}).get("hostnames") or []
    if not hostnames:
        return None
    first = str(hostnames[0])
    if first.startswith("*"):
        raise Refused(f"the route's first hostname {first!r} is a wildcard: pass --host with a concrete name")
    return first


def verify(
    outputs: Mapping[str, Any], live: Getter, options: VerifyOptions, kind: str = ROUTE_KIND
) -> list[Verification]:
    """Read the target(s) and the intent, send the load through each Gateway of the route (or --url), judge
    each. `kind` is the route's (the state's): an HTTPRoute's are GET requests of --path, a GRPCRoute's
    podinfo's Version rpc. Raises Refused / TrafficProblem when there is nothing to verify or a target is
    unsafe or silent, before anything is sent."""
    if "phase" not in outputs:
        raise Refused("the stack has no outputs (never deployed): run `pulumi up` first")
    namespace, app = str(outputs["namespace"]), str(outputs["routeName"])
    try:
        versions = versions_by_track(
            str(outputs.get("stableImage", "")), str(outputs.get("canaryImage") or "")
        )
    except ValueError as err:
        raise Refused(str(err)) from None
    where = f"{namespace}/{app}"
    resource = ROUTE_RESOURCES[kind]
    manifest = live.get(resource, app, namespace)
    if manifest is None:
        raise Refused(f"live route {where} not found")
    grpc = kind == GRPC_ROUTE_KIND
    addresses: dict[str | None, str] = {None: options.url} if options.url else {}
    if not options.url:
        addresses.update(gateway_addresses(live, manifest, namespace, options))
    senders = {
        gateway: (_grpc_sender if grpc else _http_sender)(address, options, gateway is None)
        for gateway, address in addresses.items()
    }
    host = options.host or route_host(manifest)
    verifications = []
    for gateway, send_now in senders.items():
        before = route_state(manifest, app)
        sent = send_now(host)
        verifications.append(_judged(gateway, sent, host, where, before, versions, outputs, options))
        after_manifest = live.get(resource, app, namespace)
        verifications[-1] = _unchanged(verifications[-1], after_manifest, app)
    return verifications


Sender = Callable[[str | None], Sent]


def _http_sender(address: str, options: VerifyOptions, whole_url: bool) -> Sender:
    """GET requests of --path at a Gateway's address (or of --url, `whole_url`); the guard runs now."""
    aim = target(
        address if whole_url else f"http://{address}{options.path}", allow_any_target=options.allow_any_target
    )

    def send_now(host: str | None) -> Sent:
        load = Load(
            aim,
            options.requests,
            concurrency=options.concurrency,
            timeout=options.timeout,
            time_limit=options.time_limit,
            headers=dict(options.headers),
            host=host,
            version_field=options.version_field,
        )
        run = send(load)
        return Sent(
            aim.url,
            aim.checked,
            load.requests,
            load.concurrency,
            load.headers,
            tuple(run.results),
            run.seconds,
        )

    return send_now


def _grpc_sender(address: str, options: VerifyOptions, whole_url: bool) -> Sender:
    """podinfo's Version rpc at a Gateway's address (or --url's `host:port`), --header as metadata; the
    guard runs now."""
    from canary.ops.verify import grpc_versions  # grpcio only where a gRPC release is verified

    aim = grpc_versions.grpc_target(
        address.removeprefix("grpc://") if whole_url else address, allow_any_target=options.allow_any_target
    )

    def send_now(host: str | None) -> Sent:
        calls = grpc_versions.Calls(
            aim,
            options.requests,
            concurrency=options.concurrency,
            timeout=options.timeout,
            time_limit=options.time_limit,
            metadata={name.lower(): value for name, value in options.headers.items()},
            authority=host,
        )
        run = grpc_versions.count_versions(calls)
        url = f"grpc://{aim.address}{grpc_versions.VERSION_METHOD}"
        return Sent(
            url,
            aim.checked,
            calls.requests,
            calls.concurrency,
            calls.metadata,
            tuple(run.results),
            run.seconds,
        )

    return send_now


def _judged(
    gateway: str | None,
    sent: Sent,
    host: str | None,
    where: str,
    before: RouteState,
    versions: dict[str, Track],
    outputs: Mapping[str, Any],
    options: VerifyOptions,
) -> Verification:
    """The verdict on what one run sent, against the live route read before it and the stack's weight."""
    intent = intent_of(before, options.headers)
    tally = TrafficCounter().extend(list(sent.results)).tally()
    if tally.ok and not tally.by_version:
        raise TrafficProblem(
            f"none of the {tally.ok} answers from {sent.url} named a version in a JSON field "
            f"{options.version_field!r}: the app must report its version there (podinfo's /version does), "
            "or pass --version-field (and --path for a path a split rule of the route matches)"
        )
    verdict = judge(
        tally.by_version,
        versions,
        intent,
        sent=len(sent.results),
        wanted=sent.requests,
        failures=tally.failures,
        without_version=tally.without_version,
        confidence=options.confidence,
    )
    declared = outputs.get("canaryWeight")
    if declared is not None and output_percent(declared) != before.canary_percent:
        reason = (
            f"the live route sends {show_percent(before.canary_percent)} to canary, the stack says "
            f"{show_percent(output_percent(declared))}: edited outside Pulumi (`canary status` shows the "
            "drift, `pulumi up --refresh` restores the stack's split)"
        )
        verdict = dataclasses.replace(verdict, ok=False, reasons=[*verdict.reasons, reason])
    return Verification(sent, host, gateway, where, before, versions, intent, tally, verdict)


def _unchanged(verification: Verification, after_manifest: Manifest | None, app: str) -> Verification:
    """The verification, failed if the live route changed (or went) while the load ran."""
    before = verification.route
    after = None if after_manifest is None else route_state(after_manifest, app)
    if after is not None and after.generation == before.generation:
        return verification
    changed = "was deleted" if after is None else f"generation {before.generation} -> {after.generation}"
    reason = f"the live route changed during the run ({changed}): measured against a moving target"
    verdict = verification.verdict
    return dataclasses.replace(
        verification, verdict=dataclasses.replace(verdict, ok=False, reasons=[*verdict.reasons, reason])
    )
