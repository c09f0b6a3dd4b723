"""canary.ops.pulumi.stack's pure parts: operation counts, and Pulumi.yaml's defaults as the engine has
them."""

from pathlib import Path

from canary.ops.pulumi.stack import op_counts, project_defaults
from tests.unit.helpers import REPO
from tests.unit.helpers import project_defaults as helper_defaults


def test_op_counts_takes_enum_or_string_keys() -> None:
    from pulumi.automation import OpType

    assert op_counts({OpType.UPDATE: 1, "same": 3}) == {"update": 1, "same": 3}
    assert op_counts(None) == {}


def test_project_defaults_are_pulumi_yamls_in_the_engines_form() -> None:
    """Spelled out rather than recomputed: how the engine hands each kind of value to a program (booleans
    lowercase, arrays as compact JSON). tests/integration/test_toolchain_smoke.py checks the real engine."""
    defaults = project_defaults(Path(REPO / "Pulumi.yaml"))
    assert set(defaults) == set(helper_defaults())
    assert {
        key: defaults[key] for key in ("createNamespace", "canaryPlan", "hostnames", "stableReplicas")
    } == {
        "createNamespace": "true",
        "canaryPlan": "[5,25,50,100]",
        "hostnames": "[]",
        "stableReplicas": "2",
    }
