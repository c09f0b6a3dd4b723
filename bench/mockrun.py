"""Run a Pulumi program under Pulumi mocks; print what it cost as one JSON line (for bench/program.py).

    python -m bench.mockrun main            the product's __main__.py (a canary at 50%)
    python -m bench.mockrun scale N         bench/projects/scale with N releases
    ... --light                             with bench/experiments/light_k8s installed first

`import`: seconds to import pulumi, pulumi_kubernetes and the component; `register`: seconds from running
the program until every resource is registered and every output resolved (pulumi.runtime.set_mocks: no
engine, no gRPC transport, no provider). `resources`: how many resources the mocks saw; `digest`: a hash
of every registration's type, name and inputs (equal digests: the engine would see the same program).
"""

from __future__ import annotations

import time

_started = time.perf_counter()

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import runpy  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import pulumi  # noqa: E402
import pulumi_kubernetes  # noqa: E402, F401

import canary.release.component  # noqa: E402, F401

_imported = time.perf_counter()

from pulumi.runtime.stack import run_pulumi_func  # noqa: E402
from pulumi.runtime.sync_await import _sync_await  # noqa: E402

from bench.stacks import REPO, SCALE_PROJECT  # noqa: E402


class CountingMocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs and count registrations."""

    def __init__(self) -> None:
        self.resources = 0
        self.seen: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources += 1
        self.seen.append(json.dumps([args.typ, args.name, args.inputs], sort_keys=True, default=str))
        return f"{args.name}-id", dict(args.inputs)

    def digest(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.seen)).encode()).hexdigest()[:16]

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def product_defaults() -> dict[str, str]:
    import yaml

    schema = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
    out = {}
    for key, spec in schema.items():
        value = spec["default"]
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def main(argv: list[str]) -> None:
    light = "--light" in argv
    argv = [a for a in argv if a != "--light"]
    if light:
        import bench.experiments.light_k8s  # noqa: F401  (installs the stand-ins)
    which = argv[0] if argv else "main"
    if which == "main":
        project, program = "gateway-canary", REPO / "__main__.py"
        config = {
            **product_defaults(),
            "appName": "web",
            "namespace": "gc-bench-mocks",
            "canaryImage": "registry.example/web:1.1.0",
            "canaryWeight": "50",
            "stableReplicas": "1",
        }
    elif which == "scale":
        project, program = "gateway-canary-scale", SCALE_PROJECT / "__main__.py"
        config = {
            "releases": argv[1] if len(argv) > 1 else "1",
            "namespace": "gc-bench-mocks",
            "canaryWeight": "0",
        }
    else:
        raise SystemExit(f"usage: python -m bench.mockrun main | scale N (not {which!r})")
    mocks = CountingMocks()
    pulumi.runtime.set_mocks(mocks, project=project, stack="bench", preview=False)
    pulumi.runtime.set_all_config({f"{project}:{key}": value for key, value in config.items()})
    started = time.perf_counter()
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
    registered = time.perf_counter()
    print(
        json.dumps(
            {
                "program": which,
                "light": light,
                "import": _imported - _started,
                "register": registered - started,
                "resources": mocks.resources,
                "digest": mocks.digest(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    # Skip interpreter teardown: the SDK's event loop complains when finalized, and it is not measured.
    os._exit(0)
