"""The kubelet's side of one forwarded connection: a WebSocket of raw bytes and the pod's port.

The API server runs kubectl's SPDY session and opens one WebSocket here per forwarded connection
(`GET /portForward/<namespace>/<pod>?port=N`). The kubelet connects to the pod's port and copies
bytes: binary messages to the pod, what the pod sends as binary messages back. Where it
connects is the pod's `Dial`: a pod with a network namespace of its own (the `netns` mode) is
reached as containerd reaches it, on localhost inside that namespace, IPv4 then IPv6 (so a
server bound to 127.0.0.1 in the pod is reachable, as on a real node); in host mode, where every
pod shares the host's loopback, at the pod's own address. An empty binary message ends one
direction: from the API server it is kubectl's FIN (the pod's socket is shut down for
writing), from here the pod's end of stream.
A connection that cannot be made, or a pod that cannot have one, is one text message, the
error text kubectl prints (the kubelet's "error forwarding port ..." wording around the
runtime's reason), and the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from tinykube.api import errors

CONNECT_TIMEOUT = 10.0
READ_SIZE = 64 << 10
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
#: (host, port) -> a connection to it, from where it is opened
Connect = Callable[[str, int], Awaitable[Streams]]
#: port -> a connection to that port of one pod; raises DialError
Dial = Callable[[int], Awaitable[Streams]]


class DialError(Exception):
    """The connection to the pod failed; the message says why, in the runtime's words."""


def parse_port(value: str) -> int:
    """The `port` parameter, 1-65535; raises BadRequest."""
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise errors.BadRequest(f'invalid port "{value}": must be an integer in 1-65535')
    return int(value)


def _reason(exc: BaseException) -> str:
    """`connect: connection refused`, as Go words a failed dial."""
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    errno = getattr(exc, "errno", None)
    return f"connect: {os.strerror(errno).lower()}" if errno else str(exc)


async def _open(connect: Connect, host: str, port: int) -> Streams:
    async with asyncio.timeout(CONNECT_TIMEOUT):
        return await connect(host, port)


def address_dial(connect: Connect, address: str) -> Dial:
    """Connect to the pod's `address` (host mode): `dial tcp 127.244.0.3:9: connect: ...`."""
    async def dial(port: int) -> Streams:
        try:
            return await _open(connect, address, port)
        except (OSError, TimeoutError) as exc:
            host = f"[{address}]" if ":" in address else address
            raise DialError(f"dial tcp {host}:{port}: {_reason(exc)}") from exc
    return dial


def localhost_dial(connect: Connect, namespace: str) -> Dial:
    """Connect to localhost inside the pod's network namespace (`connect` opens its sockets
    there), IPv4 first, then IPv6, with containerd's message when both fail."""
    async def dial(port: int) -> Streams:
        reasons = []
        for family, host, shown in (("tcp4", "127.0.0.1", "127.0.0.1"),
                                    ("tcp6", "::1", "[::1]")):
            try:
                return await _open(connect, host, port)
            except (OSError, TimeoutError) as exc:
                reasons.append(f"dial {family} {shown}:{port}: {_reason(exc)}")
        raise DialError(f'failed to connect to localhost:{port} inside namespace "{namespace}", '
                        f"IPv4: {reasons[0]} IPv6 {reasons[1]} ")
    return dial


async def forward(ws: web.WebSocketResponse, *, pod: str, uid: str, port: int,
                  dial: Dial) -> None:
    """Connect to the pod's `port` and copy both ways until the API server closes `ws`."""
    try:
        reader, writer = await dial(port)
    except DialError as exc:
        await ws.send_str(f"error forwarding port {port} to pod {pod}, uid {uid}: {exc}")
        return
    upstream = asyncio.create_task(_from_pod(reader, ws))
    try:
        await _to_pod(ws, writer)
    finally:
        upstream.cancel()
        await asyncio.gather(upstream, return_exceptions=True)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _to_pod(ws: web.WebSocketResponse, writer: asyncio.StreamWriter) -> None:
    async for message in ws:
        if message.type != aiohttp.WSMsgType.BINARY:
            continue
        try:
            if message.data:
                writer.write(message.data)
                await writer.drain()
            elif writer.can_write_eof():
                writer.write_eof()
        except OSError:
            return


async def _from_pod(reader: asyncio.StreamReader, ws: web.WebSocketResponse) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(READ_SIZE):
            await ws.send_bytes(data)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(b"")
