"""The address and name plan of the data plane: `addresses.env` is instance 0, `load(I)` computes instance I.

Namespaces and links of instance 0 (`/30` each, inside BED_LINK_CIDR):

    root ── gcb-a0 10.242.0.1 ═══ 10.242.0.2 gcb-a1 ── gcbed-apps     (pod CIDR and node IPs are local here)
    root ── gcb-e0 10.242.0.5 ═══ 10.242.0.6 gcb-e1 ── gcbed-eg       (Envoy Gateway)
    root ── gcb-t0 10.242.0.9 ═══ 10.242.0.10 gcb-t1 ── gcbed-traefik (Traefik; 10.242.0.17 local there)
            gcbed-traefik: gcb-t2 10.242.0.13 ═══ 10.242.0.14 gcb-t3 ── gcbed-apps
    root ── gcb-gK-0 10.242.K.1 ═══ 10.242.K.2 gcb-gK-1 ── gcbed-gw-K  (Envoy of Gateway slot K)
            gcbed-gw-K: gcb-gK-2 10.242.K.5 ═══ 10.242.K.6 gcb-gK-3 ── gcbed-apps
            gcbed-gw-K: gcb-gK-4 10.242.K.9 ═══ 10.242.K.10 gcb-gK-5 ── gcbed-eg

Instance I > 0 ends every name with `-iI` (gcbed-apps-i1, gcb-g3-0-i1) and shifts the addresses.

Envoy Gateway reaches the apiserver at 10.242.0.5 (the root namespace, where it listens on every address);
Envoy K reaches Envoy Gateway's xDS server at 10.242.K.10 and the pods through its own link to the apps
namespace; the host reaches Gateway K's ClusterIP through gcb-gK-0. Traefik (GatewayClass `traefik`, one
process for all its Gateways) reaches the apiserver at 10.242.0.9 and the pods through gcb-t2; its one
address, the status address of every `traefik` Gateway, is 10.242.0.17 (the /30 after its links, no link of
its own), local in gcbed-traefik and routed from the host through gcb-t0. No namespace has a default route and
nothing forwards between namespaces. Envoy Gateway's ports (18000 xDS, 8080/8081, 18002, 19001) are open only
inside gcbed-eg.

Shell: `python3 -m scripts.testbed.plan shell I` prints instance I's BED_* variables (scripts/cluster.sh).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ADDRESSES = Path(__file__).with_name("addresses.env")
MAX_SLOTS = 250


def read_env(path: Path = ADDRESSES) -> dict[str, str]:
    """KEY=VALUE lines of a shell env file (comments and blank lines skipped; no quoting or expansion)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Link:
    """One veth pair: `outer` stays in the namespace it is created from, `inner` moves into `netns`."""

    outer: str
    outer_ip: str
    inner: str
    inner_ip: str
    netns: str


