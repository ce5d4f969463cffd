"""TCP forwarding at the protocol level: two `asyncio.Protocol` halves spliced together.

Streams (`StreamReader`/`StreamWriter`) would cost a task and two coroutine hops per chunk; here
each half writes what it receives straight into its peer's transport, and flow control is the
transports' own: when one side's write buffer fills, `pause_writing` stops reading from the other
side until `resume_writing`. EOF is passed on as a half-close (`write_eof`) and both sockets are
closed once both directions have ended. A half that is lost with an error (reset, timeout)
resets its peer (SO_LINGER 0, then abort) so the failure is visible at the other end instead of
looking like a clean end of data.

A new client connection is accepted with reading paused; the listener picks an endpoint and one
task connects to it, trying the other endpoints if the connect fails. Only when the upstream half
is connected (`connection_made`) is the pair joined and the client's reading resumed. Bytes or
an EOF read before that (uvloop may deliver data despite the pause) are held and passed on at
the join. With no endpoint at all the client is reset at
once: kube-proxy REJECTs such packets, and a prompt reset is the userspace equivalent.

The upstream socket is `socket.socket` made by the event loop, or by the listener's
`make_socket(family, kind)` when it has one: the host's NodePort relay of `--network netns`
passes one that makes the socket inside a node's network namespace (the connect then happens
there, and the node's nftables take the connection over).

Every half registers itself in the `Registry` from `connection_made` to `connection_lost`, and
every connect task too, so the backend can count and abort them all: nothing outlives `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any, cast

from tinykube.proxy.model import Endpoint, ListenKey
from tinykube.proxy.picker import EndpointPicker

log = logging.getLogger(__name__)
LINGER_RESET = struct.pack("ii", 1, 0)
CONNECT_TIMEOUT = 5.0  # seconds per endpoint attempt
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE)  # worth a warning: nothing else will say it
SocketFactory = Callable[[int, int], socket.socket]  # (family, kind) -> a new socket
# (family, kind, address) -> a socket bound there (listening for TCP), non-blocking: the
# rootless netns mode's listeners in the host's namespace (`network.hostsockets`)
BoundSocketFactory = Callable[[int, int, tuple[str, int]], socket.socket]


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    abort = getattr(transport, "abort", None)
    if abort is not None:
        abort()
    else:
        transport.close()


class Registry:
    """Everything alive in a backend: connection halves and connect tasks."""

    def __init__(self) -> None:
        self.halves: set[Half] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    def __repr__(self) -> str:
        return f"Registry(halves={len(self.halves)}, tasks={len(self.tasks)})"

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def opened(self, half: Half) -> None:
        self.halves.add(half)
        self.idle.clear()

    def closed(self, half: Half) -> None:
        self.halves.discard(half)
        if not self.halves:
            self.idle.set()


class Half(asyncio.Protocol):
    """One socket of a proxied connection; bytes it reads go to `peer`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.transport: asyncio.Transport | None = None
        self.peer: Half | None = None
        self.got_eof = False
        self.lost = False
        self.pending: list[bytes] = []  # read before the pair was joined

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports do not subclass asyncio.Transport, so no isinstance check)
        self.transport = cast(asyncio.Transport, transport)
        self.registry.opened(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        elif self.transport is not None:  # not joined yet (uvloop may read despite the pause)
            self.pending.append(data)
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.got_eof = True
        peer = self.peer
        if peer is None:
            return True  # not joined yet: the EOF is passed on when it is
        if peer.lost or peer.transport is None:
            return False  # nobody to tell: let the transport close
        if peer.got_eof:
            peer.transport.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.registry.closed(self)
        peer = self.peer
        if peer is not None and not peer.lost and peer.transport is not None:
            if exc is None:
                peer.transport.close()  # flushes what is still buffered
            else:
                reset(peer.transport)


class UpstreamHalf(Half):
    """The proxy's connection to an endpoint; joining the pair happens once it is connected."""

    def __init__(self, client: ClientHalf) -> None:
        super().__init__(client.registry)
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        client = self.client
        if client.lost or client.transport is None:
            transport.close()
            return
        self.peer, client.peer = client, self
        if client.pending:
            cast(asyncio.Transport, transport).writelines(client.pending)
            client.pending.clear()
        if client.got_eof:
            client.eof_received()
        client.transport.resume_reading()


class ClientHalf(Half):
    """An accepted connection: pick an endpoint, connect, then forward."""

    def __init__(self, listener: TCPListener) -> None:
        super().__init__(listener.registry)
        self.listener = listener
        self.connecting: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        client_ip = str((transport.get_extra_info("peername") or ("",))[0])
        endpoint = self.listener.picker.pick(client_ip)
        if endpoint is None:
            reset(transport)
            return
        self.connecting = self.registry.spawn(self._connect(client_ip, endpoint))

    async def _connect(self, client_ip: str, endpoint: Endpoint | None) -> None:
        loop = asyncio.get_running_loop()
        tried: set[Endpoint] = set()
        while endpoint is not None:
            try:
                await asyncio.wait_for(self._open(loop, endpoint), CONNECT_TIMEOUT)
                return
            except (OSError, TimeoutError) as error:
                level = logging.WARNING if getattr(error, "errno", None) in OUT_OF_FILES \
                    else logging.DEBUG
                log.log(level, "%s: connect to %s:%d failed: %s", self.listener, *endpoint,
                        error)
            tried.add(endpoint)
            endpoint = self.listener.picker.pick(client_ip, exclude=tried)
        if self.transport is not None and not self.lost:
            reset(self.transport)

    async def _open(self, loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
        make_socket = self.listener.make_socket
        if make_socket is None:
            await loop.create_connection(lambda: UpstreamHalf(self), *endpoint)
            return
        family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
        sock = make_socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, endpoint)
            await loop.create_connection(lambda: UpstreamHalf(self), sock=sock)
        except BaseException:  # a timeout cancels us: the socket must not leak
            sock.close()
            raise

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        super().connection_lost(exc)


class TCPListener:
    """One listening socket forwarding to the endpoints its picker holds."""

    def __init__(self, key: ListenKey, picker: EndpointPicker, registry: Registry,
                 make_socket: SocketFactory | None = None,
                 listen_socket: BoundSocketFactory | None = None) -> None:
        self.key, self.picker, self.registry = key, picker, registry
        self.make_socket = make_socket
        self.listen_socket = listen_socket
        self.server: asyncio.AbstractServer | None = None

    def __repr__(self) -> str:
        ip, port, _ = self.key
        return f"TCPListener({ip}:{port}, {self.picker!r})"

    async def start(self) -> None:
        ip, port, _ = self.key
        loop = asyncio.get_running_loop()
        if self.listen_socket is not None:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = self.listen_socket(family, socket.SOCK_STREAM, (ip, port))
            self.server = await loop.create_server(lambda: ClientHalf(self), sock=sock,
                                                   backlog=1024)
            return
        self.server = await loop.create_server(
            lambda: ClientHalf(self), ip, port, reuse_address=True, backlog=1024)

    def close(self) -> None:
        """Stop accepting; connections already forwarded carry on."""
        if self.server is not None:
            self.server.close()
            self.server = None
