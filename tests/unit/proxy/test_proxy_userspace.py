"""The userspace backend with real sockets on 127.0.0.x: forwarding, endpoint changes, resets,
affinity, upstream failures, bind errors, UDP flows, and no leaked file descriptors."""

from __future__ import annotations

import asyncio
import collections
import errno
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proxynet import EchoServer, UDPEcho, free_port, greet, hello, open_fds, until

from tinykube.proxy.backend import BindError
from tinykube.proxy.model import ListenKey, ServicePortRule
from tinykube.proxy.userspace import UserspaceBackend

SERVICE_IP = "127.96.7.1"
Backends = Callable[[int], Awaitable[list[EchoServer]]]


def rule(*servers: EchoServer | UDPEcho, affinity: float | None = None,
         protocol: str = "TCP") -> ServicePortRule:
    return ServicePortRule("default/web", "http", protocol,
                           tuple(server.address for server in servers), affinity)


@pytest.fixture
async def proxy() -> AsyncIterator[UserspaceBackend]:
    backend = UserspaceBackend(udp_idle_timeout=0.2)
    yield backend
    await backend.close()
    assert backend.open_sockets == 0 and backend.listeners == {}


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    started: list[EchoServer] = []

    async def start(count: int) -> list[EchoServer]:
        servers = [await EchoServer(f"b{i}").start() for i in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        await server.close()


async def listen(proxy: UserspaceBackend, service_rule: ServicePortRule,
                 ip: str = SERVICE_IP) -> ListenKey:
    kind = socket.SOCK_DGRAM if service_rule.protocol == "UDP" else socket.SOCK_STREAM
    key = (ip, free_port(ip, kind), service_rule.protocol)
    await proxy.add(key, service_rule)
    return key


async def test_round_robin_reaches_every_backend(proxy: UserspaceBackend,
                                                 backends: Backends) -> None:
    servers = await backends(3)
    ip, port, _ = await listen(proxy, rule(*servers))
    names = collections.Counter([await hello(ip, port) for _ in range(30)])
    assert names == {"b0": 10, "b1": 10, "b2": 10}


async def test_endpoint_change_applies_to_new_connections_only(proxy: UserspaceBackend,
                                                               backends: Backends) -> None:
    first, second = await backends(2)
    key = await listen(proxy, rule(first))
    name, reader, writer = await greet(*key[:2])
    assert name == "b0"
    await proxy.update(key, rule(second))
    assert [await hello(*key[:2]) for _ in range(3)] == ["b1"] * 3
    writer.write(b"still here\n")  # the old connection still reaches the old endpoint
    assert await asyncio.wait_for(reader.readline(), 3) == b"still here\n"
    writer.close()
    await writer.wait_closed()


async def test_bytes_and_eof_sent_before_the_upstream_connects(proxy: UserspaceBackend,
                                                               backends: Backends) -> None:
    (server,) = await backends(1)
    ip, port, _ = await listen(proxy, rule(server))
    reader, writer = await asyncio.open_connection(ip, port)
    writer.write(b"early\n")  # at once, as wrk does: the proxy may not be joined yet
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 3) == b"b0\nearly\nbye\n"
    writer.close()


