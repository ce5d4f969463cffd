"""A pod's DNS config as the kubelet's dns.go forms it: the host's resolver file, dnsPolicy,
dnsConfig, and kube's limits with their `DNSConfigForming` events (cases from dns_test.go)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tinykube.kubelet import dnsconfig
from tinykube.kubelet.dnsconfig import DNSConfig, HostResolver

HOST = HostResolver("/etc/resolv.conf", DNSConfig(["10.0.0.2"], ["corp.example"], ["edns0"]))
CLUSTER = ["team.svc.cluster.local", "svc.cluster.local", "cluster.local"]
FALLBACK = ("MissingClusterDNS", 'kubelet does not have ClusterDNS IP configured and cannot '
            'create Pod using "ClusterFirst" policy. Falling back to "Default" policy.')


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-0", "namespace": "team"}, "spec": spec}


def test_parse_keeps_the_last_search_line_without_trailing_dots() -> None:
    text = ("# comment\n; other\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch old.example\n"
            "search corp.example. . lab.example\noptions ndots:2 edns0\noptions ndots:3\n")
    assert dnsconfig.parse(text) == DNSConfig(["10.0.0.2", "10.0.0.3"],
                                              ["corp.example", "lab.example"],
                                              ["ndots:3", "edns0"])


@pytest.mark.parametrize(("spec", "cluster_dns", "host", "expected", "events"), [
    pytest.param({}, "10.96.0.10", HOST,
                 DNSConfig(["10.96.0.10"], [*CLUSTER, "corp.example"], ["ndots:5"]), [],
                 id="cluster-first-appends-host-search"),
    pytest.param({}, "10.96.0.10", HostResolver("/r", DNSConfig([], ["cluster.local", "x.io"])),
                 DNSConfig(["10.96.0.10"], [*CLUSTER, "x.io"], ["ndots:5"]), [],
                 id="duplicates-omitted"),
    pytest.param({"dnsPolicy": "Default"}, "10.96.0.10", HOST, HOST.config, [],
                 id="default-copies-host"),
    pytest.param({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, "10.96.0.10", HOST,
                 HOST.config, [], id="host-network-cluster-first-is-default"),
    pytest.param({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}, "10.96.0.10",
                 HOST, DNSConfig(["10.96.0.10"], [*CLUSTER, "corp.example"], ["ndots:5"]), [],
                 id="cluster-first-with-host-net"),
    pytest.param({}, None, HOST, HOST.config, [FALLBACK], id="no-cluster-dns-falls-back"),
    pytest.param({"dnsPolicy": "Default"}, "10.96.0.10", HostResolver("", DNSConfig()),
                 DNSConfig(["127.0.0.1"], ["."], []), [], id="empty-resolv-conf-flag"),
    pytest.param({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["9.9.9.9"],
                                                     "searches": ["a.example"]}},
                 "10.96.0.10", HOST, DNSConfig(["9.9.9.9"], ["a.example"], []), [],
                 id="none-uses-only-dns-config"),
    pytest.param({"dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["corp.example", "b.io"],
                                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
                 "10.96.0.10", HOST,
                 DNSConfig(["10.96.0.10", "1.1.1.1"], [*CLUSTER, "corp.example", "b.io"],
                           ["ndots:2", "edns0"]), [], id="dns-config-appended-and-merged"),
])
def test_pod_dns(spec: dict[str, Any], cluster_dns: str | None, host: HostResolver,
                 expected: DNSConfig, events: list[tuple[str, str]]) -> None:
    assert dnsconfig.pod_dns(pod(**spec), cluster_dns, host) == (expected, events)


def test_nameservers_cut_to_three() -> None:
    spec = {"dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"]}}
    config, events = dnsconfig.pod_dns(pod(**spec), "10.96.0.10", HOST)
    assert config.servers == ["10.96.0.10", "1.1.1.1", "8.8.8.8"]
    assert events == [("DNSConfigForming", "Nameserver limits were exceeded, some nameservers "
                       "have been omitted, the applied nameserver line is: "
                       "10.96.0.10 1.1.1.1 8.8.8.8")]


@pytest.mark.parametrize(("searches", "kept"), [
    pytest.param([f"d{i}.example" for i in range(28)], 32, id="32-paths-fit"),
    pytest.param([f"d{i}.example" for i in range(29)], 32, id="33-paths-cut-to-32"),
    pytest.param(["x" * 254, "ok.example"], 5, id="over-253-chars-dropped"),
    pytest.param([f"{i:02d}" + "y" * 197 for i in range(11)], 13, id="2048-chars"),
])
def test_search_limits(searches: list[str], kept: int) -> None:
    config, events = dnsconfig.pod_dns(pod(dnsConfig={"searches": searches}), "10.96.0.10",
                                       HOST)
    assert len(config.searches) == kept and len(" ".join(config.searches)) <= 2048
    assert config.searches[:4] == [*CLUSTER, "corp.example"][:min(kept, 4)]
    exceeded = len(searches) + 4 != kept
    assert events == ([("DNSConfigForming", "Search Line limits were exceeded, some search "
                        "paths have been omitted, the applied search line is: "
                        + " ".join(config.searches))] if exceeded else [])


def test_read_host(tmp_path: Path) -> None:
    file = tmp_path / "resolv.conf"
    file.write_text("nameserver 127.0.0.1\nsearch corp.example.\n")
    assert dnsconfig.read_host(str(file)) == HostResolver(
        str(file), DNSConfig(["127.0.0.1"], ["corp.example"], []))
    assert dnsconfig.read_host("") == HostResolver("", DNSConfig())
    with pytest.raises(OSError):
        dnsconfig.read_host(str(tmp_path / "missing"))


def test_render() -> None:
    config = DNSConfig(["10.96.0.10"], CLUSTER, ["ndots:5"])
    assert config.render() == ("search team.svc.cluster.local svc.cluster.local cluster.local\n"
                               "nameserver 10.96.0.10\noptions ndots:5\n")
    assert DNSConfig().render() == ""
