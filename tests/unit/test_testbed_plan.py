"""scripts/testbed/plan: Traefik's namespace, links and address, beside the other parts of each instance."""

from __future__ import annotations

import ipaddress

import pytest

from scripts.testbed import plan


def every_link(bed: plan.Plan) -> list[plan.Link]:
    return [
        bed.apps_link(),
        bed.eg_link(),
        bed.traefik_link(),
        bed.traefik_apps_link(),
        *(
            f(slot)
            for slot in (1, plan.MAX_SLOTS)
            for f in (bed.gateway_link, bed.gateway_apps_link, bed.gateway_eg_link)
        ),
    ]


def test_instance_0_traefik() -> None:
    bed = plan.load(0)
    assert bed.traefik_netns == "gcbed-traefik"
    assert bed.traefik_link() == plan.Link("gcb-t0", "10.242.0.9", "gcb-t1", "10.242.0.10", "gcbed-traefik")
    assert bed.traefik_apps_link() == plan.Link(
        "gcb-t2", "10.242.0.13", "gcb-t3", "10.242.0.14", "gcbed-apps"
    )
    assert bed.traefik_address == "10.242.0.17"


def test_instance_3_shifts_traefik_like_everything_else() -> None:
    bed = plan.load(3)
    assert bed.traefik_netns == "gcbed-traefik-i3"
    assert bed.traefik_link().outer == "gcb-t0-i3" and bed.traefik_apps_link().inner == "gcb-t3-i3"
    assert bed.traefik_apps_link().netns == "gcbed-apps-i3"
    assert bed.traefik_address == "10.239.0.17"
    assert bed.owns_netns(bed.traefik_netns) and not plan.load(0).owns_netns(bed.traefik_netns)


@pytest.mark.parametrize("instance", range(plan.instances()))
def test_links_and_the_traefik_address_never_overlap(instance: int) -> None:
    bed = plan.load(instance)
    links = every_link(bed)
    subnets = [ipaddress.ip_network(f"{link.outer_ip}/30", strict=False) for link in links]
    assert len(set(subnets)) == len(subnets), subnets
    for link, subnet in zip(links, subnets, strict=True):
        # the two ends are the /30's two host addresses
        assert {link.outer_ip, link.inner_ip} == {str(h) for h in subnet.hosts()}, link
        assert len(link.outer) <= 15 and len(link.inner) <= 15, link  # IFNAMSIZ
        assert bed.owns_link(link.outer) and bed.owns_link(link.inner), link
    address = ipaddress.ip_address(bed.traefik_address)
    assert address in ipaddress.ip_network(bed.link_cidr)
    assert not any(address in subnet for subnet in subnets), address
    for other in (bed.pod_cidr, bed.service_cidr, bed.node_cidr):
        assert address not in ipaddress.ip_network(other), other


def test_the_shell_variables_name_traefik() -> None:
    values = dict(line.split("=", 1) for line in plan.load(1).shell().splitlines())
    assert values["BED_TRAEFIK_NETNS"] == "gcbed-traefik-i1"
    assert values["BED_TRAEFIK_ADDRESS"] == "10.241.0.17"
