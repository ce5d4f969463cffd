"""Watch bookmarks name only resourceVersions whose events the watch has already been sent.

The store commits the writes of one event-loop turn together and offers their events to
watchers only after that commit (group commit). A bookmark computed in the same turn as a
write, after it, must not name that write's version: a client whose stream ends after such a
bookmark (every watch with `timeoutSeconds` sends one as it ends) resumes from it and never
receives the write. That lost, for example, 20 pods' ADDED events at the scheduler's informer
in a 10,000-pod bench/scale run (the pods stayed Pending) and a probe pod's readiness change at
the EndpointSlice controller's.

The tests put the write in the very turn the stream writes its bookmark: `request_progress`
sets the waiting stream's timer to now, and a callback due at the same moment (so it runs just
after the timer's, in the same turn, before the stream task resumes) makes the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tinykube.api import resources
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.app import APIServer
from tinykube.apiserver.handlers import ResourceHandler
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
CONFIGMAPS = resources.must("", "v1", "configmaps")
PATH = "/api/v1/namespaces/default/configmaps"


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": name}}


@contextlib.asynccontextmanager
async def api(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, Registry,
                                                     ResourceHandler]]:
    """The real handlers and store on a loopback port; no periodic bookmarks (an hour)."""
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR), clock=lambda: NOW)
    registry.create(resources.must("", "v1", "namespaces"), {"metadata": {"name": "default"}})
    handler = ResourceHandler(registry, now=lambda: NOW, bookmark_interval=3600)
    server = APIServer(handler, token=None, port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            yield session, registry, handler
    finally:
        await server.stop()
        store.close()


async def events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    async for line in resp.content:
        event = orjson.loads(line)
        yield event["type"], event["object"]


async def bookmark_with_a_write_in_its_turn(session: aiohttp.ClientSession,
                                            registry: Registry,
                                            handler: ResourceHandler) -> tuple[int, int]:
    """Open a watch, have it send a bookmark in the turn a ConfigMap `late` is written; end
    the watch right after that bookmark. Returns (the bookmark's version, the write's)."""
    start = registry.store.resource_version
    written: list[int] = []
    params = {"watch": "1", "resourceVersion": str(start), "allowWatchBookmarks": "true"}
    async with session.get(PATH, params=params) as resp:
        assert resp.status == 200
        stream = events(resp)
        registry.create(CONFIGMAPS, configmap("first"))
        kind, obj = await anext(stream)  # the stream has sent it and now waits for more
        assert (kind, obj["metadata"]["name"]) == ("ADDED", "first")
        loop = asyncio.get_running_loop()
        await handler.request_progress()  # the waiting stream's timer: due now
        loop.call_at(loop.time(), lambda: written.append(
            registry.create(CONFIGMAPS, configmap("late")).rv))
        async for kind, obj in stream:
            if kind == "BOOKMARK":
                return int(obj["metadata"]["resourceVersion"]), written[0]
    raise AssertionError("the watch ended without a bookmark")


async def test_a_bookmark_in_the_turn_of_a_write_does_not_name_it(tmp_path: Path) -> None:
    async with api(tmp_path) as (session, registry, handler):
        bookmark, late = await bookmark_with_a_write_in_its_turn(session, registry, handler)
        assert bookmark < late  # its event had not been sent: the bookmark must precede it


async def test_a_watch_resumed_from_a_bookmark_receives_the_write_of_its_turn(
        tmp_path: Path) -> None:
    async with api(tmp_path) as (session, registry, handler):
        bookmark, _late = await bookmark_with_a_write_in_its_turn(session, registry, handler)
        # What an informer does when its watch ends: watch again from the last version seen.
        params = {"watch": "1", "resourceVersion": str(bookmark), "allowWatchBookmarks": "true"}
        async with session.get(PATH, params=params) as resp:
            registry.create(CONFIGMAPS, configmap("after"))
            seen = []
            async for kind, obj in events(resp):
                if kind != "BOOKMARK":
                    seen.append((kind, obj["metadata"]["name"]))
                if seen and seen[-1][1] == "after":
                    break
        assert seen == [("ADDED", "late"), ("ADDED", "after")]
