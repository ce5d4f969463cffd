"""Real-socket helpers for the userspace proxy tests: named echo servers and bounded waits.

An `EchoServer` greets each connection with its name and a newline, echoes what it receives,
and after the client's EOF writes `bye\\n` and closes (so half-close is visible). `until()` polls
a condition on the loop with a deadline; it is the only kind of waiting the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import cast


class EchoServer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.address = ("127.0.0.1", 0)
        self.open = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> EchoServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.address = self.server.sockets[0].getsockname()[:2]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.writers.add(writer)
        try:
            writer.write(self.name.encode() + b"\n")
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write(b"bye\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.open -= 1

    def kill_connections(self) -> None:
        """Reset every open connection, as a crashing process would."""
        for writer in list(self.writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            writer.transport.abort()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.kill_connections()
            await until(lambda: self.open == 0)
            self.server = None


class UDPEcho(asyncio.DatagramProtocol):
    """Answers each datagram with `name:payload`."""

    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.transport: asyncio.DatagramTransport | None = None
        self.address = ("127.0.0.1", 0)

    async def start(self) -> UDPEcho:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0))
        self.address = transport.get_extra_info("sockname")[:2]
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


async def until(condition: Callable[[], bool], limit: float = 3.0) -> None:
    """Wait (polling the loop) until `condition()` holds; fail after `limit` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {limit}s: {condition}")
        await asyncio.sleep(0.002)


def free_port(ip: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def greet(ip: str, port: int, local_ip: str | None = None
                ) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, read the server's name line; returns it with the open stream."""
    local = (local_ip, 0) if local_ip else None
    reader, writer = await asyncio.open_connection(ip, port, local_addr=local)
    name = (await asyncio.wait_for(reader.readline(), 3)).decode().strip()
    return name, reader, writer


async def hello(ip: str, port: int, local_ip: str | None = None) -> str:
    """One full connection: greeting, a half-close, `bye`, close; returns the server's name."""
    name, reader, writer = await greet(ip, port, local_ip)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 3) == b"bye\n"
    writer.close()
    await writer.wait_closed()
    return name
