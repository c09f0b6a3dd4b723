"""Measured traffic through the real data plane (issue 12, "Tests against all of it").

Each class runs on both of the bed's Gateway API implementations (`CLASSES`): `eg` (Envoy Gateway programs a
real Envoy per Gateway) and `traefik` (one Traefik process serves every Gateway of its class on one address).
A release of the repo's own program goes through real `pulumi up` (waitForGateway at its default, true: the
route's verdict at its generation from either controller), and the data-plane supervisor runs one real
podinfo per Ready pod (scripts/testbed). Each release has a hostname of its own: Traefik's Gateways share an
address and entryPoint, where two routes of one hostname would share requests. Requests go only to the
Gateway's status address, port 80,
with the route's hostname as Host, after the test bed's netcheck has confirmed the address is routed into the
bed (`canary.ops.verify.traffic.target`); the mirror test also reads the canary pod's podinfo `/metrics`, on
the pod's own address in the bed, after the same check.

- `TestSplit`: one release walked through canaryWeight 0, 5, 25, 50, 100, 0.5, 0 and then a mirror. At each
  weight N requests land within the exact 99.9% binomial interval of `canary_interval`, with N large enough
  that the interval of a neighbouring share (twice the weight; half of it at 50 and 100; 0.5% at 0) is
  disjoint from it: a gateway that splits at the neighbour fails the check almost surely, so the check can
  fail. How long after `pulumi up` returned Envoy served the new split is measured from a background stream
  and printed (not asserted). `x-canary: true` reaches the canary at every weight.
- Mirroring on `eg` (same release, weight 0, mirrorPercent 50, gatewayFeatures assume: Envoy Gateway lists no
  supportedFeatures). On `traefik`, whose class lists its features without mirroring, the preview refuses
  mirrorPercent naming the feature and the class, and the route's generation does not move. On `eg`: every
  response comes from stable, and the copies are
  counted at the canary pod's own podinfo, as the growth of its `http_request_duration_seconds_count` for
  GET /version 200, against the same kind of interval. Not by request id: podinfo as the bed runs it
  (`--level warn`) records no per-request trace, and its metrics middleware only labels matched routes, so a
  per-request path would not show. Nothing else sends the canary GET /version meanwhile (kwok fakes
  readiness: no probes; no header requests are sent in the window).
- `TestWalkUnderLoad`: another release; a background stream at a bounded rate runs through deploy canary,
  `canary step` 5 -> 25 -> 50 -> 100, `canary promote`, a second canary, `canary rollback --yes`, and not one
  request may fail. Counts per phase are printed; a failure also shows what the Gateway's Envoy logged for
  the failed requests (response flags, details, upstream), to tell a missing cluster from a refusing pod.

The split here is not a coin flip per request (docs/getting-started.md, the local cluster: one Envoy worker
with locality weights gives a near-deterministic split), so the checks pass comfortably on a healthy bed;
what makes them meaningful is their power against a wrong split, asserted for each N.

Every request loop is bounded in count and in time (`Load`, `Stream` and `wait_for` bounds).
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest

from canary.gateway_api import ROUTE_RESOURCE as ROUTE
from canary.ops.errors import TrafficProblem
from canary.ops.verify import traffic
from canary.ops.verify.split import Verdict, canary_interval, intent_of, judge, versions_by_track
from canary.ops.verify.traffic import Load, Stamped, Stream, Tally, Target, TrafficCounter, send, target
from canary.route_state import route_state
from scripts.testbed.netcheck import check_target
from tests.integration.harness import (
    REPO,
    Kube,
    PulumiStack,
    Result,
    release_stack,
    set_in_stack_file,
    wait_for,
)
from tests.integration.test_traffic_bed import (
    bed,
    dataplane_dir,
    dataplane_state,
    programmed_address,
)

__all__ = ["bed"]  # the traffic bed's own readiness fixture (skips loudly, fails under CI)

EG_CLASS = "eg"
TRAEFIK_CLASS = "traefik"
CLASSES = (EG_CLASS, TRAEFIK_CLASS)
"""The two Gateway API implementations of the bed: the traffic tests that matter run on each."""
APP = "web"
HOST = "app.example.com"
V1 = "registry.example/web:1.0.0"
V2 = "registry.example/web:1.1.0"
V3 = "registry.example/web:1.2.0"
GATEWAY = "gateway.gateway.networking.k8s.io"
CANARY_CLI = str(REPO / ".venv" / "bin" / "canary")
HEADER = {"x-canary": "true"}

STREAM_RATE = 200.0
"""Requests per second of the background stream that times a weight change (one every 5 ms)."""
MIRROR_METRIC = re.compile(
    r'^http_request_duration_seconds_count\{method="GET",path="version",status="200"\} (\d+)$', re.M
)


def gateway_target(
    kube: Kube, namespace: str, gateway: str = f"{APP}-gateway", path: str = "/version"
) -> Target:
    """The Gateway's status address (with `path`) as a load target, once Envoy Gateway has Programmed it and
    the test bed has routed it; `target()` runs the bed's netcheck and refuses anything not routed into the
    bed. The bed's supervisor adds the address's route when it starts the Gateway's Envoy, which on a loaded
    machine can come a few seconds after Envoy Gateway wrote the address (seen in CI: "routed via eth0")."""
    url = f"http://{programmed_address(kube, namespace, gateway)}{path}"
    refused: list[str] = []

    def routed() -> Target | None:
        try:
            return target(url)
        except TrafficProblem as err:
            refused[:] = [str(err)]
            return None

    try:
        wait_for(routed, timeout=60, what=f"the bed's route to {url}")
    except AssertionError as err:
        raise AssertionError(f"{err}; the netcheck last said: {refused}") from None
    where = target(url)
    assert "into gcbed-" in where.checked, where.checked  # an Envoy's namespace, or Traefik's
    return where


def load(
    where: Target, requests: int, headers: dict[str, str] | None = None, *, host: str = HOST, **kw: Any
) -> Load:
    return Load(where, requests, host=host, headers=headers or {}, **kw)


def settle(where: Target, want: dict[str, str], seconds: float = 90, host: str = HOST) -> None:
    """Until Envoy answers: a batch of 30 requests all ok from `want['plain']`'s version (or from any track
    when it is empty) and 10 header requests all from the canary (`want['header']`, when given). The real
    Envoy gets its config a little after the Gateway is Programmed (kwok makes its pod Ready)."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            plain = TrafficCounter().extend(
                send(load(where, 30, concurrency=1, time_limit=10, host=host)).results
            )
            ok = plain.tally().failed == 0 and (
                not want.get("plain") or plain.tally().by_version == {want["plain"]: 30}
            )
            if ok and want.get("header"):
                run = send(load(where, 10, HEADER, concurrency=1, time_limit=10, host=host))
                ok = all(r.ok and r.version == want["header"] for r in run.results)
                last = [(r.status, r.version, r.error) for r in run.results]
            else:
                last = plain.tally()
            if ok:
                return
        except TrafficProblem as err:
            last = err
        time.sleep(0.3)
    raise AssertionError(f"Envoy did not serve {want} within {seconds}s: {last}")


