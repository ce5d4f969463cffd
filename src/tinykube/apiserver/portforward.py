"""`pods/<name>/portforward`: kubectl's SPDY/3.1 session, tunneled in a WebSocket (KEP-4006).

kubectl (client-go's tunneling dialer) asks for a WebSocket with the subprotocol
`SPDY/3.1+portforward.k8s.io`; the WebSocket's binary messages then carry a raw SPDY/3.1 byte
stream, frame boundaries independent of message boundaries (`api.spdy` decodes it). For every
local connection kubectl opens two streams with SYN_STREAM, headers `streamtype` (`error`, then
`data`), `port` and `requestid`. As the kubelet's port-forward server does, this session
answers each with an empty SYN_REPLY at once, pairs the two by request id (waiting at most
`stream_timeout` for the second, as the kubelet's streamCreationTimeout), and then forwards the
pair: it opens a WebSocket to the pod's kubelet (`dial`, one per forwarded connection; the
kubelet connects to the pod's port), copies DATA frames on the data stream to it as binary
messages and its binary messages back as DATA frames. An empty binary message is the end of one
direction (DATA with FIN from kubectl; the pod closing its side from the kubelet); a text message
from the kubelet is the error (refused, no such pod, a virtual pod), written on the error stream.
The pair ends when the pod's side ends: FIN on the error stream, then on the data stream.

The session answers PING, ignores SETTINGS, HEADERS and WINDOW_UPDATE (spdystream does no flow
control, so neither end ever waits for a window), drops a stream on RST_STREAM, and ends on
GOAWAY or when the WebSocket closes. Bounds: frames of at most `spdy.MAX_LENGTH` bytes (longer:
GOAWAY and the end of the session, like any protocol error), at most `max_streams` open streams
(more: RST_STREAM REFUSED_STREAM), and at most `buffer_bytes` of kubectl's data queued for all
kubelets together: past that the session reads no more frames until they have taken some.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
from aiohttp import web

from tinykube.api import spdy

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
STREAM_TIMEOUT = 30.0        # the kubelet's streamCreationTimeout
MAX_STREAMS = 512
BUFFER_BYTES = 4 << 20
CHUNK = 32 << 10             # the largest DATA frame this side writes
MAX_ERROR = 4096             # the longest error text passed on
#: port -> a WebSocket to the kubelet that forwards one connection to that port of the pod
Dial = Callable[[str], AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]]
_WRITE_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)


@dataclasses.dataclass(eq=False)
class Stream:
    id: int
    kind: str                 # "error" or "data"
    request_id: str
    remote_closed: bool = False
    local_closed: bool = False


@dataclasses.dataclass(eq=False)
class Pair:
    """The error and data streams of one forwarded connection."""

    request_id: str
    port: str
    error: Stream | None = None
    data: Stream | None = None
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    inbox: asyncio.Queue[bytes | None] = dataclasses.field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class Budget:
    """Bytes of kubectl's data queued, session-wide; `take` waits while it is spent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._freed = asyncio.Condition()

    def __repr__(self) -> str:
        return f"Budget({self.used}/{self.limit})"

    async def take(self, size: int) -> None:
        async with self._freed:
            await self._freed.wait_for(lambda: self.used == 0 or self.used + size <= self.limit)
            self.used += size

    async def give(self, size: int) -> None:
        async with self._freed:
            self.used -= size
            self._freed.notify_all()