@dataclass(frozen=True)
class Plan:
    instance: int
    pod_cidr: str
    node_pod_cidr: str
    service_cidr: str
    node_ip: str
    node_cidr: str
    link_cidr: str
    netns_prefix: str
    link_prefix: str

    @property
    def suffix(self) -> str:
        """Instance I > 0 ends every name with `-iI`; instance 0's names have no suffix."""
        return f"-i{self.instance}" if self.instance else ""

    def owns(self, name: str, prefix: str) -> bool:
        """`name` (a namespace with the netns prefix, a link with the link prefix) is this instance's."""
        if not name.startswith(prefix):
            return False
        if self.instance:
            return name.endswith(self.suffix)
        return re.search(r"-i\d+$", name) is None

    def owns_netns(self, name: str) -> bool:
        return self.owns(name, self.netns_prefix)

    def owns_link(self, name: str) -> bool:
        return self.owns(name, self.link_prefix)

    @property
    def apps_netns(self) -> str:
        return f"{self.netns_prefix}apps{self.suffix}"

    @property
    def eg_netns(self) -> str:
        return f"{self.netns_prefix}eg{self.suffix}"

    @property
    def traefik_netns(self) -> str:
        return f"{self.netns_prefix}traefik{self.suffix}"

    def gateway_netns(self, slot: int) -> str:
        return f"{self.netns_prefix}gw-{slot}{self.suffix}"

    def _ip(self, slot: int, offset: int) -> str:
        base = ipaddress.ip_network(self.link_cidr).network_address
        return str(base + slot * 256 + offset)

    def apps_link(self) -> Link:
        """Root namespace <-> apps namespace."""
        p, x = self.link_prefix, self.suffix
        return Link(f"{p}a0{x}", self._ip(0, 1), f"{p}a1{x}", self._ip(0, 2), self.apps_netns)

    def eg_link(self) -> Link:
        """Root namespace <-> Envoy Gateway's namespace."""
        p, x = self.link_prefix, self.suffix
        return Link(f"{p}e0{x}", self._ip(0, 5), f"{p}e1{x}", self._ip(0, 6), self.eg_netns)

    def traefik_link(self) -> Link:
        """Root namespace <-> Traefik's namespace (the apiserver, and the host's clients of its address)."""
        p, x = self.link_prefix, self.suffix
        return Link(f"{p}t0{x}", self._ip(0, 9), f"{p}t1{x}", self._ip(0, 10), self.traefik_netns)

    def traefik_apps_link(self) -> Link:
        """Traefik's namespace (outer) <-> the apps namespace (inner): the pods."""
        p, x = self.link_prefix, self.suffix
        return Link(f"{p}t2{x}", self._ip(0, 13), f"{p}t3{x}", self._ip(0, 14), self.apps_netns)

    @property
    def traefik_address(self) -> str:
        """Traefik's entryPoint and the status address of every Gateway of class `traefik`: local in its
        namespace, routed from the root namespace; inside the link range but on no link."""
        return self._ip(0, 17)

    def gateway_link(self, slot: int) -> Link:
        """Root namespace <-> the Envoy namespace of `slot`."""
        self._check(slot)
        p, x = self.link_prefix, self.suffix
        return Link(
            f"{p}g{slot}-0{x}",
            self._ip(slot, 1),
            f"{p}g{slot}-1{x}",
            self._ip(slot, 2),
            self.gateway_netns(slot),
        )

    def gateway_apps_link(self, slot: int) -> Link:
        """The Envoy namespace of `slot` (outer) <-> the apps namespace (inner)."""
        self._check(slot)
        p, x = self.link_prefix, self.suffix
        return Link(
            f"{p}g{slot}-2{x}", self._ip(slot, 5), f"{p}g{slot}-3{x}", self._ip(slot, 6), self.apps_netns
        )

    def gateway_eg_link(self, slot: int) -> Link:
        """The Envoy namespace of `slot` (outer) <-> Envoy Gateway's namespace (inner)."""
        self._check(slot)
        p, x = self.link_prefix, self.suffix
        return Link(
            f"{p}g{slot}-4{x}", self._ip(slot, 9), f"{p}g{slot}-5{x}", self._ip(slot, 10), self.eg_netns
        )

    def shell(self) -> str:
        """The BED_* variables of this instance, as shell assignments."""
        values = {
            "BED_INSTANCE": str(self.instance),
            "BED_POD_CIDR": self.pod_cidr,
            "BED_NODE_POD_CIDR": self.node_pod_cidr,
            "BED_SERVICE_CIDR": self.service_cidr,
            "BED_NODE_IP": self.node_ip,
            "BED_NODE_CIDR": self.node_cidr,
            "BED_LINK_CIDR": self.link_cidr,
            "BED_NETNS_PREFIX": self.netns_prefix,
            "BED_EG_NETNS": self.eg_netns,
            "BED_LINK_PREFIX": self.link_prefix,
            "BED_TRAEFIK_NETNS": self.traefik_netns,
            "BED_TRAEFIK_ADDRESS": self.traefik_address,
        }
        return "".join(f"{k}={v}\n" for k, v in values.items())

    @staticmethod
    def _check(slot: int) -> None:
        if not 1 <= slot <= MAX_SLOTS:
            raise ValueError(f"gateway slot {slot} outside 1..{MAX_SLOTS}")


def instances(path: Path = ADDRESSES) -> int:
    return int(read_env(path)["BED_INSTANCES"])


def _shift(cidr_or_ip: str, octet: int, by: int) -> str:
    """Add `by` to the (0-based) `octet` of an address or CIDR."""
    addr, _, bits = cidr_or_ip.partition("/")
    parts = [int(p) for p in addr.split(".")]
    parts[octet] += by
    if not 0 <= parts[octet] <= 255:
        raise ValueError(f"{cidr_or_ip} shifted by {by} leaves IPv4")
    return ".".join(map(str, parts)) + (f"/{bits}" if bits else "")


def load(instance: int = 0, path: Path = ADDRESSES) -> Plan:
    """Instance `instance` of the plan (addresses.env says how instances shift the ranges)."""
    env = read_env(path)
    if not 0 <= instance < int(env["BED_INSTANCES"]):
        raise ValueError(f"data-plane instance {instance} outside 0..{int(env['BED_INSTANCES']) - 1}")
    return Plan(
        instance=instance,
        pod_cidr=_shift(env["BED_POD_CIDR"], 1, instance),
        node_pod_cidr=_shift(env["BED_NODE_POD_CIDR"], 1, instance),
        service_cidr=_shift(env["BED_SERVICE_CIDR"], 1, instance),
        node_ip=_shift(env["BED_NODE_IP"], 2, instance),
        node_cidr=_shift(env["BED_NODE_CIDR"], 2, instance),
        link_cidr=_shift(env["BED_LINK_CIDR"], 1, -instance),
        netns_prefix=env["BED_NETNS_PREFIX"],
        link_prefix=env["BED_LINK_PREFIX"],
    )


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "shell":
        sys.exit("usage: python3 -m scripts.testbed.plan shell INSTANCE")
    print(load(int(sys.argv[2])).shell(), end="")