def window_for(old: Fraction, new: Fraction) -> int:
    """The fewest requests (from a ladder) whose 99.9% intervals at `old` and `new` are disjoint."""
    for n in (20, 50, 100, 200, 400, 800, 1600, 3200, 6400):
        a, b = canary_interval(n, old), canary_interval(n, new)
        if a.high < b.low or b.high < a.low:
            return n
    raise AssertionError(f"no window tells {old} from {new}")


def reflected(seen: list[Stamped], returned: float, canary: str, old: Fraction, new: Fraction) -> str | None:
    """When, after `pulumi up` returned (monotonic `returned`), the answers first showed the new split; None
    while they do not yet. Only answers sent after `returned` count. How it is decided:

    - from weight 0 (or 100): the first answer from the track the old route never answers from;
    - to weight 0 (or 100): the first request after the last answer from the track the new route never
      answers from, once `window_for` requests in a row have come after it (enough that the old share would
      have shown up with probability 99.95%);
    - between two shares in between: consecutive blocks of `window_for` requests from `returned`; the first
      block whose canary count is outside the old share's interval and inside the new one's (its start is
      reported: Envoy changed at the latest within that block).
    """
    after = [s for s in seen if s.sent >= returned and s.result.ok]
    is_canary = [s.result.version == canary for s in after]
    if old in (0, 1):
        never = old == 0  # the answer the old route never gives: canary from 0, stable from 100
        for s, c in zip(after, is_canary, strict=True):
            if c == never:
                return f"{s.sent - returned:.3f}s (first {'canary' if never else 'stable'} answer)"
        return None
    width = window_for(old, new)
    if new in (0, 1):
        never = new == 0
        last = max((i for i, c in enumerate(is_canary) if c == never), default=-1)
        if len(after) - (last + 1) < width:
            return None
        gone = "canary" if never else "stable"
        return f"{after[last + 1].sent - returned:.3f}s (after the last {gone} answer, {width} in a row)"
    for start in range(0, len(after) - width + 1, width):
        count = sum(is_canary[start : start + width])
        if count not in canary_interval(width, old) and count in canary_interval(width, new):
            return f"<= {after[start].sent - returned:.3f}s (first block of {width} at the new split)"
    return None


