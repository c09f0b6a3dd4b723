"""CanaryRelease as a library: its namespace and images are Outputs of other resources of this program.

The Namespace is created here (the release is told createNamespace false and the namespace's name as an
Output), and the images come out of a ConfigMap's data, as a build or a registry lookup would hand them over.
"""

import pulumi
import pulumi_kubernetes as kubernetes

from canary.release.component import CanaryRelease

config = pulumi.Config()
namespace = kubernetes.core.v1.Namespace("apps", metadata={"name": config.require("namespace")})
images = kubernetes.core.v1.ConfigMap(
    "images",
    metadata={"name": "images", "namespace": namespace.metadata.name},
    data={"stable": config.require("stableImage"), "canary": config.require("canaryImage")},
)
release = CanaryRelease(
    "shop",
    {
        "app_name": "shop",
        "namespace": namespace.metadata.name,
        "create_namespace": False,
        "stable_image": images.data["stable"],
        "canary_image": images.data["canary"],
        "canary_weight": "25",
        "stable_replicas": 1,
        "wait_for_gateway": False,  # the local default GatewayClass has no controller
    },
)
pulumi.export("routeName", release.route_name)
pulumi.export("canaryWeight", release.canary_weight)
pulumi.export("stableImage", release.stable_image)
pulumi.export("canaryImage", release.canary_image)
pulumi.export("namespace", release.namespace)
