"""The side-by-side bench's scenario drivers and figures (issue 26): what each tool is asked to do, and what
a run's observations mean. Nothing here builds, starts or applies anything: the observations are made up
where a run would have watched them."""

import json
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.measure import GroupSampler, Tracked, group_usage
from bench.peers import bench, drivers, manifests, scenario
from bench.peers.scenario import Answer, Observed


def test_every_tool_walks_the_same_plan_with_the_same_checks() -> None:
    """Flagger's stepWeights, Argo's steps and our canaryPlan are one plan; one interval; one threshold."""
    flagger = manifests.canary("ns", "http://127.0.0.1:1/rollback/check")["spec"]["analysis"]
    assert flagger["stepWeights"] == [5, 25, 50, 100]
    assert flagger["interval"] == "10s" and flagger["threshold"] == 2
    metrics = {m["name"]: m for m in flagger["metrics"]}
    assert metrics["request-success-rate"]["thresholdRange"] == {"min": 99}
    assert metrics["request-duration"]["thresholdRange"] == {"max": 500}
    assert {m["interval"] for m in metrics.values()} == {"30s"}
    assert flagger["webhooks"] == [
        {"name": "manual-abort", "type": "rollback", "url": "http://127.0.0.1:1/rollback/check"}
    ]

    steps = manifests.argo_steps()
    assert [s["setWeight"] for s in steps[0::2]] == [5, 25, 50, 100]
    assert all(s == {"pause": {"duration": "10s"}} for s in steps[1::2])
    template = manifests.analysis_template("peer-argo", "http://127.0.0.1:29090")["spec"]
    for metric in template["metrics"]:
        assert metric["interval"] == metric["initialDelay"] == "10s"
        assert metric["failureLimit"] == 1  # fails at the second failed measurement, as threshold 2
        query = metric["provider"]["prometheus"]["query"]
        assert 'namespace="peer-argo",pod=~"podinfo-{{args.hash}}-.*"' in query and "[30s]" in query
    conditions = [m["successCondition"] for m in template["metrics"]]
    assert conditions == ["result[0] >= 99", "result[0] <= 500"]

    argo = manifests.argo_objects("peer-argo", steps, "http://127.0.0.1:29090")
    kinds = [o["kind"] for o in argo]
    assert kinds == ["Gateway", "Service", "Service", "HTTPRoute", "AnalysisTemplate", "Rollout"]
    analysis = argo[-1]["spec"]["strategy"]["canary"]["analysis"]
    assert analysis["templates"] == [{"templateName": manifests.ANALYSIS_TEMPLATE}]
    assert analysis["args"] == [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    # without Prometheus (the smoke) there is no analysis
    assert "analysis" not in manifests.argo_objects("x", steps)[-1]["spec"]["strategy"]["canary"]


def test_our_stack_asks_for_the_same_plan_and_thresholds(tmp_path: Path) -> None:
    """OursDriver's stack file, read as Pulumi would: the plan, the interval, only the absolute thresholds
    the peers have, rollback at the second failed check."""
    ours = drivers.OursDriver.__new__(drivers.OursDriver)
    ours.app, ours.namespace, ours.host = "podinfo", drivers.OURS_NS, "gateway-canary.peers.example"
    ours.stack, ours.project = "s", tmp_path
    ours.write_config("http://127.0.0.1:29090")
    config = yaml.safe_load((tmp_path / "Pulumi.s.yaml").read_text())["config"]
    assert config["gateway-canary:canaryPlan"] == [5, 25, 50, 100]
    assert config["gateway-canary:stableReplicas"] == 2
    analysis = config["gateway-canary:analysis"]
    assert analysis["interval"] == 10 and analysis["window"] == 30 and analysis["failureLimit"] == 1
    assert analysis["successRate"] == {"min": 99, "maxDrop": None}
    assert analysis["latencyP99"] == {"maxMs": 500, "maxIncreaseMs": None}
    assert analysis["prometheusUrl"] == "http://127.0.0.1:29090"


def test_the_config_passes_the_programs_own_validation(tmp_path: Path) -> None:
    """The stack file the driver writes is one the CLI accepts (parse_config of the program, unchanged)."""
    from canary.ops.core.settings import parse_ops_settings
    from tests.unit.helpers import project_defaults

    ours = drivers.OursDriver.__new__(drivers.OursDriver)
    ours.app, ours.namespace, ours.host = "podinfo", drivers.OURS_NS, "gateway-canary.peers.example"
    ours.stack, ours.project = "s", tmp_path
    ours.write_config("http://127.0.0.1:29090")
    raw = yaml.safe_load((tmp_path / "Pulumi.s.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: json.dumps(v) if not isinstance(v, str) else v for k, v in raw.items()}
    settings = parse_ops_settings(values, project_defaults())
    assert [int(w) for w in settings.canary_plan] == [5, 25, 50, 100]
    assert settings.analysis.failure_limit == 1 and settings.analysis.min_requests == 1


def test_canary_percent_reads_the_first_rule() -> None:
    route = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "podinfo-primary", "weight": 75},
                        {"name": "podinfo-canary", "weight": 25},
                    ]
                },
                {"backendRefs": [{"name": "podinfo-canary", "weight": 100}]},  # our header rule
            ]
        }
    }
    assert scenario.canary_percent(route) == 25
    assert (
        scenario.canary_percent({"spec": {"rules": [{"backendRefs": [{"name": "a-canary"}, {"name": "a"}]}]}})
        == 50
    )
    assert scenario.canary_percent({"spec": {"rules": [{"backendRefs": [{"name": "podinfo"}]}]}}) is None
    assert scenario.canary_percent({}) is None


