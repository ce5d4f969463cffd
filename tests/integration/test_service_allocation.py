"""Service cluster IP and NodePort allocation against a real `tinykube up`, as kube-apiserver does.

- the `kubernetes` Service holds the first address of the service range and `kube-dns` the
  tenth, with kubeadm's ports;
- a requested free address in the range is honoured; an address in use or outside the range,
  and a NodePort in use or outside 30000-32767, get a 422 with kube-apiserver's message
  (`pkg/registry/core/service/storage/alloc.go`: `failed to allocate IP <ip>: <err>` on
  `spec.clusterIPs` with the whole list as the value; `ipallocator.ErrAllocated` /
  `ErrNotInRange`, `portallocator.ErrAllocated` / `ErrNotInRange`);
- automatic allocations never repeat and never take the reserved addresses; deleting a Service
  releases its address and port;
- a restart rebuilds the allocations from the stored Services;
- `--service-cidr 10.96.0.0/12` moves all of it (only API calls: nothing is sent to those
  addresses, and `--no-proxy` keeps anything from binding them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster, start_cluster
from tests.integration.api_http import Connection, Reply, Server

SERVICES = "/api/v1/namespaces/default/services"
NODE_PORTS = range(30000, 32768)
FLAGS = ("--no-dns", "--no-proxy")


def service(name: str, ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"ports": ports or [{"port": 80}], **spec}}


def node_port_service(name: str, port: int) -> dict[str, Any]:
    return service(name, type="NodePort", ports=[{"port": 80, "nodePort": port}])


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.body[:1000]
    body: dict[str, Any] = reply.json()
    return body


def invalid(reply: Reply, name: str, field: str, message: str) -> None:
    """A 422 whose message is kube-apiserver's `Service "<name>" is invalid: <field>: <message>`."""
    assert reply.status == 422, reply.body[:1000]
    status = reply.json()
    assert (status["reason"], status["code"]) == ("Invalid", 422)
    assert status["message"] == f'Service "{name}" is invalid: {field}: {message}'
    assert [cause["field"] for cause in status["details"]["causes"]] == [field]


def refused_ip(reply: Reply, name: str, ip: str, reason: str) -> None:
    """A 422 on spec.clusterIPs ending in `failed to allocate IP <ip>: <reason>`, whatever the
    printed value (see `test_a_refused_address_message_is_kube_apiservers`)."""
    assert reply.status == 422, reply.body[:1000]
    status = reply.json()
    assert (status["reason"], status["code"]) == ("Invalid", 422)
    prefix = f'Service "{name}" is invalid: spec.clusterIPs: Invalid value: '
    assert status["message"].startswith(prefix), status["message"]
    assert status["message"].endswith(f": failed to allocate IP {ip}: {reason}"), status["message"]
    assert [cause["field"] for cause in status["details"]["causes"]] == ["spec.clusterIPs"]


IN_USE = "provided IP is already allocated"


def out_of_range(ip: str, cidr: str) -> str:
    return (f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is "
            f"{cidr}")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("allocation") / "data", *FLAGS)
    yield cluster
    assert cluster.stop() == 0


@pytest.fixture
def conn(running: Cluster) -> Iterator[Connection]:
    connection = Server(running.url, running.data_dir).connect()
    yield connection
    connection.close()


def delete(conn: Connection, name: str) -> None:
    reply = conn.request("DELETE", f"{SERVICES}/{name}")
    assert reply.status == 200, reply.body


def cluster_ip(obj: dict[str, Any]) -> str:
    spec = obj["spec"]
    assert spec["clusterIPs"] == [spec["clusterIP"]], spec
    return str(spec["clusterIP"])


# --- the built-in Services -----------------------------------------------------------------

BUILTIN = {
    "kubernetes": ("default", "kubernetes", 1, [("https", 443, "TCP")]),
    "kube-dns": ("kube-system", "kube-dns", 10,
                 [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]),
}


def check_builtin(conn: Connection, cidr: str, namespace: str, name: str, nth: int,
                  ports: list[tuple[str, int, str]]) -> None:
    reply = conn.request("GET", f"/api/v1/namespaces/{namespace}/services/{name}")
    assert reply.status == 200, reply.body
    obj = reply.json()
    network = ipaddress.ip_network(cidr)
    assert cluster_ip(obj) == str(network.network_address + nth)
    assert [(p["name"], p["port"], p["protocol"]) for p in obj["spec"]["ports"]] == ports
    assert obj["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize(("namespace", "name", "nth", "ports"), BUILTIN.values(),
                         ids=BUILTIN.keys())
def test_builtin_services_hold_the_first_and_tenth_address(
        conn: Connection, namespace: str, name: str, nth: int,
        ports: list[tuple[str, int, str]]) -> None:
    check_builtin(conn, "127.96.0.0/16", namespace, name, nth, ports)


# --- requested addresses -------------------------------------------------------------------

