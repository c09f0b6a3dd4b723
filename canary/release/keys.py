"""The config keys of Pulumi.yaml, and the one way a value becomes config text; no Pulumi import.

Kept apart from canary.release.args (whose TypedDict is built from `pulumi.Input`, so importing it imports
the Pulumi SDK, about 0.5 s) so that validation, the CLI's readers and the fast rollback start quickly.
tests/unit/test_args.py keeps RELEASE_KEYS equal to CanaryReleaseArgs' fields camel-cased, and CONFIG_KEYS
(canary.release.validate) equal to Pulumi.yaml's declarations.
"""

import json

RELEASE_KEYS: tuple[str, ...] = (
    "appName",
    "namespace",
    "createNamespace",
    "stableImage",
    "canaryImage",
    "canaryWeight",
    "stableReplicas",
    "canaryReplicas",
    "containerPort",
    "protocol",
    "healthPath",
    "podTemplate",
    "canaryPodTemplate",
    "appContainer",
    "autoscaling",
    "podDisruptionBudget",
    "capacity",
    "hostnames",
    "routeRules",
    "gatewayClassName",
    "createGateway",
    "gatewayName",
    "gatewayNamespace",
    "parentRefs",
    "tlsSecretName",
    "canaryHeader",
    "mirrorPercent",
    "rolloutOperator",
    "rolloutTimeout",
    "waitForGateway",
    "gatewayFeatures",
    "tlsCert",
    "tlsKey",
)
"""The config keys of the release: CanaryReleaseArgs' fields camel-cased, in Pulumi.yaml's order."""
OPS_KEYS: tuple[str, ...] = ("canaryPlan", "analysis")
"""Keys Pulumi.yaml declares for the operations side (canary.ops.core.settings): the program accepts them in
stack config and leaves them alone, so a misspelling is still caught but the release never depends on them."""
SECRET_KEYS = frozenset({"tlsCert", "tlsKey"})
"""Keys whose values no error message repeats (they are meant to be secrets)."""


def config_string(value: object) -> str:
    """A value the way the engine hands config to a program: scalars as text, arrays and objects as compact
    JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))
    return str(value)