def until_reflected(
    stream: Stream, returned: float, old: Fraction, new: Fraction, seconds: float = 60
) -> str:
    """Poll the stream until `reflected` sees the new split (bounded); what it said."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        said = reflected(stream.snapshot(), returned, "1.1.0", old, new)
        if said is not None:
            return said
        time.sleep(0.2)
    tally = TrafficCounter().extend([s.result for s in stream.snapshot() if s.sent >= returned]).tally()
    raise AssertionError(f"Envoy did not serve {new} within {seconds}s after pulumi up: {tally}")


@dataclass
class Walked:
    """State the ordered steps of a class share: the stack, its namespace and target, the current weight."""

    stack: PulumiStack
    kube: Kube
    gateway_class: str = EG_CLASS
    host: str = HOST
    """The route's hostname: one of its own, since Traefik serves every Gateway of its class on one
    address and entryPoint, where two routes of one hostname and path would share requests."""
    namespace: str = ""
    where: Target | None = None
    weight: Fraction = Fraction(0)
    stream: Stream | None = None
    phases: list[tuple[str, float]] = field(default_factory=list)


def judge_live(kube: Kube, namespace: str, tally: Tally, headers: dict[str, str]) -> Verdict:
    """`canary verify`'s own verdict on a tally, against the live route's intent (stable V1, canary V2)."""
    route = kube.get(ROUTE, APP, namespace)
    assert route is not None
    return judge(
        tally.by_version,
        versions_by_track(V1, V2),
        intent_of(route_state(route, APP), headers),
        sent=tally.sent,
        wanted=tally.sent,
        failures=tally.failures,
        without_version=tally.without_version,
    )


def measure(walked: Walked, requests: int, headers: dict[str, str] | None = None) -> tuple[Tally, Verdict]:
    """N requests (8 at a time, each on its own connection) and the verdict on them; asserts all were sent."""
    assert walked.where is not None
    run = send(load(walked.where, requests, headers, concurrency=8, time_limit=240, host=walked.host))
    assert run.not_sent == 0, f"{run.not_sent} of {requests} not sent within the bound ({run.seconds:.1f}s)"
    tally = TrafficCounter().extend(run.results).tally()
    return tally, judge_live(walked.kube, walked.namespace, tally, headers or {})


def stamped_answers(tracks: str, start: float = 0.0, step: float = 0.01) -> list[Stamped]:
    """Synthetic answers for the timing logic: 's' stable (1.0.0), 'c' canary (1.1.0), one per `step`."""
    return [
        Stamped(start + i * step, traffic.Result(i, 200, "1.1.0" if t == "c" else "1.0.0", 0.001))
        for i, t in enumerate(tracks)
    ]


def test_reflected_reads_each_kind_of_weight_change() -> None:
    """The timing logic on its own (no cluster): what counts as "Envoy serves the new split"."""
    quarter, tenth = Fraction(1, 4), Fraction(1, 10)
    # From 0: the first canary answer after `returned` (answers before it do not count).
    seen = stamped_answers("c" + "s" * 9 + "sscs")
    assert reflected(seen, 0.005, "1.1.0", Fraction(0), tenth) == "0.115s (first canary answer)"
    assert reflected(seen[:12], 0.005, "1.1.0", Fraction(0), tenth) is None
    # To 100: after the last stable answer, once window_for(1/2, 1) answers in a row came after it.
    width = window_for(Fraction(1, 2), Fraction(1))
    seen = stamped_answers("scs" + "c" * width)
    said = reflected(seen, 0.0, "1.1.0", Fraction(1, 2), Fraction(1))
    assert said == f"0.030s (after the last stable answer, {width} in a row)", said
    assert reflected(seen[:-1], 0.0, "1.1.0", Fraction(1, 2), Fraction(1)) is None
    # Between two shares: the first block of window_for answers at the new split.
    width = window_for(tenth, quarter)
    old, new = ("c" + "s" * 9) * (width // 10), ("csss" * width)[:width]
    said = reflected(stamped_answers(old + new), 0.0, "1.1.0", tenth, quarter)
    assert said == f"<= {width * 0.01:.3f}s (first block of {width} at the new split)", said
    assert reflected(stamped_answers(old + old), 0.0, "1.1.0", tenth, quarter) is None


SPLITS = [
    # (canaryWeight, requests, neighbour share the check must be able to reject)
    ("5", 1500, Fraction(10, 100)),
    ("25", 500, Fraction(50, 100)),
    ("50", 500, Fraction(25, 100)),
    ("100", 500, Fraction(50, 100)),
    ("0.5", 14000, Fraction(1, 100)),
    ("0", 2000, Fraction(1, 200)),
]


def share_of(weight: str) -> Fraction:
    return Fraction(weight) / 100


@pytest.fixture(scope="class", params=CLASSES)
def split(
    bed: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Walked]:
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("split"),
        "tsplit",
        {
            "appName": APP,
            "stableImage": V1,
            "canaryImage": V2,
            "canaryWeight": "0",
            "stableReplicas": "1",
            "gatewayClassName": request.param,
        },
    )
    host = f"{stack.name}.example.com"
    stack.pulumi("config", "set", "--path", "hostnames[0]", host).check()
    try:
        yield Walked(stack, kube, request.param, host)
    finally:
        stack.destroy()


class TestSplit:
    def test_1_weight_0_sends_nothing_to_the_canary_and_the_header_reaches_it(self, split: Walked) -> None:
        split.stack.up().check()
        split.namespace = str(split.stack.outputs()["namespace"])
        split.where = gateway_target(split.kube, split.namespace)
        settle(split.where, {"plain": "1.0.0", "header": "1.1.0"}, host=split.host)
        tally, verdict = measure(split, 2000)
        print(f"\nweight 0: {tally.by_version} of {tally.sent}, failures {tally.failures}")
        assert verdict.ok, verdict.reasons
        assert tally.by_version == {"1.0.0": 2000}, tally
        header, verdict = measure(split, 200, HEADER)
        print(f"weight 0, x-canary: true: {header.by_version}")
        assert verdict.ok and header.by_version == {"1.1.0": 200}, (verdict.reasons, header)

    @pytest.mark.parametrize(("weight", "requests", "neighbour"), SPLITS, ids=[s[0] for s in SPLITS])
    def test_2_split_lands_in_the_interval_and_the_header_still_reaches_the_canary(
        self, split: Walked, weight: str, requests: int, neighbour: Fraction
    ) -> None:
        assert split.where is not None, "test_1 deploys the release"
        share = share_of(weight)
        # The check can fail: at this N a gateway splitting at the neighbouring share lands outside the
        # interval with probability >= 99.95% (the two 99.9% intervals are disjoint).
        interval, other = canary_interval(requests, share), canary_interval(requests, neighbour)
        assert interval.high < other.low or other.high < interval.low, (weight, requests, interval, other)

        stream = Stream(
            load(split.where, 20000, concurrency=2, time_limit=300, host=split.host), rate=STREAM_RATE
        )
        with stream:
            split.stack.set_config({"canaryWeight": weight})
            began = time.monotonic()
            split.stack.up(message=f"canary {weight}%").check()
            returned = time.monotonic()
            when = until_reflected(stream, returned, split.weight, share)
            seen = stream.stop()
        # The same test from the start of the update: did Envoy move before `pulumi up` returned?
        early = reflected(seen, began, "1.1.0", split.weight, share)
        moved = TrafficCounter().extend([s.result for s in seen]).tally()
        print(
            f"\ncanary {float(split.weight * 100):g}% -> {weight}%: pulumi up took {returned - began:.1f}s; "
            f"Envoy served the new split {when} after it returned ({early} after it started); "
            f"stream meanwhile: {moved.sent} requests, "
            f"{moved.by_version}, failures {moved.failures}"
        )
        assert moved.failed == 0, moved.failures
        split.weight = share

        tally, verdict = measure(split, requests)
        canaries = tally.by_version.get("1.1.0", 0)
        print(
            f"canary {weight}%: {canaries} of {tally.sent} canary (interval {interval.text()}, "
            f"neighbour {float(neighbour * 100):g}% interval {other.text()}), {tally.by_version}, "
            f"failures {tally.failures}"
        )
        assert verdict.intent.canary_share == share, verdict.intent
        assert verdict.ok, verdict.reasons
        assert tally.sent == requests and tally.failed == 0, tally.failures
        assert canaries in interval, (canaries, interval)

        header, verdict = measure(split, 200, HEADER)
        assert verdict.ok and header.by_version == {"1.1.0": 200}, (verdict.reasons, header)
        if weight == "25":
            verified = canary(split.stack, "verify", "-n", "400", "--json")
            report = json.loads(verified.stdout)
            assert verified.code == 0 and report["ok"], verified.output
            assert report["gateway"] == f"{split.namespace}/{APP}-gateway", report["gateway"]

    def test_3_mirror_copies_reach_the_canary_process_while_stable_answers(
        self, bed: dict[str, str], split: Walked
    ) -> None:
        assert split.where is not None and split.weight == 0, "test_2 ends at weight 0"
        percent, requests = Fraction(1, 2), 2000
        interval = canary_interval(requests, percent)
        for neighbour in (Fraction(2, 5), Fraction(3, 5)):
            other = canary_interval(requests, neighbour)
            assert interval.high < other.low or other.high < interval.low, (neighbour, interval, other)
        if split.gateway_class == TRAEFIK_CLASS:
            # Traefik lists its features, mirroring not among them (it would answer 500 on the whole rule
            # behind a green status): the preview refuses, and nothing is sent.
            generation = (split.kube.get(ROUTE, APP, split.namespace) or {})["metadata"]["generation"]
            split.stack.set_config({"mirrorPercent": "50"})
            refused = split.stack.preview()
            print(
                "\n" + next(line for line in refused.output.splitlines() if "RequestMirror," in line).strip()
            )
            assert refused.code != 0, refused.output
            assert (
                "mirrorPercent: needs the Gateway API feature HTTPRouteRequestMirror, which GatewayClass "
                "'traefik' does not list in status.supportedFeatures"
            ) in refused.output
            assert (split.kube.get(ROUTE, APP, split.namespace) or {})["metadata"]["generation"] == generation
            split.stack.set_config({"mirrorPercent": "0"})
            return
        # Envoy Gateway v1.9 publishes no supportedFeatures (docs/gateways.md): mirroring is taken on trust.
        split.stack.set_config({"mirrorPercent": "50", "gatewayFeatures": "assume"})
        split.stack.up(message="mirror 50%").check()
        metrics = canary_metrics(bed, split.namespace)
        # The first copies show the mirror is live in Envoy (nothing else sends the canary GET /version).
        where, before = split.where, version_count(metrics)

        def copies_arrive() -> bool:
            send(load(where, 20, concurrency=1, time_limit=10, host=split.host))
            return version_count(metrics) > before

        wait_for(copies_arrive, timeout=60, what="the first mirrored copies at the canary's podinfo")
        before = settled_count(metrics)
        tally, verdict = measure(split, requests)
        after = settled_count(metrics)
        copies = after - before
        print(
            f"\nmirror 50%: {copies} of {requests} requests copied to the canary's podinfo "
            f"(interval {interval.text()}); responses {tally.by_version}, failures {tally.failures}"
        )
        assert verdict.ok and tally.by_version == {"1.0.0": requests}, (verdict.reasons, tally)
        assert copies in interval, (copies, interval)


def canary_metrics(bed: dict[str, str], namespace: str) -> str:
    """The canary pod's podinfo metrics address (state.json of the supervisor), after netcheck."""
    pods = [p for p in dataplane_state(bed).get("pods", []) if p["namespace"] == namespace]
    canaries = [p for p in pods if p["pod"].startswith(f"{APP}-canary-")]
    assert len(canaries) == 1, pods
    address = str(canaries[0]["metrics"])
    assert "into gcbed-apps" in check_target(address), address
    return address


