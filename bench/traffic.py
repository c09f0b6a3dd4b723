"""Traffic through the real data plane: when it serves a new split, and what the route costs.

Two parts, on releases of the product's own program with gatewayClassName `eg` (Envoy Gateway and a real
Envoy per Gateway) or `traefik` (`--traffic-class`: one Traefik process for every Gateway of its class), a
hostname of each release's own (`host_of`: Traefik's Gateways share one address and entryPoint) and
waitForGateway true (the default), each in its own namespace and stack (`bench-*`, `gc-bench-*`):

- propagation: the release at canary 50%, a background `canary.ops.verify.traffic.Stream` of bounded, paced
GETs   to the Gateway's status address (each request a new connection, each stamped with the time it started),
  then the rollback to 0 by one method: `kubectl patch` of the route (the article's one-liner, the JSON
  patch of bench/rollback.py), `pulumi up --yes --skip-preview` after `pulumi config set canaryWeight 0`
  (the config set is before the clock: the clock starts with `pulumi up`), or `canary rollback --yes`
  (when the installed CLI has it). Per run: `apiserver`, seconds until a watch on the apiserver sees
  canary weight 0 (bench.measure.time_until_route); `served`, seconds until Envoy serves the new split,
  i.e. the start of the first request after the last one the canary answered (`switch_of`); their
  difference is the data plane's propagation (Envoy Gateway's translation and xDS push, Envoy's update).
  Methods are interleaved (order rotated per round); the stack goes back to 50% with a real `pulumi up`
  (`--refresh` after kubectl) and Envoy is seen serving both versions again before every run.
- throughput: requests per second through Envoy with `canary.ops.verify.traffic.send` (same client, same
  concurrency, bounded duration), against the rendered route of a release at 50% (header rule + weighted
  split), the same route with every request carrying the canary header (the header rule's one backend: same
  Envoy, same release, no split), the same with mirrorPercent 100 (every request also copied to the
  canary), and a release without a canary (a single-backend route). Every release has its own Gateway and
  so its own Envoy. Variants are interleaved; rps, p50 and p99 latency of the 2xx answers; requests that
  `send` started just before its time limit and had to cut are not counted.

Traffic goes only to a Gateway's status address, after scripts/testbed/netcheck.check_target said it is
routed into the test bed (and canary.ops.verify.traffic.target checks it again). Every loop is bounded in
count and time. The pure parts (`switch_of`, `settled`, `derive`, `markdown`) are unit-tested.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import load_average, summary, time_until_route
from bench.rollback import reset, rollback_patch, rotated, run_all
from bench.stacks import APP, CANARY_IMAGE, REPO, STABLE_IMAGE, Release, Stack, private_project
from canary.ops.errors import TrafficProblem
from canary.ops.verify import traffic
from canary.ops.verify.traffic import Load, Stamped, Stream, TrafficCounter, send
from devtools.pulumi_cli import unique

EG_CLASS = "eg"
TRAEFIK_CLASS = "traefik"
CLASSES = (EG_CLASS, TRAEFIK_CLASS)
"""The bed's GatewayClasses the traffic section can measure (`--traffic-class`)."""
HOST = "web.bench.example"
"""The hostname of the capacity section's release (its own Gateway on `eg`)."""
GATEWAY_RESOURCE = "gateway.gateway.networking.k8s.io"
OLD_WEIGHT = "50"

METHODS = {
    "kubectl": "kubectl patch httproute <app> -n <ns> --type=json -p '[...weight 100/0...]'",
    "pulumi-up": "pulumi up --yes --skip-preview (after pulumi config set canaryWeight 0)",
    "canary": "canary rollback --yes",
}
DEFAULT_METHODS = ["kubectl", "pulumi-up", "canary"]

