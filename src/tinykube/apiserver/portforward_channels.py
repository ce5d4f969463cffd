"""`pods/<name>/portforward` over a channel WebSocket, as the official clients speak it.

The Python clients (`kubernetes.stream.portforward`, kubernetes_asyncio) and client-go before
KEP-4006 name the ports in the query (`?ports=1234,1235`) and ask for a WebSocket with the
subprotocol `v4.channel.k8s.io` (or `v4.base64.channel.k8s.io`, or none at all). That
connection carries two channels per port, in the order the ports are named: `2i` data and
`2i+1` error. Every message is one byte naming the channel and then the data; in the base64
protocol a text message, the channel as an ASCII digit and the data base64-encoded (upstream's
`wsstream` codecs).

As the kubelet's WebSocket port-forward handler does, the session first writes each port's
number (two bytes, little-endian) on both of its channels, then forwards every port at once
through a kubelet connection of its own (`dial`, as the SPDY session uses it): the client's
bytes on the data channel go to the pod, the pod's come back on it, and the kubelet's error
text (nothing listens there, a virtual pod) is written on the error channel. This protocol has
one TCP connection per port and no half-close: a port whose connection ended just goes quiet,
and the WebSocket is closed once every port has ended, or when the client closes it.
Backpressure: at most `QUEUED` client messages wait per port; past that the session reads no
more until that port's kubelet has taken some.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging

import aiohttp
from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver.portforward import MAX_ERROR, Dial

log = logging.getLogger(__name__)

BINARY, BASE64 = "v4.channel.k8s.io", "v4.base64.channel.k8s.io"
#: the subprotocols served, in the order upstream's handler lists them ("" is none offered)
PROTOCOLS = (BINARY, BASE64)
DATA, ERROR = 0, 1
QUEUED = 8
MAX_MESSAGE = 4 << 20
_WRITE_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)


def parse_ports(values: list[str]) -> list[int]:
    """The ports of the `ports` parameters (each a comma-separated list), in order; raises
    BadRequest with the kubelet's words."""
    if not values:
        raise errors.BadRequest('query parameter "port" is required')
    ports: list[int] = []
    for value in values:
        if not value:
            raise errors.BadRequest('query parameter "port" cannot be empty')
        for part in value.split(","):
            ports.append(_port(value, part))
    return ports


def _port(value: str, part: str) -> int:
    if not part.isascii() or not part.isdigit():
        raise errors.BadRequest(f'unable to parse "{value}" as a port: strconv.ParseUint: '
                                f'parsing "{part}": invalid syntax')
    if int(part) > 65535:
        raise errors.BadRequest(f'unable to parse "{value}" as a port: strconv.ParseUint: '
                                f'parsing "{part}": value out of range')
    if int(part) < 1:
        raise errors.BadRequest(f'port "{value}" must be > 0')
    return int(part)


@dataclasses.dataclass(frozen=True)
class Codec:
    """The framing of one subprotocol: raw bytes, or text with base64 data."""

    base64: bool

    def encode(self, channel: int, data: bytes) -> bytes | str:
        if self.base64:
            return chr(ord("0") + channel) + base64.b64encode(data).decode()
        return bytes((channel,)) + data

    def decode(self, message: aiohttp.WSMessage) -> tuple[int, bytes] | None:
        """(channel, data) of a client message; None for one that carries nothing."""
        if self.base64 and message.type == aiohttp.WSMsgType.TEXT and message.data:
            try:
                return ord(message.data[0]) - ord("0"), base64.b64decode(message.data[1:])
            except (binascii.Error, ValueError):
                return None
        if not self.base64 and message.type == aiohttp.WSMsgType.BINARY and message.data:
            return message.data[0], bytes(message.data[1:])
        return None


@dataclasses.dataclass(eq=False)
class Port:
    index: int
    number: int
    inbox: asyncio.Queue[bytes] = dataclasses.field(
        default_factory=lambda: asyncio.Queue(QUEUED))
    ended: bool = False


class Session:
    """One channel WebSocket: its ports, each forwarded through its own kubelet connection."""

    def __init__(self, ws: web.WebSocketResponse, codec: Codec, dial: Dial,
                 ports: list[int]) -> None:
        self.ws = ws
        self.codec = codec
        self.dial = dial
        self.ports = [Port(i, number) for i, number in enumerate(ports)]
        self._write = asyncio.Lock()

    def __repr__(self) -> str:
        return f"portforward_channels.Session(ports={[p.number for p in self.ports]})"

    async def run(self) -> None:
        """Forward every port until all have ended or the client closes the WebSocket."""
        for port in self.ports:
            prefix = port.number.to_bytes(2, "little")
            await self.send(2 * port.index + DATA, prefix)
            await self.send(2 * port.index + ERROR, prefix)
        forwards = [asyncio.create_task(self._forward(port)) for port in self.ports]
        tasks = [asyncio.create_task(self._read()), asyncio.create_task(_every(forwards))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, *forwards):
                task.cancel()
            await asyncio.gather(*tasks, *forwards, return_exceptions=True)

    async def send(self, channel: int, data: bytes) -> None:
        message = self.codec.encode(channel, data)
        async with self._write:
            with contextlib.suppress(*_WRITE_ERRORS):
                if isinstance(message, str):
                    await self.ws.send_str(message)
                else:
                    await self.ws.send_bytes(message)

    async def _read(self) -> None:
        """The client's messages to their ports' inboxes (error channels take nothing)."""
        async for message in self.ws:
            decoded = self.codec.decode(message)
            if decoded is None:
                continue
            channel, data = decoded
            index, kind = divmod(channel, 2)
            if kind == DATA and 0 <= index < len(self.ports) and data:
                port = self.ports[index]
                if not port.ended:
                    await port.inbox.put(data)

    async def _forward(self, port: Port) -> None:
        error = ""
        try:
            error = await self._through_kubelet(port)
        except (aiohttp.ClientError, OSError) as exc:
            error = f"error dialing the kubelet: {exc}"
        finally:
            port.ended = True
            while not port.inbox.empty():
                port.inbox.get_nowait()
        if error:
            await self.send(2 * port.index + ERROR, error.encode())

    async def _through_kubelet(self, port: Port) -> str:
        """Copy the port's bytes both ways through a kubelet WebSocket; the kubelet's error."""
        error = ""
        async with self.dial(str(port.number)) as kubelet:
            upward = asyncio.create_task(_upward(port, kubelet))
            try:
                async for message in kubelet:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        error = str(message.data)[:MAX_ERROR]
                    elif message.type != aiohttp.WSMsgType.BINARY or not message.data:
                        break
                    else:
                        await self.send(2 * port.index + DATA, bytes(message.data))
            finally:
                upward.cancel()
                await asyncio.gather(upward, return_exceptions=True)
        return error


async def _every(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks)


async def _upward(port: Port, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    while True:
        await kubelet.send_bytes(await port.inbox.get())


async def serve(request: web.Request, dial: Dial, ports: list[int]) -> web.WebSocketResponse:
    """Accept the client's channel WebSocket and forward `ports` on it."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=MAX_MESSAGE, autoping=True)
    await ws.prepare(request)
    try:
        await Session(ws, Codec(base64=ws.ws_protocol == BASE64), dial, ports).run()
    finally:
        await ws.close()
    return ws
