"""Robustness: 100,000+ malformed or random packets over UDP and TCP, then correct answers.

The packets are valid queries, mutations of them (bit flips, truncation, insertions, wrong
counts, compression loops, huge EDNS) and random bytes, from a seeded generator. They are sent in
bulk: after each batch a marker query is sent and the test waits for the marker's answer only, so
the batch has been processed (the server answers one socket in order) without waiting per packet.
The server must answer the correct queries afterwards, and must never raise: its error list and
the event loop's exception handler stay empty. A hypothesis property checks the same in-process
for every response: parseable by dnspython, same ID, QR set.
"""

from __future__ import annotations

import asyncio
import random
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "dns"))

from dnstest import make_model, make_responder

from tinykube.dns.server import DNSServer

D = "default.svc.cluster.local."
NAMES = ["nginx." + D, "web-1.nginx." + D, "_web._tcp.nginx." + D, "nope." + D, "big." + D,
         "cluster.local.", "ext-internal." + D, "10.1.244.10.in-addr.arpa.", "example.com.",
         "1-2-3-4.default.pod.cluster.local.", "NGINX-Service." + D]
TYPES = ["A", "AAAA", "SRV", "PTR", "TXT", "SOA", "NS", "CNAME", "ANY", "AXFR", "MX"]
UDP_PACKETS, TCP_PACKETS, BATCH = 80_000, 20_000, 50


def valid_queries() -> list[bytes]:
    queries = []
    for name in NAMES:
        for qtype in TYPES:
            for edns in (-1, 0):
                queries.append(dns.message.make_query(name, qtype, use_edns=edns).to_wire())
    return queries


def mutate(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    choice = rng.randrange(8)
    if choice == 0:  # flip bits
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice == 1:  # truncate
        del data[rng.randrange(len(data)):]
    elif choice == 2:  # insert junk
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 20))
    elif choice == 3:  # random counts
        data[4:12] = rng.randbytes(8)
    elif choice == 4:  # compression pointer loops / pointers anywhere
        at = rng.randrange(12, len(data)) if len(data) > 12 else len(data)
        data[at:at + 2] = struct.pack("!H", 0xC000 | rng.randrange(64))
    elif choice == 5:  # opcode / flag soup
        data[2:4] = rng.randbytes(2)
    elif choice == 6:  # OPT with odd version, size, or rdlength
        data += b"\x00\x00\x29" + rng.randbytes(6) + struct.pack("!H", rng.randrange(4))
        data[11] = 1
    else:  # long label lengths
        at = rng.randrange(12, len(data)) if len(data) > 12 else len(data)
        data[at:at + 1] = bytes((rng.randrange(64, 256),))
    return bytes(data)


def packets(rng: random.Random, count: int) -> list[bytes]:
    valid = valid_queries()
    result = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.1:
            result.append(rng.choice(valid))
        elif kind < 0.8:
            result.append(mutate(rng, rng.choice(valid)))
        else:
            result.append(rng.randbytes(rng.randrange(0, 600)))
    return result


def marker(index: int) -> tuple[bytes, bytes]:
    """A query and its question in wire form, which its response contains."""
    wire = dns.message.make_query(f"marker-{index}.nginx." + D, "A").to_wire()
    return wire, wire[12:]


@pytest.fixture
async def server() -> AsyncIterator[tuple[DNSServer, list[dict[str, Any]]]]:
    loop_errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    dns_server = DNSServer(make_responder(make_model()))
    await dns_server.start("127.0.0.1", 0)
    yield dns_server, loop_errors
    await dns_server.close()
    loop.set_exception_handler(None)


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[bytes, asyncio.Future[None]] = {}
        self.responses = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.responses += 1
        for name, future in list(self.waiting.items()):
            if name in data and not future.done():
                future.set_result(None)


async def check_still_answers(dns_server: DNSServer) -> None:
    host, port = dns_server.address
    query = dns.message.make_query("web-1.nginx." + D, "A")
    for send in (dns.asyncquery.udp, dns.asyncquery.tcp):
        response = await send(query, host, port=port, timeout=3)
        assert response.rcode() == dns.rcode.NOERROR
        assert [r.to_text() for r in response.answer[0]] == ["10.244.1.11"]


@pytest.mark.slow
async def test_udp_fuzz(server: tuple[DNSServer, list[dict[str, Any]]]) -> None:
    dns_server, loop_errors = server
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _Collector, remote_addr=dns_server.address)
    fuzz = packets(random.Random(4), UDP_PACKETS)
    for start in range(0, len(fuzz), BATCH):
        for packet in fuzz[start:start + BATCH]:
            transport.sendto(packet)
        wire, name = marker(start)
        answered = client.waiting[name] = loop.create_future()
        transport.sendto(wire)
        await asyncio.wait_for(answered, 5)
        del client.waiting[name]
    transport.close()
    sent = sum(1 for packet in fuzz if packet)  # asyncio does not send empty datagrams
    assert dns_server.metrics.stats.total_requests(0) == sent + len(range(0, len(fuzz), BATCH))
    assert client.responses > UDP_PACKETS // 2
    await check_still_answers(dns_server)
    assert dns_server.errors == [] and loop_errors == []


@pytest.mark.slow
async def test_tcp_fuzz(server: tuple[DNSServer, list[dict[str, Any]]]) -> None:
    dns_server, loop_errors = server
    rng = random.Random(5)
    fuzz = packets(rng, TCP_PACKETS)
    per_connection = 100  # then the marker: under the 128 queries a connection may send
    for start in range(0, len(fuzz), per_connection):
        reader, writer = await asyncio.open_connection(*dns_server.address)
        wire, name = marker(start)
        stream = b"".join(struct.pack("!H", len(p)) + p for p in fuzz[start:start + per_connection])
        writer.write(stream + struct.pack("!H", len(wire)) + wire)
        while True:  # read framed responses until the marker's
            size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))[0]
            if name in await reader.readexactly(size):
                break
        writer.close()
        await writer.wait_closed()
    for _ in range(5):  # unframed garbage: the connection may wait for a long frame; then closes
        reader, writer = await asyncio.open_connection(*dns_server.address)
        writer.write(rng.randbytes(rng.randrange(1, 3000)))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    await check_still_answers(dns_server)
    assert dns_server.errors == [] and loop_errors == []


RESPONDER = make_responder(make_model())
VALID = valid_queries()


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.one_of(st.binary(max_size=700),
                 st.tuples(st.sampled_from(VALID), st.randoms(use_true_random=False)).map(
                     lambda pair: mutate(pair[1], pair[0]))),
       st.booleans())
def test_every_response_is_well_formed(packet: bytes, tcp: bool) -> None:
    response = RESPONDER.respond(packet, tcp)
    if response is None:
        assert len(packet) < 12 or packet[2] & 0x80
        return
    assert isinstance(response, bytes), "nothing is forwarded without upstream"
    message = dns.message.from_wire(response)
    assert message.id == int.from_bytes(packet[:2], "big")
    assert message.flags & 0x8000
    assert len(response) <= (65535 if tcp else 4096)
