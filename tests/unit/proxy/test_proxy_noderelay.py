"""The host's NodePort relay of `--network netns` (`noderelay`): its table, and real sockets.

The socket tests stand in for a node namespace with another loopback address: the relay listens
on 127.0.0.3, its "node" is 127.0.0.1 where echo servers listen on the node port, and the
`make_socket` it is given records each socket it makes (in a real cluster it makes them inside
the node's namespace), so the tests see that every upstream socket came from it.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proxynet import EchoServer, UDPEcho, hello, open_fds, until
from proxyobjects import port, service

from tinykube.proxy.limits import Limits
from tinykube.proxy.model import ServicePortRule
from tinykube.proxy.noderelay import OWNER, NodePortRelay, relay_table

NODE = "100.64.0.1"
LISTEN = "127.0.0.3"  # the relay's listen address in these tests (127.0.0.1 in a cluster)


def rule(name: str, port_name: str, protocol: str, node_port: int) -> ServicePortRule:
    return ServicePortRule(f"default/{name}", port_name, protocol, ((NODE, node_port),))


@pytest.mark.parametrize(("services", "expected"), [
    ([service("web", "10.96.0.5", port(80, "http", node_port=30080), type_="NodePort")],
     {("127.0.0.1", 30080, "TCP"): rule("web", "http", "TCP", 30080)}),
    ([service("lb", "10.96.0.6", port(53, "dns", "UDP", node_port=30053),
              port(80, "http", node_port=30081), type_="LoadBalancer")],
     {("127.0.0.1", 30053, "UDP"): rule("lb", "dns", "UDP", 30053),
      ("127.0.0.1", 30081, "TCP"): rule("lb", "http", "TCP", 30081)}),
    ([service("plain", "10.96.0.7", port(80, "http", node_port=30082))], {}),
    ([service("sctp", "10.96.0.8", port(80, "x", "SCTP", node_port=30083), type_="NodePort")],
     {}),
    ([service("unallocated", "10.96.0.9", port(80, "http"), type_="NodePort")], {}),
    ([service("headless", "None", port(80, "http", node_port=30084), type_="NodePort")], {}),
], ids=["nodeport", "loadbalancer-tcp-and-udp", "clusterip-none", "sctp-skipped",
        "no-node-port-yet", "headless-none"])
def test_relay_table(services: list[dict[str, Any]],
                     expected: dict[tuple[str, int, str], ServicePortRule]) -> None:
    table = relay_table(services, NODE)
    assert table.rules == expected and table.conflicts == []


def test_a_node_port_claimed_twice_goes_to_the_first_service() -> None:
    services = [service(name, ip, port(80, "http", node_port=30090), type_="NodePort")
                for name, ip in (("b", "10.96.0.2"), ("a", "10.96.0.1"))]
    table = relay_table(services, NODE)
    assert table.rules == {("127.0.0.1", 30090, "TCP"): rule("a", "http", "TCP", 30090)}
    assert table.conflicts == [(("127.0.0.1", 30090, "TCP"), "default/b")]


class Recorder:
    """A `make_socket` that records what it makes."""

    def __init__(self) -> None:
        self.made: list[tuple[int, int]] = []

    def __call__(self, family: int, kind: int) -> socket.socket:
        self.made.append((family, kind))
        return socket.socket(family, kind)


@pytest.fixture
async def relay() -> AsyncIterator[tuple[NodePortRelay, Recorder]]:
    made = Recorder()
    syncer = NodePortRelay("127.0.0.1", made, listen=LISTEN, limits=Limits())
    yield syncer, made
    await syncer.close()


async def test_tcp_goes_through_a_socket_of_make_socket_and_stops_with_the_service(
        relay: tuple[NodePortRelay, Recorder]) -> None:
    syncer, made = relay
    server = await EchoServer("node").start()
    node_port = server.address[1]
    web = service("web", "10.96.0.5", port(80, "http", node_port=node_port), type_="NodePort")
    try:
        result = await syncer.sync([web], [])
        assert list(result.plan.add) == [(LISTEN, node_port, "TCP")] and not result.failing
        assert [await hello(LISTEN, node_port) for _ in range(2)] == ["node", "node"]
        assert made.made == [(socket.AF_INET, socket.SOCK_STREAM)] * 2
        result = await syncer.sync([], [])
        assert result.plan.remove == ((LISTEN, node_port, "TCP"),)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(LISTEN, node_port)
    finally:
        await server.close()


async def test_udp_flows_use_make_socket(relay: tuple[NodePortRelay, Recorder]) -> None:
    syncer, made = relay
    echo = await UDPEcho("node").start()
    node_port = echo.address[1]
    dns = service("dns", "10.96.0.10", port(53, "dns", "UDP", node_port=node_port),
                  type_="NodePort")
    try:
        await syncer.sync([dns], [])
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect((LISTEN, node_port))
            sock.send(b"hi")
            assert await asyncio.wait_for(loop.sock_recv(sock, 100), 3) == b"node:hi"
        assert made.made == [(socket.AF_INET, socket.SOCK_DGRAM)]
    finally:
        assert echo.transport is not None
        echo.transport.close()


async def test_a_make_socket_that_fails_resets_the_client_and_leaks_nothing(
        relay: tuple[NodePortRelay, Recorder]) -> None:
    syncer, _ = relay

    def broken(family: int, kind: int) -> socket.socket:
        raise OSError("cannot enter the network namespace /run/netns/gone")

    syncer.backend.make_socket = broken  # type: ignore[attr-defined]
    web = service("web", "10.96.0.5", port(80, "http", node_port=30111), type_="NodePort")
    await syncer.sync([web], [])
    before = open_fds()
    reader, writer = await asyncio.open_connection(LISTEN, 30111)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 3)
    writer.close()
    await until(lambda: open_fds() <= before)


async def test_limits_name_the_relay_in_refusals() -> None:
    syncer = NodePortRelay("127.0.0.1", Recorder(), listen=LISTEN,
                           limits=Limits(per_service=1, owner=OWNER))
    many = service("many", "10.96.0.5", port(80, "a", node_port=30121),
                   port(81, "b", node_port=30122), type_="NodePort")
    try:
        result = await syncer.sync([many], [])
        assert list(syncer.applied) == [(LISTEN, 30121, "TCP")]
        assert [r.message for r in result.new_refusals] == [
            "the host's NodePort relay listens on at most 1 addresses of one Service: 1 of "
            "its 2 listen addresses are not proxied (the lowest: 127.0.0.3:30122/TCP)"]
    finally:
        await syncer.close()
