"""The bench's pure parts: process roles, watch parsing, the kubectl patch, fits, verdicts and tables."""

import json
import subprocess
import sys
from typing import Any

import pytest

from bench import report
from bench.__main__ import derive, markdown, parse_args
from bench.measure import ENGINE, LANGUAGE_HOST, PROGRAM, role, summary
from bench.program import parse_importtime, top_packages
from bench.rollback import rollback_patch, rotated
from canary.ops.kube.kubectl import json_stream


def test_roles_from_command_lines() -> None:
    assert role(["/repo/.tools/bin/pulumi", "up", "--yes"]) == ENGINE
    assert role(["/repo/.tools/bin/pulumi-language-python", "127.0.0.1:4000"]) == LANGUAGE_HOST
    program = [
        "/repo/.venv/bin/python",
        "-u",
        "/repo/.tools/bin/pulumi-language-python-exec",
        "--monitor",
        "x",
    ]
    assert role(program) == PROGRAM
    assert role(["/home/u/.pulumi/plugins/resource-kubernetes/pulumi-resource-kubernetes", "x"]) == (
        "pulumi-resource-kubernetes"
    )
    assert role(["/repo/.venv/bin/python3", "/repo/.venv/bin/canary", "rollback"]) == "python"
    assert role(["kubectl", "get"]) == "kubectl"
    assert role([]) == "?"


def test_json_stream_reads_pretty_printed_documents_across_lines() -> None:
    lines = ["{\n", '  "a": 1\n', "}\n", '{"b": {"c": [1,\n', "2]}}\n", "[1]\n"]
    assert list(json_stream(lines)) == [{"a": 1}, {"b": {"c": [1, 2]}}]


def test_summary() -> None:
    assert summary([3.0, 1.0, 2.0]) == {"n": 3, "min": 1.0, "median": 2.0, "max": 3.0}
    assert summary([]) == {"n": 0, "min": None, "median": None, "max": None}


def route(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"rules": rules}}


HEADER_RULE = {
    "matches": [{"headers": [{"name": "x-canary", "value": "true"}]}],
    "backendRefs": [{"name": "web-canary", "weight": 1}],
}


