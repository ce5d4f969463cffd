"""A TCP relay from inside the node namespaces to an address in the host's own namespace.

The API server of `tinykube up` listens on the host's loopback, which no network namespace can
reach (each has a loopback of its own). In the `netns` mode the `kubernetes` Service's endpoint
is therefore `API_RELAY_ADDRESS` on every node's lo, and this relay listens there, in every
node namespace, and copies bytes both ways to the API server's address on the host. A pod's
connection to 10.96.0.1:443 is DNATed by its node to that endpoint and arrives at its own
node's relay; the stream is relayed unchanged (TLS stays end to end).

The listening sockets are made in each namespace by `netns.bound_socket_in` (a thread enters
it with setns(2); a socket keeps its namespace), and served by this process's event loop, like
the cluster DNS listeners. The outgoing connections are ordinary host sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tinykube.network.netns import bound_socket_in

log = logging.getLogger(__name__)
CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


@dataclass
class Relay:
    """Listeners in several namespaces, each relaying to `target` (host, port)."""

    target: tuple[str, int]
    # makes the outgoing sockets (rootless: the host's, `network.hostsockets`); None: the loop
    make_socket: Callable[[int, int], socket.socket] | None = None
    servers: list[asyncio.Server] = field(default_factory=list)
    connections: set[asyncio.Task[None]] = field(default_factory=set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        try:
            try:
                upstream_reader, upstream = await self._connect()
            except OSError as error:
                log.warning("relay to %s:%d: %s", *self.target, error)
                return
            try:
                await asyncio.gather(_pump(reader, upstream), _pump(upstream_reader, writer))
            finally:
                upstream.close()
        finally:
            writer.close()
            self.connections.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.make_socket is None:
            return await asyncio.open_connection(*self.target)
        sock = self.make_socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, self.target)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def listen_in(self, paths: Sequence[str], address: tuple[str, int]) -> None:
        """Listen on `address` inside each namespace of `paths`."""
        for path in paths:
            sock = await asyncio.to_thread(bound_socket_in, path, socket.AF_INET,
                                           socket.SOCK_STREAM, address)
            self.servers.append(await asyncio.start_server(self._serve, sock=sock))

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.connections):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.connections, return_exceptions=True)
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()


async def start_relay(paths: Sequence[str], address: tuple[str, int],
                      target: tuple[str, int],
                      make_socket: Callable[[int, int], socket.socket] | None = None) -> Relay:
    relay = Relay(target, make_socket)
    try:
        await relay.listen_in(paths, address)
    except BaseException:
        await relay.close()
        raise
    return relay
