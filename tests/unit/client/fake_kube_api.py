"""A small fake kube-apiserver for client tests: Services list (paged) + watch, canned errors.

State is a dict of Services and an event history with resourceVersions. Mutations are either
live (appended to the history and pushed to open watches) or `silent` (history only, as if the
watch had been disconnected). `compact()` makes every older resourceVersion answer a watch with
an ERROR event carrying a 410 Status, exactly as kube-apiserver does. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
from aiohttp import web

Obj = dict[str, Any]

TOKEN = "s3cr3t-token"  # what the `client` fixture authenticates with


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


def status(code: int, reason: str, message: str, **details: Any) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


class FakeKubeAPI:
    def __init__(self) -> None:
        self.url = ""
        self.rv = 0
        self.objects: dict[str, Obj] = {}
        self.history: list[tuple[int, str, Obj]] = []
        self.compacted_below = 0
        self.requests: list[Request] = []
        self.canned: dict[tuple[str, str], tuple[int, bytes, str]] = {}
        self.failing_lists = 0  # answer this many list requests with a 500
        self.expiring_continues = 0  # answer this many continue pages with 410 Expired
        self.watch_queries: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._watchers: list[asyncio.Queue[tuple[str, Obj] | None]] = []

    # --- state changes --------------------------------------------------------------------------

    def _record(self, event_type: str, obj: Obj, silent: bool) -> None:
        self.history.append((self.rv, event_type, obj))
        if not silent:
            for queue in self._watchers:
                queue.put_nowait((event_type, obj))

    def create(self, name: str, namespace: str = "default", *, silent: bool = False,
               **extra: Any) -> Obj:
        self.rv += 1
        obj = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(self.rv),
                            "uid": f"uid-{name}-{self.rv}"},
               "spec": {"ports": [{"port": 80}]}, **extra}
        self.objects[f"{namespace}/{name}"] = obj
        self._record("ADDED", obj, silent)
        return obj

    def modify(self, name: str, namespace: str = "default", *, silent: bool = False) -> Obj:
        self.rv += 1
        old = self.objects[f"{namespace}/{name}"]
        obj = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)},
               "spec": {"ports": [{"port": 80 + self.rv}]}}
        self.objects[f"{namespace}/{name}"] = obj
        self._record("MODIFIED", obj, silent)
        return obj

    def delete(self, name: str, namespace: str = "default", *, silent: bool = False) -> Obj:
        self.rv += 1
        old = self.objects.pop(f"{namespace}/{name}")
        obj = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
        self._record("DELETED", obj, silent)
        return obj

    def bookmark(self, advance_to: int) -> None:
        """Other resources moved the global resourceVersion; tell watchers with a BOOKMARK."""
        self.rv = advance_to
        marker = {"kind": "Service", "apiVersion": "v1",
                  "metadata": {"resourceVersion": str(self.rv)}}
        for queue in self._watchers:
            queue.put_nowait(("BOOKMARK", marker))

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion up to now get 410."""
        self.compacted_below = self.rv
        self.history.clear()

    def end_watches(self) -> None:
        for queue in self._watchers:
            queue.put_nowait(None)

    async def next_watch(self) -> dict[str, str]:
        return await asyncio.wait_for(self.watch_queries.get(), timeout=5)

    # --- HTTP -----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v1/namespaces/{namespace}/services", self._services)
        app.router.add_get("/api/v1/services", self._services)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Request(request.method, request.path, dict(request.query),
                                     dict(request.headers), body))
        canned = self.canned.get((request.method, request.path))
        if canned is not None:
            code, payload, content_type = canned
            return web.Response(status=code, body=payload, content_type=content_type)
        response: web.StreamResponse = await handler(request)
        return response

    async def _services(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            return await self._watch(request)
        if self.failing_lists > 0:
            self.failing_lists -= 1
            return _json(status(500, "InternalError", "etcd is sad"), 500)
        if self.expiring_continues > 0 and request.query.get("continue"):
            self.expiring_continues -= 1
            return _json(status(410, "Expired", "The provided continue parameter is too old to "
                                "display a consistent list result."), 410)
        return self._list(request)

    def _list(self, request: web.Request) -> web.Response:
        keys = sorted(self.objects)
        offset = int(request.query.get("continue", "0") or 0)
        limit = int(request.query.get("limit", "0") or 0) or len(keys)
        page = keys[offset:offset + limit]
        meta: Obj = {"resourceVersion": str(self.rv)}
        if offset + limit < len(keys):
            meta["continue"] = str(offset + limit)
        items = [{k: v for k, v in self.objects[key].items() if k not in ("kind", "apiVersion")}
                 for key in page]  # like the real server: list items carry no TypeMeta
        return _json({"kind": "ServiceList", "apiVersion": "v1", "metadata": meta,
                      "items": items})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion", "0") or 0)
        self.watch_queries.put_nowait(dict(request.query))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if since < self.compacted_below:
            gone = status(410, "Expired", f"too old resource version: {since} "
                          f"({self.compacted_below})")
            await response.write(orjson.dumps({"type": "ERROR", "object": gone}) + b"\n")
            return response
        queue: asyncio.Queue[tuple[str, Obj] | None] = asyncio.Queue()
        for rv, event_type, obj in self.history:
            if rv > since:
                queue.put_nowait((event_type, obj))
        self._watchers.append(queue)
        bookmarks = request.query.get("allowWatchBookmarks") == "true"
        try:
            while (item := await queue.get()) is not None:
                event_type, obj = item
                if event_type == "BOOKMARK" and not bookmarks:
                    continue
                await response.write(orjson.dumps({"type": event_type, "object": obj}) + b"\n")
        finally:
            self._watchers.remove(queue)
        return response


def _json(body: Obj, code: int = 200) -> web.Response:
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


async def start(api: FakeKubeAPI) -> web.AppRunner:
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    api.url = f"http://{host}:{port}"
    return runner