def test_rollback_patch_targets_the_split_rule_by_live_indices() -> None:
    split = {"backendRefs": [{"name": "web-stable", "weight": 50}, {"name": "web-canary", "weight": 50}]}
    assert rollback_patch(route([HEADER_RULE, split]), "web") == [
        {"op": "replace", "path": "/spec/rules/1/backendRefs/0/weight", "value": 100},
        {"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 0},
    ]
    swapped = {"backendRefs": [{"name": "web-canary", "weight": 5}, {"name": "web-stable", "weight": 95}]}
    assert [op["path"] for op in rollback_patch(route([swapped]), "web")] == [
        "/spec/rules/0/backendRefs/1/weight",
        "/spec/rules/0/backendRefs/0/weight",
    ]


def test_rollback_patch_needs_a_split_rule() -> None:
    with pytest.raises(ValueError, match="no split rule"):
        rollback_patch(route([HEADER_RULE, {"backendRefs": [{"name": "web-stable"}]}]), "web")


def test_rotated() -> None:
    assert rotated(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotated(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert rotated(["a", "b", "c"], 5) == ["c", "a", "b"]
    assert rotated([], 3) == []


def test_linear_fit_recovers_a_line() -> None:
    fit = report.linear_fit([1, 10, 50], [2.0 + 0.1 * x for x in (1, 10, 50)])
    assert fit is not None
    assert fit["slope"] == pytest.approx(0.1)
    assert fit["intercept"] == pytest.approx(2.0)
    assert fit["r2"] == pytest.approx(1.0)
    assert report.linear_fit([1], [1.0]) is None
    assert report.linear_fit([1, 2], [3.0, 3.0]) == {"slope": 0.0, "intercept": 3.0, "r2": 1.0}


@pytest.mark.parametrize(
    ("values", "verdict"),
    [
        ([2.0, 2.1, 2.3], "flat"),
        ([2.0, 2.9, 6.9], "linear"),
        ([2.0, 2.2, 12.0], "superlinear"),
        ([2.0, 6.5, 8.0], "sublinear"),
    ],
)
def test_growth_verdicts(values: list[float], verdict: str) -> None:
    assert report.growth([1, 10, 50], values) == verdict


def test_growth_needs_sizes() -> None:
    assert report.growth([1], [1.0]) == "n/a (one size)"
    assert report.growth([1, 10], [1.0, 5.0]) == "n/a (two sizes)"
    assert report.growth([1, 10], [1.0, 1.1]) == "flat"


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   _io
import time:      2000 |       5000 |     grpc._cython.cygrpc
import time:      1000 |       6000 |   grpc
import time:       500 |      10000 | pulumi
not an import line
"""


def test_parse_importtime_and_packages() -> None:
    modules = parse_importtime(IMPORTTIME)
    assert [m["module"] for m in modules] == ["_io", "grpc._cython.cygrpc", "grpc", "pulumi"]
    assert [m["depth"] for m in modules] == [1, 2, 1, 0]
    assert modules[1]["self"] == pytest.approx(0.002)
    assert modules[3]["cumulative"] == pytest.approx(0.01)
    assert top_packages(modules, 2) == [
        {"package": "grpc", "self": pytest.approx(0.003)},
        {"package": "pulumi", "self": pytest.approx(0.0005)},
    ]


def test_table_escapes_pipes() -> None:
    assert report.table(["a", "b"], [["x|y", "1"]]) == "| a | b |\n|---|---|\n| x\\|y | 1 |"


def raw_results() -> dict[str, Any]:
    """Made-up runs of every section, shaped as the bench records them."""
    rollback_runs = []
    for r in range(3):
        for method, safe in (("kubectl", 0.2), ("canary", 3.0 + r)):
            rollback_runs.append(
                {"method": method, "round": r, "safe": safe, "exited": safe + 1, "reset": 2.0,
                 "resetRefresh": method == "canary"}
            )  # fmt: skip
    step_runs = [
        {"variant": "skip-preview", "round": r, "step": 2.2, "noop": 2.0, "stepChanges": {"update": 1},
         "stepPeakMiB": {ENGINE: 100.0}, "noopPeakMiB": {}}
        for r in range(2)
    ]  # fmt: skip
    scale_runs = [
        {"op": op, "size": size, "rep": 0, "seconds": base + per * size,
         "peakMiB": {ENGINE: 100.0 + size, report.PROVIDER: 80.0 + 2 * size},
         "cpu": 1.0 + 0.1 * size, "cpuByRole": {PROGRAM: 0.5 + 0.04 * size}}
        for op, base, per in (("preview", 2.0, 0.05), ("up-noop", 2.0, 0.06))
        for size in (1, 10, 50)
    ]  # fmt: skip
    return {
        "rollback": {
            "methods": {"kubectl": "kubectl patch", "canary": "canary rollback --yes"},
            "runs": rollback_runs,
        },
        "step": {"variants": {"skip-preview": "pulumi up --yes --skip-preview"}, "runs": step_runs},
        "scaling": {"sizes": [1, 10, 50], "reps": 1, "runs": scale_runs},
        "program": {
            "startup": {"python -c pass": [0.05, 0.04]},
            "mocks": [
                {"program": "main", "import": 0.3, "register": 0.5, "resources": 8},
                {"program": "scale", "size": 1, "import": 0.3, "register": 0.5, "resources": 8},
                {"program": "scale", "size": 10, "import": 0.3, "register": 0.65, "resources": 71},
            ],
            "floor": [
                {"mode": "empty", "op": "up-noop", "rep": 0, "seconds": 1.0, "peakMiB": {ENGINE: 90.0}},
                {"mode": "empty", "op": "preview", "rep": 0, "seconds": 0.9, "peakMiB": {}},
            ],
        },
    }


def test_derived_figures_and_goals() -> None:
    derived = derive(raw_results())
    methods = derived["rollback"]["methods"]
    assert methods["kubectl"]["safe"]["median"] == pytest.approx(0.2)
    assert methods["canary"]["ratioToKubectl"] == pytest.approx(20.0)
    assert derived["rollback"]["resetUpRefresh"]["n"] == 3
    step = derived["step"]["variants"]["skip-preview"]
    assert step["ratio"] == pytest.approx(1.1)
    assert step["touched"] == [(("update", 1),)]
    preview = derived["scaling"]["ops"]["preview"]
    assert preview["fit"]["slope"] == pytest.approx(0.05)
    assert preview["growth"] == "linear"
    assert preview["largestOverSmallest"] == pytest.approx(4.5 / 2.05)
    assert preview["memoryFit"][report.PROVIDER]["slope"] == pytest.approx(2.0)
    assert preview["cpuFit"]["all"]["slope"] == pytest.approx(0.1)
    assert preview["cpuFit"][PROGRAM]["slope"] == pytest.approx(0.04)
    assert derived["program"]["mockScaleFit"]["slope"] == pytest.approx(0.15 / 9)
    goals = {g["target"]: g for g in derived["goals"]}
    assert goals[report.ROLLBACK_GOAL]["met"] is False
    assert goals[report.STEP_GOAL]["met"] is True
    assert goals[report.PREVIEW_GOAL]["met"] is True


def test_markdown_has_every_section() -> None:
    results = {
        "args": {"quick": True},
        "machine": "2 cores",
        "versions": {"pulumi": "v3"},
        "seconds": 10.0,
        "loadAfter": 1.0,
        "derived": derive(raw_results()),
    }
    text = markdown(results)
    for heading in (
        "QUICK RUN",
        "## Goals",
        "## Time-to-safe",
        "## Cost of one step",
        "## Scaling",
        "## Program",
    ):
        assert heading in text
    assert "| canary | `canary rollback --yes` | 3 | 3.00 / 4.00 / 5.00 | 5.00s | 20.00x |" in text
    assert "| preview | Python program | 0.54 | 0.90 | 2.50 | 40 |" in text


def test_arguments_quick_defaults_and_overrides() -> None:
    quick = parse_args(["--quick"])
    assert (quick.rounds, quick.step_rounds, quick.sizes, quick.reps) == (2, 1, [1, 10], 1)
    full = parse_args([])
    assert (full.rounds, full.step_rounds, full.sizes, full.reps) == (10, 3, [1, 10, 50], 2)
    custom = parse_args(["--quick", "--rounds", "4", "--sizes", "1,5", "--only", "scale"])
    assert (custom.rounds, custom.sizes, custom.only) == (4, [1, 5], ["scale"])
    with pytest.raises(SystemExit):
        parse_args(["--only", "nothing"])


def test_light_k8s_experiment_registers_the_same_resources() -> None:
    """The experiment the bench measures must be a pure speed-up: under mocks, the program with the plain
    registrations sends the engine the same types, names and inputs as with the typed classes."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-m", "bench.mockrun", "main", *light],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
        )
        for light in ([], ["--light"])
    ]
    assert runs[0]["resources"] == runs[1]["resources"] == 8
    assert runs[0]["digest"] == runs[1]["digest"]
    assert (runs[0]["light"], runs[1]["light"]) == (False, True)


