"""The port-forward session over real sockets: a SPDY client (our codec) on a WebSocket to
`apiserver.portforward`, which dials the real kubelet endpoint, which connects to a real TCP
server on loopback. The cases: data both ways and FIN on both streams, a refused port's error
text while the session goes on serving other connections, a pod that runs nothing, PING,
protocol errors (GOAWAY), stream limits and the wait for a pair's second stream."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import pytest
from aiohttp import web

from tinykube.api import errors, spdy
from tinykube.apiserver import portforward
from tinykube.kubelet import portforward as kubelet_portforward
from tinykube.kubelet.server import KubeletServer

TOKEN = "kubelet-secret"


def no_lookup(*_args: object) -> None:
    raise errors.BadRequest("not in this test")


async def upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo upper-cased until the peer's EOF, then close."""
    while data := await reader.read(4096):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


class Client:
    """kubectl's side of a session: frames out, frames in (with a deadline)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse,
                 session: Callable[[], portforward.Session]) -> None:
        self.ws = ws
        self.session = session  # the server's side, once it runs
        self.encoder = spdy.Encoder()
        self.decoder = spdy.Decoder()
        self.pending: list[spdy.Frame] = []

    async def send(self, *frames: spdy.Frame) -> None:
        await self.ws.send_bytes(b"".join(self.encoder.encode(f) for f in frames))

    async def pair(self, request_id: int, port: int | str) -> tuple[int, int]:
        """Open the error and data streams of one forwarded connection, as kubectl does."""
        error, data = 4 * request_id + 1, 4 * request_id + 3
        headers = {"port": str(port), "requestid": str(request_id)}
        await self.send(spdy.SynStream(error, {**headers, "streamtype": "error"}),
                        spdy.Data(error, b"", fin=True),
                        spdy.SynStream(data, {**headers, "streamtype": "data"}))
        return error, data

    async def next(self) -> spdy.Frame:
        async with asyncio.timeout(10):
            while not self.pending:
                message = await self.ws.receive()
                if message.type != aiohttp.WSMsgType.BINARY:
                    raise EOFError(message.type)
                self.pending += self.decoder.feed(message.data)
        return self.pending.pop(0)

    async def until(self, done: Callable[[spdy.Frame], bool]) -> list[spdy.Frame]:
        """Frames up to and including the first that is `done`."""
        frames = [await self.next()]
        while not done(frames[-1]):
            frames.append(await self.next())
        return frames

    async def stream(self, stream_id: int) -> tuple[bytes, list[spdy.Frame]]:
        """The data on `stream_id` until its FIN, and every other frame seen meanwhile."""
        data, others = b"", []
        while True:
            frame = await self.next()
            if isinstance(frame, spdy.Data) and frame.stream_id == stream_id:
                data += frame.data
                if frame.fin:
                    return data, others
            else:
                others.append(frame)


Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Serve the session (options as given) with a kubelet in front of a TCP echo server."""
    echo = await asyncio.start_server(upper_echo, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]

    def lookup(namespace: str, pod: str) -> tuple[str, str, kubelet_portforward.Dial]:
        if pod == "ghost":
            raise errors.BadRequest('pod "ghost" runs in the virtual runtime')
        return f"{pod}_{namespace}", "uid-1", kubelet_portforward.address_dial(
            asyncio.open_connection, "127.0.0.1")
    kubelet = KubeletServer(no_lookup, no_lookup, no_lookup,
                            token=TOKEN, forward_lookup=lookup)
    kubelet_port = await kubelet.start()
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    options: dict[str, object] = {}
    sessions: list[portforward.Session] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        pod = request.match_info["pod"]

        def dial(port: str) -> AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]:
            port = str(echo_port) if port == "echo" else port
            return http.ws_connect(f"http://127.0.0.1:{kubelet_port}/portForward/ns/{pod}",
                                   params={"port": port})
        ws = web.WebSocketResponse(protocols=(portforward.PROTOCOL,))
        await ws.prepare(request)
        sessions.append(portforward.Session(ws, dial, **options))
        await sessions[-1].run()
        await ws.close()
        return ws
    app = web.Application()
    app.router.add_get("/{pod}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    @contextlib.asynccontextmanager
    async def open_session(pod: str = "web", **given: object) -> AsyncIterator[Client]:
        options.update(given)
        async with aiohttp.ClientSession() as client, \
                client.ws_connect(f"{url}/{pod}", protocols=(portforward.PROTOCOL,)) as ws:
            assert ws.protocol == portforward.PROTOCOL
            yield Client(ws, lambda: sessions[-1])
    yield open_session
    await runner.cleanup()
    await http.close()
    await kubelet.close()
    echo.close()


async def test_data_flows_both_ways_and_both_streams_end(connect: Connect) -> None:
    async with connect() as client:
        error, data = await client.pair(0, "echo")
        assert await client.next() == spdy.SynReply(error, {})
        assert await client.next() == spdy.SynReply(data, {})
        await client.send(spdy.Data(data, b"hello "), spdy.Data(data, b"world"),
                          spdy.Data(data, b"", fin=True))
        received, others = await client.stream(data)
        assert received == b"HELLO WORLD"
        assert others == [spdy.Data(error, b"", fin=True)]  # no error, FIN before the data's
        await client.send(spdy.RstStream(data, spdy.CANCEL), spdy.Ping(1))  # as kubectl does
        assert await client.next() == spdy.Ping(1)
        assert (client.session().streams, client.session().pairs) == ({}, {})


async def test_a_refused_port_is_an_error_and_the_session_goes_on(
        connect: Connect) -> None:
    async with connect() as client:
        error, data = await client.pair(0, 9)
        await client.until(lambda f: f == spdy.SynReply(data, {}))
        text, _ = await client.stream(error)
        assert text == (b"error forwarding port 9 to pod web_ns, uid uid-1: "
                        b"dial tcp 127.0.0.1:9: connect: connection refused")
        assert await client.next() == spdy.Data(data, b"", fin=True)
        error, data = await client.pair(1, "echo")
        await client.until(lambda f: f == spdy.SynReply(data, {}))
        await client.send(spdy.Data(data, b"still here", fin=True))
        assert (await client.stream(data))[0] == b"STILL HERE"


@pytest.mark.parametrize(("pod", "port", "message"), [
    pytest.param("ghost", "80", b'pod "ghost" runs in the virtual runtime', id="virtual-pod"),
    pytest.param("web", "0", b'invalid port "0": must be an integer in 1-65535', id="port-0"),
    pytest.param("web", "x", b'invalid port "x": must be an integer in 1-65535', id="port-x"),
])
async def test_the_kubelets_refusal_is_the_error_text(connect: Connect, pod: str,
                                                      port: str, message: bytes) -> None:
    async with connect(pod) as client:
        error, _ = await client.pair(0, port)
        assert (await client.stream(error))[0] == message


async def test_ping_is_answered_and_settings_and_window_updates_ignored(
        connect: Connect) -> None:
    async with connect() as client:
        await client.send(spdy.Settings(((0, 7, 1024),)), spdy.WindowUpdate(1, 10),
                          spdy.Ping(5))
        assert await client.next() == spdy.Ping(5)


@pytest.mark.parametrize(("data", "status"), [
    pytest.param(struct.pack(">II", 1, spdy.MAX_LENGTH + 1), spdy.GOAWAY_PROTOCOL_ERROR,
                 id="frame-too-long"),
    pytest.param(struct.pack(">II", 0x80020006, 4) + b"\0\0\0\1", spdy.GOAWAY_PROTOCOL_ERROR,
                 id="spdy-2"),
])
async def test_a_protocol_error_ends_the_session_with_goaway(
        connect: Connect, data: bytes, status: int) -> None:
    async with connect() as client:
        await client.ws.send_bytes(data)
        assert await client.next() == spdy.GoAway(0, status)
        with pytest.raises(EOFError):
            await client.next()


async def test_streams_past_the_limit_are_refused(connect: Connect) -> None:
    async with connect(max_streams=2) as client:
        await client.pair(0, "echo")
        await client.send(spdy.SynStream(5, {"streamtype": "error", "requestid": "1"}))
        frames = await client.until(lambda f: isinstance(f, spdy.RstStream))
        assert frames[-1] == spdy.RstStream(5, spdy.REFUSED_STREAM)


@pytest.mark.parametrize(("frame", "reset"), [
    pytest.param(spdy.SynStream(1, {"streamtype": "stdin", "requestid": "0"}),
                 spdy.RstStream(1, spdy.PROTOCOL_ERROR), id="unknown-stream-type"),
    pytest.param(spdy.SynStream(1, {"streamtype": "data"}),
                 spdy.RstStream(1, spdy.PROTOCOL_ERROR), id="no-request-id"),
    pytest.param(spdy.SynStream(2, {"streamtype": "data", "requestid": "0"}),
                 spdy.RstStream(2, spdy.PROTOCOL_ERROR), id="even-stream-id"),
    pytest.param(spdy.Data(7, b"x"), spdy.RstStream(7, spdy.INVALID_STREAM),
                 id="data-on-no-stream"),
])
async def test_bad_streams_are_reset(connect: Connect, frame: spdy.Frame,
                                     reset: spdy.RstStream) -> None:
    async with connect() as client:
        await client.send(frame)
        assert await client.next() == reset


async def test_a_pair_missing_its_data_stream_times_out(connect: Connect) -> None:
    async with connect(stream_timeout=0.05) as client:
        await client.send(spdy.SynStream(1, {"streamtype": "error", "requestid": "7"}))
        assert await client.next() == spdy.SynReply(1, {})
        assert (await client.stream(1))[0] == b"timed out waiting for the streams of request 7"


async def test_the_budget_holds_the_reader_until_data_is_taken() -> None:
    budget = portforward.Budget(10)
    await budget.take(8)
    waiting = asyncio.create_task(budget.take(4))
    await asyncio.sleep(0)
    assert not waiting.done()
    await budget.give(8)
    await waiting
    assert budget.used == 4
    await budget.give(4)
    await budget.take(100)  # a frame larger than the whole budget passes once nothing is queued
    assert budget.used == 100
