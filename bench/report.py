"""From raw bench runs to figures and Markdown tables (pure: no processes, no clock, no files)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from bench import scaling
from bench.measure import ENGINE, LANGUAGE_HOST, PROGRAM, summary

PROVIDER = "pulumi-resource-kubernetes"
ROLES = [ENGINE, LANGUAGE_HOST, PROGRAM, PROVIDER]
ROLE_LABELS = {
    ENGINE: "engine",
    LANGUAGE_HOST: "language host",
    PROGRAM: "Python program",
    PROVIDER: "provider",
}

# The goals.
ROLLBACK_GOAL = 1.5
"""Issue 13: `canary rollback` (its fast path) time-to-safe within 1.5x of `kubectl patch` (an earlier
issue's goal was 2x)."""
STEP_GOAL = 1.3
"""A weight step within 1.3x of the no-op `pulumi up`."""
PREVIEW_GOAL = 3.0
"""The largest stack's preview under 3x the time of one release's."""
STATUS_GOAL = 1.0
"""Issue 13: `canary status` under 1 s (seconds, not a ratio)."""
ENVOY_ROLLBACK_GOAL = 1.2
"""Issue 13: `canary rollback` until Envoy stops sending to the canary within 1.2x of `kubectl patch`."""


# --- numbers ----------------------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float | None:
    found = list(values)
    return statistics.median(found) if found else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float] | None:
    """Least squares y = intercept + slope * x, with R^2 (1.0 when every y is equal). None below 2 points."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1.0 if ss_tot == 0 else 1 - ss_res / ss_tot
    return {"slope": slope, "intercept": intercept, "r2": r2}


def growth(sizes: Sequence[int], values: Sequence[float]) -> str:
    """How a cost grows with the number of releases, judged from per-size medians:
    "flat" (the largest size costs under 1.2x the smallest), "linear" (every segment's cost per release
    within 2x of every other's and R^2 >= 0.95), "superlinear" / "sublinear" (the last segment costs per
    release over 1.5x / under 0.5x the first), else "irregular". Needs 3 sizes to say more than "flat"."""
    pairs = sorted(zip(sizes, values, strict=True))
    if len(pairs) < 2:
        return "n/a (one size)"
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    if ys[0] > 0 and ys[-1] / ys[0] < 1.2:
        return "flat"
    if len(pairs) < 3:
        return "n/a (two sizes)"
    segments = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1)]
    fit = linear_fit(xs, ys)
    positive = all(s > 0 for s in segments)
    if positive and max(segments) <= 2 * min(segments) and fit is not None and fit["r2"] >= 0.95:
        return "linear"
    if segments[-1] > 1.5 * segments[0] and segments[-1] > 0:
        return "superlinear"
    if segments[-1] < 0.5 * segments[0]:
        return "sublinear"
    return "irregular"


# --- derived figures --------------------------------------------------------------------------------------


def derive_rollback(raw: dict[str, Any]) -> dict[str, Any]:
    runs = raw.get("runs", [])
    methods: dict[str, Any] = {}
    for key, command in raw.get("methods", {}).items():
        mine = [r for r in runs if r["method"] == key]
        methods[key] = {
            "command": command,
            "safe": summary([r["safe"] for r in mine]),
            "exited": summary([r["exited"] for r in mine]),
            "reset": summary([r["reset"] for r in mine]),
        }
    base = methods.get("kubectl", {}).get("safe", {}).get("median")
    for figures in methods.values():
        figures["ratioToKubectl"] = ratio(figures["safe"]["median"], base)
    refresh = [r["reset"] for r in runs if r.get("resetRefresh")]
    plain = [r["reset"] for r in runs if not r.get("resetRefresh")]
    return {
        "methods": methods,
        "resetUp": summary(plain),
        "resetUpRefresh": summary(refresh),
    }


def derive_step(raw: dict[str, Any]) -> dict[str, Any]:
    runs = raw.get("runs", [])
    variants: dict[str, Any] = {}
    for key, command in raw.get("variants", {}).items():
        mine = [r for r in runs if r["variant"] == key]
        step = summary([r["step"] for r in mine])
        noop = summary([r["noop"] for r in mine])
        variants[key] = {
            "command": command,
            "step": step,
            "noop": noop,
            "ratio": ratio(step["median"], noop["median"]),
            "pairedRatio": median(r["step"] / r["noop"] for r in mine if r["noop"]),
            "touched": sorted({tuple(sorted(r["stepChanges"].items())) for r in mine}),
            "stepPeakMiB": _median_peaks(r["stepPeakMiB"] for r in mine),
            "stepCpu": median(r["stepCpu"] for r in mine if "stepCpu" in r),
            "noopCpu": median(r["noopCpu"] for r in mine if "noopCpu" in r),
            "noopCpuByRole": _median_peaks(r.get("noopCpuByRole") or {} for r in mine),
        }
    return {"variants": variants}


def _median_peaks(peaks: Iterable[dict[str, float]]) -> dict[str, float]:
    collected: dict[str, list[float]] = {}
    for peak in peaks:
        for name, mib in peak.items():
            collected.setdefault(name, []).append(mib)
    return {name: statistics.median(values) for name, values in collected.items()}


def derive_scaling(raw: dict[str, Any]) -> dict[str, Any]:
    runs = raw.get("runs", [])
    sizes = sorted({r["size"] for r in runs})
    ops: dict[str, Any] = {}
    for op in scaling.OPERATIONS:
        mine = [r for r in runs if r["op"] == op]
        if not mine:
            continue
        per_size: dict[int, Any] = {}
        for size in sizes:
            at = [r for r in mine if r["size"] == size]
            if at:
                per_size[size] = {
                    "seconds": summary([r["seconds"] for r in at]),
                    "peakMiB": _median_peaks(r.get("peakMiB") or {} for r in at),
                    "cpu": median(r["cpu"] for r in at if "cpu" in r),
                    "cpuByRole": _median_peaks(r.get("cpuByRole") or {} for r in at),
                }
        xs = list(per_size)
        ys = [per_size[s]["seconds"]["median"] for s in xs]
        fit = linear_fit(xs, ys)
        memory: dict[str, Any] = {}
        cpu: dict[str, Any] = {}
        for role in ROLES:
            mem_xs = [s for s in xs if role in per_size[s]["peakMiB"]]
            mem_fit = linear_fit(mem_xs, [per_size[s]["peakMiB"][role] for s in mem_xs])
            if mem_fit is not None:
                memory[role] = mem_fit
            cpu_xs = [s for s in xs if role in per_size[s]["cpuByRole"]]
            cpu_fit = linear_fit(cpu_xs, [per_size[s]["cpuByRole"][role] for s in cpu_xs])
            if cpu_fit is not None:
                cpu[role] = cpu_fit
        total_xs = [s for s in xs if per_size[s]["cpu"] is not None]
        total_fit = linear_fit(total_xs, [per_size[s]["cpu"] for s in total_xs])
        if total_fit is not None:
            cpu["all"] = total_fit
        ops[op] = {
            "perSize": per_size,
            "fit": fit,
            "growth": growth(xs, ys),
            "largestOverSmallest": ratio(ys[-1], ys[0]) if len(ys) > 1 else None,
            "memoryFit": memory,
            "cpuFit": cpu,
        }
    return {"sizes": sizes, "ops": ops, "parallel": raw.get("parallel"), "light": raw.get("light", False)}


def derive_program(raw: dict[str, Any]) -> dict[str, Any]:
    startup = {label: summary(values) for label, values in raw.get("startup", {}).items()}
    every = raw.get("mocks", [])
    mocks = [m for m in every if not m.get("light")]
    light = [m for m in every if m.get("light")]
    main = [m for m in mocks if m["program"] == "main"]
    main_light = [m for m in light if m["program"] == "main"]
    scale: dict[int, Any] = {}
    for size in sorted({m["size"] for m in mocks if m["program"] == "scale"}):
        at = [m for m in mocks if m["program"] == "scale" and m["size"] == size]
        at_light = [m for m in light if m["program"] == "scale" and m["size"] == size]
        scale[size] = {
            "register": summary([m["register"] for m in at]),
            "registerLight": summary([m["register"] for m in at_light]),
            "resources": at[0]["resources"],
        }
    xs = list(scale)
    fit = linear_fit(xs, [scale[s]["register"]["median"] for s in xs])
    light_xs = [s for s in xs if scale[s]["registerLight"]["n"]]
    fit_light = linear_fit(light_xs, [scale[s]["registerLight"]["median"] for s in light_xs])
    digests: dict[str, set[str | None]] = {m["program"] + str(m.get("size", "")): set() for m in every}
    for m in every:
        digests[m["program"] + str(m.get("size", ""))].add(m.get("digest"))
    floor: dict[str, Any] = {}
    for r in raw.get("floor", []):
        floor.setdefault(r["mode"], {}).setdefault(r["op"], []).append(r)
    floor_figures = {
        mode: {
            op: {
                "seconds": summary([r["seconds"] for r in records]),
                "peakMiB": _median_peaks(r["peakMiB"] for r in records),
            }
            for op, records in by_op.items()
        }
        for mode, by_op in floor.items()
    }
    return {
        "startup": startup,
        "mockImport": summary([m["import"] for m in main]),
        "mockRegister": summary([m["register"] for m in main]),
        "mockResources": main[0]["resources"] if main else None,
        "mockRegisterLight": summary([m["register"] for m in main_light]),
        "mockScale": scale,
        "mockScaleFit": fit,
        "mockScaleFitLight": fit_light,
        "lightSameRegistrations": all(len(d) == 1 for d in digests.values()) if light else None,
        "floor": floor_figures,
        "importtime": raw.get("importtime"),
    }


def goals(derived: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' goals, each with the figure it is judged on (None when not measured)."""
    found = []
    rollback = derived.get("rollback", {}).get("methods", {})
    if "canary" in rollback and "kubectl" in rollback:
        found.append(
            {
                "goal": "`canary rollback` time-to-safe within 1.5x of `kubectl patch`",
                "target": ROLLBACK_GOAL,
                "measured": rollback["canary"]["ratioToKubectl"],
                "detail": _pair(rollback["canary"]["safe"]["median"], rollback["kubectl"]["safe"]["median"]),
            }
        )
    status = derived.get("status", {}).get("methods", {})
    if "canary" in status:
        quick = status["canary"]["seconds"]["median"]
        slow = status.get("canary-no-fast", {}).get("seconds", {}).get("median")
        found.append(
            {
                "goal": "`canary status` under 1 s",
                "target": STATUS_GOAL,
                "measured": quick,
                "detail": f"{seconds(quick)} (`--no-fast`: {seconds(slow)})",
            }
        )
    step = derived.get("step", {}).get("variants", {}).get("skip-preview")
    if step:
        found.append(
            {
                "goal": "weight step (5 -> 25) within 1.3x of the no-op `pulumi up`",
                "target": STEP_GOAL,
                "measured": step["ratio"],
                "detail": _pair(step["step"]["median"], step["noop"]["median"]),
            }
        )
    preview = derived.get("scaling", {}).get("ops", {}).get("preview")
    sizes = derived.get("scaling", {}).get("sizes", [])
    if preview and len(sizes) > 1:
        found.append(
            {
                "goal": f"preview of {sizes[-1]} releases under 3x the time of {sizes[0]}",
                "target": PREVIEW_GOAL,
                "measured": preview["largestOverSmallest"],
                "detail": _pair(
                    preview["perSize"][sizes[-1]]["seconds"]["median"],
                    preview["perSize"][sizes[0]]["seconds"]["median"],
                ),
            }
        )
    envoy = derived.get("traffic", {}).get("methods", {})
    if "canary" in envoy and "kubectl" in envoy:
        found.append(
            {
                "goal": "`canary rollback` until Envoy serves canary 0% within 1.2x of `kubectl patch`",
                "target": ENVOY_ROLLBACK_GOAL,
                "measured": envoy["canary"]["servedVsKubectl"],
                "detail": _pair(envoy["canary"]["served"]["median"], envoy["kubectl"]["served"]["median"]),
            }
        )
    for g in found:
        g["met"] = None if g["measured"] is None else g["measured"] <= g["target"]
    return found


