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

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, NETNS_CLUSTERS, Cluster, Kubectl, start_cluster, until
from tests.integration import oci_registry
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


def container_server(image: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "box"},
        "spec": {"runtimeClassName": "container", "nodeName": "hb",
                 "terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "c", "image": image, "readinessProbe": {
                     "httpGet": {"port": 8080}, "periodSeconds": 1}}]}})


@pytest.fixture
def image(tmp_path: Path) -> Iterator[str]:
    if oci_registry.missing_tools() or shutil.which("runc") is None:
        pytest.skip("needs runc and the registry tools")
    layout = oci_registry.build_busybox(tmp_path, "1")
    with oci_registry.registry(tmp_path, tmp_path / "registry-data") as plain:
        oci_registry.push(layout, "1", f"{plain.host}/demo/busybox:1")
        yield f"{plain.host}/demo/busybox:1"


def box(kctl: Kubectl) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(kctl("get", "pod", "box", "-o", "json"))["status"]
    return status


def fetched(kctl: Kubectl, ip: str) -> bool:
    code = ("import urllib.request; print(urllib.request.urlopen("
            f"'http://{ip}:8080/index.html', timeout=5).status)")
    return kctl.run("exec", "client", "--", "python3", "-c", code,
                    check=False).stdout.strip() == "200"


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def runc_pid(runc_root: Path, cid: str) -> int:
    done = subprocess.run(["runc", "--root", str(runc_root), "state", cid],
                          capture_output=True, text=True, check=True)
    return int(json.loads(done.stdout)["pid"])


def test_a_joined_node_killed_adopts_its_container(cluster: Cluster, kctl: Kubectl,
                                                   image: str, tmp_path: Path) -> None:
    """SIGKILL of `tinykube node --network netns` leaves its namespace, its pod's namespace and
    the pod's runc container running; the node started again keeps them (`netns.join_cluster`,
    `PodNetworking.attach`) and adopts the container: same process, same address, still served
    to a pod of the first host, restartCount 0. A clean stop then removes it all."""
    underlay = plan.cluster_prefix(str(cluster.data_dir.resolve())) + "-ul"
    joined_prefix = plan.cluster_prefix(str((tmp_path / "hb").resolve()))
    NETNS_CLUSTERS.add(joined_prefix)
    kctl("apply", "-f", "-", input=SERVER.split("---")[2] + "---\n" + container_server(image))
    args = ("--network", "netns", "--kubeconfig", str(cluster.kubeconfig), "--underlay-netns",
            underlay, "--node-address", "100.64.0.200", "--default-runtime", "process")
    runc_root = tmp_path / "hb" / "kubelet" / "hb" / "runc"
    node = Node(tmp_path, "hb", *args)
    try:
        until(lambda: box(kctl).get("containerStatuses", [{}])[0].get("ready"), 60,
              "the container on hb ready")
        before = box(kctl)
        ip, cid = before["podIP"], before["containerStatuses"][0]["containerID"]
        assert ip.startswith("10.244.1.") and cid.startswith("runc://")
        pid = runc_pid(runc_root, cid.removeprefix("runc://"))
        until(lambda: running_ip(kctl, "client"), 40, "the client on ha")
        until(lambda: fetched(kctl, ip), 30, "the client on ha to fetch from the container")
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
        os.kill(pid, 0)  # the container runs on without its agent
        assert fetched(kctl, ip)  # and serves: its namespace and routes are still there
        node = Node(tmp_path, "hb", *args)
        until(lambda: ready(kctl, "hb") and fetched(kctl, ip), 30,
              "hb Ready again, the container served")
        after = box(kctl)["containerStatuses"][0]
        assert (after["containerID"], after["restartCount"]) == (cid, 0)
        assert box(kctl)["podIP"] == ip
        assert runc_pid(runc_root, cid.removeprefix("runc://")) == pid  # the same process
        starts = [e for e in json.loads(kctl("get", "events", "--field-selector",
                                             "involvedObject.name=box", "-o", "json"))["items"]
                  if e["reason"] == "Started"]
        assert len(starts) == 1  # no second start
    finally:
        node.stop()
    assert [n for n in netns.names() if n.startswith(joined_prefix + "-")] == []
    until(lambda: gone(pid), 10, f"the container's process {pid} to end with the node")
    assert [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(tmp_path / "hb") in line] == []