def test_a_requested_free_address_is_honoured(conn: Connection) -> None:
    obj = created(conn.request("POST", SERVICES, service("wanted", clusterIP="127.96.200.7")))
    assert cluster_ip(obj) == "127.96.200.7"
    by_list = created(conn.request("POST", SERVICES,
                                   service("wanted-list", clusterIPs=["127.96.200.8"])))
    assert cluster_ip(by_list) == "127.96.200.8"


REFUSED_IPS = {
    # id -> (requested clusterIP, reason); 127.96.201.1 is held by the `refused` fixture's
    # first Service
    "kubernetes-address": ("127.96.0.1", IN_USE),
    "kube-dns-address": ("127.96.0.10", IN_USE),
    "another-services-address": ("127.96.201.1", IN_USE),
    "outside-the-range": ("10.0.0.5", out_of_range("10.0.0.5", "127.96.0.0/16")),
    "network-address": ("127.96.0.0", out_of_range("127.96.0.0", "127.96.0.0/16")),
    "broadcast-address": ("127.96.255.255", out_of_range("127.96.255.255", "127.96.0.0/16")),
}


@pytest.fixture(scope="module")
def refused(running: Cluster) -> dict[str, Reply]:
    """Each refused request of REFUSED_IPS, sent once: id -> reply."""
    conn = Server(running.url, running.data_dir).connect()
    try:
        created(conn.request("POST", SERVICES, service("holder", clusterIP="127.96.201.1")))
        return {ident: conn.request("POST", SERVICES, service(f"refused-{ident}", clusterIP=ip))
                for ident, (ip, _) in REFUSED_IPS.items()}
    finally:
        conn.close()


@pytest.mark.parametrize(("ip", "reason"), REFUSED_IPS.values(), ids=REFUSED_IPS.keys())
def test_a_requested_address_in_use_or_out_of_range_is_422(
        refused: dict[str, Reply], request: pytest.FixtureRequest, ip: str,
        reason: str) -> None:
    ident = request.node.callspec.id
    refused_ip(refused[ident], f"refused-{ident}", ip, reason)


@pytest.mark.parametrize(("ip", "reason"), REFUSED_IPS.values(), ids=REFUSED_IPS.keys())
def test_a_refused_address_message_is_kube_apiservers(
        refused: dict[str, Reply], request: pytest.FixtureRequest, ip: str,
        reason: str) -> None:
    ident = request.node.callspec.id
    assert refused[ident].json()["message"] == (
        f'Service "refused-{ident}" is invalid: spec.clusterIPs: Invalid value: '
        f'[]string{{"{ip}"}}: failed to allocate IP {ip}: {reason}')


@pytest.mark.parametrize("field", ["clusterIP", "clusterIPs"])
def test_a_refused_request_does_not_free_the_address_it_asked_for(conn: Connection,
                                                                   field: str) -> None:
    ip = "127.96.202.1" if field == "clusterIP" else "127.96.202.2"
    value: Any = ip if field == "clusterIP" else [ip]
    created(conn.request("POST", SERVICES, service(f"holder-{field.lower()}", **{field: value})))
    for attempt in range(2):
        name = f"squatter-{field.lower()}-{attempt}"
        refused_ip(conn.request("POST", SERVICES, service(name, **{field: value})), name, ip,
                   IN_USE)


# --- automatic allocation ------------------------------------------------------------------

def test_automatic_addresses_never_repeat_and_skip_the_reserved(conn: Connection) -> None:
    taken = {cluster_ip(svc) for svc in conn.request("GET", "/api/v1/services").json()["items"]
             if svc["spec"].get("clusterIP") not in (None, "None")}
    ips = [cluster_ip(created(conn.request("POST", SERVICES, service(f"auto-{n}"))))
           for n in range(30)]
    assert len(set(ips)) == 30, ips
    assert not set(ips) & taken
    assert not set(ips) & {"127.96.0.1", "127.96.0.10"}
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("127.96.0.0/16") for ip in ips)


def test_delete_releases_the_address(conn: Connection) -> None:
    ip = cluster_ip(created(conn.request("POST", SERVICES, service("release-me"))))
    delete(conn, "release-me")
    again = created(conn.request("POST", SERVICES, service("reuse", clusterIP=ip)))
    assert cluster_ip(again) == ip
    refused_ip(conn.request("POST", SERVICES, service("reuse-twice", clusterIP=ip)),
               "reuse-twice", ip, IN_USE)


# --- NodePorts -----------------------------------------------------------------------------

def node_port(obj: dict[str, Any]) -> int:
    port = obj["spec"]["ports"][0]["nodePort"]
    assert isinstance(port, int)
    return port


def test_node_port_service_gets_a_port_in_the_range(conn: Connection) -> None:
    ports = [node_port(created(conn.request("POST", SERVICES, service(f"np-{n}",
                                                                      type="NodePort"))))
             for n in range(5)]
    assert all(port in NODE_PORTS for port in ports), ports
    assert len(set(ports)) == 5
    two = created(conn.request("POST", SERVICES, service(
        "np-two", type="NodePort", ports=[{"name": "a", "port": 80},
                                          {"name": "b", "port": 81}])))
    both = [p["nodePort"] for p in two["spec"]["ports"]]
    assert len(set(both)) == 2 and not set(both) & set(ports)


