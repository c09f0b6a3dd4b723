"""gateway-canary: canary releases on Kubernetes with Gateway API traffic splitting, driven by Pulumi."""