def _pair(a: float | None, b: float | None) -> str:
    return f"{seconds(a)} vs {seconds(b)}"


# --- Markdown ---------------------------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def spread(s: dict[str, Any]) -> str:
    """ "median (min-max)" of a summary."""
    if not s or s.get("median") is None:
        return "-"
    if s["n"] == 1:
        return seconds(s["median"])
    return f"{seconds(s['median'])} ({s['min']:.2f}-{s['max']:.2f})"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table; `|` inside cells is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(headers), "|" + "|".join("---" for _ in headers) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def rollback_markdown(d: dict[str, Any]) -> str:
    rows = []
    for key, f in d["methods"].items():
        s = f["safe"]
        rows.append(
            [
                key,
                f"`{f['command']}`",
                str(s["n"]),
                "-" if s["median"] is None else f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}",
                seconds(f["exited"]["median"]),
                times(f["ratioToKubectl"]),
            ]
        )
    text = table(
        [
            "method",
            "command",
            "n",
            "time-to-safe s (min / median / max)",
            "command exits (median)",
            "median vs kubectl",
        ],
        rows,
    )
    text += (
        f"\n\nReset to 50% between runs: `pulumi up --skip-preview` {spread(d['resetUp'])}, "
        f"with `--refresh` (after kubectl) {spread(d['resetUpRefresh'])}."
    )
    return text


