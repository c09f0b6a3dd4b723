"""Network safety: is an address one the project may send traffic to?

Allowed are loopback (127.0.0.0/8, ::1) and addresses the root namespace routes over a veth link of the
project's own (name `gcb-*`; `gcb-*-iI` for data-plane instance I > 0) whose other end lives in a network
namespace of the same instance (`gcbed-*`; `gcbed-*-iI`):
`ip route get ADDR` names the link, `ip -d link` its peer's namespace id, `ip netns list-id` that id's name.
The machine's own addresses (routed `local` on lo), its networks and everything behind its default route are
refused, and so are kwok's node addresses (BED_NODE_CIDR of every instance), which nothing may dial even
though they are routed into an apps namespace.

Call `check_target(addr)` (raises `UnsafeTarget`) before sending load, or from a shell:
    python3 -m scripts.testbed.netcheck ADDR [ADDR ...]    (exit 0: all safe; 1: a refusal, printed)
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from scripts.testbed import plan


class UnsafeTarget(Exception):
    """The address is not loopback and not routed into a namespace of the project."""


def _ip_json(*args: str) -> list[dict[str, Any]]:
    res = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=10)
    if res.returncode != 0:
        raise UnsafeTarget(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return list(json.loads(res.stdout or "[]"))


def host_of(target: str) -> str:
    """The address in a URL (`http://10.96.0.5/version`), `host:port`, or a bare address."""
    if "://" in target:
        return urlsplit(target).hostname or ""
    if target.count(":") == 1:
        return target.split(":", 1)[0]
    return target.strip("[]")


def check_target(target: str) -> str:
    """Return a one-line reason the address is safe, or raise UnsafeTarget saying why it is not."""
    beds = [plan.load(i) for i in range(plan.instances())]
    host = host_of(target)
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise UnsafeTarget(f"{target!r}: not an IP address (names are not resolved here)") from None
    if addr.is_loopback:
        return f"{addr}: loopback"
    for bed in beds:
        if addr in ipaddress.ip_network(bed.node_cidr):
            raise UnsafeTarget(
                f"{addr}: a kwok node address ({bed.node_cidr}); nothing may dial node addresses"
            )
    routes = _ip_json("route", "get", str(addr))
    if not routes:
        raise UnsafeTarget(f"{addr}: no route")
    route = routes[0]
    dev = str(route.get("dev", ""))
    if route.get("type") == "local" or dev == "lo":
        raise UnsafeTarget(f"{addr}: an address of this machine (not loopback)")
    owners = [bed for bed in beds if bed.owns_link(dev)]
    if not owners:
        raise UnsafeTarget(
            f"{addr}: routed via {dev} (gateway {route.get('gateway', '-')}), not into the bed"
        )
    link = _ip_json("-d", "link", "show", "dev", dev)[0]
    kind = (link.get("linkinfo") or {}).get("info_kind")
    nsid = link.get("link_netnsid")
    if kind != "veth" or nsid is None:
        raise UnsafeTarget(f"{addr}: routed via {dev}, which is not a veth into another namespace")
    names = {entry.get("nsid"): entry.get("name") for entry in _ip_json("netns", "list-id")}
    netns = str(names.get(nsid) or "")
    if not owners[0].owns_netns(netns):
        raise UnsafeTarget(
            f"{addr}: {dev}'s peer is in namespace id {nsid} ({netns or 'unnamed'}), not the bed's"
        )
    return f"{addr}: routed via {dev} into {netns}"


def main(argv: list[str]) -> int:
    status = 0
    for target in argv or ["--help"]:
        if target in ("-h", "--help"):
            print(__doc__)
            return 0
        try:
            print(f"ok: {check_target(target)}")
        except UnsafeTarget as err:
            print(f"REFUSED: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
