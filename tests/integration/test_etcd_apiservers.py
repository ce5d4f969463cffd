"""Two API servers on a 3-member etcd: one cluster, whichever server a client talks to.

Writes through A are read and watched through B with the same resourceVersions; concurrent
Service creates split across both never share a cluster IP; two servers updating one object
give 409 to the stale writer; a compacted resourceVersion gives 410 Expired; the `kubernetes`
Endpoints list both servers.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.integration.api_http import Server
from tests.integration.etcd_cluster import EtcdCluster, api_servers, needs_etcd

pytestmark = needs_etcd
SERVICES = 1000
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[tuple[EtcdCluster, Server, Server]]:
    with api_servers(tmp_path_factory.mktemp("etcd"),
                     second=("--etcd-compaction-interval", "1s")) as (etcd, _, (a, b)):
        yield etcd, a, b


def _configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"v": value}}


def _watch_lines(server: Server, path: str, rv: str) -> Iterator[dict[str, Any]]:
    parsed = urllib.parse.urlsplit(server.url)
    assert parsed.hostname and parsed.port
    conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=20,
                                       context=server.ssl_context())
    conn.request("GET", f"{path}?watch=1&resourceVersion={rv}",
                 headers={"Authorization": f"Bearer {server.token}"})
    response = conn.getresponse()
    try:
        if response.status != 200:
            yield {"status": response.status, "body": orjson.loads(response.read())}
            return
        while line := response.readline():
            yield orjson.loads(line)
    finally:
        conn.close()


def test_writes_on_a_are_read_and_watched_on_b(servers: tuple[EtcdCluster, Server, Server],
                                               ) -> None:
    etcd, a, b = servers
    conn_a, conn_b = a.connect(), b.connect()
    created = conn_a.request("POST", CONFIGMAPS, _configmap("shared"))
    assert created.status == 201, created.body
    rv = created.json()["metadata"]["resourceVersion"]
    got = conn_b.request("GET", f"{CONFIGMAPS}/shared")  # a quorum read: no wait needed
    assert got.status == 200 and got.json()["metadata"]["resourceVersion"] == rv
    assert etcd.etcdctl("get", "--print-value-only", "/registry/configmaps/default/shared") \
        .startswith('{"apiVersion":"v1","kind":"ConfigMap"')
    updated = conn_a.request("PUT", f"{CONFIGMAPS}/shared",
                             {**got.json(), "data": {"v": "2"}})
    assert updated.status == 200, updated.body
    new_rv = updated.json()["metadata"]["resourceVersion"]
    assert int(new_rv) > int(rv)
    event = next(_watch_lines(b, CONFIGMAPS, rv))  # B's watch from A's first version
    assert (event["type"], event["object"]["metadata"]["resourceVersion"]) == ("MODIFIED",
                                                                               new_rv)
    listed = conn_b.request("GET", CONFIGMAPS).json()
    assert {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
            for i in listed["items"]}["shared"] == new_rv


def test_stale_update_on_the_other_server_is_a_conflict(
        servers: tuple[EtcdCluster, Server, Server]) -> None:
    _, a, b = servers
    conn_a, conn_b = a.connect(), b.connect()
    stored = conn_a.request("POST", CONFIGMAPS, _configmap("contended")).json()
    first = conn_a.request("PUT", f"{CONFIGMAPS}/contended", {**stored, "data": {"v": "a"}})
    assert first.status == 200, first.body
    second = conn_b.request("PUT", f"{CONFIGMAPS}/contended", {**stored, "data": {"v": "b"}})
    assert second.status == 409, second.body
    assert second.json()["reason"] == "Conflict"
    # without a resourceVersion the write applies to the newest version: nothing is lost
    patched = conn_b.request("PATCH", f"{CONFIGMAPS}/contended", orjson.dumps(
        {"data": {"w": "b"}}), headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status == 200, patched.body
    assert patched.json()["data"] == {"v": "a", "w": "b"}


def _create_services(server: Server, names: list[str]) -> list[tuple[str, int]]:
    """(cluster IP, node port or 0) of each Service created; every tenth is a NodePort one."""
    conn = server.connect()
    taken = []
    for i, name in enumerate(names):
        kind = "NodePort" if i % 10 == 0 else "ClusterIP"
        reply = conn.request("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": kind, "ports": [{"port": 80}]}})
        assert reply.status == 201, reply.body
        spec = reply.json()["spec"]
        taken.append((spec["clusterIP"], spec["ports"][0].get("nodePort", 0)))
    conn.close()
    return taken


def test_concurrent_service_creates_never_share_an_ip(
        servers: tuple[EtcdCluster, Server, Server]) -> None:
    _, a, b = servers
    workers = 8
    chunks = [[f"svc-{w}-{i}" for i in range(SERVICES // workers)] for w in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda job: _create_services(*job),
                           [(a if w % 2 else b, chunk) for w, chunk in enumerate(chunks)])
        taken = [item for chunk in results for item in chunk]
    ips = [ip for ip, _ in taken]
    ports = [port for _, port in taken if port]
    assert len(ips) == SERVICES and len(set(ips)) == SERVICES
    node_ports = sum(len(range(0, len(chunk), 10)) for chunk in chunks)
    assert len(ports) == node_ports and len(set(ports)) == node_ports


def test_compacted_resource_version_is_gone(servers: tuple[EtcdCluster, Server, Server],
                                            ) -> None:
    _, a, _b = servers
    conn = a.connect()
    old = conn.request("POST", CONFIGMAPS, _configmap("old")).json()["metadata"]
    conn.request("PUT", f"{CONFIGMAPS}/old", {**_configmap("old", "2"), "metadata": old})
    deadline = time.monotonic() + 20  # B compacts every second, to the previous second's rev
    while True:
        event = next(_watch_lines(a, CONFIGMAPS, old["resourceVersion"]))
        if event.get("type") == "ERROR":
            break
        assert time.monotonic() < deadline, "never compacted"
        time.sleep(0.2)
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


def test_kubernetes_endpoints_list_both_servers(servers: tuple[EtcdCluster, Server, Server],
                                                ) -> None:
    _, a, b = servers
    conn = a.connect()
    wanted = {urllib.parse.urlsplit(s.url).port for s in (a, b)}
    deadline = time.monotonic() + 20
    while True:
        eps = conn.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes").json()
        ports = {p["port"] for subset in eps.get("subsets") or [] for p in subset["ports"]}
        if ports == wanted:
            break
        assert time.monotonic() < deadline, eps
        time.sleep(0.2)
    leases = conn.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
                          "?labelSelector=apiserver.kubernetes.io/identity%3Dkube-apiserver")
    assert len(leases.json()["items"]) == 2




def _patch_keys(server: Server, keys: list[str]) -> list[int]:
    conn = server.connect()
    statuses = [conn.request("PATCH", f"{CONFIGMAPS}/counter", orjson.dumps(
        {"data": {key: "1"}}), headers={"Content-Type": "application/merge-patch+json"}).status
        for key in keys]
    conn.close()
    return statuses


def test_concurrent_patches_through_both_servers_lose_nothing(
        servers: tuple[EtcdCluster, Server, Server]) -> None:
    _, a, b = servers
    assert a.connect().request("POST", CONFIGMAPS, _configmap("counter")).status == 201
    jobs = [(a if w % 2 else b, [f"k{w}-{i}" for i in range(15)]) for w in range(6)]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        statuses = [s for chunk in pool.map(lambda job: _patch_keys(*job), jobs) for s in chunk]
    assert set(statuses) == {200}
    data = b.connect().request("GET", f"{CONFIGMAPS}/counter").json()["data"]
    assert set(data) == {"v"} | {key for _, keys in jobs for key in keys}


def test_kubeconfig_has_a_context_per_server(servers: tuple[EtcdCluster, Server, Server],
                                             ) -> None:
    _, a, b = servers
    kubeconfig = a.data_dir / "kubeconfig"
    port = urllib.parse.urlsplit(b.url).port
    for context, server in (("tinykube", a), (f"tinykube-{port}", b)):
        out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--context", context,
                              "get", "--raw", "/version"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        assert orjson.loads(out)["major"] == "1"
        view = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "config", "view",
                               "-o", f"jsonpath={{.clusters[?(@.name==\"{context}\")]"
                               ".cluster.server}"], capture_output=True, text=True,
                              timeout=30, check=True).stdout
        assert view == server.url
