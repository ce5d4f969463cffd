"""The netns mode's network plan: names within the kernel's limits, addresses and routes."""

from __future__ import annotations

import pytest

from tinykube.network import plan


def three_nodes() -> plan.ClusterNetwork:
    return plan.cluster_network("tk123abc", ["kube-node1", "kube-node2", "kube-node3"],
                                ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"],
                                "10.96.0.10")


@pytest.mark.parametrize(("index", "netns", "address", "gateway", "routes"), [
    pytest.param(0, "tk123abc-n0", "100.64.0.1", "10.244.0.1",
                 (("10.244.1.0/24", "100.64.0.2"), ("10.244.2.0/24", "100.64.0.3")), id="first"),
    pytest.param(2, "tk123abc-n2", "100.64.0.3", "10.244.2.1",
                 (("10.244.0.0/24", "100.64.0.1"), ("10.244.1.0/24", "100.64.0.2")), id="last"),
])
def test_nodes(index: int, netns: str, address: str, gateway: str,
               routes: tuple[tuple[str, str], ...]) -> None:
    node = three_nodes().nodes[index]
    assert (node.netns, node.address, node.gateway, node.routes) == (netns, address, gateway,
                                                                     routes)
    assert node.netns_path == f"/run/netns/{netns}"
    assert node.dns_address == "10.96.0.10"


def test_lookup_by_node_name() -> None:
    network = three_nodes()
    assert network.node("kube-node2").underlay_if == "n1"
    with pytest.raises(KeyError):
        network.node("other")


def test_pod_names_fit_the_kernel_and_stay_in_the_cluster() -> None:
    network = three_nodes()
    pod = plan.pod_network(network.nodes[1], network.prefix,
                           "0f9e8d7c-6b5a-4321-8765-43210fedcba9", "10.244.1.7")
    assert pod.netns == "tk123abc-p0f9e8d7c6b"
    assert pod.host_if == "veth0f9e8d7c6b" and len(pod.host_if) <= 15  # IFNAMSIZ - 1
    assert (pod.address, pod.prefixlen, pod.gateway) == ("10.244.1.7", 24, "10.244.1.1")
    assert network.owns(pod.netns) and not network.owns("tk999999-n0")


def test_prefix_names_the_data_directory() -> None:
    assert plan.cluster_prefix("/a") == plan.cluster_prefix("/a") != plan.cluster_prefix("/b")
    assert len(plan.cluster_prefix("/a")) == 8
