"""Pod subresources served by the pod's node: `log`, `exec`, `attach` and `portforward`.

As upstream, the API server reads no node-local files and starts no processes on nodes: it checks
the request against the pod (the container, the pod's phase), then asks the kubelet endpoint of
the pod's node, at the port the Node publishes in `status.daemonEndpoints.kubeletEndpoint.Port`,
showing it the cluster's kubelet token.

- `log` is an HTTP request; `follow` streams the answer chunked.
- `exec` and `attach` are WebSockets (`api.remotecommand`): the proxy opens one to the kubelet
  with the subprotocols kubectl offered, then accepts kubectl's with the one the kubelet chose
  and copies messages both ways until either side closes. kubectl tries a WebSocket first and
  falls back to SPDY only when that upgrade fails; tinykube speaks the WebSocket protocol only,
  so a request that is not a WebSocket upgrade gets 400.
- `portforward` is kubectl's SPDY session tunneled in a WebSocket, served here
  (`apiserver.portforward`), or the channel WebSocket of the Python clients
  (`apiserver.portforward_channels`); each forwarded connection is a WebSocket of raw bytes to
  the kubelet's `/portForward/<namespace>/<pod>?port=`, which connects to the pod's port. A
  request that is not a WebSocket (the plain SPDY/3.1 upgrade kubectl falls back to) gets 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
from aiohttp import web

from tinykube.api import errors, remotecommand, resources
from tinykube.api.meta import KUBELET_ADDRESS_ANNOTATION
from tinykube.apiserver import portforward, portforward_channels
from tinykube.apiserver.params import parse_bool
from tinykube.apiserver.paths import Target
from tinykube.apiserver.registry import Registry

log = logging.getLogger(__name__)
SUBRESOURCES = ("log", "exec", "attach", "portforward")
_LOG_PARAMETERS = ("follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime",
                   "limitBytes")


class KubeletProxy:
    """Serves the node-side pod subresources for the API server's resource handler."""

    def __init__(self, registry: Registry, kubelet_token: str) -> None:
        self.registry = registry
        self.headers = {"Authorization": f"Bearer {kubelet_token}"}

    def __repr__(self) -> str:
        return f"KubeletProxy({self.registry!r})"

    async def serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        action = target.subresource
        if action == "portforward":
            return await self._portforward(request, target)
        container, kubelet = self._locate(request, target, action)
        if action == "log":
            return await self._log(request, target, container, kubelet)
        check_stream(request, needs_command=action == "exec")
        if kubelet is None:
            raise errors.BadRequest(f'pod "{target.name}" runs on a node without a kubelet '
                                    "endpoint")
        url = f"{kubelet}/{action}/{target.namespace}/{target.name}/{container}"
        return await relay(request, url, self.headers)

    def _locate(self, request: web.Request, target: Target,
                action: str) -> tuple[str, str | None]:
        """(container, kubelet base URL) for the request; the URL is None when the pod's node
        publishes no kubelet endpoint."""
        namespace = target.namespace or ""
        entry = self.registry.get(target.res, namespace, target.name or "")
        spec = entry.obj.get("spec", {})
        containers = [c["name"] for c in [*spec.get("initContainers", []),
                                          *spec.get("containers", [])]]
        first = [c["name"] for c in spec.get("containers", [])]
        container = request.query.get("container") or (first[0] if first else "")
        if container not in containers:
            raise errors.BadRequest(f"container {container} is not valid for pod {target.name}")
        if not spec.get("nodeName"):
            raise errors.BadRequest(f'container "{container}" in pod "{target.name}" is '
                                    "waiting to start: ContainerCreating")
        phase = entry.obj.get("status", {}).get("phase")
        if action != "log" and phase in ("Succeeded", "Failed"):
            verb = "exec into" if action == "exec" else "attach"
            raise errors.BadRequest(f"cannot {verb} a container in a completed pod; current "
                                    f"phase is {phase}")
        return container, self._kubelet(spec["nodeName"])

    def _kubelet(self, node_name: str) -> str | None:
        """The base URL of the node's kubelet endpoint; None when the Node publishes none."""
        nodes = resources.must("", "v1", "nodes")
        return endpoint(self.registry.get(nodes, "", node_name).obj)

    async def _portforward(self, request: web.Request, target: Target) -> web.StreamResponse:
        entry = self.registry.get(target.res, target.namespace or "", target.name or "")
        node = entry.obj.get("spec", {}).get("nodeName")
        if not node:
            raise errors.BadRequest(f"pod {target.name} does not have a host assigned")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                   if p.strip()]
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.BadRequest(
                "Upgrade request required: tinykube serves port-forward as SPDY/3.1 tunneled "
                f"over WebSocket ({portforward.PROTOCOL}) or as a channel WebSocket "
                f"({', '.join(portforward_channels.PROTOCOLS)})")
        spdy = portforward.PROTOCOL in offered
        ports: list[int] = []
        if not spdy:
            channels(offered)
            ports = portforward_channels.parse_ports(request.query.getall("ports", []))
        kubelet = self._kubelet(node)
        if kubelet is None:
            raise errors.BadRequest(f'pod "{target.name}" runs on a node without a kubelet '
                                    "endpoint")
        url = f"{kubelet}/portForward/{target.namespace}/{target.name}"
        connector = aiohttp.TCPConnector(limit=portforward.MAX_STREAMS)
        async with aiohttp.ClientSession(headers=self.headers, connector=connector) as session:
            def dial(port: str) -> AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]:
                return session.ws_connect(url, params={"port": port}, max_msg_size=1 << 20,
                                          timeout=aiohttp.ClientWSTimeout(ws_close=5))
            if spdy:
                return await portforward.serve(request, dial)
            return await portforward_channels.serve(request, dial, ports)

    async def _log(self, request: web.Request, target: Target, container: str,
                   kubelet: str | None) -> web.StreamResponse:
        if kubelet is None:  # a node without a kubelet endpoint runs nothing that writes output
            return web.Response(body=b"", content_type="text/plain")
        params = {k: v for k, v in request.query.items() if k in _LOG_PARAMETERS}
        url = f"{kubelet}/containerLogs/{target.namespace}/{target.name}/{container}"
        try:
            async with aiohttp.ClientSession(headers=self.headers) as session, \
                    session.get(url, params=params, timeout=aiohttp.ClientTimeout(
                        total=None, connect=5)) as upstream:
                if upstream.status != 200 or not parse_bool(params.get("follow")):
                    return web.Response(body=await upstream.read(), status=upstream.status,
                                        content_type=upstream.content_type)
                response = web.StreamResponse()
                response.content_type = "text/plain"
                await response.prepare(request)
                await _copy_log(upstream, response, url)
                return response
        except aiohttp.ClientError as exc:
            raise errors.InternalError(f"Get \"{url}\": {exc}") from exc


