"""`pods/<name>/exec` and `attach`: kubectl's WebSocket relayed to the pod's kubelet endpoint.

As upstream, the API server runs nothing on nodes: it checks the request (the pod, the
container, the command), opens a WebSocket to the node agent's kubelet endpoint with the same
query and the subprotocols kubectl offered (`api.remotecommand`), then accepts kubectl's
WebSocket with the one the kubelet chose and copies messages both ways until either side closes.

kubectl tries a WebSocket first and falls back to SPDY only when that upgrade fails; tinykube
speaks the WebSocket protocol only, so a request that is not a WebSocket upgrade gets 400.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

from tinykube.api import errors, remotecommand

_PASSED_ON = ("command", "stdin", "stdout", "stderr", "tty", "container")


def check(request: web.Request, *, needs_command: bool) -> None:
    """What kube-apiserver refuses before upgrading: no command (exec), not a WebSocket."""
    if needs_command and not request.query.getall("command", []):
        raise errors.BadRequest("you must specify at least 1 command")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.BadRequest("Upgrade request required: tinykube streams exec and attach "
                                "over WebSocket (v4/v5.channel.k8s.io) only")


async def relay(request: web.Request, url: str, headers: dict[str, str]) -> web.StreamResponse:
    """Connect to the kubelet at `url`, then accept kubectl's WebSocket and copy messages."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    protocols = [p for p in offered if p in remotecommand.PROTOCOLS] or \
        list(remotecommand.PROTOCOLS)
    params = [(k, v) for k, v in request.query.items() if k in _PASSED_ON]
    session = aiohttp.ClientSession(headers=headers)
    try:
        upstream = await session.ws_connect(url, params=params, protocols=protocols,
                                            max_msg_size=0, autoping=True)
    except (aiohttp.ClientError, OSError) as exc:
        await session.close()
        if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status == 401:
            raise errors.InternalError("the kubelet refused the API server's token") from exc
        raise errors.InternalError(f"error dialing the kubelet at {url}: {exc}") from exc
    try:
        downstream = web.WebSocketResponse(protocols=(upstream.protocol or protocols[0],),
                                           max_msg_size=0, autoping=True)
        await downstream.prepare(request)
        await _copy_both_ways(downstream, upstream)
        return downstream
    finally:
        await upstream.close()
        await session.close()


async def _copy_both_ways(client: web.WebSocketResponse,
                          kubelet: aiohttp.ClientWebSocketResponse) -> None:
    tasks = [asyncio.create_task(_copy(client, kubelet)),
             asyncio.create_task(_copy(kubelet, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await client.close()


async def _copy(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    """Messages from `source` to `sink` until `source` closes."""
    async for message in source:
        if message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
