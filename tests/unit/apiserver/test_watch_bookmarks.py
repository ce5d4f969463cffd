"""Watch bookmarks name only resourceVersions whose events the watch has already been sent.

The store commits the writes of one event-loop turn together and offers their events to
watchers only after that commit (group commit). A bookmark computed in the same turn as a
write, after it, must not name that write's version: a client whose stream ends after such a
bookmark (every watch with `timeoutSeconds` sends one as it ends) resumes from it and never
receives the write. Nor may a bookmark be written while events are queued for the watch (its
wait for an event can time out just after one was queued). Between them they lost, in
10,000-pod bench/scale runs, pods' ADDED events at the scheduler's informer (the pods stayed
Pending) and bindings at a node agent's (see the README's bench/scale section).

The tests make the write around the turn the stream writes a bookmark: `request_progress` sets
the waiting stream's timer to now, and the write comes from a callback due at the same moment
(it runs just after the timer's, before the stream task resumes: the bookmark then named the
uncommitted write) or one turn before (its event is published as the stream wakes up for the
timeout: a bookmark written then, with the event still queued, named it too).
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
import pytest

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


async def watch_around_a_write(session: aiohttp.ClientSession, registry: Registry,
                               handler: ResourceHandler, when: str) -> tuple[list[str], int]:
    """Open a watch, have it send a bookmark with a ConfigMap `late` written `when`, and end
    the watch at that bookmark (or once `late` arrived, if no bookmark came before it).

    `turn-of-bookmark`: in the turn the stream's timer fires, just after it (the stream then
    resumes with the write made, its event not yet published). `turn-before`: one turn
    earlier (the event is published, and queued for this watch, as the stream is woken).
    Returns what the watch delivered (`late` or `BOOKMARK <rv>`) and the version of `late`."""
    start = registry.store.resource_version
    written: list[int] = []

    def write() -> None:
        written.append(registry.create(CONFIGMAPS, configmap("late")).rv)

    params = {"watch": "1", "resourceVersion": str(start), "allowWatchBookmarks": "true"}
    async with session.get(PATH, params=params) as resp:
        assert resp.status == 200
        stream = events(resp)
        registry.create(CONFIGMAPS, configmap("first"))
        kind, obj = await anext(stream)  # the stream has sent it and now waits for more
        assert (kind, obj["metadata"]["name"]) == ("ADDED", "first")
        loop = asyncio.get_running_loop()
        await handler.request_progress()  # the waiting stream's timer: due now
        if when == "turn-of-bookmark":
            loop.call_at(loop.time(), write)
        else:
            write()
        seen = []
        async for kind, obj in stream:
            if kind == "BOOKMARK":
                seen.append(f"BOOKMARK {obj['metadata']['resourceVersion']}")
                break
            seen.append(obj["metadata"]["name"])
            if seen[-1] == "late":
                break
        return seen, written[0]


WHEN = ["turn-of-bookmark", "turn-before"]


@pytest.mark.parametrize("when", WHEN)
async def test_a_bookmark_names_no_version_the_watch_has_not_sent(tmp_path: Path,
                                                                   when: str) -> None:
    async with api(tmp_path) as (session, registry, handler):
        seen, late = await watch_around_a_write(session, registry, handler, when)
    bookmarks = [int(item.split()[1]) for item in seen if item.startswith("BOOKMARK")]
    assert all(rv < late for rv in bookmarks) or "late" in seen, seen


@pytest.mark.parametrize("when", WHEN)
async def test_a_watch_resumed_from_its_last_version_receives_every_write(
        tmp_path: Path, when: str) -> None:
    async with api(tmp_path) as (session, registry, handler):
        seen, late = await watch_around_a_write(session, registry, handler, when)
        last = int(seen[-1].split()[1]) if seen[-1].startswith("BOOKMARK") else late
        # What an informer does when its watch ends: watch again from the last version seen.
        params = {"watch": "1", "resourceVersion": str(last), "allowWatchBookmarks": "true"}
        async with session.get(PATH, params=params) as resp:
            registry.create(CONFIGMAPS, configmap("after"))
            async for kind, obj in events(resp):
                if kind != "BOOKMARK":
                    seen.append(obj["metadata"]["name"])
                if seen[-1] == "after":
                    break
    assert [name for name in seen if not name.startswith("BOOKMARK")] == ["late", "after"]
