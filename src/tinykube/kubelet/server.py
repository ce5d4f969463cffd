"""The kubelet endpoint: container logs and exec sessions on the node's address.

As upstream, the API server does not read node-local files or start processes on nodes: for
`pods/<name>/log` and `pods/<name>/exec` it asks the kubelet of the pod's node, at the port the
Node publishes in `status.daemonEndpoints.kubeletEndpoint.Port`. This server answers

    GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&sinceSeconds=
        &sinceTime=&timestamps=&previous=&limitBytes=
    GET /exec/<namespace>/<pod>/<container>?command=..&command=..&stdin=&stdout=&stderr=&tty=
    GET /attach/<namespace>/<pod>/<container>?stdin=&stdout=&stderr=&tty=
        (WebSockets speaking the channel protocol, see `kubelet.streams`)
    GET /portForward/<namespace>/<pod>?port=
        (a WebSocket of raw bytes to the pod's port, see `kubelet.portforward`)
    GET /metrics/resource
        (the resource metrics metrics-server scrapes, see `kubelet.resourcemetrics`)
    GET /healthz

with the kubelet's parameters. Errors are Kubernetes `Status` bodies with the right code, which
the API server passes through. It listens on the node's (loopback) address only and speaks plain
HTTP; every request but `/healthz` must carry the cluster's kubelet token (`kubelet.token` in the
data directory, which only the API server and the node agents read) as a bearer token, since an
exec endpoint runs commands as the user tinykube runs as.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from tinykube.api import errors, remotecommand
from tinykube.kubelet import logs, portforward, resourcemetrics, streams
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.stdio import ContainerIO

logger = logging.getLogger(__name__)
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
#: (namespace, pod, container) -> the container's log (None: no output); raises APIError.
Lookup = Callable[[str, str, str], ContainerLog | None]
#: (namespace, pod, container, command) -> (argv, env, cwd) to run; raises APIError.
ExecLookup = Callable[[str, str, str, list[str]], tuple[list[str], dict[str, str], str | None]]
#: (namespace, pod, container) -> the running container's streams; raises APIError.
AttachLookup = Callable[[str, str, str], ContainerIO]
#: (namespace, pod) -> (the pod's name_namespace, its uid, how to reach its ports); raises
#: APIError.
ForwardLookup = Callable[[str, str], tuple[str, str, portforward.Dial]]
#: () -> the `/metrics/resource` exposition, read now.
MetricsSource = Callable[[], Awaitable[bytes]]


def _int(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.BadRequest(f"invalid {name}: {value!r}") from exc


def since_bound(query: dict[str, str], now: datetime.datetime) -> bytes | None:
    """The earliest record to serve for `sinceSeconds` / `sinceTime`, if any (pure)."""
    seconds = _int(query, "sinceSeconds")
    if seconds is not None:
        return logs.since_cutoff(now - datetime.timedelta(seconds=seconds))
    if query.get("sinceTime"):
        moment = datetime.datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        return logs.since_cutoff(moment)
    return None


def read_error(exc: OSError, what: str) -> errors.APIError:
    """The Status for a node-local failure: out of file descriptors is 503 (it passes, and
    clients retry it), anything else 500, each with the cause in the message."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return errors.ServiceUnavailable(f"cannot {what}: {exc.strerror} (the node agent's "
                                         "open-file limit is reached; see its log)")
    return errors.InternalError(f"cannot {what}: {exc}")


def _status(exc: errors.APIError) -> web.Response:
    return web.Response(body=exc.body(), status=exc.code,
                        content_type="application/json")


async def _stream(request: web.Request,
                  session: Callable[[], streams.ExecSession | streams.AttachSession],
                  ) -> web.WebSocketResponse:
    """Accept the WebSocket, then make and run the session. A pod or container that cannot
    have one is reported as a Status on the error stream, not refused before the upgrade: the
    API server has already upgraded kubectl's side by then."""
    ws = web.WebSocketResponse(protocols=remotecommand.PROTOCOLS, max_msg_size=0)
    await ws.prepare(request)
    try:
        made = session()
    except errors.APIError as exc:
        await ws.send_bytes(remotecommand.frame(remotecommand.ERROR,
                                                errors.status_json(exc.to_status())))
    else:
        await made.run(WebSocket(ws))
    await ws.close()
    return ws


class WebSocket:
    """An aiohttp WebSocket as `streams.Socket`: messages in, None once it closes.

    A TEXT message counts as its UTF-8 bytes, as upstream's `wsstream` reads it for the
    `channel.k8s.io` protocols (the first byte names the stream): the official Python client's
    `write_stdin("...")` sends TEXT messages, kubectl BINARY ones."""

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def receive_bytes_or_none(self) -> bytes | None:
        while True:
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                return bytes(message.data)
            if message.type == aiohttp.WSMsgType.TEXT:
                return str(message.data).encode()
            return None  # close, closing, closed, error


