"""Network namespaces, veth links and routes of the data plane, with `ip` (iproute2), as root.

Everything created here carries the plan's names (namespaces `gcbed-*`, links `gcb-*`, with `-iI` for
instance I > 0), so `sweep` can remove all of one instance's, and a link's routes go away with the link.
Nothing here touches an existing interface, route or sysctl of the machine: the root namespace only gains the
`gcb-*` links and routes through them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

from scripts.testbed.plan import Link, Plan


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS` (inside `netns` with `ip -n`), raising with its stderr when `check` and it fails."""
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
    return res


def netns_list(plan: Plan) -> list[str]:
    """The network namespaces of this instance of the plan."""
    return sorted(n for n in netns_names() if plan.owns_netns(n))


def links(plan: Plan) -> list[str]:
    """The root namespace's links of this instance of the plan."""
    out = ip("-j", "link", "show").stdout.strip()
    return sorted(str(link["ifname"]) for link in json.loads(out or "[]") if plan.owns_link(link["ifname"]))


def add_netns(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def add_link(link: Link, outer_netns: str | None = None) -> None:
    """Create the veth pair in the root namespace, move `inner` (and `outer`, when given) and address both."""
    ip("link", "add", link.outer, "type", "veth", "peer", "name", link.inner)
    ip("link", "set", link.inner, "netns", link.netns)
    if outer_netns:
        ip("link", "set", link.outer, "netns", outer_netns)
    ip("addr", "add", f"{link.outer_ip}/30", "dev", link.outer, netns=outer_netns)
    ip("addr", "add", f"{link.inner_ip}/30", "dev", link.inner, netns=link.netns)
    ip("link", "set", link.outer, "up", netns=outer_netns)
    ip("link", "set", link.inner, "up", netns=link.netns)


def setup_apps(plan: Plan) -> None:
    """The apps namespace: the pod CIDR and the node IPs are local addresses there (AnyIP routes on lo), and
    the root namespace routes both into it."""
    ns, link = plan.apps_netns, plan.apps_link()
    add_netns(ns)
    add_link(link)
    for cidr in (plan.pod_cidr, plan.node_cidr):
        ip("route", "add", "local", cidr, "dev", "lo", netns=ns)
        ip("route", "add", cidr, "via", link.inner_ip, "dev", link.outer)


def setup_eg(plan: Plan) -> None:
    """Envoy Gateway's namespace, linked to the root namespace only (it dials the apiserver there); its
    listeners (xDS on 18000 and the rest, all on every address) are reachable only from the bed."""
    add_netns(plan.eg_netns)
    add_link(plan.eg_link())


def setup_traefik(plan: Plan) -> None:
    """Traefik's namespace: linked to the root namespace (it dials the apiserver there; the host's clients of
    its address, which is local in it, come in there) and to the apps namespace (the pod CIDR, routed there).
    Only its entryPoint's address:80 listens; the namespace has no default route, so it cannot dial out."""
    ns, root, apps = plan.traefik_netns, plan.traefik_link(), plan.traefik_apps_link()
    add_netns(ns)
    add_link(root)
    add_link(apps, outer_netns=ns)
    ip("route", "add", plan.pod_cidr, "via", apps.inner_ip, "dev", apps.outer, netns=ns)
    ip("route", "add", "local", f"{plan.traefik_address}/32", "dev", "lo", netns=ns)
    ip("route", "add", f"{plan.traefik_address}/32", "via", root.inner_ip, "dev", root.outer)


def setup_gateway(plan: Plan, slot: int, address: str) -> None:
    """Envoy namespace `slot`: linked to the root namespace (the host's clients of `address`, which is local
    in it), to the apps namespace (the pod CIDR, routed there) and to Envoy Gateway's (xDS)."""
    ns, root, apps = plan.gateway_netns(slot), plan.gateway_link(slot), plan.gateway_apps_link(slot)
    add_netns(ns)
    add_link(root)
    add_link(apps, outer_netns=ns)
    add_link(plan.gateway_eg_link(slot), outer_netns=ns)
    ip("route", "add", plan.pod_cidr, "via", apps.inner_ip, "dev", apps.outer, netns=ns)
    ip("route", "add", "local", f"{address}/32", "dev", "lo", netns=ns)
    ip("route", "add", f"{address}/32", "via", root.inner_ip, "dev", root.outer)


def teardown_gateway(plan: Plan, slot: int) -> None:
    """Delete Envoy namespace `slot` and its links (their routes go with them), also after a setup that
    failed half-way.

    Each link is deleted by name wherever it may be: the kernel destroys a deleted namespace (and the veth
    ends in it, with their peers) later, in a work queue, so a peer left to go with the namespace could
    still hold its name in the apps namespace when the slot is set up again ("An interface with the same
    name exists", seen in CI); and a setup that failed after `ip link add` left both ends in the root
    namespace, where every later `ip link add` of the slot failed with "File exists"."""
    ns = plan.gateway_netns(slot)
    kill_netns_processes(ns)
    present = netns_names()
    for link, outer_netns in (
        (plan.gateway_link(slot), None),
        (plan.gateway_apps_link(slot), ns),
        (plan.gateway_eg_link(slot), ns),
    ):
        for name, netns in ((link.inner, link.netns), (link.outer, outer_netns), (link.inner, None)):
            if netns is None or netns in present:
                ip("link", "del", name, netns=netns, check=False)
    ip("netns", "del", ns, check=False)


def netns_names() -> set[str]:
    out = ip("-j", "netns", "list").stdout.strip()
    return {str(n["name"]) for n in json.loads(out or "[]")}


def kill_netns_processes(netns: str, grace: float = 3.0) -> None:
    """SIGTERM every process in `netns` (`ip netns pids`), then SIGKILL what is left after `grace` seconds."""
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        res = ip("netns", "pids", netns, check=False)
        pids = [int(p) for p in res.stdout.split()] if res.returncode == 0 else []
        if not pids:
            return
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(0.1)


def sweep(plan: Plan) -> list[str]:
    """Remove every namespace and root link of the plan's prefixes, killing what runs inside; returns what it
    removed. Used at start (leftovers of a killed supervisor) and by `scripts/cluster.sh down`."""
    removed = []
    for ns in netns_list(plan):
        kill_netns_processes(ns)
        ip("netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    for name in links(plan):
        ip("link", "del", name, check=False)
        removed.append(f"link {name}")
    return removed
