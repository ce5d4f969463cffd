"""A node joining another cluster's underlay: its plan, and the routes every netns-mode node
keeps to the other Nodes' pods."""

from __future__ import annotations

import pytest

from tinykube.kubelet.noderoutes import desired_routes, node_facts
from tinykube.network.plan import cluster_network, joined_network, routes_to_nodes


def test_joined_network_is_one_node_on_the_given_underlay() -> None:
    plan = joined_network("tkabcdef", "hb", "10.244.1.0/24", "100.64.0.200", "tk123456-ul",
                          "10.96.0.10", "10.96.0.0/12")
    (node,) = plan.nodes
    assert plan.underlay_netns == "tk123456-ul" and plan.prefix == "tkabcdef"
    assert (node.netns, node.underlay_if, node.address, node.gateway) == (
        "tkabcdef-n0", "jabcdef", "100.64.0.200", "10.244.1.1")
    assert node.routes == () and len(node.underlay_if) <= 15


NODES = [("ha", "10.244.0.0/24", "100.64.0.1"), ("hb", "10.244.1.0/24", "100.64.0.200")]
ROUTES = [
    ("each other's", NODES, "hb", {"10.244.0.0/24": "100.64.0.1"}),
    ("from the other side", NODES, "ha", {"10.244.1.0/24": "100.64.0.200"}),
    ("a node without a range", [*NODES, ("hc", "", "100.64.0.3")], "ha",
     {"10.244.1.0/24": "100.64.0.200"}),
    ("a host-mode node (loopback address) is not routed",
     [*NODES, ("hd", "10.244.9.0/24", "127.0.0.1")], "ha", {"10.244.1.0/24": "100.64.0.200"}),
    ("a bad address is skipped", [*NODES, ("he", "10.244.8.0/24", "nope")], "ha",
     {"10.244.1.0/24": "100.64.0.200"}),
    ("alone", NODES[:1], "ha", {}),
]


@pytest.mark.parametrize(("nodes", "own", "expected"), [c[1:] for c in ROUTES],
                         ids=[c[0] for c in ROUTES])
def test_routes_to_nodes(nodes: list[tuple[str, str, str]], own: str,
                         expected: dict[str, str]) -> None:
    assert routes_to_nodes(nodes, own) == expected


def test_node_facts() -> None:
    node = {"metadata": {"name": "hb"}, "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"addresses": [{"type": "Hostname", "address": "hb"},
                                     {"type": "InternalIP", "address": "100.64.0.200"}]}}
    assert node_facts(node) == ("hb", "10.244.1.0/24", "100.64.0.200")
    assert node_facts({"metadata": {"name": "x"}}) == ("x", "", "")


def test_desired_routes_add_other_hosts_and_keep_the_plan() -> None:
    up = cluster_network("tk000001", ["a", "b"], ["10.244.0.0/24", "10.244.1.0/24"],
                         "10.96.0.10")
    a, b = up.nodes
    nodes = [("a", "10.244.7.0/24", "100.64.0.1"),  # stale: an earlier run's range
             ("b", "10.244.1.0/24", "100.64.0.2"),
             ("hb", "10.244.2.0/24", "100.64.0.200"),  # joined from another host
             ("hx", "10.244.1.0/24", "100.64.0.201")]  # claims a range of the plan
    assert desired_routes(a, list(up.nodes), nodes) == {
        "10.244.1.0/24": "100.64.0.2", "10.244.2.0/24": "100.64.0.200"}
    assert desired_routes(b, list(up.nodes), nodes) == {
        "10.244.0.0/24": "100.64.0.1", "10.244.2.0/24": "100.64.0.200"}