class KubeletServer:
    """An aiohttp server on `host`:0 (or a given port) that serves `lookup`'s logs and runs
    `exec_lookup`'s commands; `token` is the bearer token every request must carry."""

    def __init__(self, lookup: Lookup, exec_lookup: ExecLookup, attach_lookup: AttachLookup, *,
                 token: str, host: str = "127.0.0.1", port: int = 0,
                 forward_lookup: ForwardLookup | None = None,
                 metrics: MetricsSource | None = None,
                 listen_socket: Callable[[int, int, tuple[str, int]], socket.socket] | None
                 = None,
                 webhook: Callable[[str, str, str], Awaitable[bool]] | None = None) -> None:
        if not token:
            raise ValueError("a kubelet endpoint needs a token")
        self.lookup = lookup
        self.exec_lookup = exec_lookup
        self.attach_lookup = attach_lookup
        self.forward_lookup = forward_lookup
        self.metrics = metrics
        self.token = token
        self.webhook = webhook  # another bearer token: the API server reviews it
        self.host = host
        self.listen_socket = listen_socket  # rootless: a socket of the host's namespace
        self.port = port
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"KubeletServer({self.host}:{self.port})"

    async def start(self) -> int:
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self._exec)
        app.router.add_get("/attach/{namespace}/{pod}/{container}", self._attach)
        app.router.add_get("/portForward/{namespace}/{pod}", self._port_forward)
        app.router.add_get("/metrics/resource", self._resource_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site: web.BaseSite = web.TCPSite(self._runner, self.host, self.port)
        if self.listen_socket is not None:
            site = web.SockSite(self._runner, self.listen_socket(
                socket.AF_INET, socket.SOCK_STREAM, (self.host, self.port)))
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _authenticate(self, request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                            ) -> web.StreamResponse:
        if request.path != "/healthz":
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            token = given.strip()
            if scheme.lower() != "bearer" or not token:
                return _status(errors.Unauthorized("Unauthorized"))
            if not hmac.compare_digest(token, self.token) and not (
                    self.webhook is not None and
                    await self.webhook(token, request.method, request.path)):
                return _status(errors.Unauthorized("Unauthorized"))
        return await handler(request)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _resource_metrics(self, _request: web.Request) -> web.Response:
        if self.metrics is None:
            return web.Response(status=404, text="404 page not found\n")
        return web.Response(body=await self.metrics(),
                            headers={"Content-Type": resourcemetrics.CONTENT_TYPE})

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        """An exec session (see `_stream`)."""
        info, query = request.match_info, request.query
        command = query.getall("command", [])
        if not command:
            return _status(errors.BadRequest("you must specify at least 1 command"))

        def session() -> streams.ExecSession:
            argv, env, cwd = self.exec_lookup(info["namespace"], info["pod"],
                                              info["container"], command)
            return streams.ExecSession(
                argv, env=env, cwd=cwd, stdin=query.get("stdin") in _TRUE,
                stdout=query.get("stdout") in _TRUE, stderr=query.get("stderr") in _TRUE,
                tty=query.get("tty") in _TRUE)
        return await _stream(request, session)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        """An attach session (see `_stream`)."""
        info, query = request.match_info, request.query

        def session() -> streams.AttachSession:
            io = self.attach_lookup(info["namespace"], info["pod"], info["container"])
            return streams.AttachSession(io, stdin=query.get("stdin") in _TRUE,
                                         stdout=query.get("stdout") in _TRUE)
        return await _stream(request, session)

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        """One forwarded connection (see `kubelet.portforward`); errors as its text message."""
        info = request.match_info
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        try:
            if self.forward_lookup is None:
                raise errors.BadRequest("this kubelet does not forward ports")
            port = portforward.parse_port(request.query.get("port", ""))
            pod, uid, dial = self.forward_lookup(info["namespace"], info["pod"])
        except errors.APIError as exc:
            await ws.send_str(exc.message)
        else:
            await portforward.forward(ws, pod=pod, uid=uid, port=port, dial=dial)
        await ws.close()
        return ws

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        query = dict(request.query)
        try:
            log = self.lookup(info["namespace"], info["pod"], info["container"])
            previous = query.get("previous") in _TRUE
            if log is not None and previous and not log.has_previous():
                raise errors.BadRequest(f'previous terminated container "{info["container"]}" '
                                        f'in pod "{info["pod"]}" not found')
            since = since_bound(query, datetime.datetime.now(datetime.UTC))
            tail, limit = _int(query, "tailLines"), _int(query, "limitBytes")
        except errors.APIError as exc:
            return _status(exc)
        except ValueError as exc:
            return _status(errors.BadRequest(str(exc)))
        timestamps = query.get("timestamps") in _TRUE
        if log is None:
            return web.Response(body=b"", content_type="text/plain")
        if query.get("follow") not in _TRUE or previous:
            try:
                records = log.records(previous=previous)
            except OSError as exc:
                error = read_error(exc, f'read the log of container "{info["container"]}" in '
                                        f'pod "{info["namespace"]}/{info["pod"]}"')
                logger.warning("%s", error)
                return _status(error)
            body = logs.render(records, timestamps=timestamps, since=since, tail=tail,
                               limit=limit)
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        try:
            async with contextlib.aclosing(log.follow(timestamps=timestamps, since=since,
                                                      tail=tail)) as chunks:
                async for chunk in chunks:
                    if chunk:
                        await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:  # the API server's client left (Ctrl-C of logs -f)
            logger.debug("the follower of %s left", request.path)
        return response
