"""Table tests of the pure forwarding-table model: one case per Service/EndpointSlice shape.

Expected tables are written one rule per line:
`IP:PORT/PROTO namespace/name portname -> EP,EP [affinity=SECONDS]`.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proxyobjects import endpoint, endpoint_slice, port, service

from tinykube.proxy import model

HTTP = [port(8080, "http")]
CIP = "127.96.0.10"


def render(table: model.Table) -> list[str]:
    lines = []
    for (ip, number, protocol), rule in table.rules.items():
        targets = ",".join(f"{a}:{p}" for a, p in rule.endpoints) or "(none)"
        line = f"{ip}:{number}/{protocol} {rule.service} {rule.port_name or '-'} -> {targets}"
        if rule.affinity_timeout is not None:
            line += f" affinity={rule.affinity_timeout:g}"
        lines.append(line)
    return sorted(lines)


CASES = [
    pytest.param(
        [service("web", CIP)],
        [endpoint_slice("web", [endpoint("10.0.0.1"), endpoint("10.0.0.2")], HTTP)],
        ["127.96.0.10:80/TCP default/web http -> 10.0.0.1:8080,10.0.0.2:8080"],
        id="ready-endpoints"),
    pytest.param(
        [service("web", CIP)],
        [endpoint_slice("web", [endpoint("10.0.0.1", ready=None), endpoint("10.0.0.2", False),
                                endpoint("10.0.0.3", True, terminating=True),
                                endpoint("10.0.0.4", None, terminating=False)], HTTP)],
        ["127.96.0.10:80/TCP default/web http -> 10.0.0.1:8080,10.0.0.4:8080"],
        id="not-ready-and-terminating-skipped-unset-ready-counts"),
    pytest.param(
        [service("web", CIP)], [],
        ["127.96.0.10:80/TCP default/web http -> (none)"],
        id="no-slices-still-listens"),
    pytest.param(
        [service("web", CIP, port(80, "http"), port(443, "https"))],
        [endpoint_slice("web", [endpoint("10.0.0.1")], [port(8080, "http"), port(8443, "https")]),
         endpoint_slice("web", [endpoint("10.0.0.2")], [port(9443, "https")], name="web-2")],
        ["127.96.0.10:443/TCP default/web https -> 10.0.0.1:8443,10.0.0.2:9443",
         "127.96.0.10:80/TCP default/web http -> 10.0.0.1:8080"],
        id="named-ports-across-slices"),
    pytest.param(
        [service("web", CIP, port(80, "http"))],
        [endpoint_slice("web", [endpoint("10.0.0.1")], [port(8080, "web")])],
        ["127.96.0.10:80/TCP default/web http -> (none)"],
        id="port-name-mismatch"),
    pytest.param(
        [service("dns", CIP, port(53, "dns", "UDP"), port(53, "dns-tcp", "TCP"))],
        [endpoint_slice("dns", [endpoint("10.0.0.1")],
                        [port(5353, "dns", "UDP"), port(5353, "dns-tcp", "TCP")])],
        ["127.96.0.10:53/TCP default/dns dns-tcp -> 10.0.0.1:5353",
         "127.96.0.10:53/UDP default/dns dns -> 10.0.0.1:5353"],
        id="udp-and-tcp"),
    pytest.param(
        [service("web", CIP, port(80, "http", node_port=30080), type_="NodePort")],
        [endpoint_slice("web", [endpoint("10.0.0.1")], HTTP)],
        ["127.0.0.1:30080/TCP default/web http -> 10.0.0.1:8080",
         "127.96.0.10:80/TCP default/web http -> 10.0.0.1:8080"],
        id="nodeport"),
    pytest.param(
        [service("web", CIP, port(80, "http", node_port=30081), type_="LoadBalancer")], [],
        ["127.0.0.1:30081/TCP default/web http -> (none)",
         "127.96.0.10:80/TCP default/web http -> (none)"],
        id="loadbalancer-nodeport"),
    pytest.param(
        [service("web", CIP, external_ips=("127.50.0.1", "192.0.2.7"))], [],
        ["127.50.0.1:80/TCP default/web http -> (none)",
         "127.96.0.10:80/TCP default/web http -> (none)"],
        id="local-external-ips-only"),
    pytest.param(
        [service("web", "None")], [endpoint_slice("web", [endpoint("10.0.0.1")], HTTP)], [],
        id="headless-skipped"),
    pytest.param(
        [{**service("ext", None), "spec": {"type": "ExternalName",
                                           "externalName": "example.com"}}], [], [],
        id="externalname-skipped"),
    pytest.param(
        [service("web", "10.96.0.10")], [], [],
        id="non-local-cluster-ip-skipped"),
    pytest.param(
        [service("web", CIP, port(80, "sctp", "SCTP"))], [], [],
        id="sctp-skipped"),
    pytest.param(
        [service("web", CIP, affinity_timeout=60)],
        [endpoint_slice("web", [endpoint("10.0.0.1")], HTTP)],
        ["127.96.0.10:80/TCP default/web http -> 10.0.0.1:8080 affinity=60"],
        id="client-ip-affinity"),
    pytest.param(
        [service("web", CIP, namespace="a"), service("web", "127.96.0.11", namespace="b")],
        [endpoint_slice("web", [endpoint("10.0.0.1")], HTTP, namespace="a"),
         endpoint_slice("web", [endpoint("10.0.0.2")], HTTP, namespace="b")],
        ["127.96.0.10:80/TCP a/web http -> 10.0.0.1:8080",
         "127.96.0.11:80/TCP b/web http -> 10.0.0.2:8080"],
        id="slices-matched-by-namespace"),
    pytest.param(
        [service("web", CIP)],
        [endpoint_slice("web", [endpoint("10.0.0.1")], HTTP),
         endpoint_slice("web", [endpoint("10.0.0.1")], HTTP, name="web-dup"),
         endpoint_slice("web", [{"addresses": ["web.example"]}], HTTP, name="web-fqdn",
                        address_type="FQDN")],
        ["127.96.0.10:80/TCP default/web http -> 10.0.0.1:8080"],
        id="duplicates-and-fqdn-slices-ignored"),
    pytest.param(
        [service("web", CIP, port(80, ""))],
        [endpoint_slice("web", [endpoint("10.0.0.1")], [{"port": 8080}])],
        ["127.96.0.10:80/TCP default/web - -> 10.0.0.1:8080"],
        id="unnamed-port-default-protocol"),
]


@pytest.mark.parametrize(("services", "slices", "expected"), CASES)
def test_build_table(services: list[Any], slices: list[Any], expected: list[str]) -> None:
    before = copy.deepcopy((services, slices))
    table = model.build_table(services, slices)
    assert render(table) == sorted(expected)
    assert table.conflicts == []
    assert (services, slices) == before, "build_table mutated its input"


def test_conflicting_external_ip_goes_to_the_first_service() -> None:
    services = [service("b", "127.96.0.11", external_ips=("127.50.0.1",)),
                service("a", CIP, external_ips=("127.50.0.1",))]
    table = model.build_table(services, [])
    assert table.rules[("127.50.0.1", 80, "TCP")].service == "default/a"
    assert table.conflicts == [(("127.50.0.1", 80, "TCP"), "default/b")]


@pytest.mark.parametrize(("address", "local"), [
    pytest.param("127.96.0.1", True, id="service-cidr"),
    pytest.param("127.0.0.1", True, id="localhost"),
    pytest.param("::1", True, id="ipv6-loopback"),
    pytest.param("10.96.0.1", False, id="private"),
    pytest.param("not-an-ip", False, id="garbage"),
])
def test_is_loopback(address: str, local: bool) -> None:
    assert model.is_loopback(address) is local