def step_markdown(d: dict[str, Any]) -> str:
    rows = []
    for key, f in d["variants"].items():
        touched = ", ".join(" ".join(f"{op} {n}" for op, n in t) for t in f["touched"]) or "-"
        rows.append(
            [
                key,
                f"`{f['command']}`",
                str(f["step"]["n"]),
                spread(f["step"]),
                spread(f["noop"]),
                times(f["ratio"]),
                times(f["pairedRatio"]),
                touched,
                "-" if f["stepCpu"] is None else f"{f['stepCpu']:.2f} / {f['noopCpu']:.2f}",
            ]
        )
    return table(
        [
            "variant",
            "command",
            "n",
            "step 5->25 median (min-max)",
            "no-op median (min-max)",
            "step / no-op",
            "paired",
            "resources touched",
            "CPU s step / no-op",
        ],
        rows,
    )


def scaling_markdown(d: dict[str, Any]) -> str:
    sizes = d["sizes"]
    notes = []
    if d.get("parallel"):
        notes.append(f"every `pulumi up` and destroy ran with `--parallel {d['parallel']}`")
    if d.get("light"):
        notes.append("the program ran with bench/experiments/light_k8s (no typed Kubernetes classes)")
    rows = []
    for op, f in d["ops"].items():
        fit = f["fit"]
        rows.append(
            [
                op,
                *[spread(f["perSize"][s]["seconds"]) if s in f["perSize"] else "-" for s in sizes],
                "-" if fit is None else f"{fit['slope'] * 1000:.0f} ms",
                "-" if fit is None else f"{fit['intercept']:.2f}s",
                "-" if fit is None else f"{fit['r2']:.3f}",
                times(f["largestOverSmallest"]),
                f["growth"],
            ]
        )
    text = table(
        [
            "operation",
            *[f"N={s}" for s in sizes],
            "per release",
            "fixed",
            "R^2",
            "largest / smallest",
            "growth",
        ],
        rows,
    )
    if notes:
        text = "Note: " + "; ".join(notes) + ".\n\n" + text
    mem_rows = []
    for op in ("preview", "up-change", "create"):
        if op not in d["ops"]:
            continue
        f = d["ops"][op]
        for role in ROLES:
            if not any(role in f["perSize"][s]["peakMiB"] for s in f["perSize"]):
                continue
            fit = f["memoryFit"].get(role)
            mem_rows.append(
                [
                    op,
                    ROLE_LABELS[role],
                    *[mib(f["perSize"].get(s, {}).get("peakMiB", {}).get(role)) for s in sizes],
                    "-" if fit is None else f"{fit['slope']:.2f}",
                ]
            )
    if mem_rows:
        text += "\n\nPeak RSS (MiB, median over runs):\n\n" + table(
            ["operation", "process", *[f"N={s}" for s in sizes], "MiB per release"], mem_rows
        )
    cpu_rows = []
    for op in ("preview", "up-noop", "up-change", "up-change-skip-checkpoints"):
        if op not in d["ops"]:
            continue
        f = d["ops"][op]
        for role in [*ROLES, "all"]:
            values = [
                f["perSize"].get(s, {}).get("cpu")
                if role == "all"
                else f["perSize"].get(s, {}).get("cpuByRole", {}).get(role)
                for s in sizes
            ]
            if all(v is None for v in values):
                continue
            fit = f["cpuFit"].get(role)
            cpu_rows.append(
                [
                    op,
                    "all (whole tree)" if role == "all" else ROLE_LABELS[role],
                    *["-" if v is None else f"{v:.2f}" for v in values],
                    "-" if fit is None else f"{fit['slope'] * 1000:.0f}",
                ]
            )
    if cpu_rows:
        text += "\n\nCPU seconds (user+system, median over runs; 2 cores means up to 2 per wall second):\n\n"
        text += table(["operation", "process", *[f"N={s}" for s in sizes], "CPU ms per release"], cpu_rows)
    return text


