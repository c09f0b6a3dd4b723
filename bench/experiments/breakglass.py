"""Prototype of a proposed `canary rollback --now`: patch the live route first, then record it with Pulumi.

    python -m bench.experiments.breakglass --cwd PROJECT --stack STACK

1. Read appName and namespace from Pulumi.yaml and Pulumi.<stack>.yaml with yaml alone (no
   `import pulumi`: that import alone costs ~0.3 s).
2. One `kubectl patch --type=json` of the HTTPRoute: canary weight 0, stable 100, in the split rule, whose
   index follows from the program's route layout (the split first, then any header rule). "test"
   operations check the backend names first, so a route of another shape is refused, never mis-patched.
   This is where the route becomes safe.
3. Reconcile, so Pulumi stays the record: `pulumi config set canaryWeight 0`, then
   `pulumi up --skip-preview --refresh --target <route URN>` (the refresh reads the patched route back, so
   state, config and the live route agree, and stack history has the entry).

It breaks the product's "Pulumi is the only writer" rule for the few seconds between 2 and 3; the provider
applies with force, so the next Pulumi update owns the fields again (see the bench report).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from canary.gateway_api import ROUTE_TYPE

COMPONENT_TYPE = "gateway-canary:index:CanaryRelease"


# libyaml when it is there: the pure-Python loader takes 15-30 ms for Pulumi.yaml, about a quarter of the
# kubectl call this path is measured against.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=LOADER)


def settings(cwd: Path, stack: str) -> tuple[str, dict[str, object]]:
    """Project name and its config (Pulumi.yaml defaults overlaid with the stack file), keys unprefixed."""
    project = _load(cwd / "Pulumi.yaml")
    name = str(project["name"])
    values: dict[str, object] = {k: v.get("default") for k, v in (project.get("config") or {}).items()}
    stack_file = cwd / f"Pulumi.{stack}.yaml"
    if stack_file.is_file():
        for key, value in (_load(stack_file).get("config") or {}).items():
            if key.startswith(f"{name}:"):
                values[key.split(":", 1)[1]] = value
    return name, values


def patch_ops(app: str, split_rule: int) -> list[dict[str, object]]:
    base = f"/spec/rules/{split_rule}/backendRefs"
    return [
        {"op": "test", "path": f"{base}/0/name", "value": f"{app}-stable"},
        {"op": "test", "path": f"{base}/1/name", "value": f"{app}-canary"},
        {"op": "replace", "path": f"{base}/0/weight", "value": 100},
        {"op": "replace", "path": f"{base}/1/weight", "value": 0},
    ]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cwd", type=Path, required=True)
    p.add_argument("--stack", required=True)
    args = p.parse_args(argv)
    started = time.monotonic()
    project, config = settings(args.cwd, args.stack)
    app, namespace = str(config["appName"]), str(config["namespace"])
    split_rule = 0  # canary.release.routing.route_rules: the split first, then the header override
    subprocess.run(
        [
            "kubectl",
            "patch",
            "httproute",
            app,
            "-n",
            namespace,
            "--type=json",
            "-p",
            json.dumps(patch_ops(app, split_rule)),
        ],
        check=True,
        capture_output=True,
    )
    safe = time.monotonic() - started
    urn = f"urn:pulumi:{args.stack}::{project}::{COMPONENT_TYPE}${ROUTE_TYPE}::{app}-route"
    pulumi = ["--stack", args.stack, "--non-interactive", "--cwd", str(args.cwd)]
    subprocess.run(["pulumi", "config", "set", "canaryWeight", "0", *pulumi], check=True, capture_output=True)
    subprocess.run(
        [
            "pulumi",
            "up",
            "--yes",
            "--skip-preview",
            "--refresh",
            "--target",
            urn,
            "-m",
            "rollback (break-glass)",
            *pulumi,
        ],
        check=True,
        capture_output=True,
    )
    print(json.dumps({"safe": safe, "reconciled": time.monotonic() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
