"""Where the kubelet connects for port-forward, and its error text when it cannot: a dial of
the pod's address (host mode), or localhost in the pod's namespace, IPv4 then IPv6, in
containerd's words (netns mode). Real connections to a closed port on loopback."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from tinykube.api import errors
from tinykube.kubelet import portforward


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_address_dial_reaches_a_listener() -> None:
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await portforward.address_dial(asyncio.open_connection, "127.0.0.1")(port)
    writer.close()
    server.close()


async def test_address_dial_says_dial_tcp() -> None:
    port = closed_port()
    with pytest.raises(portforward.DialError) as caught:
        await portforward.address_dial(asyncio.open_connection, "127.0.0.1")(port)
    assert str(caught.value) == f"dial tcp 127.0.0.1:{port}: connect: connection refused"


async def test_localhost_dial_tries_ipv4_then_ipv6_and_says_so() -> None:
    tried: list[tuple[str, int]] = []

    async def refuse(host: str, port: int) -> portforward.Streams:
        tried.append((host, port))
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    with pytest.raises(portforward.DialError) as caught:
        await portforward.localhost_dial(refuse, "tk1-p2")(9)
    assert tried == [("127.0.0.1", 9), ("::1", 9)]
    assert str(caught.value) == (
        'failed to connect to localhost:9 inside namespace "tk1-p2", IPv4: dial tcp4 '
        "127.0.0.1:9: connect: connection refused IPv6 dial tcp6 [::1]:9: connect: connection "
        "refused ")


@pytest.mark.parametrize(("value", "port"), [("1", 1), ("8080", 8080), ("65535", 65535)])
def test_ports_in_range(value: str, port: int) -> None:
    assert portforward.parse_port(value) == port


@pytest.mark.parametrize("value", ["", "0", "65536", "-1", "80a", " 80"])
def test_ports_out_of_range(value: str) -> None:
    message = f'invalid port "{value}": must be an integer in 1-65535'
    with pytest.raises(errors.BadRequest, match=message):
        portforward.parse_port(value)