def version_count(address: str) -> int:
    """GET /version answered 200 by that podinfo, from its Prometheus counter (the histogram's count)."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found = MIRROR_METRIC.search(text)
    return int(found.group(1)) if found else 0


def settled_count(address: str, seconds: float = 30) -> int:
    """The count once it has not moved for a second (mirrored copies are sent after the responses)."""
    deadline = time.monotonic() + seconds
    last = version_count(address)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = version_count(address)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the canary's request count still moved after {seconds}s")


def envoy_failures(bed: dict[str, str], namespace: str) -> dict[str, int]:
    """The failed requests in the access log of the release's Envoy (Envoy Gateway's JSON format), counted by
    response code, flags, details and upstream host: says whether Envoy found no endpoint, or one that
    refused. Read from the supervisor's log file; nothing is sent."""
    gateways = [
        g for g in dataplane_state(bed).get("gateways", []) if g["gateway"] == f"{namespace}/{APP}-gateway"
    ]
    if not gateways:
        return {}
    log = dataplane_dir(bed) / "gateways" / gateways[0]["deployment"] / "envoy.log"
    found: Counter[str] = Counter()
    times = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("response_code") in (0, None) or entry["response_code"] >= 500:
            fields = ("response_code", "response_flags", "response_code_details", "upstream_host")
            found[" ".join(str(entry.get(f)) for f in fields)] += 1
            times.append(str(entry.get("start_time")))
    if times:
        found[f"between {min(times)} and {max(times)}"] = len(times)
    return dict(found)