def program_markdown(d: dict[str, Any], noop_release: float | None = None) -> str:
    rows = [[label, spread(s)] for label, s in d["startup"].items()]
    rows.append(
        ["imports inside `bench.mockrun` (pulumi, pulumi_kubernetes, component)", spread(d["mockImport"])]
    )
    rows.append(
        [
            f"register __main__.py under mocks ({d['mockResources']} resources, canary at 50%)",
            spread(d["mockRegister"]),
        ]
    )
    for size, f in d["mockScale"].items():
        rows.append(
            [f"register scale program, {size} releases ({f['resources']} resources)", spread(f["register"])]
        )
    fit = d["mockScaleFit"]
    if fit is not None:
        rows.append(["registration per release under mocks (fit)", f"{fit['slope'] * 1000:.1f} ms"])
    if d.get("mockRegisterLight", {}).get("n"):
        same = {True: "same registrations", False: "REGISTRATIONS DIFFER", None: "-"}
        rows.append(
            [
                f"light_k8s experiment: register __main__.py ({same[d['lightSameRegistrations']]})",
                spread(d["mockRegisterLight"]),
            ]
        )
        for size, f in d["mockScale"].items():
            rows.append([f"light_k8s experiment: scale program, {size} releases", spread(f["registerLight"])])
        fit = d.get("mockScaleFitLight")
        if fit is not None:
            rows.append(["light_k8s experiment: per release (fit)", f"{fit['slope'] * 1000:.1f} ms"])
    text = table(["program cost (fresh interpreter each)", "median (min-max)"], rows)
    imp = d.get("importtime")
    if imp:
        text += (
            f"\n\n`python -X importtime -c '{imp['snippet']}'`: {imp['total']:.2f}s of import work; "
            "by package: "
        )
        text += ", ".join(f"{p['package']} {p['self'] * 1000:.0f} ms" for p in imp["packages"])
    if d["floor"]:
        rows = []
        for mode, by_op in d["floor"].items():
            up, preview = by_op.get("up-noop", {}), by_op.get("preview", {})
            peaks = up.get("peakMiB", {})
            rows.append(
                [
                    mode,
                    spread(up.get("seconds", {})),
                    spread(preview.get("seconds", {})),
                    " / ".join(mib(peaks.get(role)) for role in ROLES),
                ]
            )
        if noop_release is not None:
            rows.append(["the release (step bench no-op)", seconds(noop_release), "-", "-"])
        text += "\n\nEngine floor ladder (no-op updates):\n\n" + table(
            ["program", "up --skip-preview", "preview", "peak MiB engine / host / program / provider"], rows
        )
    return text


def goals_markdown(found: list[dict[str, Any]]) -> str:
    rows = [
        [
            g["goal"],
            f"<= {g['target']:.1f}x",
            times(g["measured"]),
            g["detail"],
            "-" if g["met"] is None else ("yes" if g["met"] else "NO"),
        ]
        for g in found
    ]
    return table(["goal", "target", "measured", "medians", "met"], rows)
