"""Experiment: register Namespace, Service and Deployment without importing pulumi_kubernetes.core.v1 and
apps.v1 (the first alone costs ~0.25-0.35 s of imports per program run on the bench machine).

Importing this module installs stand-ins for those two modules in sys.modules, before anything imports
pulumi_kubernetes. Each stand-in class registers the object exactly as the generated class does (same type
token, same inputs, the SDK's default provider version, the same aliases), but as a plain
pulumi.CustomResource: state, URNs and provider calls stay the same, so an existing stack sees no change.
Only the three kinds every release has are provided; anything else (Secret, ServiceAccount, ...) is taken
from the real module, imported on first use, so the experiment never changes what is registered.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

import pulumi


def _object_class(type_token: str, api_version: str, kind: str, aliases: list[str] | None = None) -> type:
    class KubernetesObject(pulumi.CustomResource):
        def __init__(
            self,
            resource_name: str,
            opts: pulumi.ResourceOptions | None = None,
            metadata: Any = None,
            spec: Any = None,
        ) -> None:
            from pulumi_kubernetes import _utilities

            opts = pulumi.ResourceOptions.merge(_utilities.get_resource_opts_defaults(), opts)
            if aliases:
                opts = pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=a) for a in aliases])
                )
            props = {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": metadata,
                "spec": spec,
                "status": None,
            }
            super().__init__(type_token, resource_name, props, opts)

    KubernetesObject.__name__ = KubernetesObject.__qualname__ = kind
    return KubernetesObject


def _fallback(name: str, shim: types.ModuleType) -> Callable[[str], Any]:
    """A module __getattr__: attributes the shim lacks come from the real module, imported once."""

    def __getattr__(attr: str) -> Any:
        real = shim.__dict__.get("_real")
        if real is None:
            del sys.modules[name]
            parent_name, _, child = name.rpartition(".")
            try:
                real = importlib.import_module(name)
            finally:
                sys.modules[name] = shim
                # Importing the real module rebinds it on its parent package: point that back at the shim.
                parent = sys.modules.get(parent_name)
                if parent is not None:
                    setattr(parent, child, shim)
            shim._real = real  # type: ignore[attr-defined]
        return getattr(real, attr)

    return __getattr__


def install() -> None:
    core = types.ModuleType("pulumi_kubernetes.core.v1")
    core.Namespace = _object_class("kubernetes:core/v1:Namespace", "v1", "Namespace")  # type: ignore[attr-defined]
    core.Service = _object_class("kubernetes:core/v1:Service", "v1", "Service")  # type: ignore[attr-defined]
    apps = types.ModuleType("pulumi_kubernetes.apps.v1")
    apps.Deployment = _object_class(  # type: ignore[attr-defined]
        "kubernetes:apps/v1:Deployment",
        "apps/v1",
        "Deployment",
        [
            "kubernetes:apps/v1beta1:Deployment",
            "kubernetes:apps/v1beta2:Deployment",
            "kubernetes:extensions/v1beta1:Deployment",
        ],
    )
    for module in (core, apps):
        module.__getattr__ = _fallback(module.__name__, module)  # type: ignore[method-assign]
        sys.modules.setdefault(module.__name__, module)


install()