def canary(stack: PulumiStack, *args: str) -> Result:
    """The `canary` CLI on `stack`, no terminal on stdin (test_cli.py runs it the same way)."""
    argv = [CANARY_CLI, *args, "--cwd", str(stack.project_dir), "--stack", stack.name]
    proc = subprocess.run(
        argv, env=stack.env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


WALK_RATE = 50.0
"""Requests per second of the load that runs through the whole walk."""
SAFE_RUN = 100
"""Answers in a row from the stable (2 s of the walk's load) after which a rollback counts as served."""
WALK_STALL_LIMIT = 3.0
"""Longest gap (seconds) allowed between two request starts of that load; see test_7."""


WALK_TEMPLATE = {
    "metadata": {"labels": {"team": "storefront"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "args": ["--level", "info"],
                "ports": [{"name": "http", "containerPort": 9898}],
                "env": [{"name": "PODINFO_UI_MESSAGE", "value": "walked"}],
                "resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
            }
        ],
    },
}
"""The walk runs the app's own pod template (podTemplate, issue 22): every phase, promote included, with not
one failed request through Envoy (test_7)."""


@pytest.fixture(scope="class", params=CLASSES)
def walk(
    bed: dict[str, str], kube: Kube, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Walked]:
    stack = release_stack(
        bed,
        tmp_path_factory.mktemp("walk"),
        "twalk",
        {"appName": APP, "stableImage": V1, "stableReplicas": "2", "gatewayClassName": request.param},
    )
    host = f"{stack.name}.example.com"
    stack.pulumi("config", "set", "--path", "hostnames[0]", host).check()
    set_in_stack_file(stack, {"podTemplate": WALK_TEMPLATE})
    walked = Walked(stack, kube, request.param, host)
    try:
        yield walked
    finally:
        if walked.stream is not None:
            walked.stream.stop()
        stack.destroy()