def span(name: str, start: float, end: float, service: str = "pulumi-cli") -> Any:
    from bench.trace import Span

    return Span(service, name, 100 + start, 100 + end)


def test_trace_phases_of_an_update() -> None:
    from bench.trace import phases, side_by_side

    spans = [
        span("pulumi", 0.0, 2.0),
        span("time-to-first-print", 0.0, 0.25),
        span("pulumirpc.LanguageRuntime/Run", 0.3, 1.9),
        span("pulumirpc.ResourceMonitor/GetDeploymentInfo", 0.5, 0.51),
        span("pulumirpc.ResourceMonitor/RegisterResource", 0.9, 1.0),
        span("pulumirpc.ResourceMonitor/RegisterResource", 1.1, 1.6),
        span("newPlugin", 0.95, 1.05),
        span("pulumirpc.ResourceProvider/Configure", 1.05, 1.2),
        span("pulumirpc.ResourceProvider/Check", 1.2, 1.25),
        span("pulumirpc.ResourceProvider/Check", 1.3, 1.32),
        span("pulumirpc.ResourceProvider/Update", 1.4, 1.5),
        span("/pulumirpc.ResourceProvider/Update", 1.41, 1.49, service="pulumi-resource-provider"),
    ]
    found = {p["phase"]: round(p["seconds"], 3) for p in phases(spans)}
    assert found == {
        "CLI start-up, until its first output": 0.25,
        "state read, plugins, until the program starts": 0.05,
        "Python program (language runtime Run)": 1.6,
        "- interpreter start, import pulumi": 0.2,
        "- program imports and body, until its first registration": 0.4,
        "- registrations, steps and provider calls": 0.7,
        "- - provider start and Configure": 0.25,
        "- - provider Check x2 (sum of calls)": 0.07,
        "- - provider Update x1 (sum of calls)": 0.1,
        "- program exit": 0.3,
        "after the program: state write, summary": 0.1,
        "total (traced)": 2.0,
    }
    assert phases([]) == []
    text = side_by_side({"a": phases(spans), "b": phases(spans[:3])})
    assert "| - program exit | 0.30 | - |" in text


def test_trace_reads_otlp_json_lines() -> None:
    from bench.trace import read_spans

    line = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "pulumi-cli"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "name": "pulumi",
                                    "startTimeUnixNano": "1000000000",
                                    "endTimeUnixNano": "3500000000",
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )
    (only,) = read_spans([line, ""])
    assert (only.service, only.name, only.seconds) == ("pulumi-cli", "pulumi", 2.5)


