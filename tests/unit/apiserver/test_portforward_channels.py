"""Port-forward over a channel WebSocket (`v4.channel.k8s.io`, the Python clients' protocol), over
real sockets: a client WebSocket to `apiserver.portforward_channels`, which dials the real
kubelet endpoint, which connects to real TCP servers on loopback. The cases: the port prefixes
on every channel, data both ways on two ports at once, a refused port's error on its error
channel while the other port goes on, the base64 protocol, the WebSocket closing once every
port has ended; and the `ports` parameter's parsing as a table."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import pytest
from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver import portforward_channels
from tinykube.kubelet import portforward as kubelet_portforward
from tinykube.kubelet.server import KubeletServer

TOKEN = "kubelet-secret"


def no_lookup(*_args: object) -> None:
    raise errors.BadRequest("not in this test")


async def upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


async def one_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the first line, then close."""
    writer.write(b"got " + await reader.readline())
    await writer.drain()
    writer.close()


@dataclasses.dataclass
class Servers:
    """`connect(ports, protocol)` opens a session; `names` are the servers' ports by name."""

    connect: Callable[..., AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]]
    names: dict[str, str]


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """Serve port-forward sessions with a kubelet in front of two TCP servers; the client
    names them `echo` and `line` in `ports`."""
    tcp = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (upper_echo, one_line)]
    names = {"echo": str(tcp[0].sockets[0].getsockname()[1]),
             "line": str(tcp[1].sockets[0].getsockname()[1])}

    def lookup(namespace: str, pod: str) -> tuple[str, str, kubelet_portforward.Dial]:
        return f"{pod}_{namespace}", "uid-1", kubelet_portforward.address_dial(
            asyncio.open_connection, "127.0.0.1")
    kubelet = KubeletServer(no_lookup, no_lookup, no_lookup, token=TOKEN, forward_lookup=lookup)
    kubelet_port = await kubelet.start()
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})

    async def handler(request: web.Request) -> web.WebSocketResponse:
        def dial(port: str) -> AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]:
            return http.ws_connect(f"http://127.0.0.1:{kubelet_port}/portForward/ns/web",
                                   params={"port": port})
        ports = portforward_channels.parse_ports(request.query.getall("ports", []))
        return await portforward_channels.serve(request, dial, ports)
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"

    @contextlib.asynccontextmanager
    async def connect(ports: str, protocol: str = portforward_channels.BINARY
                      ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        ports = ",".join(names.get(p, p) for p in ports.split(","))
        async with aiohttp.ClientSession() as client, \
                client.ws_connect(url, params={"ports": ports},
                                  protocols=("v5.channel.k8s.io", protocol)) as ws:
            assert ws.protocol == protocol  # v5 is not a port-forward protocol
            yield ws
    yield Servers(connect, names)
    await runner.cleanup()
    await http.close()
    await kubelet.close()
    for server in tcp:
        server.close()


async def receive(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, bytes] | None:
    """(channel, data) of the next message, None once the server has closed."""
    async with asyncio.timeout(10):
        message = await ws.receive()
    if message.type == aiohttp.WSMsgType.BINARY:
        return message.data[0], message.data[1:]
    if message.type == aiohttp.WSMsgType.TEXT:
        return ord(message.data[0]) - ord("0"), base64.b64decode(message.data[1:])
    return None


async def prefixes(ws: aiohttp.ClientWebSocketResponse, *ports: str) -> None:
    """Every channel starts with its port's number, two bytes little-endian."""
    expected = {(2 * i + k, int(p).to_bytes(2, "little")) for i, p in enumerate(ports)
                for k in (0, 1)}
    assert {await receive(ws) for _ in expected} == expected


async def test_two_ports_at_once_and_the_close_once_both_ended(servers: Servers) -> None:
    names = servers.names
    async with servers.connect("echo,line") as ws:
        await prefixes(ws, names["echo"], names["line"])
        await ws.send_bytes(b"\x00hello")
        await ws.send_bytes(b"\x02one line\n")
        await ws.send_bytes(b"\x01ignored: the error channel reads nothing")
        got: dict[int, bytes] = {0: b"", 2: b""}
        while got != {0: b"HELLO", 2: b"got one line\n"}:
            channel, data = await receive(ws) or (-1, b"")
            assert channel in got, (channel, data)
            got[channel] += data
        await ws.send_bytes(b"\x00 again")  # the echo port goes on after the other ended
        assert await receive(ws) == (0, b" AGAIN")
        assert not ws.closed


async def test_a_refused_port_is_an_error_and_the_other_goes_on(servers: Servers) -> None:
    names = servers.names
    async with servers.connect("9,echo") as ws:
        await prefixes(ws, "9", names["echo"])
        assert await receive(ws) == (1, b"error forwarding port 9 to pod web_ns, uid uid-1: "
                                        b"dial tcp 127.0.0.1:9: connect: connection refused")
        await ws.send_bytes(b"\x02still here")
        assert await receive(ws) == (2, b"STILL HERE")


async def test_the_base64_protocol(servers: Servers) -> None:
    names = servers.names
    async with servers.connect("line", portforward_channels.BASE64) as ws:
        await prefixes(ws, names["line"])
        await ws.send_str("0" + base64.b64encode(b"b64\n").decode())
        assert await receive(ws) == (0, b"got b64\n")
        assert await receive(ws) is None  # the only port ended: the server closes


@pytest.mark.parametrize(("values", "result"), [
    (["80"], [80]),
    (["1234,1235", "8080"], [1234, 1235, 8080]),
    ([], 'query parameter "port" is required'),
    ([""], 'query parameter "port" cannot be empty'),
    (["80,x"], 'unable to parse "80,x" as a port: strconv.ParseUint: parsing "x": '
               "invalid syntax"),
    (["70000"], 'unable to parse "70000" as a port: strconv.ParseUint: parsing "70000": '
                "value out of range"),
    (["0"], 'port "0" must be > 0'),
    (["-1"], 'unable to parse "-1" as a port: strconv.ParseUint: parsing "-1": '
             "invalid syntax"),
])
def test_parse_ports(values: list[str], result: list[int] | str) -> None:
    if isinstance(result, list):
        assert portforward_channels.parse_ports(values) == result
        return
    with pytest.raises(errors.BadRequest) as raised:
        portforward_channels.parse_ports(values)
    assert str(raised.value) == result