class TestWalkUnderLoad:
    def test_1_stable_serves_and_the_load_starts(self, walk: Walked) -> None:
        walk.stack.up().check()
        walk.namespace = str(walk.stack.outputs()["namespace"])
        walk.where = gateway_target(walk.kube, walk.namespace)
        settle(walk.where, {"plain": "1.0.0"}, host=walk.host)
        walk.stream = Stream(
            load(walk.where, 20000, concurrency=4, time_limit=900, host=walk.host), rate=WALK_RATE
        ).start()
        walk.phases.append(("stable only", time.monotonic()))
        time.sleep(2)

    def test_2_deploy_the_canary(self, walk: Walked) -> None:
        walk.phases.append(("deploy canary 1.1.0", time.monotonic()))
        walk.stack.set_config({"canaryImage": V2, "canaryWeight": "0"})
        walk.stack.up(message="deploy canary").check()

    @pytest.mark.parametrize("weight", ["5", "25", "50", "100"])
    def test_3_step(self, walk: Walked, weight: str) -> None:
        walk.phases.append((f"step to {weight}%", time.monotonic()))
        out = canary(walk.stack, "step", "--yes").check().stdout
        assert f"-> {weight}%" in out, out
        time.sleep(1)

    def test_4_promote(self, walk: Walked) -> None:
        walk.phases.append(("promote 1.1.0", time.monotonic()))
        canary(walk.stack, "promote", "--yes").check()
        time.sleep(1)

    def test_5_second_canary(self, walk: Walked) -> None:
        walk.phases.append(("deploy canary 1.2.0", time.monotonic()))
        walk.stack.set_config({"canaryImage": V3, "canaryWeight": "0"})
        walk.stack.up(message="second canary").check()
        for weight in ("5", "25"):
            walk.phases.append((f"step to {weight}%", time.monotonic()))
            out = canary(walk.stack, "step", "--yes").check().stdout
            assert f"-> {weight}%" in out, out
            time.sleep(1)

    def test_6_rollback(self, walk: Walked) -> None:
        assert walk.stream is not None, "test_1 starts the load"
        started = time.monotonic()
        walk.phases.append(("rollback", started))
        out = canary(walk.stack, "rollback", "--yes").check().stdout
        print(f"\n{out.strip().splitlines()[-1]}")
        stream = walk.stream

        def stable_again() -> bool:
            after = [s.result.version for s in stream.snapshot() if s.sent > started]
            return len(after) >= SAFE_RUN and set(after[-SAFE_RUN:]) == {"1.1.0"}

        wait_for(
            stable_again, timeout=60, what=f"{SAFE_RUN} answers in a row from the stable after the rollback"
        )
        last = max(
            (s.sent for s in stream.snapshot() if s.sent > started and s.result.version == "1.2.0"),
            default=started,
        )
        # Time-to-safe through the data plane, measured (docs/gateways.md), not asserted.
        print(
            f"{walk.gateway_class}: the last canary answer came {last - started:.2f}s after the rollback "
            "began"
        )

    def test_7_not_one_request_failed(self, bed: dict[str, str], walk: Walked) -> None:
        assert walk.stream is not None, "test_1 starts the load"
        seen = walk.stream.stop()
        walk.stream = None
        ends = [t for _, t in walk.phases[1:]] + [float("inf")]
        print(f"\nload through the walk at {WALK_RATE:.0f}/s:")
        failed_seconds: Counter[int] = Counter()
        leaked: dict[str, int] = {}
        start = walk.phases[0][1]
        for (name, begin), end in zip(walk.phases, ends, strict=True):
            part = [s for s in seen if begin <= s.sent < end]
            tally = TrafficCounter().extend([s.result for s in part]).tally()
            for s in part:
                if not s.result.ok:
                    failed_seconds[int(s.sent - start)] += 1
            print(f"  {name:22} {tally.sent:5} sent  {tally.by_version}  failures {tally.failures}")
            if name.startswith("deploy canary "):
                # The route is at canary 0% all through this phase and no request carries the header.
                leaked[name] = tally.by_version.get(name.removeprefix("deploy canary "), 0)
        whole = TrafficCounter().extend([s.result for s in seen]).tally()
        gaps = max(b.sent - a.sent for a, b in itertools.pairwise(seen))
        seconds = seen[-1].sent - seen[0].sent
        print(
            f"  total {whole.sent} in {seconds:.0f}s (longest gap between starts {gaps:.2f}s), "
            f"failures {whole.failures}, failures per second {dict(sorted(failed_seconds.items()))}"
        )
        problems = []
        if whole.failed:
            problems.append(
                f"{whole.failed} requests failed: {whole.failures}, per second "
                f"{dict(sorted(failed_seconds.items()))}; what the Gateway's Envoy logged for them: "
                f"{envoy_failures(bed, walk.namespace)}"
            )
        if set(leaked.values()) != {0}:
            problems.append(f"canary answers while the route sent it 0% and no header was sent: {leaked}")
        assert not problems, "\n".join(problems)
        # The load really ran throughout: close to its rate, and no stall as long as a phase change. A
        # stall of a second or so is the generator starved on a loaded CI machine (seen: 1.19 s), not
        # the product; every phase lasts well over WALK_STALL_LIMIT, so none can pass unobserved.
        assert whole.sent >= 0.8 * WALK_RATE * seconds, (whole.sent, seconds)
        assert gaps < WALK_STALL_LIMIT, (gaps, WALK_STALL_LIMIT)
        assert set(whole.by_version) == {"1.0.0", "1.1.0", "1.2.0"}, whole.by_version