@pytest.mark.parametrize("port", [40000, 29999, 32768, 80])
def test_a_requested_node_port_outside_the_range_is_422(conn: Connection, port: int) -> None:
    name = f"np-out-{port}"
    invalid(conn.request("POST", SERVICES, node_port_service(name, port)), name,
            "spec.ports[0].nodePort", f"Invalid value: {port}: provided port is not in the "
            "valid range. The range of valid ports is 30000-32767")


def test_a_requested_node_port_in_use_is_422(conn: Connection) -> None:
    port = 31999
    assert node_port(created(conn.request("POST", SERVICES,
                                          node_port_service("np-holder", port)))) == port
    invalid(conn.request("POST", SERVICES, node_port_service("np-second", port)), "np-second",
            "spec.ports[0].nodePort", f"Invalid value: {port}: provided port is already allocated")


def test_delete_releases_the_node_port(conn: Connection) -> None:
    port = node_port(created(conn.request("POST", SERVICES, service("np-release-me",
                                                                    type="NodePort"))))
    delete(conn, "np-release-me")
    assert node_port(created(conn.request("POST", SERVICES,
                                          node_port_service("np-reuse", port)))) == port
    invalid(conn.request("POST", SERVICES, node_port_service("np-reuse-twice", port)),
            "np-reuse-twice", "spec.ports[0].nodePort",
            f"Invalid value: {port}: provided port is already allocated")


def test_a_refused_request_does_not_free_the_node_port_it_asked_for(conn: Connection) -> None:
    port = 31888
    created(conn.request("POST", SERVICES, node_port_service("np-keeper", port)))
    for attempt in range(2):
        name = f"np-squatter-{attempt}"
        invalid(conn.request("POST", SERVICES, node_port_service(name, port)), name,
                "spec.ports[0].nodePort",
                f"Invalid value: {port}: provided port is already allocated")


# --- restart and another range -------------------------------------------------------------

def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_cluster(data_dir, *FLAGS)
    conn = Server(first.url, data_dir).connect()
    try:
        kept_ip = cluster_ip(created(conn.request("POST", SERVICES,
                                                  service("kept", clusterIP="127.96.0.2"))))
        kept_port = node_port(created(conn.request("POST", SERVICES, service(
            "kept-np", type="NodePort"))))
        before = {cluster_ip(created(conn.request("POST", SERVICES, service(f"before-{n}"))))
                  for n in range(5)}
    finally:
        conn.close()
    assert first.stop() == 0

    second = start_cluster(data_dir, *FLAGS)
    conn = Server(second.url, data_dir).connect()
    try:
        # New allocations first: the allocators start again from the bottom of their ranges,
        # where the kept address and port are.
        after = [created(conn.request("POST", SERVICES, service(f"after-{n}", type="NodePort")))
                 for n in range(10)]
        after_ips = {cluster_ip(obj) for obj in after}
        assert len(after_ips) == 10
        assert not after_ips & (before | {kept_ip, "127.96.0.1", "127.96.0.10"})
        after_ports = {node_port(obj) for obj in after}
        assert len(after_ports) == 10 and kept_port not in after_ports
        refused_ip(conn.request("POST", SERVICES, service("dup", clusterIP=kept_ip)), "dup",
                   kept_ip, IN_USE)
        invalid(conn.request("POST", SERVICES, node_port_service("dup-np", kept_port)),
                "dup-np", "spec.ports[0].nodePort",
                f"Invalid value: {kept_port}: provided port is already allocated")
    finally:
        conn.close()
        assert second.stop() == 0


def test_service_cidr_option_moves_every_allocation(tmp_path: Path) -> None:
    cidr = "10.96.0.0/12"
    cluster = start_cluster(tmp_path / "data", *FLAGS, "--service-cidr", cidr)
    conn = Server(cluster.url, cluster.data_dir).connect()
    try:
        for namespace, name, nth, ports in BUILTIN.values():
            check_builtin(conn, cidr, namespace, name, nth, ports)
        wanted = created(conn.request("POST", SERVICES, service("wanted",
                                                                clusterIP="10.100.1.2")))
        assert cluster_ip(wanted) == "10.100.1.2"
        auto = cluster_ip(created(conn.request("POST", SERVICES, service("auto"))))
        assert ipaddress.ip_address(auto) in ipaddress.ip_network(cidr)
        assert auto not in ("10.96.0.1", "10.96.0.10", "10.100.1.2")
        reply = conn.request("POST", SERVICES, service("old-range", clusterIP="127.96.0.5"))
        assert reply.status == 422, reply.body
        assert reply.json()["message"].endswith(
            "failed to allocate IP 127.96.0.5: the provided IP (127.96.0.5) is not in the valid "
            f"range. The range of valid IPs is {cidr}")
    finally:
        conn.close()
        assert cluster.stop() == 0
