"""Protocol behaviour over real sockets: case echo, AA, EDNS, truncation, error rcodes, TCP,
SERVFAIL before sync, forwarding, metrics."""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from dnstest import Live, StartServer, make_model

from tinykube.dns.forward import Forwarder
from tinykube.dns.metrics import serve_metrics
from tinykube.dns.tcp import TCPLimits

D = "default.svc.cluster.local."


async def raw_udp(live: Live, packet: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    received: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not received.done():
                received.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(
        Client, remote_addr=(live.host, live.port))
    try:
        transport.sendto(packet)
        return await asyncio.wait_for(received, 3)
    finally:
        transport.close()


def query_bytes(name: str, rdtype: str, **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


async def test_case_of_the_query_is_echoed(live: Live) -> None:
    for spelling in ("NGINX-Service.Default.SVC.cluster.LOCAL.",
                     "nginx-SERVICE.default.svc.Cluster.Local."):
        message = await live.ask(spelling, "A")
        assert message.question[0].name.to_text() == spelling
        assert message.answer[0].name.to_text() == spelling
    negative = await live.ask("Nope.default.svc.CLUSTER.local.", "A")
    assert negative.authority[0].name.to_text() == "CLUSTER.local."


@pytest.mark.parametrize(("name", "rcode", "authoritative"), [
    ("nginx-service." + D, "NOERROR", True),
    ("nope." + D, "NXDOMAIN", True),
    ("example.com.", "REFUSED", False),
    ("8.8.8.8.in-addr.arpa.", "NXDOMAIN", True),
], ids=["answer", "nxdomain", "outside-refused", "unknown-reverse"])
async def test_aa_flag_and_upstream_none(live: Live, name: str, rcode: str,
                                         authoritative: bool) -> None:
    message = await live.ask(name, "A" if "arpa" not in name else "PTR")
    assert dns.rcode.to_text(message.rcode()) == rcode
    assert bool(message.flags & dns.flags.AA) == authoritative


@pytest.mark.parametrize(("query", "payload", "dnssec_ok"), [
    ({}, None, False),
    ({"use_edns": 0, "payload": 1232}, 4096, False),
    ({"use_edns": 0, "payload": 1232, "want_dnssec": True}, 4096, True),
], ids=["no-edns", "edns", "edns-do"])
async def test_edns_is_echoed(live: Live, query: dict[str, object], payload: int | None,
                              dnssec_ok: bool) -> None:
    for proto in ("udp", "tcp"):
        message = await live.ask("nginx." + D, "A", proto, **query)
        assert (message.payload if message.edns >= 0 else None) == payload
        assert bool(message.ednsflags & dns.flags.DO) == dnssec_ok
        assert message.flags & dns.flags.RD


@pytest.mark.parametrize(("query", "truncated"), [
    ({}, True),
    ({"use_edns": 0, "payload": 4096}, True),
    ({"use_edns": 0, "payload": 65000}, True),
], ids=["512", "edns-4096", "edns-65000"])
async def test_big_headless_truncates_over_udp_not_tcp(live: Live, query: dict[str, object],
                                                      truncated: bool) -> None:
    udp = await live.ask("big." + D, "A", "udp", **query)
    assert bool(udp.flags & dns.flags.TC) == truncated
    assert udp.answer == []
    tcp = await live.ask("big." + D, "A", "tcp", **query)
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 300


async def test_small_answer_fits_in_512(live: Live) -> None:
    message = await live.ask("nginx." + D, "A")
    assert not message.flags & dns.flags.TC and len(message.answer[0]) == 3


def _two_questions() -> bytes:
    wire = query_bytes("nginx." + D, "A")
    question = wire[12:]
    return wire[:4] + struct.pack("!H", 2) + wire[6:12] + question + question


NGINX_A = query_bytes("nginx." + D, "A")
A_IN = b"\x00\x00\x01\x00\x01"
FORMERR_PACKETS = {
    "two-questions": _two_questions(),
    "no-question": bytes.fromhex("abcd01000000000000000000"),
    "truncated-name": bytes.fromhex("abcd0100000100000000000005") + b"nginx",
    "missing-type": query_bytes("nginx." + D, "A")[:-3],
    "trailing-junk": query_bytes("nginx." + D, "A") + b"junk",
    "pointer-in-question": bytes.fromhex("abcd01000001000000000000c00c00010001"),
    "label-too-long": bytes.fromhex("abcd0100000100000000000040") + b"a" * 64 + A_IN,
    "answer-count": NGINX_A[:6] + b"\x00\x01" + NGINX_A[8:],
    "bad-additional": NGINX_A[:10] + b"\x00\x01" + NGINX_A[12:],
}


@pytest.mark.parametrize("packet", FORMERR_PACKETS.values(), ids=FORMERR_PACKETS.keys())
async def test_formerr(live: Live, packet: bytes) -> None:
    response = await raw_udp(live, packet)
    assert response[:2] == packet[:2]
    assert response[2] & 0x80 and response[3] & 0x0F == dns.rcode.FORMERR


OPCODES = [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE]


@pytest.mark.parametrize("opcode", OPCODES, ids=["iquery", "status", "notify", "update"])
async def test_notimp_for_other_opcodes(live: Live, opcode: dns.opcode.Opcode) -> None:
    message = dns.message.make_query("nginx." + D, "A")
    message.set_opcode(opcode)
    response = await dns.asyncquery.udp(message, live.host, port=live.port, timeout=3)
    assert response.rcode() == dns.rcode.NOTIMP and response.opcode() == opcode


@pytest.mark.parametrize("qtype", ["AXFR", "IXFR"])
async def test_zone_transfer_refused(live: Live, qtype: str) -> None:
    message = await live.ask("cluster.local.", qtype, "tcp")
    assert message.rcode() == dns.rcode.REFUSED


async def test_badvers(live: Live) -> None:
    message = await live.ask("nginx." + D, "A", use_edns=1)
    assert message.rcode() == dns.rcode.BADVERS and message.answer == []


async def test_servfail_until_synced_then_nxdomain(start_server: StartServer) -> None:
    model = make_model(synced=False)
    live = await start_server(model)
    assert (await live.ask("nope." + D, "A")).rcode() == dns.rcode.SERVFAIL
    assert (await live.ask("nginx-service." + D, "AAAA")).rcode() == dns.rcode.SERVFAIL
    found = await live.ask("nginx-service." + D, "A")
    assert found.rcode() == dns.rcode.NOERROR and found.answer
    model.mark_synced()
    assert (await live.ask("nope." + D, "A")).rcode() == dns.rcode.NXDOMAIN
    assert (await live.ask("nginx-service." + D, "AAAA")).rcode() == dns.rcode.NOERROR


async def test_tcp_pipelined_queries_on_one_connection(live: Live) -> None:
    reader, writer = await asyncio.open_connection(live.host, live.port)
    names = ["nginx." + D, "nope." + D, "web-1.nginx." + D]
    ids = [1000 + i for i in range(len(names))]
    stream = b""
    for name, ident in zip(names, ids, strict=True):
        wire = query_bytes(name, "A")
        wire = struct.pack("!H", ident) + wire[2:]
        stream += struct.pack("!H", len(wire)) + wire
    writer.write(stream[:7])  # split frames across writes too
    await writer.drain()
    writer.write(stream[7:])
    rcodes = []
    for ident in ids:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        response = dns.message.from_wire(await reader.readexactly(size))
        assert response.id == ident
        rcodes.append(dns.rcode.to_text(response.rcode()))
    assert rcodes == ["NOERROR", "NXDOMAIN", "NOERROR"]
    writer.close()
    await writer.wait_closed()


async def test_tcp_idle_connections_are_closed(start_server: StartServer) -> None:
    live = await start_server(tcp=TCPLimits(read_timeout=0.05))
    reader, writer = await asyncio.open_connection(live.host, live.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_tcp_connections_beyond_the_cap_close_the_oldest(
        start_server: StartServer) -> None:
    live = await start_server(tcp=TCPLimits(max_connections=2))
    first, *others = [await asyncio.open_connection(live.host, live.port) for _ in range(3)]
    assert await asyncio.wait_for(first[0].read(), 5) == b""  # closed for the third
    wire = query_bytes("nginx." + D, "A")
    reader, writer = others[-1]
    writer.write(struct.pack("!H", len(wire)) + wire)
    size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))[0]
    assert dns.message.from_wire(await reader.readexactly(size)).rcode() == dns.rcode.NOERROR
    for _, each in (first, *others):
        each.close()


async def test_forwarding_with_cache(start_server: StartServer) -> None:
    upstream = await start_server(make_model([]), domain="example.test")
    forwarder = Forwarder([(upstream.host, upstream.port)])
    live = await start_server(forwarder=forwarder, upstream=True)
    message = await live.ask("Other.Example.TEST.", "A", use_edns=0)
    assert message.rcode() == dns.rcode.NXDOMAIN  # the upstream's answer, not ours
    assert message.authority[0].name.to_text() == "Example.TEST."
    assert message.flags & dns.flags.RA and message.flags & dns.flags.AA  # upstream's AA kept
    await upstream.server.close()
    again = await live.ask("other.example.test.", "A", "tcp", use_edns=0)
    assert again.rcode() == dns.rcode.NXDOMAIN
    assert again.question[0].name.to_text() == "other.example.test."
    assert len(forwarder.cache) == 1


async def test_forwarding_failure_is_servfail(start_server: StartServer) -> None:
    dead = await start_server(make_model([]))
    address = (dead.host, dead.port)
    await dead.server.close()
    live = await start_server(forwarder=Forwarder([address], timeout=0.5), upstream=True)
    assert (await live.ask("example.com.", "A")).rcode() == dns.rcode.SERVFAIL


async def test_metrics(live: Live) -> None:
    for _ in range(3):
        await live.ask("nginx." + D, "A")
    await live.ask("nope." + D, "A", "tcp")
    runner = await serve_metrics(live.server.metrics, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    finally:
        await runner.cleanup()
    assert 'coredns_dns_requests_total{proto="udp"} 3.0' in text
    assert 'coredns_dns_requests_total{proto="tcp"} 1.0' in text
    assert 'coredns_dns_responses_total{rcode="NXDOMAIN"} 1.0' in text
    assert 'coredns_dns_responses_total{rcode="NOERROR"} 3.0' in text
    assert "coredns_dns_request_duration_seconds_count 4.0" in text
    assert "coredns_cache_hits_total" in text
    assert "tinykube_dns_programming_latency_seconds" in text