class Session:
    """One kubectl port-forward connection: its SPDY streams and the pairs they make."""

    def __init__(self, ws: web.WebSocketResponse, dial: Dial, *,
                 stream_timeout: float = STREAM_TIMEOUT, max_streams: int = MAX_STREAMS,
                 buffer_bytes: int = BUFFER_BYTES) -> None:
        self.ws = ws
        self.dial = dial
        self.stream_timeout = stream_timeout
        self.max_streams = max_streams
        self.budget = Budget(buffer_bytes)
        self.encoder = spdy.Encoder()
        self.decoder = spdy.Decoder()
        self.streams: dict[int, Stream] = {}
        self.pairs: dict[str, Pair] = {}
        self.last_stream_id = 0
        self._write = asyncio.Lock()

    def __repr__(self) -> str:
        return f"portforward.Session(streams={len(self.streams)}, pairs={len(self.pairs)})"

    async def run(self) -> None:
        """Read frames until GOAWAY, a protocol error or the WebSocket's end."""
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.BINARY:
                    continue
                try:
                    frames = self.decoder.feed(message.data)
                except spdy.SpdyError as exc:
                    log.info("port-forward session ends: %s", exc)
                    await self.send(spdy.GoAway(self.last_stream_id, exc.status))
                    return
                for frame in frames:
                    if not await self.handle(frame):
                        return
        finally:
            tasks = [p.task for p in self.pairs.values() if p.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def send(self, *frames: spdy.Frame) -> None:
        """Write frames in order; header blocks are compressed in the order they are sent."""
        async with self._write:
            with contextlib.suppress(*_WRITE_ERRORS):
                await self.ws.send_bytes(b"".join(self.encoder.encode(f) for f in frames))

    async def handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False once the session is to end."""
        match frame:
            case spdy.SynStream():
                await self._open(frame)
            case spdy.Data():
                await self._data(frame)
            case spdy.RstStream():
                self._reset(frame.stream_id)
            case spdy.Ping():
                await self.send(frame)
            case spdy.GoAway():
                return False
        return True  # SETTINGS, HEADERS, WINDOW_UPDATE, SYN_REPLY: nothing to do

    # --- streams ------------------------------------------------------------------------------

    async def _open(self, frame: spdy.SynStream) -> None:
        sid, headers = frame.stream_id, frame.headers
        if sid % 2 == 0 or sid <= self.last_stream_id:
            await self.send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        self.last_stream_id = sid
        kind, request_id = headers.get("streamtype"), headers.get("requestid", "")
        pair = self.pairs.get(request_id)
        if kind not in ("error", "data") or not request_id or \
                (pair is not None and getattr(pair, kind) is not None):
            await self.send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        if len(self.streams) >= self.max_streams:
            await self.send(spdy.RstStream(sid, spdy.REFUSED_STREAM))
            return
        stream = self.streams[sid] = Stream(sid, kind, request_id, remote_closed=frame.fin)
        await self.send(spdy.SynReply(sid, {}))
        if pair is None:
            pair = self.pairs[request_id] = Pair(request_id, headers.get("port", ""))
            pair.task = asyncio.create_task(self._forward(pair))
        setattr(pair, kind, stream)
        if pair.error is not None and pair.data is not None:
            pair.ready.set()

    async def _data(self, frame: spdy.Data) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None or stream.remote_closed:
            await self.send(spdy.RstStream(frame.stream_id, spdy.INVALID_STREAM if stream is None
                                           else spdy.STREAM_ALREADY_CLOSED))
            return
        pair = self._pair_of(stream)
        accepting = stream.kind == "data" and not stream.local_closed and pair is not None
        if accepting and frame.data:
            assert pair is not None
            await self.budget.take(len(frame.data))
            pair.inbox.put_nowait(frame.data)
        if frame.fin:
            stream.remote_closed = True
            if accepting:
                assert pair is not None
                pair.inbox.put_nowait(None)
            self._forget_if_closed(stream)

    def _reset(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        stream.remote_closed = stream.local_closed = True
        pair = self._pair_of(stream)
        if pair is not None and pair.task is not None:
            pair.task.cancel()

    def _pair_of(self, stream: Stream) -> Pair | None:
        pair = self.pairs.get(stream.request_id)
        return pair if pair is not None and stream in (pair.error, pair.data) else None

    def _forget_if_closed(self, stream: Stream) -> None:
        if stream.remote_closed and stream.local_closed:
            self.streams.pop(stream.id, None)

    # --- one forwarded connection -------------------------------------------------------------

    async def _forward(self, pair: Pair) -> None:
        error = ""
        try:
            async with asyncio.timeout(self.stream_timeout):
                await pair.ready.wait()
        except TimeoutError:
            error = f"timed out waiting for the streams of request {pair.request_id}"
        try:
            if not error:
                error = await self._through_kubelet(pair)
        except (aiohttp.ClientError, OSError) as exc:
            error = f"error dialing the kubelet: {exc}"
        finally:
            await self._finish(pair, error)

    async def _through_kubelet(self, pair: Pair) -> str:
        """Copy the pair's data both ways through a kubelet WebSocket; the kubelet's error."""
        assert pair.data is not None
        error = ""
        async with self.dial(pair.port) as kubelet:
            upward = asyncio.create_task(self._upward(pair, kubelet))
            try:
                async for message in kubelet:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        error = str(message.data)[:MAX_ERROR]
                    elif message.type != aiohttp.WSMsgType.BINARY or not message.data:
                        break
                    else:
                        await self._send_data(pair.data, bytes(message.data))
            finally:
                upward.cancel()
                await asyncio.gather(upward, return_exceptions=True)
        return error

    async def _upward(self, pair: Pair, kubelet: aiohttp.ClientWebSocketResponse) -> None:
        """kubectl's data to the kubelet, then an empty message for its FIN."""
        while (chunk := await pair.inbox.get()) is not None:
            try:
                await kubelet.send_bytes(chunk)
            finally:
                await self.budget.give(len(chunk))
        await kubelet.send_bytes(b"")

    async def _send_data(self, stream: Stream, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            await self.send(spdy.Data(stream.id, data[start:start + CHUNK]))

    async def _finish(self, pair: Pair, error: str) -> None:
        """The error (if any) and FIN on both streams, then forget what kubectl closed."""
        self.pairs.pop(pair.request_id, None)
        while not pair.inbox.empty():
            chunk = pair.inbox.get_nowait()
            if chunk:
                await self.budget.give(len(chunk))
        frames: list[spdy.Frame] = []
        for stream, text in ((pair.error, error), (pair.data, "")):
            if stream is not None and not stream.local_closed:
                stream.local_closed = True
                frames.append(spdy.Data(stream.id, text.encode(), fin=True))
                self._forget_if_closed(stream)
        if frames:
            await self.send(*frames)


async def serve(request: web.Request, dial: Dial) -> web.WebSocketResponse:
    """Accept kubectl's tunneling WebSocket and run the session on it."""
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=spdy.MAX_LENGTH + 8,
                               autoping=True)
    await ws.prepare(request)
    try:
        await Session(ws, dial).run()
    finally:
        await ws.close()
    return ws