def observed(name: str, **kw: Any) -> Observed:
    given: dict[str, Any] = {"answers": [], "route": [], "canary_pods": [], **kw}
    return Observed(tool=scenario.OURS, scenario=name, start=100.0, done=150.0, **given)


def test_faulty_figures_time_from_the_canarys_first_request() -> None:
    faulty = scenario.version_of(scenario.FAULTY_IMAGE)
    answers = [
        Answer(99.0, 99.01, "6.7.0", True),  # before the release
        Answer(104.0, 104.01, None, False),  # the canary's first request: an error
        Answer(105.0, 105.01, faulty, True),
        Answer(110.0, 110.01, "6.7.0", True),
        Answer(121.0, 121.5, faulty, True),
        Answer(121.2, 121.6, None, False),  # its last answer: an error
        Answer(130.0, 130.01, "6.7.0", True),
    ]
    route = [(100.0, 0.0), (103.5, 5.0), (110.0, 5.0), (120.0, 0.0)]
    pod = {"metadata": {"name": "c"}}
    pods = [(101.0, {"type": "ADDED", "object": pod}), (131.0, {"type": "DELETED", "object": pod})]
    obs = observed("faulty", answers=answers, route=route, canary_pods=pods, cpu_seconds=2.0, peak_mib=9.0)
    got = scenario.figures(obs)
    assert got["toZeroApiserver"] == 120.0 - 104.0  # not the 0% before the first request
    assert got["toZeroEnvoy"] == 121.6 - 104.0
    assert got["failedRequests"] == 2 and got["requests"] == 7
    assert got["canaryPodSeconds"] == 30.0  # alive 101 -> 131, inside [start, last answer + tail]
    assert (got["cpuSeconds"], got["peakMiB"]) == (2.0, 9.0)
    assert got["routeTimeline"] == [[0.0, 0.0], [3.5, 5.0], [20.0, 0.0]]


def test_faulty_figures_are_none_when_the_canary_never_answered() -> None:
    got = scenario.figures(observed("faulty", answers=[Answer(101.0, 101.1, "6.7.0", True)]))
    assert got["toZeroApiserver"] is None and got["toZeroEnvoy"] is None


def test_healthy_and_abort_figures() -> None:
    healthy = scenario.figures(observed("healthy", peak_requests_per_pod=27.5, outcome="promoted"))
    assert healthy["wallSeconds"] == 50.0 and healthy["peakRequestsPerPod"] == 27.5
    assert healthy["outcome"] == "promoted"
    canary = scenario.version_of(scenario.CANARY_IMAGE)
    answers = [Answer(130.0, 130.2, canary, True), Answer(133.0, 133.3, canary, True)]
    route = [(120.0, 50.0), (134.0, 0.0)]
    abort = scenario.figures(observed("abort", abort=131.0, answers=answers, route=route))
    assert abort["safeApiserver"] == 3.0 and abort["safeEnvoy"] == pytest.approx(2.3)
    late = scenario.figures(observed("abort", abort=140.0, answers=answers, route=route))
    assert late["safeEnvoy"] == 0.0 and late["safeApiserver"] is None  # never back at 0 after it


