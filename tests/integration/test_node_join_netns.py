"""`tinykube node --network netns`: a node on a second "host" joins a netns-mode cluster (root).

`tinykube up --network netns` runs node `ha`; `tinykube node --network netns` runs node `hb` in a
namespace of its own whose eth0 joins the cluster's underlay (the hosts' network) at
100.64.0.200. Its Node takes the next /24, both sides route to each other's pods from the Nodes
(`kubelet/noderoutes.py`), and a process pod on `hb` gets an address of that range and a DNS
name (`web.svc.default.svc.cluster.local`, from a headless Service), and serves a pod on `ha`
by that name; the server sees the client's own address. After the node stops, its namespaces
are gone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, NETNS_CLUSTERS, Cluster, Kubectl, start_cluster, until
from tests.integration.joining import Node, pod_cidr, ready, running_ip
from tinykube.network import netns, plan

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.kubectl,
    pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None
                       or shutil.which("nft") is None, reason="needs root, iproute2, nftables"),
]
SERVER = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  runtimeClassName: process
  nodeName: hb
  hostname: web
  subdomain: svc
  containers:
  - name: web
    image: python
    command: [python3, -u, -m, http.server, --bind, 0.0.0.0, "8080"]
    readinessProbe: {httpGet: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  runtimeClassName: process
  nodeName: ha
  containers:
  - {name: client, image: python, command: [sleep, "3600"]}
"""
FETCH = ("import urllib.request; print(urllib.request.urlopen("
         "'http://web.svc.default.svc.cluster.local:8080/', timeout=5).status)")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", "--network", "netns", "--nodes", "ha",
                            "--default-runtime", "virtual")
    yield running
    running.stop()


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


def test_a_node_on_another_host_serves_pods_of_the_first(cluster: Cluster, kctl: Kubectl,
                                                         tmp_path: Path) -> None:
    underlay = plan.cluster_prefix(str(cluster.data_dir.resolve())) + "-ul"
    joined_prefix = plan.cluster_prefix(str((tmp_path / "hb").resolve()))
    NETNS_CLUSTERS.add(joined_prefix)
    kctl("apply", "-f", "-", input=SERVER)  # the server waits for hb, the client starts now
    node = Node(tmp_path, "hb", "--network", "netns", "--kubeconfig", str(cluster.kubeconfig),
                "--underlay-netns", underlay, "--node-address", "100.64.0.200",
                "--default-runtime", "process", "--proxy")
    try:
        until(lambda: ready(kctl, "hb"), 30, "hb Ready")
        assert pod_cidr(kctl, "hb") == "10.244.1.0/24"
        ip = until(lambda: running_ip(kctl, "web"), 40, "the server on hb")
        assert ip.startswith("10.244.1.")
        client_ip = until(lambda: running_ip(kctl, "client"), 40, "the client on ha")
        assert client_ip.startswith("10.244.0.")
        until(lambda: kctl.run("exec", "client", "--", "python3", "-c", FETCH,
                               check=False).stdout.strip() == "200", 30,
              "the client on ha to fetch from hb by name")
        assert until(lambda: f"{client_ip} - - " in kctl("logs", "web"), 10,
                     "the server to log the client's own address")
    finally:
        node.stop()
    assert [n for n in netns.names() if n.startswith(joined_prefix + "-")] == []