def test_breakglass_patch_checks_names_before_it_writes(tmp_path: Any) -> None:
    from bench.experiments.breakglass import patch_ops, settings

    assert patch_ops("web", 1) == [
        {"op": "test", "path": "/spec/rules/1/backendRefs/0/name", "value": "web-stable"},
        {"op": "test", "path": "/spec/rules/1/backendRefs/1/name", "value": "web-canary"},
        {"op": "replace", "path": "/spec/rules/1/backendRefs/0/weight", "value": 100},
        {"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 0},
    ]
    (tmp_path / "Pulumi.yaml").write_text(
        "name: demo\nconfig:\n  appName: {type: string, default: podinfo}\n"
        "  canaryHeader: {type: string, default: 'x-canary: true'}\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  demo:appName: web\n  other:key: 1\n")
    assert settings(tmp_path, "dev") == ("demo", {"appName": "web", "canaryHeader": "x-canary: true"})
    assert settings(tmp_path, "missing") == ("demo", {"appName": "podinfo", "canaryHeader": "x-canary: true"})


def test_light_k8s_falls_back_to_the_real_module_for_other_kinds() -> None:
    """Kinds the experiment does not replace come from the real module; the replaced ones stay replaced."""
    code = (
        "import bench.experiments.light_k8s\n"
        "import pulumi_kubernetes as k\n"
        "print(k.core.v1.Secret.__module__, k.core.v1.Service.__module__, k.apps.v1.Deployment.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == [
        "pulumi_kubernetes.core.v1.Secret",
        "bench.experiments.light_k8s",
        "bench.experiments.light_k8s",
    ]


def test_status_figures_and_goal() -> None:
    from bench import status

    raw = {
        "methods": {key: key for key in status.METHODS},
        "runs": [
            {"method": m, "round": r, "seconds": s}
            for r, row in enumerate([(0.1, 0.4, 3.0), (0.12, 0.5, 3.4), (0.08, 0.6, 2.8)])
            for m, s in zip(status.METHODS, row, strict=True)
        ],
    }
    derived = {"status": status.derive(raw)}
    assert derived["status"]["methods"]["canary"]["seconds"]["median"] == pytest.approx(0.5)
    assert derived["status"]["methods"]["canary-no-fast"]["vsKubectl"] == pytest.approx(30.0)
    (goal,) = [g for g in report.goals(derived) if g["target"] == report.STATUS_GOAL]
    assert goal["met"] is True and goal["detail"] == "0.50s (`--no-fast`: 3.00s)"
    assert "| `canary` (canary) | 0.50s (0.40-0.60) | 5.0x |" in status.markdown(derived["status"])


def pod_event(kind: str, name: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name}}}


def test_pod_seconds_integrate_the_pods_that_exist() -> None:
    """Two pods from the start, a third for 2 s of a 10 s walk, one deleted at 6 s: 2*2 + 3*2 + 2*4 + 1*2."""
    from bench.measure import pod_seconds

    events = [
        (0.5, pod_event("ADDED", "a")),
        (0.6, pod_event("ADDED", "b")),
        (3.0, pod_event("ADDED", "c")),
        (4.0, pod_event("MODIFIED", "c")),
        (5.0, pod_event("DELETED", "c")),
        (9.0, pod_event("DELETED", "b")),
        (12.0, pod_event("DELETED", "a")),
    ]
    assert pod_seconds(events, 1.0, 11.0) == 2 * 2 + 3 * 2 + 2 * 4 + 1 * 2


def test_capacity_figures_per_mode_and_the_extra_time_over_fixed() -> None:
    from bench.capacity import derive, markdown

    def one(mode: str, pods: float, seconds: list[float]) -> dict[str, Any]:
        steps = [{"to": to, "seconds": s} for to, s in zip(["0", "100", "promote"], seconds, strict=True)]
        return {
            "mode": mode,
            "steps": steps,
            "walkSeconds": sum(seconds),
            "podSeconds": pods,
            "rollbackSafe": 0.05 if mode == "fixed" else 3.0,
            "rollbackExited": 4.0,
        }

    raw = {
        "full": 4,
        "dwell": 10.0,
        "runs": [
            one("fixed", 100, [2.0, 2.0, 5.0]),
            one("traffic-full", 150, [2.0, 4.0, 5.0]),
            one("fixed", 110, [2.0, 2.5, 5.0]),
            one("traffic-full", 170, [2.0, 5.0, 6.0]),
        ],
    }
    d = derive(raw)
    assert d["modes"]["fixed"]["podSeconds"] == 105
    assert d["modes"]["traffic-full"]["steps"]["100"] == 4.5
    assert d["modes"]["traffic-full"]["extraSeconds"]["100"] == 4.5 - 2.25
    table = markdown(d)
    assert "| traffic-full | 160 | 12 | 3.00 (4.0) | 2.0 (+0.0) | 4.5 (+2.2) | 5.5 (+0.5) |" in table, table


def test_the_traffic_section_measures_either_class_and_refuses_a_mirror_on_traefik(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse_args(
        ["--only", "traffic", "--traffic-class", "traefik", "--routes", "split"]
    ).traffic_class == ("traefik")
    assert parse_args(["--only", "traffic"]).traffic_class == "eg"
    with pytest.raises(SystemExit):
        parse_args(["--only", "traffic", "--traffic-class", "traefik", "--routes", "split,mirror"])
    assert "Traefik does not mirror" in capsys.readouterr().err
