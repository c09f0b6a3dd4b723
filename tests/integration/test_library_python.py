"""CanaryRelease used as a library by another Python program, fed Outputs of other resources (real engine).

tests/integration/projects/library-python creates a Namespace and a ConfigMap and hands the release the
namespace's name and the ConfigMap's images as Outputs: validation waits for them to resolve, and a bad
resolved value fails the update before any object of the release is sent.
"""

from __future__ import annotations

from pathlib import Path

from canary.gateway_api import ROUTE_RESOURCE
from canary.route_state import route_state
from tests.integration.harness import REPO, Kube, PulumiStack, copy_project, is_available, unique

LIBRARY = Path(__file__).parent / "projects" / "library-python"
V1, V2 = "registry.example/shop:1.0.0", "registry.example/shop:1.1.0"


def library_stack(env: dict[str, str], where: Path, config: dict[str, str]) -> PulumiStack:
    project = copy_project(LIBRARY, where / "library")
    (project / ".venv").symlink_to(REPO / ".venv")
    stack = PulumiStack(project, unique("lib"), env).init()
    stack.set_config(config)
    return stack


def test_a_python_program_feeds_the_component_outputs_of_other_resources(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    ns = unique("gc-lib")
    stack = library_stack(env, tmp_path, {"namespace": ns, "stableImage": V1, "canaryImage": V2})
    try:
        stack.up().check()
        assert stack.outputs() == {
            "routeName": "shop",
            "canaryWeight": 25,
            "stableImage": V1,
            "canaryImage": V2,
            "namespace": ns,
        }
        for track, image in (("stable", V1), ("canary", V2)):
            deployment = kube.get("deployment", f"shop-{track}", ns)
            assert deployment is not None and is_available(deployment), (track, deployment)
            assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
        route = kube.get(ROUTE_RESOURCE, "shop", ns)
        assert route is not None
        state = route_state(route, "shop")
        assert (state.stable_weight, state.canary_weight) == (75, 25)
        stack.preview("--expect-no-changes").check()
    finally:
        stack.destroy()


def test_a_bad_output_value_fails_the_update_before_the_release_is_sent(
    env: dict[str, str], kube: Kube, tmp_path: Path
) -> None:
    ns = unique("gc-libbad")
    stack = library_stack(env, tmp_path, {"namespace": ns, "stableImage": "Not An Image", "canaryImage": V2})
    try:
        result = stack.up()
        assert result.code != 0, result.output
        expected = "stableImage: 'Not An Image' is not allowed: an image reference"
        assert expected in result.output, result.output
        assert "Traceback" not in result.output, result.output
        assert kube.get("configmap", "images", ns) is not None, "the program's own resources were created"
        for kind in ("deployments", "services", ROUTE_RESOURCE, "gateways.gateway.networking.k8s.io"):
            assert kube.list(kind, ns) == [], f"{kind} of the release reached the cluster"
    finally:
        stack.destroy()