VARIANTS = {
    "single": "single backend (no canary: one rule, one backendRef)",
    "split": "rendered route at 50%: header rule + weighted split",
    "header": "the same route, every request with `x-canary: true` (header rule, one backend)",
    "mirror": "the same + mirrorPercent 100 (RequestMirror to the canary)",
}
DEFAULT_VARIANTS = ["single", "split", "header", "mirror"]
RELEASE_OF = {"single": "single", "split": "split", "header": "split", "mirror": "mirror"}
"""Which release a throughput variant sends to (`header` is the split release, with the canary header)."""
CANARY_HEADER = {"x-canary": "true"}

STREAM_RATE = 200.0
"""Requests per second of the background stream (5 ms resolution, light on 2 cores)."""
STREAM_CONCURRENCY = 4
STREAM_LIMIT = 90.0
"""Seconds one propagation run's stream may last at most (watch start, the command, the quiet tail)."""
QUIET_SECONDS = 3.0
QUIET_REQUESTS = 200
"""After the last canary answer: this many answers over this many seconds, and the command has exited."""
BASELINE_SECONDS = 0.5


def version_of_image(image: str) -> str:
    """What podinfo on the test bed reports for an image reference: its tag."""
    return image.rsplit(":", 1)[1]


STABLE = version_of_image(STABLE_IMAGE)
CANARY = version_of_image(CANARY_IMAGE)


# --- pure: when did Envoy switch ------------------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    """What a stamped stream says about a move away from version `gone`, clock relative to t0.

    `last_gone`: when the last request the gone version answered started (None: none in the stream);
    `served`: when the first request after it started (from then on only the new split answered; None when
    no request came after it yet); `after` / `after_seconds`: how many 2xx answers came after the last gone
    one and over how long (the evidence); `before`: 2xx answers of the gone version before t0 (the old split
    was really served); `failures`: failed requests that started at or after t0."""

    last_gone: float | None
    served: float | None
    after: int
    after_seconds: float
    before: int
    failures: int


def switch_of(samples: Sequence[tuple[float, str | None]], t0: float, gone: str) -> Switch:
    """From (start time, version of a 2xx answer or None for a failure) per request: see `Switch`."""
    ordered = sorted(samples, key=lambda s: s[0])
    before = sum(1 for sent, version in ordered if sent < t0 and version == gone)
    failures = sum(1 for sent, version in ordered if sent >= t0 and version is None)
    last = max((i for i, (_, version) in enumerate(ordered) if version == gone), default=None)
    if last is None:
        rest = [s for s in ordered if s[0] >= t0]
        first = rest[0][0] - t0 if rest else None
        return Switch(None, first, _ok(rest), _span(rest), before, failures)
    rest = ordered[last + 1 :]
    served = rest[0][0] - t0 if rest else None
    return Switch(ordered[last][0] - t0, served, _ok(rest), _span(rest), before, failures)


def _ok(samples: Sequence[tuple[float, str | None]]) -> int:
    return sum(1 for _, version in samples if version is not None)


def _span(samples: Sequence[tuple[float, str | None]]) -> float:
    return samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0


def settled(switch: Switch, quiet: float = QUIET_SECONDS, requests: int = QUIET_REQUESTS) -> bool:
    """Enough evidence that the gone version is gone: `requests` answers over `quiet` seconds after it."""
    return switch.served is not None and switch.after >= requests and switch.after_seconds >= quiet


def samples_of(stamped: Sequence[Stamped]) -> list[tuple[float, str | None]]:
    """(start time, version of a 2xx answer, else None) per request of a Stream."""
    return [(s.sent, s.result.version if s.result.ok else None) for s in stamped]


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank q-quantile (as canary.ops.verify.traffic.Tally), None without values."""
    counter = TrafficCounter()
    for i, latency in enumerate(values):
        counter.add(traffic.Result(i, 200, None, latency))
    return counter.tally().latency_quantile(q)


# --- the live parts -------------------------------------------------------------------------------------


