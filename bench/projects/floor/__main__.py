"""The engine floor: what `pulumi up` costs around a Python program that registers (almost) nothing."""

import pulumi

mode = pulumi.Config().get("mode") or "empty"
if mode in ("import", "provider"):
    import pulumi_kubernetes as k8s

    import canary.release.component  # noqa: F401  (the product's own imports)

    if mode == "provider":
        k8s.Provider("floor")
