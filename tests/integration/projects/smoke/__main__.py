"""Toolchain smoke test program: a Namespace, a ConfigMap and optionally a Deployment."""

import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
namespace = config.require("namespace")

ns = k8s.core.v1.Namespace("ns", metadata={"name": namespace})
opts = pulumi.ResourceOptions(depends_on=[ns])
cm = k8s.core.v1.ConfigMap(
    "settings", metadata={"name": "smoke", "namespace": namespace}, data={"hello": "world"}, opts=opts
)
pulumi.export("configMap", cm.metadata["name"])

if config.require_bool("withDeployment"):
    labels = {"app": "smoke"}
    dep = k8s.apps.v1.Deployment(
        "web",
        metadata={"name": "web", "namespace": namespace},
        spec={
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]},
            },
        },
        opts=opts,
    )
    pulumi.export("deployment", dep.metadata["name"])