def kubectl_json(env: dict[str, str], *args: str) -> dict[str, Any] | None:
    proc = subprocess.run(
        ["kubectl", *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def data_plane_ready(env: dict[str, str], gateway_class: str = EG_CLASS) -> str | None:
    """None when GatewayClass `gateway_class` is Accepted by its controller, else why not."""
    obj = kubectl_json(env, "get", "gatewayclass", gateway_class)
    conditions = {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions", [])}
    if conditions.get("Accepted", {}).get("status") != "True":
        return f"GatewayClass {gateway_class} is not Accepted by its controller (the data plane is not up)"
    return None


def prometheus_url(env: dict[str, str] | None = None) -> str:
    """The bed's Prometheus (`scripts/cluster.sh prometheus-url`); SystemExit saying so when it has none."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "prometheus-url"],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: no Prometheus of the bed ({out.stderr.strip()}); run `make cluster-up`")
    return out.stdout.strip()


def host_of(release: Release) -> str:
    """The release's own hostname (its namespace's), so that no two bench releases share one on Traefik."""
    return f"{release.namespace}.bench.example"


def create_release(
    workdir: Path, env: dict[str, str], variant: str, gateway_class: str = EG_CLASS
) -> Release:
    """A release of the product's program on `gateway_class` with hostname host_of: at canary 50% ("split"),
    the same with mirrorPercent 100 ("mirror", Envoy Gateway only), or without a canary ("single")."""
    name = unique("bench")
    stack = Stack(private_project(REPO, workdir / name), name, env).init()
    release = Release(stack, unique("gc-bench"))
    config = {
        "appName": APP,
        "namespace": release.namespace,
        "stableImage": STABLE_IMAGE,
        "stableReplicas": "1",
        "gatewayClassName": gateway_class,
        "waitForGateway": "true",
        "rolloutTimeout": "120",
    }
    if variant == "single":
        config |= {"canaryImage": "", "canaryWeight": "0"}
    else:
        config |= {"canaryImage": CANARY_IMAGE, "canaryReplicas": "1", "canaryWeight": OLD_WEIGHT}
        config["mirrorPercent"] = "100" if variant == "mirror" else "0"
        config["gatewayFeatures"] = "assume"  # Envoy Gateway v1.9 lists no supportedFeatures
    try:
        stack.set_config(config)
        stack.pulumi("config", "set", "--path", "hostnames[0]", host_of(release)).check()
        stack.up("--skip-preview")
    except BaseException:
        stack.destroy()
        raise
    return release


def gateway_target(release: Release, timeout: float = 90) -> traffic.Target:
    """The release's Gateway as a load target (`target_of_gateway`)."""
    return target_of_gateway(release.stack.env, release.namespace, f"{APP}-gateway", timeout)


def target_of_gateway(env: dict[str, str], namespace: str, name: str, timeout: float = 90) -> traffic.Target:
    """GET /version at a Gateway's status address once it is Programmed, checked by the test bed's netcheck
    (twice: here with scripts.testbed.netcheck.check_target, then by canary.ops.verify.traffic.target)."""
    from scripts.testbed.netcheck import check_target

    deadline = time.monotonic() + timeout
    while True:
        gateway = kubectl_json(env, "get", GATEWAY_RESOURCE, name, "-n", namespace)
        status = (gateway or {}).get("status", {})
        programmed = {c["type"]: c for c in status.get("conditions", [])}.get("Programmed", {})
        addresses = status.get("addresses") or []
        if programmed.get("status") == "True" and addresses:
            address = str(addresses[0]["value"])
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the Gateway {namespace}/{name} was not Programmed in {timeout:.0f}s")
        time.sleep(0.5)
    check_target(address)
    return traffic.target(f"http://{address}/version")


def settle(target: traffic.Target, want: set[str], host: str, timeout: float = 90) -> int:
    """Batches of 50 requests (Host `host`) until one batch answers all 2xx with exactly the versions `want`
    (the data plane has the route and the endpoints); returns the requests sent. Bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        load = Load(target, 50, concurrency=2, timeout=2, time_limit=10, host=host)
        try:
            run = send(load, probe_first=False)
        except TrafficProblem:
            time.sleep(0.5)
            continue
        sent += len(run.results)
        tally = TrafficCounter().extend(run.results).tally()
        if tally.failed == 0 and tally.sent == 50 and set(tally.by_version) == want:
            return sent
        time.sleep(0.3)
    raise SystemExit(f"bench: Envoy did not serve {sorted(want)} steadily within {timeout:.0f}s")


def _commands(release: Release, method: str, patch: list[dict[str, Any]]) -> list[list[str]]:
    stack = release.stack.name
    if method == "kubectl":
        ns = release.namespace
        return [["kubectl", "patch", "httproute", APP, "-n", ns, "--type=json", "-p", json.dumps(patch)]]
    if method == "pulumi-up":
        return [["pulumi", "up", "--yes", "--skip-preview", "--stack", stack, "--non-interactive"]]
    if method == "canary":
        return [["canary", "rollback", "--yes", "--stack", stack, "--cwd", str(release.stack.project_dir)]]
    raise ValueError(f"unknown method {method}")


def propagation_run(
    release: Release, target: traffic.Target, method: str, patch: list[dict[str, Any]], rate: float
) -> dict[str, Any]:
    """One rollback 50 -> 0 by `method` under a background stream; see the module docstring."""
    if method == "pulumi-up":
        release.stack.set_config({"canaryWeight": "0"})
    load = Load(
        target,
        min(traffic.MAX_REQUESTS, int(rate * STREAM_LIMIT)),
        concurrency=STREAM_CONCURRENCY,
        timeout=2.0,
        time_limit=STREAM_LIMIT,
        host=host_of(release),
    )
    marks: dict[str, float] = {}
    with Stream(load, rate=rate) as stream:
        time.sleep(BASELINE_SECONDS)

        def action() -> None:
            marks["t0"] = time.monotonic()
            run_all(_commands(release, method, patch), release)
            marks["exited"] = time.monotonic()

        timing = time_until_route(release.stack.env, release.namespace, APP, action, want_canary_weight=0)
        while stream.running:
            if settled(switch_of(samples_of(stream.snapshot()), marks["t0"], CANARY)):
                break
            time.sleep(0.2)
        stamped = stream.stop()
    switch = switch_of(samples_of(stamped), marks["t0"], CANARY)
    if switch.before == 0:
        raise SystemExit(
            f"bench: {method}: no canary answer before the rollback (the 50% split was not served)"
        )
    if not settled(switch):
        raise SystemExit(f"bench: {method}: Envoy did not stop serving the canary within {STREAM_LIMIT:.0f}s")
    return {
        "method": method,
        "apiserver": timing.safe,
        "exited": timing.exited,
        "served": switch.served,
        "lastCanary": switch.last_gone,
        "canaryBefore": switch.before,
        "after": switch.after,
        "failures": switch.failures,
        "requests": len(stamped),
        "rate": rate,
    }


def cut_at_limit(result: traffic.Result, timeout: float) -> bool:
    """A request `send` started shortly before its time limit, with less than `timeout` left, that timed out:
    cut by the bench's bound, not a failure of the route (its error names the shorter budget)."""
    return bool(
        result.error
        and result.error.startswith("timed out")
        and not result.error.endswith(f"in {timeout:.1f}s")
    )


def throughput_run(
    target: traffic.Target, host: str, concurrency: int, seconds: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """`seconds` of as many requests as `concurrency` threads send (canary.ops.verify.traffic.send, bounded).
    rps counts every request answered or failed, not those cut by the time limit (`cut`)."""
    timeout = 5.0
    load = Load(
        target,
        traffic.MAX_REQUESTS,
        concurrency=concurrency,
        timeout=timeout,
        time_limit=seconds,
        host=host,
        headers=headers or {},
    )
    run = send(load)
    kept = [r for r in run.results if not cut_at_limit(r, timeout)]
    tally = TrafficCounter().extend(kept).tally()
    ok = [r.latency for r in kept if r.ok]
    return {
        "requests": len(kept),
        "cut": len(run.results) - len(kept),
        "seconds": run.seconds,
        "rps": len(kept) / run.seconds if run.seconds else None,
        "failed": tally.failed,
        "failures": tally.failures,
        "versions": tally.by_version,
        "p50": quantile(ok, 0.5),
        "p99": quantile(ok, 0.99),
    }


def run(
    workdir: Path,
    env: dict[str, str],
    methods: list[str],
    rounds: int,
    variants: list[str],
    throughput_rounds: int,
    seconds: float,
    concurrency: int,
    rate: float,
    log: Callable[[str], None],
    gateway_class: str = EG_CLASS,
) -> dict[str, Any]:
    """Both parts on `gateway_class`; every release is destroyed at the end (problems are returned in
    "cleanup")."""
    raw: dict[str, Any] = {
        "gatewayClass": gateway_class,
        "methods": {m: METHODS[m] for m in methods},
        "variants": {v: VARIANTS[v] for v in variants},
        "hosts": {},
        "concurrency": concurrency,
        "seconds": seconds,
        "rate": rate,
        "propagation": [],
        "throughput": [],
        "cleanup": [],
        "load": [load_average()],
    }
    needed = list(dict.fromkeys([*(RELEASE_OF[v] for v in variants), *(["split"] if methods else [])]))
    releases: dict[str, Release] = {}
    try:
        targets: dict[str, traffic.Target] = {}
        for variant in needed:
            log(f"  traffic: deploying the {variant} release (class {gateway_class})")
            releases[variant] = create_release(workdir, env, variant, gateway_class)
            raw["hosts"][variant] = host_of(releases[variant])
            targets[variant] = gateway_target(releases[variant])
            want = {STABLE} if variant == "single" else {STABLE, CANARY}
            settle(targets[variant], want, host_of(releases[variant]))
        for r in range(throughput_rounds):
            for variant in rotated(variants, r):
                headers = CANARY_HEADER if variant == "header" else None
                release_of = releases[RELEASE_OF[variant]]
                found = throughput_run(
                    targets[RELEASE_OF[variant]], host_of(release_of), concurrency, seconds, headers
                )
                found |= {"variant": variant, "round": r}
                raw["throughput"].append(found)
                log(
                    f"  throughput round {r + 1}/{throughput_rounds} {variant}: {found['rps']:.0f} rps, "
                    f"p50 {1000 * (found['p50'] or 0):.1f} ms, p99 {1000 * (found['p99'] or 0):.1f} ms, "
                    f"{found['failed']} failed"
                )
        if methods:
            release = releases["split"]
            patch = rollback_patch(release.live_route(), APP)
            stale = False
            for r in range(rounds):
                for method in rotated(methods, r):
                    reset_seconds = reset(release, refresh=stale)
                    settle(targets["split"], {STABLE, CANARY}, host_of(release))
                    found = propagation_run(release, targets["split"], method, patch, rate)
                    found |= {"round": r, "reset": reset_seconds, "at": time.time()}
                    stale = method == "kubectl"
                    raw["propagation"].append(found)
                    log(
                        f"  propagation round {r + 1}/{rounds} {method}: "
                        f"apiserver {found['apiserver']:.2f}s, "
                        f"served {found['served']:.2f}s, exit {found['exited']:.2f}s, "
                        f"{found['failures']} failed of {found['requests']}"
                    )
    finally:
        raw["load"].append(load_average())
        for release in releases.values():
            raw["cleanup"] += release.stack.destroy()
    return raw


# --- pure: figures and tables ---------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def derive(raw: dict[str, Any]) -> dict[str, Any]:
    """Per method: summaries of apiserver, served, exited and served - apiserver (the data plane), ratios
    to kubectl; per variant: rps and latency medians, rps relative to the single-backend route."""
    runs = raw.get("propagation", [])
    methods: dict[str, Any] = {}
    for key, command in raw.get("methods", {}).items():
        mine = [r for r in runs if r["method"] == key]
        methods[key] = {
            "command": command,
            "apiserver": summary([r["apiserver"] for r in mine]),
            "served": summary([r["served"] for r in mine if r["served"] is not None]),
            "exited": summary([r["exited"] for r in mine]),
            "dataPlane": summary([r["served"] - r["apiserver"] for r in mine if r["served"] is not None]),
            "failures": sum(r["failures"] for r in mine),
            "requests": sum(r["requests"] for r in mine),
        }
    base = methods.get("kubectl", {})
    for figures in methods.values():
        for what in ("apiserver", "served"):
            mine, theirs = figures[what]["median"], base.get(what, {}).get("median")
            figures[f"{what}VsKubectl"] = mine / theirs if mine is not None and theirs else None
    variants: dict[str, Any] = {}
    for key, label in raw.get("variants", {}).items():
        mine = [r for r in raw.get("throughput", []) if r["variant"] == key]
        variants[key] = {
            "label": label,
            "rps": summary([r["rps"] for r in mine if r["rps"] is not None]),
            "p50": _median([r["p50"] for r in mine]),
            "p99": _median([r["p99"] for r in mine]),
            "requests": sum(r["requests"] for r in mine),
            "failed": sum(r["failed"] for r in mine),
        }
    single = variants.get("single", {}).get("rps", {}).get("median")
    for figures in variants.values():
        rps = figures["rps"]["median"]
        figures["vsSingle"] = rps / single if rps is not None and single else None
    return {
        "gatewayClass": raw.get("gatewayClass", EG_CLASS),
        "methods": methods,
        "variants": variants,
        "concurrency": raw.get("concurrency"),
        "seconds": raw.get("seconds"),
        "rate": raw.get("rate"),
        "load": raw.get("load", []),
    }


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _spread(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "-"
    return f"{s['median']:.2f} s ({s['min']:.2f}-{s['max']:.2f})"


def _signed_ms(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "-"
    return f"{1000 * s['median']:+.0f} ms ({1000 * s['min']:+.0f} to {1000 * s['max']:+.0f})"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.1f} ms"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(d: dict[str, Any]) -> str:
    parts: list[str] = [f"GatewayClass `{d.get('gatewayClass', EG_CLASS)}`.\n"]
    if d.get("load"):
        loads = " and ".join(f"{x:.2f}" for x in d["load"])
        parts.append(f"Load average (1 min) at the section's start and end: {loads}.\n")
    methods = d.get("methods", {})
    if methods:
        n = max((m["served"]["n"] for m in methods.values()), default=0)
        rows = [
            [
                f"`{m['command']}`",
                _spread(m["apiserver"]),
                _spread(m["served"]),
                _signed_ms(m["dataPlane"]),
                _spread(m["exited"]),
                _x(m["servedVsKubectl"]),
                f"{m['failures']} / {m['requests']}",
            ]
            for m in methods.values()
        ]
        parts.append(
            f"Rollback 50% -> 0% under a background stream ({d.get('rate') or 0:.0f} req/s), "
            "median (min-max), "
            f"n={n} per method, interleaved:\n"
        )
        parts.append(
            _table(
                [
                    "method",
                    "apiserver shows 0%",
                    "data plane serves 0%",
                    "data plane (served - apiserver)",
                    "command exits",
                    "served vs kubectl",
                    "failed requests",
                ],
                rows,
            )
        )
    variants = d.get("variants", {})
    if variants:
        n = max((v["rps"]["n"] for v in variants.values()), default=0)
        rows = [
            [
                v["label"],
                "-"
                if v["rps"]["median"] is None
                else f"{v['rps']['median']:.0f} ({v['rps']['min']:.0f}-{v['rps']['max']:.0f})",
                _x(v["vsSingle"]),
                _ms(v["p50"]),
                _ms(v["p99"]),
                f"{v['failed']} / {v['requests']}",
            ]
            for v in variants.values()
        ]
        parts.append(
            f"\nThroughput through the data plane, {d.get('concurrency')} concurrent clients, a new "
            f"connection per request, {d.get('seconds')} s per run, n={n} runs per route, interleaved:\n"
        )
        parts.append(_table(["route", "req/s median (min-max)", "vs single", "p50", "p99", "failed"], rows))
    return "\n".join(parts)
