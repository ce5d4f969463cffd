"""`tinykube node --kubeconfig` joining a running `tinykube up` (host mode).

Node `nj-n2` registers with a /24 of its own, goes Ready, runs the pods scheduled to it, and
its own cluster DNS (on a port of its own) answers for the cluster's Services.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tests.integration.joining import Node, dig, pod_cidr, pod_on, ready, running_ip
from tinykube.testing import free_port

pytestmark = [pytest.mark.kubectl]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", "--nodes", "nj-n1")
    yield running
    running.stop()


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


def test_node_joins_with_a_kubeconfig(cluster: Cluster, kctl: Kubectl, tmp_path: Path) -> None:
    port = free_port()
    node = Node(tmp_path, "nj-n2", "--kubeconfig", str(cluster.kubeconfig),
                "--dns-listen", f"127.0.0.1:{port}")
    try:
        until(lambda: ready(kctl, "nj-n2"), 30, "nj-n2 Ready")
        mine, first = pod_cidr(kctl, "nj-n2"), pod_cidr(kctl, "nj-n1")
        assert mine != first and mine.endswith("/24")
        kctl("apply", "-f", "-", input=pod_on("nj-n2", "there"))
        ip = until(lambda: running_ip(kctl, "there"), 30, "the pod on nj-n2 to run")
        prefix = mine.rsplit(".", 1)[0] + "."
        assert ip.startswith(prefix), (ip, mine)
        kctl("expose", "pod", "there", "--port", "80")
        cluster_ip = kctl("get", "service", "there", "-o", "jsonpath={.spec.clusterIP}")
        assert until(lambda: dig(port, "there.default.svc.cluster.local") == [cluster_ip], 20,
                     "the node's DNS to answer for the Service")
    finally:
        node.stop()


def test_two_nodes_joining_at_once_get_two_ranges(cluster: Cluster, kctl: Kubectl,
                                                  tmp_path: Path) -> None:
    """Node IPAM, not the joining nodes, hands out the ranges: each joining node's Node is
    created without one and waits for the controller's."""
    joining = [Node(tmp_path, name, "--kubeconfig", str(cluster.kubeconfig), "--no-dns",
                    wait=False) for name in ("nj-a", "nj-b")]
    try:
        for node in joining:
            node.wait_running()
        ranges = {name: pod_cidr(kctl, name) for name in ("nj-n1", "nj-a", "nj-b")}
        assert len(set(ranges.values())) == 3, ranges
        assert all(ipaddress.ip_network(r).subnet_of(ipaddress.ip_network("127.244.0.0/16"))
                   and r.endswith("/24") for r in ranges.values()), ranges
        for node in joining:
            assert f"(pods in {ranges[node.name]})" in node.log.read_text()
            until(lambda n=node.name: ready(kctl, n), 30, f"{node.name} Ready")
    finally:
        for node in joining:
            node.stop()


JOINED = """apiVersion: v1
kind: Node
metadata:
  name: nr-j
spec:
  podCIDR: 127.244.1.0/24
  podCIDRs: [127.244.1.0/24]
"""


def test_up_gives_a_node_of_its_own_a_range_no_node_holds(tmp_path: Path) -> None:
    """A restarted `up` with one node more: the new node's /24 skips the one a joined node
    holds, and the old node keeps its own."""
    data, cache = tmp_path / "data", tmp_path / "kubecache"
    cache.mkdir()
    first = start_cluster(data, "--nodes", "nr-a")
    try:
        Kubectl(KUBECTLS[0][1], first.kubeconfig, cache)("create", "-f", "-", input=JOINED)
    finally:
        first.stop()
    second = start_cluster(data, "--nodes", "nr-b,nr-a")
    try:
        kctl = Kubectl(KUBECTLS[0][1], second.kubeconfig, cache)
        assert {n: pod_cidr(kctl, n) for n in ("nr-a", "nr-j", "nr-b")} == {
            "nr-a": "127.244.0.0/24", "nr-j": "127.244.1.0/24", "nr-b": "127.244.2.0/24"}
    finally:
        second.stop()
