"""`tinykube up --network netns`: nodes and pods in network namespaces of their own (root).

The seed as written: `nslookup ... 10.96.0.10` inside a node answers the pods' own 10.244.x.y
addresses; process pods on different nodes reach each other and each sees the other's address
(in host mode every peer is 127.0.0.1); two pods listen on the same port; and the cluster's
namespaces are gone after it stops, also after a SIGKILL (at the next start). Every packet here
is sent from inside a namespace the cluster made, never from the host's own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, TESTDATA, Cluster, Kubectl, start_cluster, until
from tinykube.network import netns, plan

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and iproute2"),
]
NODES = "kube-node1,kube-node2,kube-node3"
SERVER = """
apiVersion: v1
kind: Pod
metadata: {name: NAME, labels: {app: web}}
spec:
  runtimeClassName: process
  nodeName: NODE
  containers:
  - name: web
    image: python
    command: [python3, -u, -m, http.server, --bind, 0.0.0.0, "8080"]
    readinessProbe: {httpGet: {port: 8080}, periodSeconds: 1}
"""
CLIENT = """
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  runtimeClassName: process
  nodeName: kube-node3
  containers:
  - {name: client, image: python, command: [sleep, "3600"]}
"""


def prefix_of(cluster: Cluster) -> str:
    return plan.cluster_prefix(str(cluster.data_dir.resolve()))


def own_namespaces(prefix: str) -> list[str]:
    return [n for n in netns.names() if n.startswith(prefix + "-")]


@pytest.fixture
def net_cluster(tmp_path: Path) -> Iterator[Cluster]:
    # the seed's nginx:1.11 cannot be pulled offline: its pods stay virtual (the default
    # `container` runtime of netns mode is tested in test_container_runtime.py)
    running = start_cluster(tmp_path / "data", "--network", "netns", "--nodes", NODES,
                            "--default-runtime", "virtual",
                            "--node-label", "kube-node3:node=kube-node3")
    yield running
    running.stop()
    assert own_namespaces(prefix_of(running)) == []


@pytest.fixture
def kctl(net_cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], net_cluster.kubeconfig, cache)


def node_exec(cluster: Cluster, node: str, *argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", "tinykube", "node", "exec", "--data-dir",
                             str(cluster.data_dir), node, "--", *argv],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def addresses(nslookup_output: str) -> set[str]:
    answer = nslookup_output.split("Name:", 1)[-1]
    return {line.split()[-1] for line in answer.splitlines() if line.startswith("Address:")}



def test_the_seed_resolves_inside_a_node(net_cluster: Cluster, kctl: Kubectl) -> None:
    kctl("apply", "-f", str(TESTDATA / "web.yaml"))
    kctl("create", "service", "clusterip", "nginx-service", "--tcp=80:80")
    kctl("scale", "sts", "web", "--replicas=2")
    kctl("rollout", "status", "sts/web", "--timeout=60s")
    pods = json.loads(kctl("get", "pods", "-o", "json"))["items"]
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert all(ip.startswith("10.244.") for ip in ips.values()), ips
    headless = node_exec(net_cluster, "kube-node1", "nslookup",
                         "nginx.default.svc.cluster.local", "10.96.0.10")
    assert "Server:\t\t10.96.0.10" in headless
    assert addresses(headless) == {ips["web-0"], ips["web-1"]}
    one = node_exec(net_cluster, "kube-node2", "nslookup",
                    "web-1.nginx.default.svc.cluster.local", "10.96.0.10")
    assert addresses(one) == {ips["web-1"]}
    cluster_ip = kctl("get", "svc", "nginx-service", "-o", "jsonpath={.spec.clusterIP}")
    assert cluster_ip.startswith("10.96.") or cluster_ip.startswith("10.1")
    service = node_exec(net_cluster, "kube-node3", "nslookup",
                        "nginx-service.default.svc.cluster.local", "10.96.0.10")
    assert addresses(service) == {cluster_ip}


def test_pods_have_their_own_addresses_and_ports(net_cluster: Cluster, kctl: Kubectl) -> None:
    for name, node in (("web-a", "kube-node1"), ("web-b", "kube-node1"),
                       ("web-c", "kube-node2")):  # the same port twice on one node
        kctl("apply", "-f", "-", input=SERVER.replace("NAME", name).replace("NODE", node))
    kctl("apply", "-f", "-", input=CLIENT)
    kctl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-b", "pod/web-c",
         "pod/client", "--timeout=60s")
    pods = json.loads(kctl("get", "pods", "-o", "json"))["items"]
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert len(set(ips.values())) == 4
    for server in ("web-a", "web-b", "web-c"):
        code = kctl("exec", "client", "--", "curl", "-s", "-o", "/dev/null", "-w",
                    "%{http_code}", f"http://{ips[server]}:8080/")
        assert code == "200"
        until(lambda server=server: f'{ips["client"]} - - ' in kctl("logs", server))
    inside = kctl("exec", "client", "--", "ip", "-br", "-4", "addr")
    assert ips["client"] in inside and "192.0.2" not in inside  # its own interfaces only
    resolv = kctl("exec", "client", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv
    assert "10.96.0.1" in kctl("exec", "client", "--", "getent", "hosts", "kubernetes")


def test_namespaces_go_with_the_cluster_even_after_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_cluster(data, "--network", "netns", "--nodes", "a,b")
    prefix = prefix_of(first)
    assert len(own_namespaces(prefix)) == 3  # the underlay and two nodes
    children = subprocess.run(["pgrep", "-P", str(first.process.pid)], capture_output=True,
                              text=True, check=False).stdout.split()
    for pid in [*children, str(first.process.pid)]:  # both processes, no clean-up at all
        os.kill(int(pid), signal.SIGKILL)
    first.process.wait()
    assert len(own_namespaces(prefix)) == 3  # left behind...
    second = start_cluster(data, "--network", "netns", "--nodes", "a")
    assert len(own_namespaces(prefix)) == 2  # ...and replaced at the next start
    second.stop()
    assert own_namespaces(prefix) == []


def test_netns_mode_runs_without_dns(tmp_path: Path) -> None:
    running = start_cluster(tmp_path / "data", "--network", "netns", "--nodes", "a", "--no-dns")
    assert len(own_namespaces(prefix_of(running))) == 2
    running.stop()
    assert own_namespaces(prefix_of(running)) == []


def test_netns_mode_says_what_it_needs(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tinykube", "up", "--network", "netns",
                             "--data-dir", str(tmp_path), "--dns-listen", "127.0.0.1:5353"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "--dns-listen does not apply to --network netns" in result.stderr