def test_summary_table_has_every_row_and_ours_over_the_best_peer() -> None:
    runs = []
    for tool, wall in (
        (scenario.OURS, [70.0, 74.0, 90.0]),
        (scenario.FLAGGER, [77.0] * 3),
        (scenario.ARGO, [40.0, 39.0, 41.0]),
    ):
        for value in wall:
            runs.append(
                {
                    "tool": tool,
                    "scenario": "healthy",
                    "figures": {
                        "wallSeconds": value,
                        "failedRequests": 0,
                        "cpuSeconds": 1.0,
                        "peakMiB": value,
                    },
                }
            )
    summary = scenario.summarize(runs)
    assert summary[scenario.OURS]["healthy.wallSeconds"] == {
        "median": 74.0,
        "n": 3,
        "values": [70.0, 74.0, 90.0],
    }
    assert summary[scenario.OURS]["all.peakMiB"]["median"] == 90.0  # memory: the largest, not the median
    whole = {
        t: {"cpuSeconds": c, "peakMiB": 10.0, "benchSeconds": 600.0}
        for t, c in ((scenario.OURS, 60.0), (scenario.FLAGGER, 30.0), (scenario.ARGO, 120.0))
    }
    footprint = {
        scenario.OURS: {"crds": 0, "crdBytes": 0, "controllers": 0, "clusterRoleRules": 0},
        scenario.FLAGGER: {"crds": 3, "crdBytes": 1, "controllers": 1, "clusterRoleRules": 18},
        scenario.ARGO: {"crds": 5, "crdBytes": 2, "controllers": 1, "clusterRoleRules": 22},
    }
    text = scenario.table(summary, whole, footprint)
    lines = text.splitlines()
    assert len(lines) == 2 + len(scenario.ROWS) + 2 + 4
    assert "Argo Rollouts (with our stand-in Gateway API plugin)" in lines[0]
    healthy = next(line for line in lines if line.startswith("| healthy canary: change"))
    assert healthy.endswith("| 74.0s (3) | 77.0s (3) | 40.0s (3) | 1.85x |")
    assert next(line for line in lines if "whole bench (10 min): CPU" in line).endswith("| 2.00x |")
    assert next(line for line in lines if "CustomResourceDefinitions" in line).endswith(
        "| 0 | 3 | 5 | 0.00x |"
    )
    assert "| n/a (0) |" in next(line for line in lines if line.startswith("| faulty canary: first"))
    spread = scenario.details(summary).splitlines()
    assert next(line for line in spread if line.startswith("| healthy canary: change")).endswith(
        "| 70.0s, 74.0s, 90.0s | 77.0s, 77.0s, 77.0s | 40.0s, 39.0s, 41.0s |"
    )


def test_sub_second_figures_are_printed_in_milliseconds() -> None:
    assert scenario._fmt(0.093, "s") == "93 ms" and scenario._fmt(6.96, "s") == "7.0s"
    assert scenario._fmt(None, "s") == "n/a" and scenario._fmt(21, "") == "21"


def test_ratio() -> None:
    assert scenario.ratio(3.0, 2.0) == "1.50x"
    assert scenario.ratio(0.0, 0.0) == "="
    assert scenario.ratio(1.0, 0.0) == "n/a (peer 0)"
    assert scenario.ratio(None, 1.0) == "n/a"


def test_runs_are_interleaved_and_the_first_tool_rotates() -> None:
    order = scenario.interleaved(3, scenario.TOOLS, ["faulty", "healthy"])
    assert len(order) == 3 * 3 * 2
    firsts = [tools[1] for tools in order[0::6]]
    assert firsts == [scenario.OURS, scenario.FLAGGER, scenario.ARGO]
    assert order[:3] == [
        (0, scenario.OURS, "faulty"),
        (0, scenario.FLAGGER, "faulty"),
        (0, scenario.ARGO, "faulty"),
    ]
    for repeat in range(3):
        mine = [(t, s) for r, t, s in order if r == repeat]
        assert sorted(mine) == sorted((t, s) for t in scenario.TOOLS for s in ["faulty", "healthy"])


def test_the_flagger_rollback_gate_answers_2xx_only_once_opened() -> None:
    """Flagger treats a 2xx of a rollback webhook as "roll back" (scheduler_hooks.go, callWebhook > 202)."""
    gate = drivers.RollbackGate(0)
    port = gate.server.server_address[1]
    url = f"http://127.0.0.1:{port}/rollback/check"
    try:

        def post() -> int:
            request = urllib.request.Request(url, data=b'{"name": "podinfo"}', method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as err:
                return err.code

        assert post() == 403
        gate.open()
        assert post() == 200
        gate.close()
        assert post() == 403
    finally:
        gate.stop()


def test_footprint_reads_crds_and_cluster_roles(tmp_path: Path) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    role = {"kind": "ClusterRole", "rules": [{"apiGroups": [""]}, {"apiGroups": ["apps"]}]}
    (tmp_path / "flagger").mkdir()
    (tmp_path / "flagger" / "crd.yaml").write_text(yaml.safe_dump_all([crd, crd, crd]))
    (tmp_path / "flagger" / "rbac.yaml").write_text(yaml.safe_dump_all([{"kind": "ServiceAccount"}, role]))
    (tmp_path / "argo-rollouts").mkdir()
    from bench.peers.controllers import ARGO_CRDS

    for name in ARGO_CRDS:
        (tmp_path / "argo-rollouts" / name).write_text(yaml.safe_dump(crd))
    (tmp_path / "argo-rollouts" / "rbac.yaml").write_text(yaml.safe_dump(role))
    got = bench.footprint(tmp_path)
    assert got[scenario.OURS] == {"crds": 0, "crdBytes": 0, "controllers": 0, "clusterRoleRules": 0}
    assert got[scenario.FLAGGER]["crds"] == 3 and got[scenario.FLAGGER]["clusterRoleRules"] == 2
    assert got[scenario.ARGO]["crds"] == 5 and got[scenario.ARGO]["controllers"] == 1


def test_tracked_counts_the_cpu_of_the_whole_tree_and_interrupt_reaches_its_group() -> None:
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    run = Tracked(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}])"],
        {},
    ).wait(60)
    assert run.code == 0 and run.cpu >= 0.3  # the grandchild's CPU, reaped by its parent
    sleeper = Tracked([sys.executable, "-c", "import time; time.sleep(60)"], {}, new_session=True)
    sleeper.interrupt(signal.SIGTERM)
    assert sleeper.wait(30).code == -signal.SIGTERM


