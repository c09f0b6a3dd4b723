"""N canary releases in one stack, for the scaling benchmark (bench/scaling.py).

Each release is the real component with the product's own defaults (read from its Pulumi.yaml) and a few
overrides; validation runs exactly as in the main program. One Namespace is shared by every release.
"""

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from canary.component import CanaryRelease
from canary.config import parse_config


def engine_string(value: object) -> str:
    """A Pulumi.yaml default the way the engine passes config: scalars as text, arrays as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, list) else str(value)


config = pulumi.Config()
defaults_file = config.get("defaultsFile") or str(Path(__file__).resolve().parents[3] / "Pulumi.yaml")
schema = yaml.safe_load(Path(defaults_file).read_text())["config"]
defaults = {key: engine_string(spec["default"]) for key, spec in schema.items()}

namespace = config.require("namespace")
ns = k8s.core.v1.Namespace("bench-namespace", metadata={"name": namespace})
for i in range(config.require_int("releases")):
    args = parse_config(
        {
            **defaults,
            "appName": f"app{i}",
            "namespace": namespace,
            "createNamespace": "false",
            "stableReplicas": "1",
            "canaryImage": "registry.example/app:2.0.0",
            "canaryWeight": config.require("canaryWeight"),
        }
    )
    CanaryRelease(f"app{i}", args, pulumi.ResourceOptions(depends_on=[ns]))
