"""Real DNS clients (dig, kdig, nslookup) against the cluster DNS: the seed transcript and more.

The server runs in the test's event loop on 127.0.0.1 and an ephemeral port; the clients run as
subprocesses (awaited, so the loop keeps answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "dns"))

from dnstest import make_model, make_responder

from tinykube.dns.server import DNSServer

D = "default.svc.cluster.local"
READY_WEB = ["10.244.1.10", "10.244.1.11", "10.244.1.13"]  # web-2 is not ready


@pytest.fixture
async def server() -> AsyncIterator[DNSServer]:
    dns_server = DNSServer(make_responder(make_model()))
    await dns_server.start("127.0.0.1", 0)
    yield dns_server
    await dns_server.close()
    assert dns_server.errors == []


async def run(*argv: str) -> tuple[int, str]:
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode or 0, output.decode()


def nslookup_addresses(output: str) -> list[str]:
    """The addresses nslookup printed after the server block."""
    answer = output.split("\n\n", 1)[1] if "\n\n" in output else ""
    return sorted(re.findall(r"^Address: (\S+)$", answer, re.MULTILINE))


SEED = [
    ("nginx." + D, READY_WEB),
    ("web-1.nginx." + D, ["10.244.1.11"]),
    ("nginx-service." + D, ["10.96.0.50"]),
]


@pytest.mark.parametrize(("name", "expected"), SEED, ids=[s[0] for s in SEED])
async def test_seed_transcript_with_nslookup(server: DNSServer, name: str,
                                             expected: list[str]) -> None:
    host, port = server.address
    code, output = await run("nslookup", f"-port={port}", name, host)
    assert code == 0, output
    assert nslookup_addresses(output) == expected


async def test_nslookup_reports_nxdomain(server: DNSServer) -> None:
    host, port = server.address
    code, output = await run("nslookup", f"-port={port}", "nope." + D, host)
    assert code != 0 and "NXDOMAIN" in output


DIG = [  # (tool, extra args, name, type, expected +short lines)
    ("dig", (), "nginx." + D, "A", READY_WEB),
    ("dig", ("+tcp",), "nginx." + D, "A", READY_WEB),
    ("dig", (), "web-1.nginx." + D, "A", ["10.244.1.11"]),
    ("dig", (), "nginx-service." + D, "A", ["10.96.0.50"]),
    ("dig", (), "_web._tcp.nginx-service." + D, "SRV", [f"0 100 80 nginx-service.{D}."]),
    ("dig", (), "_web._tcp.nginx." + D, "SRV",
     [f"0 33 8080 web-{n}.nginx.{D}." for n in (0, 1, 3)]),
    ("dig", (), "ext." + D, "CNAME", ["foo.example.com."]),
    ("dig", ("-x",), "10.96.0.50", "", [f"nginx-service.{D}."]),
    ("dig", (), "10-244-1-10.default.pod.cluster.local", "A", ["10.244.1.10"]),
    ("dig", (), "dns-version.cluster.local", "TXT", ['"1.1.0"']),
    ("dig", (), "big." + D, "A", [f"10.245.{i // 250}.{i % 250 + 1}" for i in range(300)]),
    ("kdig", (), "nginx." + D, "A", READY_WEB),
    ("kdig", ("+tcp",), "_web._tcp.nginx." + D, "SRV",
     [f"0 33 8080 web-{n}.nginx.{D}." for n in (0, 1, 3)]),
    ("kdig", (), "dual." + D, "AAAA", ["fd00::60"]),
]


@pytest.mark.parametrize(("tool", "extra", "name", "qtype", "expected"), DIG,
                         ids=[f"{d[0]}{''.join(d[1])}-{d[2]}-{d[3]}" for d in DIG])
async def test_dig_and_kdig(server: DNSServer, tool: str, extra: tuple[str, ...], name: str,
                            qtype: str, expected: list[str]) -> None:
    host, port = server.address
    argv = [tool, f"@{host}", "-p", str(port), "+short", *extra, name, *([qtype] if qtype else [])]
    code, output = await run(*argv)
    assert code == 0, output
    assert sorted(output.split("\n")[:-1]) == sorted(expected)


async def test_dig_shows_nxdomain_with_soa_and_aa(server: DNSServer) -> None:
    host, port = server.address
    code, output = await run("dig", f"@{host}", "-p", str(port), "nope." + D)
    assert code == 0
    assert "status: NXDOMAIN" in output and re.search(r"flags: qr aa rd;", output)
    assert re.search(r"^cluster\.local\.\s+5\s+IN\s+SOA\s+ns\.dns\.cluster\.local\. "
                     r"hostmaster\.cluster\.local\. \d+ 7200 1800 86400 5$", output, re.MULTILINE)


SLOW_CLIENTS = 100
SLOW_BYTES = 8  # a client gives up after this many seconds (one byte a second)
READ_TIMEOUT = 3.0  # the default deadline of a connection's first message, as CoreDNS's


async def _trickle(host: str, port: int, started: float) -> float | None:
    """Send a framed query one byte a second; when the server closed the connection (seconds
    after `started`), or None if it was still open after SLOW_BYTES bytes."""
    wire = dns.message.make_query("nginx." + D, "A").to_wire()
    frame = struct.pack("!H", len(wire)) + wire
    reader, writer = await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    try:
        for byte in frame[:SLOW_BYTES]:
            writer.write(bytes((byte,)))
            with contextlib.suppress(TimeoutError):  # the one-second pace: a read that waits
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    return loop.time() - started
        return None
    except ConnectionError:
        return loop.time() - started
    finally:
        writer.close()


@pytest.mark.parametrize("batch", [True, False], ids=["batched-udp", "per-datagram-udp"])
async def test_slow_tcp_clients_are_closed_while_dig_still_answers(batch: bool) -> None:
    """100 connections sending one byte a second are closed at the first message's deadline
    (3 s, as CoreDNS), however long they keep sending; dig +tcp is answered meanwhile."""
    server = DNSServer(make_responder(make_model()), batch=batch)
    host, port = await server.start("127.0.0.1", 0)
    try:
        started = asyncio.get_running_loop().time()
        slow = [asyncio.create_task(_trickle(host, port, started)) for _ in range(SLOW_CLIENTS)]
        code, output = await run("dig", f"@{host}", "-p", str(port), "+short", "+tcp",
                                 "nginx." + D, "A")
        assert code == 0, output
        assert sorted(output.split()) == READY_WEB
        closed = await asyncio.gather(*slow)
    finally:
        await server.close()
    assert server.errors == []
    # Never before the deadline; after it by at most the time the accepts took under load,
    # and in any case before the clients would have given up (SLOW_BYTES seconds).
    assert all(t is not None and READ_TIMEOUT <= t < READ_TIMEOUT + 3 for t in closed), closed
