"""Access specs (pure): the rollout operator's least-privilege RBAC and the TLS Secret of the HTTPS listener.

The rollout operator (config `rolloutOperator`) is an identity that can move traffic and nothing else: a
ServiceAccount bound to a Role in the release namespace. Moving traffic is one in-place update of the
HTTPRoute, which the Pulumi Kubernetes provider performs as a GET of the live route followed by a
server-side apply (an HTTP PATCH); that is all a targeted `pulumi up --target <route URN>` needs, measured
against the real apiserver (tests/integration/test_security.py: with `patch` alone the update fails on the
GET). Read access to Deployments, Services and HTTPRoutes is what `canary status` and a reviewer need to
check a rollout before moving it.

Being namespaced, the Role grants nothing in any other namespace. It grants no create or delete at all,
no write on Deployments or Services, and `patch` only on the release's own route (resourceNames), so the
operator cannot change what runs, only where traffic goes.
"""

import base64

from canary.names import COMPONENT_LABEL, NAME_LABEL, OPERATOR_COMPONENT, operator_role_name, route_name
from canary.release.settings import ReleaseSettings
from canary.release.workload import Manifest

READ = ["get", "list", "watch"]
"""Verbs of the read-only rules."""
ROUTE_WRITE = ["patch"]
"""Verbs on the release's own HTTPRoute only (by name): server-side apply is a PATCH."""


def _operator_labels(app_name: str) -> dict[str, str]:
    return {NAME_LABEL: app_name, COMPONENT_LABEL: OPERATOR_COMPONENT}


def operator_service_account_manifest(args: ReleaseSettings) -> Manifest:
    """The rollout operator's ServiceAccount. No pod runs as it, so its token is never mounted anywhere;
    a person or a CI job gets a short-lived one with `kubectl create token`."""
    assert args.rollout_operator is not None, "only with rolloutOperator set"
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": args.rollout_operator,
            "namespace": args.namespace,
            "labels": _operator_labels(args.app_name),
        },
        "automountServiceAccountToken": False,
    }


def operator_role_manifest(args: ReleaseSettings) -> Manifest:
    """Read Deployments, Services and HTTPRoutes in the release namespace; patch only the release's route."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": operator_role_name(args.app_name),
            "namespace": args.namespace,
            "labels": _operator_labels(args.app_name),
        },
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": list(READ)},
            {"apiGroups": [""], "resources": ["services"], "verbs": list(READ)},
            {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": list(READ)},
            {
                "apiGroups": ["gateway.networking.k8s.io"],
                "resources": ["httproutes"],
                "resourceNames": [route_name(args.app_name)],
                "verbs": list(ROUTE_WRITE),
            },
        ],
    }


def operator_role_binding_manifest(args: ReleaseSettings) -> Manifest:
    """Binds the Role to the ServiceAccount, in the release namespace only."""
    assert args.rollout_operator is not None, "only with rolloutOperator set"
    name = operator_role_name(args.app_name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": args.namespace, "labels": _operator_labels(args.app_name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": args.rollout_operator, "namespace": args.namespace}],
    }


def tls_secret_manifest(args: ReleaseSettings) -> Manifest:
    """The kubernetes.io/tls Secret the owned Gateway's HTTPS listener refers to (tlsSecretName).

    Holds key material: the component passes `data` to Pulumi as a secret, so the state keeps ciphertext.
    """
    assert args.tls_secret_name and args.tls_cert and args.tls_key, "only with tlsCert, tlsKey, tlsSecretName"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": args.tls_secret_name,
            "namespace": args.namespace,
            "labels": {NAME_LABEL: args.app_name},
        },
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": _b64(args.tls_cert), "tls.key": _b64(args.tls_key)},
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