def endpoint(node_obj: Mapping[str, Any]) -> str | None:
    """The base URL of a Node's kubelet endpoint; None when it publishes none."""
    node = node_obj.get("status", {})
    port = node.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
    # A node in its own network namespace (`--network netns`) names where its kubelet
    # endpoint listens on this host; otherwise it is the node's InternalIP.
    annotations = node_obj.get("metadata", {}).get("annotations") or {}
    host = annotations.get(KUBELET_ADDRESS_ANNOTATION) or next(
        (a["address"] for a in node.get("addresses", []) if a.get("type") == "InternalIP"),
        "127.0.0.1")
    return f"http://{host}:{port}" if port else None


def channels(offered: list[str]) -> None:
    """Refuse a WebSocket whose subprotocols are none of the channel ones (none at all is
    allowed), in upstream's `wsstream` words."""
    allowed = ["", *portforward_channels.PROTOCOLS]
    if offered and not any(p in allowed for p in offered):
        raise errors.BadRequest(f"requested protocol(s) are not supported: [{' '.join(offered)}]; "
                                f"supports [{' '.join(allowed)}]")


async def _copy_log(upstream: aiohttp.ClientResponse, response: web.StreamResponse,
                    url: str) -> None:
    """Copy a followed log until either side ends it. The headers are sent: an end is no
    longer an error response. kubectl leaving (Ctrl-C of `kubectl logs -f`) is the normal end:
    mostly it cancels this handler (the server runs with handler cancellation), but a write can
    meet the closed connection first."""
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        log.debug("the client of %s left", url)
    except aiohttp.ClientError as exc:
        log.warning("the kubelet ended the log stream %s: %s", url, exc)


def check_stream(request: web.Request, *, needs_command: bool) -> None:
    """What kube-apiserver refuses before upgrading: no command (exec), not a WebSocket (or a
    WebSocket handshake aiohttp would refuse)."""
    if needs_command and not request.query.getall("command", []):
        raise errors.BadRequest("you must specify at least 1 command")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.BadRequest("Upgrade request required: tinykube streams exec and attach "
                                "over WebSocket (v4/v5.channel.k8s.io) only")
    # Checked before dialing the kubelet, which starts the command once its side is upgraded.
    if not web.WebSocketResponse(protocols=remotecommand.PROTOCOLS).can_prepare(request).ok:
        raise errors.BadRequest("invalid WebSocket upgrade request: tinykube streams exec and "
                                "attach over WebSocket (v4/v5.channel.k8s.io) only")


_PASSED_ON = ("command", "stdin", "stdout", "stderr", "tty", "container")


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
