"""Deliberately bad workloads next to a good one, for `pulumi preview --policy-pack policy`.

Every object starts from the compliant pod spec the real program renders (workload.py) and breaks exactly
one guardrail, so each policy's verdict can be read per resource.
"""

import copy
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from canary.release.args import split_inputs
from canary.release.validate import parse_config
from canary.release.workload import pod_template

namespace = pulumi.Config().require("namespace")


def deployment(name: str, template: dict[str, Any]) -> None:
    labels = {"app": name}
    template = copy.deepcopy(template)
    template["metadata"] = {"labels": labels}
    k8s.apps.v1.Deployment(
        name,
        metadata={"name": name, "namespace": namespace},
        spec={"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
    )


# The program's own rendering of its default config (as the component's library path validates it).
known, _ = split_inputs({"stable_image": "registry.example/web:1.0.0", "container_port": 8080})
good = pod_template(parse_config(known), "stable")
deployment("good", good)

no_probe = copy.deepcopy(good)
del no_probe["spec"]["containers"][0]["readinessProbe"]
deployment("no-probe", no_probe)

no_requests = copy.deepcopy(good)
del no_requests["spec"]["containers"][0]["resources"]["requests"]
deployment("no-requests", no_requests)

root = copy.deepcopy(good)
del root["spec"]["securityContext"]
root["spec"]["containers"][0]["securityContext"] = {
    "runAsUser": 0,
    "allowPrivilegeEscalation": True,
    "seccompProfile": {"type": "Unconfined"},
}
deployment("root", root)

k8s.core.v1.Pod(
    "privileged-pod",
    metadata={"name": "privileged-pod", "namespace": namespace},
    spec={
        "hostNetwork": True,
        "containers": [
            {"name": "debug", "image": "registry.example/debug:1", "securityContext": {"privileged": True}}
        ],
    },
)