async def test_no_endpoints_resets_at_once(proxy: UserspaceBackend) -> None:
    ip, port, _ = await listen(proxy, ServicePortRule("default/web", "http", "TCP"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionError):
        reader, writer = await asyncio.open_connection(ip, port)
        try:
            await asyncio.wait_for(reader.read(), 1)
        finally:
            writer.close()
    assert loop.time() - started < 0.1


async def test_session_affinity_sticks_per_client_ip(proxy: UserspaceBackend,
                                                     backends: Backends) -> None:
    servers = await backends(3)
    ip, port, _ = await listen(proxy, rule(*servers, affinity=60))
    first = [await hello(ip, port, "127.0.0.2") for _ in range(5)]
    second = [await hello(ip, port, "127.0.0.3") for _ in range(5)]
    assert len(set(first)) == 1 and len(set(second)) == 1
    assert first[0] != second[0]


async def test_killed_backend_only_breaks_its_own_connections(proxy: UserspaceBackend,
                                                              backends: Backends) -> None:
    doomed, healthy = await backends(2)
    ip, port, _ = await listen(proxy, rule(doomed, healthy))
    name_a, reader_a, writer_a = await greet(ip, port)
    name_b, reader_b, writer_b = await greet(ip, port)
    assert (name_a, name_b) == ("b0", "b1")
    writer_a.write(b"x" * 100_000)  # mid-transfer
    await doomed.close()  # resets its connections and stops listening
    with pytest.raises(ConnectionError):
        while await asyncio.wait_for(reader_a.read(65536), 3):
            pass
        raise ConnectionResetError("clean EOF instead of a reset")
    writer_b.write(b"ping\n")
    assert await asyncio.wait_for(reader_b.readline(), 3) == b"ping\n"
    # new connections skip the dead endpoint (connect refused -> next endpoint)
    assert [await hello(ip, port) for _ in range(4)] == ["b1"] * 4
    for writer in (writer_a, writer_b):
        writer.close()
    await until(lambda: proxy.open_sockets == 0)


@pytest.mark.slow
async def test_thousand_connections_leak_no_fds(proxy: UserspaceBackend,
                                               backends: Backends) -> None:
    servers = await backends(2)
    ip, port, _ = await listen(proxy, rule(*servers))
    await hello(ip, port)  # warm up lazily created loop resources
    await until(lambda: proxy.open_sockets == 0 and all(s.open == 0 for s in servers))
    before = open_fds()
    for _ in range(20):
        await asyncio.gather(*(hello(ip, port) for _ in range(50)))
    await until(lambda: proxy.open_sockets == 0 and all(s.open == 0 for s in servers))
    assert open_fds() == before
    assert proxy.registry.tasks == set()


async def test_close_resets_open_connections(backends: Backends) -> None:
    proxy = UserspaceBackend()
    (server,) = await backends(1)
    ip, port, _ = await listen(proxy, rule(server))
    _, reader, writer = await greet(ip, port)
    await proxy.close()
    assert proxy.open_sockets == 0
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(reader.read(), 3)
        raise ConnectionResetError("clean EOF instead of a reset")
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(ip, port)


async def test_removed_listener_lets_connections_finish(proxy: UserspaceBackend,
                                                       backends: Backends) -> None:
    (server,) = await backends(1)
    key = await listen(proxy, rule(server))
    _, reader, writer = await greet(*key[:2])
    await proxy.remove(key)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*key[:2])
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 3) == b"bye\n"
    writer.close()


@pytest.mark.parametrize(("ip", "occupy", "code"), [
    pytest.param(SERVICE_IP, True, errno.EADDRINUSE, id="address-in-use"),
    pytest.param("192.0.2.1", False, errno.EADDRNOTAVAIL, id="address-not-local"),
])
async def test_bind_failures_are_raised(proxy: UserspaceBackend, ip: str, occupy: bool,
                                        code: int) -> None:
    with socket.socket() as squatter:
        port = 0
        if occupy:
            squatter.bind((ip, 0))
            squatter.listen()
            port = squatter.getsockname()[1]
        key = (ip, port or 30999, "TCP")
        with pytest.raises(BindError) as caught:
            await proxy.add(key, ServicePortRule("default/web", "http", "TCP"))
    assert caught.value.errno == code and caught.value.key == key
    assert proxy.listeners == {}


async def test_udp_flows_round_robin_and_expire(proxy: UserspaceBackend) -> None:
    servers = [await UDPEcho(f"u{i}").start() for i in range(2)]
    try:
        ip, port, _ = await listen(proxy, rule(*servers, protocol="UDP"), "127.96.7.2")
        answers = [await udp_ask(ip, port, b"hi") for _ in range(2)]
        assert sorted(answers) == [b"u0:hi", b"u1:hi"]
        assert proxy.open_sockets == 2
        await until(lambda: proxy.open_sockets == 0)  # idle timeout (0.2 s) closes the flows
    finally:
        for server in servers:
            assert server.transport is not None
            server.transport.close()


async def test_udp_without_endpoints_drops(proxy: UserspaceBackend) -> None:
    ip, port, _ = await listen(proxy, ServicePortRule("d/dns", "dns", "UDP"), "127.96.7.3")
    with pytest.raises(TimeoutError):
        await udp_ask(ip, port, b"hi", wait=0.05)
    assert proxy.open_sockets == 0


async def udp_ask(ip: str, port: int, payload: bytes, wait: float = 3.0) -> bytes:
    """One datagram from a fresh client socket; returns the reply."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((ip, port))  # (uvloop has no sock_sendto; a UDP connect does not block)
        sock.send(payload)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), wait)
