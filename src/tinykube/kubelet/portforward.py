"""The kubelet's side of one forwarded connection: a WebSocket of raw bytes and the pod's port.

The API server runs kubectl's SPDY session and opens one WebSocket here per forwarded connection
(`GET /portForward/<namespace>/<pod>?port=N`). The kubelet connects to the pod's address and
port the way it makes its probes' connections (from the node's network namespace in the `netns`
mode, on the host otherwise) and copies bytes: binary messages to the pod, what the pod sends
as binary messages back. An empty binary message ends one direction: from the API server it is
kubectl's FIN (the pod's socket is shut down for writing), from here the pod's end of stream.
A connection that cannot be made, or a pod that cannot have one, is one text message, the
error text kubectl prints (the kubelet's "error forwarding port ..." wording), and the close.
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
#: (host, port) -> a connection to it, from where the node's pods are reachable
Connect = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def parse_port(value: str) -> int:
    """The `port` parameter, 1-65535; raises BadRequest."""
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise errors.BadRequest(f'invalid port "{value}": must be an integer in 1-65535')
    return int(value)


def dial_error(host: str, port: int, exc: BaseException) -> str:
    """How Go words a failed dial: `dial tcp 10.244.1.2:9: connect: connection refused`."""
    if isinstance(exc, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    errno = getattr(exc, "errno", None)
    reason = f"connect: {os.strerror(errno).lower()}" if errno else str(exc)
    return f"dial tcp {host}:{port}: {reason}"


async def forward(ws: web.WebSocketResponse, *, pod: str, uid: str, host: str, port: int,
                  connect: Connect) -> None:
    """Connect to `host`:`port` and copy both ways until the API server closes `ws`."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await connect(host, port)
    except (OSError, TimeoutError) as exc:
        await ws.send_str(f"error forwarding port {port} to pod {pod}, uid {uid}: "
                          f"{dial_error(host, port, exc)}")
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