def test_group_sampler_measures_a_process_group() -> None:
    import os
    import subprocess

    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\ntime.sleep(30)\n"
    proc = subprocess.Popen([sys.executable, "-c", busy], start_new_session=True)
    try:
        sampler = GroupSampler(proc.pid, every=0.05).start()
        deadline = __import__("time").monotonic() + 30
        while group_usage(proc.pid)[0] < 0.4 and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
        sampler.stop()
        assert sampler.cpu_seconds >= 0.3 and sampler.peak_mib > 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_report_prints_the_tables_of_a_results_file(tmp_path: Path) -> None:
    runs = [
        {"tool": tool, "scenario": "abort", "figures": {"safeApiserver": value, "cpuSeconds": 1.0}}
        for tool, value in ((scenario.OURS, 0.13), (scenario.FLAGGER, 6.96), (scenario.ARGO, 0.09))
    ]
    path = tmp_path / "peers.json"
    path.write_text(json.dumps({"summary": scenario.summarize(runs)}))
    text = bench.report(path)
    assert (
        "| abort at 50%: abort -> route at 0% (apiserver) | 130 ms (1) | 7.0s (1) | 90 ms (1) | 1.44x |"
        in text
    )
    assert "| abort at 50%: abort -> route at 0% (apiserver) | 130 ms | 7.0s | 90 ms |" in text


class FakeArgo(drivers.ArgoDriver):
    """ArgoDriver reading a given Rollout status instead of the apiserver."""

    def __init__(self, stable_hash: str) -> None:
        self.stable_hash = stable_hash
        self.seen: dict[str, Any] = {}

    def status(self) -> dict[str, Any]:
        return self.seen


def test_argo_outcome_waits_for_the_new_revision_then_reads_promotion_or_abort() -> None:
    argo = FakeArgo("old")
    argo.seen = {"phase": "Healthy", "stableRS": "old", "currentPodHash": "old"}
    assert argo.outcome() is None  # right after the patch: the controller has not seen it yet
    argo.seen = {"phase": "Paused", "stableRS": "old", "currentPodHash": "new"}
    assert argo.outcome() is None
    argo.seen = {"phase": "Progressing", "stableRS": "old", "currentPodHash": "new", "abort": True}
    assert argo.outcome() is None  # aborting, not yet Degraded
    argo.seen = {"phase": "Degraded", "stableRS": "old", "currentPodHash": "new", "abort": True}
    assert argo.outcome() == "aborted"
    argo.seen = {"phase": "Healthy", "stableRS": "new", "currentPodHash": "new"}
    assert argo.outcome() == "promoted"


def test_flagger_outcome_is_its_canarys_final_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    flagger = drivers.FlaggerDriver.__new__(drivers.FlaggerDriver)
    for phase, want in (
        ("Initialized", None),
        ("Progressing", None),
        ("Promoting", None),
        ("Succeeded", "promoted"),
        ("Failed", "rolled back"),
    ):
        monkeypatch.setattr(flagger, "phase", lambda p=phase: p)
        assert flagger.outcome() == want, phase


def test_our_outcome_is_read_from_the_commands_exit_codes() -> None:
    ours = drivers.OursDriver.__new__(drivers.OursDriver)
    ours._thread, ours._error = None, ""
    assert ours.outcome() is None  # not begun
    import threading

    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    ours._thread = done
    for code, want in (
        (0, "promoted"),
        (1, "rolled back"),
        (100, "aborted"),
        (101, "exit 101"),
        (5, "exit 5"),
    ):
        ours._exit = code
        assert ours.outcome() == want, code
    ours._error = "bench: deploy canary failed (exit 1)"
    assert ours.outcome() == "failed: bench: deploy canary failed (exit 1)"
