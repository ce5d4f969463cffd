"""The observer's HTTP endpoint: the live map page, the DNS query log, traces, explanations.

Served by the components process (where the DNS, proxy and controllers run, so the log and the
traces are read in place) on a local address, `127.0.0.1` and a free port by default; where it
listens is announced (`tinykube up` prints it) and written to `observe.json` in the data
directory, which `tinykube ui`, `tinykube dns log` and `tinykube trace` read.

Everything is behind the cluster's admin bearer token, as the API server is: an
`Authorization: Bearer` header, or (for the browser) the cookie set when the page is opened
once as `/?token=...` (HttpOnly, SameSite=Strict; the page's URL then loses the token).

    GET /                 the live map (static page: vanilla JS, no build step, no CDN)
    GET /api/map          the map document (`hub.cluster_map`); /api/map/stream: server-sent
                          events, one map per change
    GET /api/dns/log      ?since=SEQ&pod=&name=&rcode=&limit=: decoded query log entries
    GET /api/traces       ?since=ID&service=NS/NAME&pod=NS/NAME: propagation traces
    GET /api/explain      ?kind=service|pod&namespace=&name=: the explanation panel's text
    GET /metrics          tinykube_propagation_seconds (Prometheus text)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from tinykube.dns import querylog
from tinykube.observe.explain import Explain, describe
from tinykube.observe.hub import Hub
from tinykube.observe.traces import Tracer

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
COOKIE = "tinykube-ui"
FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/app.css": ("app.css", "text/css")}
LogSource = Callable[[], Any]  # -> the RunningDNS (querylog on its server) or None


class ObserveServer:
    """The aiohttp application and its state (see the module docstring)."""

    def __init__(self, hub: Hub, token: str, *, tracer: Tracer | None = None,
                 dns: LogSource = lambda: None, explain: Explain | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.hub, self.token, self.tracer, self.dns = hub, token, tracer, dns
        self.explain = explain
        self.registry = registry
        self.runner: web.AppRunner | None = None
        self.streams: set[asyncio.Task[Any]] = set()  # live map streams, ended at close
        self.address: tuple[str, int] = ("", 0)
        self.app = web.Application(middlewares=[self._auth])
        routes = [web.get(path, self._static) for path in FILES]
        routes += [web.get("/api/map", self._map), web.get("/api/map/stream", self._stream),
                   web.get("/api/dns/log", self._log), web.get("/api/traces", self._traces),
                   web.get("/api/explain", self._explain), web.get("/metrics", self._metrics)]
        self.app.add_routes(routes)

    def __repr__(self) -> str:
        return f"ObserveServer({self.address[0]}:{self.address[1]})"

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None and request.path == "/" and self._valid(given):
            response = web.HTTPFound("/")
            response.set_cookie(COOKIE, given, httponly=True, samesite="Strict")
            raise response
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
        if not self._valid(token):
            raise web.HTTPUnauthorized(text="401 Unauthorized: open the URL `tinykube ui` "
                                            "prints (it carries the cluster's token)\n")
        return await handler(request)

    def _valid(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.token.encode())

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.address = (host, sockets[0].getsockname()[1] if sockets else port)
        return self.address

    async def close(self) -> None:
        for task in list(self.streams):  # a stream waits for changes: it would hold shutdown
            task.cancel()
        if self.runner is not None:
            await self.runner.shutdown()
            await self.runner.cleanup()

    # ---- handlers --------------------------------------------------------------------------

    async def _static(self, request: web.Request) -> web.Response:
        name, kind = FILES[request.path]
        return web.Response(body=(STATIC / name).read_bytes(), content_type=kind,
                            headers={"Cache-Control": "no-store"})

    async def _map(self, _request: web.Request) -> web.Response:
        return web.json_response(self.hub.snapshot())

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        sent = -1
        task = asyncio.current_task()
        assert task is not None
        self.streams.add(task)
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while True:  # until the browser goes away (or the server closes)
                changed = self.hub.changed
                if self.hub.version != sent:
                    sent = self.hub.version
                    data = json.dumps(self.hub.snapshot())
                    await response.write(f"data: {data}\n\n".encode())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 15)
                    continue
                await response.write(b": keep-alive\n\n")
        self.streams.discard(task)
        return response

    def _query_log(self) -> tuple[Any, Any]:
        running = self.dns()
        if running is None:
            return None, None
        return running.server.querylog, running.server.responder

    async def _log(self, request: web.Request) -> web.Response:
        log, responder = self._query_log()
        if log is None:
            return web.json_response({"enabled": False, "entries": [], "last": 0})
        since = _int(request.query.get("since"), 0)
        limit = _int(request.query.get("limit"), 1000)
        match = {k: request.query.get(k, "") for k in ("pod", "name", "rcode")}
        pods = self.hub.pod_index()

        def source(key: bytes) -> str | None:
            entry = responder.entries.get(key)
            return entry.source if entry is not None else None

        entries = [e for e in (querylog.decode(seq, record, pods.get, source)
                               for seq, record in log.since(since))
                   if querylog.matches(e, **match)]
        return web.json_response({"enabled": True, "size": log.settings.size,
                                  "sample": log.settings.sample, "last": log.appended,
                                  "entries": entries[-limit:] if limit > 0 else []})

    async def _traces(self, request: web.Request) -> web.Response:
        if self.tracer is None:
            return web.json_response({"traces": []})
        since = _int(request.query.get("since"), 0)
        service, pod = request.query.get("service", ""), request.query.get("pod", "")
        out = []
        for trace in self.tracer.traces(since):
            if service and service not in {f"{ns}/{n}" for ns, n in trace.services}:
                continue
            if pod and (trace.pod is None or "/".join(trace.pod) != pod):
                continue
            out.append(trace.to_json(self.tracer.wall_offset))
        return web.json_response({"traces": out})

    async def _explain(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind", "service")
        namespace, name = request.query.get("namespace", ""), request.query.get("name", "")
        if kind not in ("service", "pod") or not namespace or not name:
            raise web.HTTPBadRequest(text="kind (service|pod), namespace and name are needed")
        text = ""
        if self.explain is not None:
            try:
                text = await self.explain(kind, namespace, name)
            except Exception as error:  # the panel falls back to the map's own description
                log.warning("explain %s %s/%s failed: %s", kind, namespace, name, error)
        if not text:
            text = describe(self.hub.snapshot(), kind, namespace, name)
        return web.json_response({"kind": kind, "namespace": namespace, "name": name,
                                  "text": text})

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry) if self.registry is not None else b""
        return web.Response(body=body, content_type="text/plain", charset="utf-8")


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        raise web.HTTPBadRequest(text=f"not a number: {text!r}") from None
