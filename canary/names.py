"""Object names and label keys: the one place every naming convention of a release lives.

Names are API: the route's backendRefs name the Services, dashboards and `kubectl` users name the
Deployments, and renaming a Pulumi child replaces the live object. So every name is derived here from the
app name with fixed suffixes, never a Pulumi auto-name, and both sides of the project (the program that
creates the objects and the operations side that reads them back) use these functions.
"""

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import Literal

    Track = Literal["stable", "canary"]
else:
    Track = str  # at run time only annotations name it (some evaluated, in modules without postponed ones)
"""The two versions a release runs side by side."""

NAME_LABEL = "app.kubernetes.io/name"
TRACK_LABEL = "gateway-canary/track"
COMPONENT_LABEL = "app.kubernetes.io/component"
OPERATOR_COMPONENT = "rollout-operator"

TRACK_SUFFIX = "-canary"
"""The longer of the two suffixes appName gets in object names (`<app>-stable`, `<app>-canary`)."""
MAX_APP_NAME = 63 - len(TRACK_SUFFIX)
"""appName becomes a Service name with a suffix, and Service names are DNS-1035 labels (<= 63)."""


def object_name(app_name: str, track: Track) -> str:
    """Fixed name of a track's Deployment and Service: `<app>-stable` or `<app>-canary`."""
    return f"{app_name}-{track}"


def route_name(app_name: str) -> str:
    """Fixed name of the HTTPRoute: the app name itself."""
    return app_name


def gateway_name(app_name: str) -> str:
    """Name of the Gateway the release owns when gatewayName is left empty: `<app>-gateway`."""
    return f"{app_name}-gateway"


def operator_role_name(app_name: str) -> str:
    """Name of the Role and RoleBinding of the rollout operator: `<app>-rollout-operator`."""
    return f"{app_name}-{OPERATOR_COMPONENT}"


def track_labels(app_name: str, track: Track) -> dict[str, str]:
    """The labels of one track: Deployment, selector, pods and Service selector all use exactly these."""
    return {NAME_LABEL: app_name, TRACK_LABEL: track}
