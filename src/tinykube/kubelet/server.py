"""The kubelet endpoint: container logs served over HTTP on the node's address.

As upstream, the API server does not read node-local files: for `pods/<name>/log` it asks the
kubelet of the pod's node, at the port the Node publishes in
`status.daemonEndpoints.kubeletEndpoint.Port`. This server answers

    GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&sinceSeconds=
        &sinceTime=&timestamps=&previous=&limitBytes=
    GET /healthz

with the kubelet's parameters. Errors are Kubernetes `Status` bodies with the right code, which
the API server passes through. It listens on the node's (loopback) address only and speaks plain
HTTP: the real kubelet's TLS and authorization are not reproduced.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import orjson
from aiohttp import web

from tinykube.api import errors
from tinykube.kubelet import logs
from tinykube.kubelet.logs import ContainerLog

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
#: (namespace, pod, container) -> the container's log (None: no output); raises APIError.
Lookup = Callable[[str, str, str], ContainerLog | None]


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


def _status(exc: errors.APIError) -> web.Response:
    return web.Response(body=orjson.dumps(exc.to_status()), status=exc.code,
                        content_type="application/json")


class KubeletServer:
    """An aiohttp server on `host`:0 (or a given port) that serves `lookup`'s logs."""

    def __init__(self, lookup: Lookup, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lookup = lookup
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"KubeletServer({self.host}:{self.port})"

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

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
            body = logs.render(log.records(previous=previous), timestamps=timestamps,
                               since=since, tail=tail, limit=limit)
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        async for chunk in log.follow(timestamps=timestamps, since=since, tail=tail):
            if chunk:
                await response.write(chunk)
        await response.write_eof()
        return response
