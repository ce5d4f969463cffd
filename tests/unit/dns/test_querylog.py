"""The DNS query log (dns.querylog): off costs nothing, on it records every query with its
client, rcode, answers and source (level-1 hits included, on both UDP readers), sampling keeps
one in N, the ring is bounded, drills show up, and the ConfigMap turns it on and off."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.asyncquery
import dns.message
import pytest
from dnstest import StartServer

from tinykube.dns import querylog
from tinykube.dns.querylog import LogSettings, LogSync, QueryLog


def read(log: QueryLog, since: int = 0, **match: str) -> list[dict[str, Any]]:
    pods = {"127.0.0.1": "dns-test/client"}
    entries = [querylog.decode(seq, r, pods.get, lambda key: None) for seq, r in log.since(since)]
    return [e for e in entries if querylog.matches(e, **match)]


async def ask(host: str, port: int, name: str, qtype: str = "A") -> None:
    await dns.asyncquery.udp(dns.message.make_query(name, qtype), host, port=port, timeout=2)


async def test_off_by_default_and_on_records_every_query(start_server: StartServer) -> None:
    live = await start_server()
    assert live.server.querylog is None
    await ask(live.host, live.port, "nginx.default.svc.cluster.local")
    log = QueryLog()
    live.server.set_query_log(log)
    for _ in range(3):  # the first fills the level-1 cache, the others are hits
        await ask(live.host, live.port, "nginx.default.svc.cluster.local")
    await ask(live.host, live.port, "nope.default.svc.cluster.local")
    entries = read(log)
    assert [(e["name"], e["rcode"]) for e in entries] == \
        [("nginx.default.svc.cluster.local.", "NOERROR")] * 3 + \
        [("nope.default.svc.cluster.local.", "NXDOMAIN")]
    first = entries[0]
    assert first["pod"] == "dns-test/client" and first["client"] == "127.0.0.1"
    assert first["type"] == "A" and first["proto"] == "udp"
    assert sorted(a.split()[-1] for a in first["answers"]) == \
        ["10.244.1.10", "10.244.1.11", "10.244.1.13"]
    assert all(e["latencyMs"] >= 0 for e in entries)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert read(log, since=3)[0]["seq"] == 4
    assert [e["name"] for e in read(log, rcode="nxdomain")] == ["nope.default.svc.cluster.local."]
    live.server.set_query_log(None)
    await ask(live.host, live.port, "nginx.default.svc.cluster.local")
    assert len(read(log)) == 4


async def test_source_names_the_object(start_server: StartServer) -> None:
    live = await start_server()
    log = QueryLog()
    live.server.set_query_log(log)
    await ask(live.host, live.port, "nginx-service.default.svc.cluster.local")
    entry = querylog.decode(1, log.ring[0], lambda ip: None,
                            lambda key: live.server.responder.entries[key].source)
    assert entry["source"] == "service default/nginx-service"


async def test_sampling_and_the_ring_bound(start_server: StartServer) -> None:
    live = await start_server()
    log = QueryLog(LogSettings(size=4, sample=3))
    live.server.set_query_log(log)
    for _ in range(12):
        await ask(live.host, live.port, "kubernetes.default.svc.cluster.local")
    assert log.appended == 4 and len(log.ring) == 4
    assert [e["seq"] for e in read(log)] == [1, 2, 3, 4]
    for _ in range(3):
        await ask(live.host, live.port, "kubernetes.default.svc.cluster.local")
    assert [e["seq"] for e in read(log)] == [2, 3, 4, 5]  # the oldest fell out


async def test_drills_appear_in_the_log(start_server: StartServer) -> None:
    live = await start_server()
    log = QueryLog()
    live.server.set_query_log(log)
    live.server.inject("nginx.default.svc.cluster.local", rcode=2, for_seconds=5, id="d1")
    await ask(live.host, live.port, "nginx.default.svc.cluster.local")
    event, query = read(log)
    assert event["event"] and "drill d1 began: rcode=2" in event["note"]
    assert query["rcode"] == "SERVFAIL" and query["note"] == "drill d1: rcode=2"
    assert query["source"] == "drill"


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param({}, None, id="no-data-is-off"),
    pytest.param({"enabled": "false"}, None, id="disabled"),
    pytest.param({"enabled": "true"}, LogSettings(), id="defaults"),
    pytest.param({"enabled": "true", "size": "50", "sample": "10"}, LogSettings(50, 10),
                 id="size-and-sample"),
])
def test_settings_of(data: dict[str, str], expected: LogSettings | None) -> None:
    assert querylog.settings_of({"data": data}) == expected


@pytest.mark.parametrize("data", [{"enabled": "true", "size": "0"},
                                  {"enabled": "true", "sample": "0"},
                                  {"enabled": "true", "size": "x"}])
def test_bad_settings_are_refused(data: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        querylog.settings_of({"data": data})


class FakeServer:
    def __init__(self) -> None:
        self.querylog: QueryLog | None = None

    def set_query_log(self, log: QueryLog | None) -> None:
        self.querylog = log


def test_log_sync_turns_the_log_on_and_off() -> None:
    servers = [FakeServer(), FakeServer()]
    sync = LogSync(lambda: servers)
    on = querylog.configmap(LogSettings(100, 2))
    assert sync.apply(on)
    assert servers[0].querylog is servers[1].querylog is not None
    assert servers[0].querylog.settings == LogSettings(100, 2)
    assert not sync.apply(on)  # unchanged: the log (and what it holds) stays
    assert not sync.apply({**on, "metadata": {"name": "other", "namespace": "kube-system"}})
    assert sync.apply(querylog.configmap(None))
    assert servers[0].querylog is None
    sync.apply(on)
    assert sync.delete(on) and servers[1].querylog is None


@pytest.mark.parametrize(("entry", "match", "expected"), [
    ({"pod": "other/client", "name": "nginx.default.svc.cluster.local.", "rcode": "NOERROR"},
     {"pod": "client"}, True),
    ({"pod": "other/client", "name": "a.", "rcode": "NOERROR"}, {"pod": "other/client"}, True),
    ({"pod": "other/client", "name": "a.", "rcode": "NOERROR"}, {"pod": "web-0"}, False),
    ({"pod": "", "name": "nginx.default.svc.cluster.local.", "rcode": "NOERROR"},
     {"name": "nginx.default.svc.cluster.local"}, True),
    ({"pod": "", "name": "nginx.default.svc.cluster.local.", "rcode": "NOERROR"},
     {"name": "svc.cluster.local."}, True),
    ({"pod": "", "name": "xnginx.default.", "rcode": "NOERROR"}, {"name": "nginx.default"},
     False),
    ({"pod": "", "name": "a.", "rcode": "NXDOMAIN"}, {"rcode": "NOERROR"}, False),
    ({"event": True}, {}, True),
    ({"event": True}, {"rcode": "NXDOMAIN"}, False),
])
def test_matches(entry: dict[str, Any], match: dict[str, str], expected: bool) -> None:
    assert querylog.matches(entry, **match) is expected


async def test_tcp_and_forwarded_queries_are_logged(start_server: StartServer) -> None:
    from dnstest import make_model

    from tinykube.dns.forward import Forwarder

    upstream = await start_server(make_model([]), domain="example.test")
    live = await start_server(forwarder=Forwarder([(upstream.host, upstream.port)]),
                              upstream=True)
    log = QueryLog()
    live.server.set_query_log(log)
    await live.ask("kubernetes.default.svc.cluster.local", "A", proto="tcp")
    await live.ask("nothing.example.test", "A")
    for _ in range(100):  # the forwarded answer is logged when it comes back
        if len(log.ring) == 2:
            break
        await asyncio.sleep(0.02)
    tcp, forwarded = read(log)
    assert tcp["proto"] == "tcp" and tcp["client"] == "127.0.0.1" and tcp["rcode"] == "NOERROR"
    assert forwarded["name"] == "nothing.example.test." and forwarded["rcode"] == "NXDOMAIN"
    assert forwarded["source"] == "upstream" and forwarded["pod"] == "dns-test/client"
