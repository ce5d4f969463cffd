"""`kubectl top` against a real `tinykube up`: figures from process pods' cgroups.

One cluster serves the module: two nodes, the API server scraping their kubelets every second
(`--metric-resolution 1s`), and in `default` a process pod that allocates and touches 50 MiB,
one that keeps a CPU half busy, and a virtual pod (no counters: never in the figures). Both
kubectls run `top pods`, `top pods -A --containers` and `top nodes`; the official Python
client reads the same objects with CustomObjectsApi. Cgroups need root.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tinykube.api import quantity

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="container cgroups need root")]

MIB = 1 << 20
ALLOCATE = ("import time\nb = bytearray(50 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
            "time.sleep(600)")
# Half a core for at most ten minutes: busy 10 ms, asleep 10 ms.
SPIN = ("import time\nend = time.time() + 600\nwhile time.time() < end:\n"
        "    t = time.time() + 0.01\n    while time.time() < t: pass\n    time.sleep(0.01)")
PODS = f"""
apiVersion: v1
kind: Pod
metadata: {{name: mem, labels: {{app: mem}}}}
spec:
  runtimeClassName: process
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: alloc, image: python, command: [python3, -c, {json.dumps(ALLOCATE)}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: busy, labels: {{app: busy}}}}
spec:
  runtimeClassName: process
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: spin, image: python, command: [python3, -c, {json.dumps(SPIN)}]}}
  - {{name: idle, image: python, command: [sleep, "600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: virt}}
spec:
  runtimeClassName: virtual
  containers: [{{name: c, image: nginx}}]
"""
NODES = ("top-n1", "top-n2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("top") / "data", "--nodes",
                            ",".join(NODES), "--metric-resolution", "1s")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture(scope="module")
def running(kctl: Kubectl) -> None:
    """The three pods, Ready, and figures for both process pods (two scrapes after start)."""
    kctl("apply", "-f", "-", input=PODS)
    kctl("wait", "--for=condition=Ready", "pod/mem", "pod/busy", "pod/virt", "--timeout=60s")
    until(lambda: {"mem", "busy"} <= set(top_pods(kctl)), timeout=60,
          what="metrics of both process pods")


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kubectl(request: pytest.FixtureRequest, cluster: Cluster,
            tmp_path_factory: pytest.TempPathFactory, running: None) -> Kubectl:
    return Kubectl(request.param, cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))


def table(text: str) -> list[list[str]]:
    """kubectl's table output as rows of cells, the header first."""
    return [line.split() for line in text.splitlines() if line.strip()]


def top_pods(kctl: Kubectl, *args: str) -> dict[str, list[str]]:
    result = kctl.run("top", "pods", *args, check=False)
    return {row[0]: row[1:] for row in table(result.stdout)[1:]} if result.returncode == 0 \
        else {}


def mebibytes(cell: str) -> float:
    match = re.fullmatch(r"(\d+)Mi", cell)
    assert match, cell
    return int(match[1])


def millicores(cell: str) -> int:
    match = re.fullmatch(r"(\d+)m", cell)
    assert match, cell
    return int(match[1])


def test_top_pods_shows_memory_and_cpu(kubectl: Kubectl) -> None:
    rows = table(kubectl("top", "pods"))
    assert rows[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    pods = {row[0]: row[1:] for row in rows[1:]}
    assert set(pods) == {"mem", "busy"}  # the virtual pod has no figures
    assert 45 <= mebibytes(pods["mem"][1]) <= 70
    until(lambda: millicores(top_pods(kubectl)["busy"][0]) > 0, timeout=30,
          what="CPU use of the busy pod")


def test_top_pods_all_namespaces_with_containers(kubectl: Kubectl) -> None:
    rows = table(kubectl("top", "pods", "-A", "--containers"))
    assert rows[0] == ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    containers = {(row[0], row[1], row[2]): row[3:] for row in rows[1:]}
    assert set(containers) == {("default", "mem", "alloc"), ("default", "busy", "spin"),
                               ("default", "busy", "idle")}
    assert 45 <= mebibytes(containers["default", "mem", "alloc"][1]) <= 70
    assert mebibytes(containers["default", "busy", "idle"][1]) < 10


def test_top_pods_by_label(kubectl: Kubectl) -> None:
    assert set(top_pods(kubectl, "-l", "app=mem")) == {"mem"}


def test_top_nodes_shows_each_node(kubectl: Kubectl) -> None:
    rows = table(kubectl("top", "nodes"))
    assert rows[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    nodes = {row[0]: row[1:] for row in rows[1:]}
    assert set(nodes) == set(NODES)
    for cpu, cpu_share, memory, memory_share in nodes.values():
        assert millicores(cpu) > 0 and mebibytes(memory) > 0
        assert cpu_share.endswith("%") and memory_share.endswith("%")


# (id, args, message kubectl prints)
ERRORS = [
    ("missing-pod", ("top", "pod", "nope"),
     'Error from server (NotFound): pods "nope" not found'),
    ("virtual-pod", ("top", "pod", "virt"),
     'Error from server (NotFound): podmetrics.metrics.k8s.io "default/virt" not found'),
    ("missing-node", ("top", "node", "nope"),
     'Error from server (NotFound): nodes "nope" not found'),
]


@pytest.mark.parametrize(("args", "message"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_not_found_is_kube_status(kubectl: Kubectl, args: tuple[str, ...],
                                  message: str) -> None:
    result = kubectl.run(*args, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == message


def test_only_virtual_pods_means_metrics_not_available_yet(kubectl: Kubectl) -> None:
    """A namespace whose pods all run nothing: kubectl's own verdict for young pods."""
    namespace = f"virtual-{len(kubectl.binary)}"
    kubectl("create", "namespace", namespace)
    kubectl("run", "v", "-n", namespace, "--image=nginx",
            "--overrides", '{"spec": {"runtimeClassName": "virtual"}}')
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/v", "--timeout=30s")
    result = kubectl.run("top", "pods", "-n", namespace, check=False)
    assert (result.returncode, result.stderr.strip()) == (1, "error: metrics not available yet")


def test_discovery_advertises_the_group(kubectl: Kubectl) -> None:
    """kubectl finds metrics.k8s.io in /apis (aggregated discovery) and asks it directly."""
    result = kubectl.run("-v=8", "top", "pods", timeout=60)
    urls = re.findall(r'verb="GET" url="https://[^/]+(/[^"]*)"', result.stderr) or \
        re.findall(r"GET https://[^/]+(/\S*)", result.stderr)
    assert "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods" in urls
    resources = table(kubectl("api-resources", "--api-group=metrics.k8s.io"))
    assert [row[0] for row in resources[1:]] == ["nodes", "pods"]


@pytest.fixture(scope="module")
def custom(cluster: Cluster, running: None) -> Any:
    api = config.new_client_from_config(str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi(api)


def test_python_client_reads_pod_and_node_metrics(custom: Any) -> None:
    pods = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods",
                                                label_selector="app=mem")
    assert pods["kind"] == "PodMetricsList"
    [mem] = pods["items"]
    assert mem["metadata"]["name"] == "mem"
    window = re.fullmatch(r"(\d+(?:\.\d+)?)s", mem["window"])  # one scrape period
    assert window and 0.5 <= float(window[1]) <= 10, mem["window"]
    memory = quantity.parse(mem["containers"][0]["usage"]["memory"])
    assert memory is not None and 45 * MIB <= memory[0] <= 70 * MIB
    node = custom.get_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes", NODES[0])
    assert node["kind"] == "NodeMetrics" and set(node["usage"]) == {"cpu", "memory"}
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods",
                                            "nope")
    assert caught.value.status == 404


@pytest.mark.parametrize(("field", "shown"), [
    ("podmetrics.containers", "FIELD: containers <[]ContainerMetrics>"),
    ("nodemetrics.usage", "FIELD: usage <map[string]Quantity>"),
])
def test_explain_metrics_kinds(kubectl: Kubectl, field: str, shown: str) -> None:
    text = kubectl("explain", field)
    assert "GROUP:      metrics.k8s.io" in text
    assert shown in text, text
