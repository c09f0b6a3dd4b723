"""N canary releases in one stack, for the scaling benchmark (bench/scaling.py).

Each release is the real component used as a library: a few args over the library's defaults (Pulumi.yaml's,
see canary.release.args.DEFAULTS), validated exactly as in the main program. One Namespace is shared by
every release.
"""

import pulumi
import pulumi_kubernetes as k8s

from canary.release.component import CanaryRelease

config = pulumi.Config()
namespace = config.require("namespace")
ns = k8s.core.v1.Namespace("bench-namespace", metadata={"name": namespace})
for i in range(config.require_int("releases")):
    CanaryRelease(
        f"app{i}",
        {
            "app_name": f"app{i}",
            "namespace": namespace,
            "create_namespace": False,
            "stable_replicas": 1,
            "canary_image": "registry.example/app:2.0.0",
            "canary_weight": config.require("canaryWeight"),
            "wait_for_gateway": False,  # the default GatewayClass has no controller
        },
        pulumi.ResourceOptions(depends_on=[ns]),
    )
