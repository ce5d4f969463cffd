"""tinykube's own client (`tinykube.client`) against a real `tinykube up`.

The cluster keeps the smallest watch history `tinykube up` allows (`--watch-history 100`), so a
watch from a resourceVersion older than the last hundred writes gets 410 Gone.

- an `Informer` lists in pages, syncs, follows creates, updates and deletes; stopped, it falls
  behind the history while the objects change; started again, it resumes from its old
  resourceVersion, gets the 410, relists, and its cache and its handlers' view end equal to the
  server's, with no event lost or duplicated;
- `RESTClient.watch` from a compacted resourceVersion raises `errors.Gone`;
- a `WorkQueue` key whose sync keeps failing (a ConfigMap the server does not have yet) backs
  off exponentially on the queue's injected clock, and `forget` after a success resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, cast

import pytest

from tests.conftest import Cluster, start_cluster
from tinykube.api import errors
from tinykube.api.resources import Resource, must
from tinykube.client.config import ClientConfig, load_kubeconfig
from tinykube.client.informer import Backoff, Informer, object_key
from tinykube.client.rest import RESTClient
from tinykube.client.workqueue import (
    BASE_DELAY,
    MAX_DELAY,
    ExponentialBackoff,
    WorkQueue,
    process_next,
)
from tinykube.testing import until

HISTORY = 100
PAGE_SIZE = 5
CONFIGMAPS = must("", "v1", "configmaps")
NAMESPACES = must("", "v1", "namespaces")
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("client") / "data", "--no-dns",
                            "--watch-history", str(HISTORY))
    yield cluster
    assert cluster.stop() == 0


@pytest.fixture
def config(running: Cluster) -> ClientConfig:
    return load_kubeconfig(str(running.kubeconfig))


def closable(events: AsyncIterator[tuple[str, Obj]]) -> AsyncGenerator[tuple[str, Obj], None]:
    """`RESTClient.watch` is an async generator typed as an iterator; `aclosing` wants the
    generator (closing it releases the connection at once)."""
    return cast(AsyncGenerator[tuple[str, Obj], None], events)


class RecordingClient(RESTClient):
    """A real RESTClient that also notes the lists and watches it is asked for."""

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config)
        self.lists: list[tuple[int | None, str | None]] = []  # (limit, continue)
        self.watched_from: list[str] = []
        self.gone_from: list[str] = []  # resourceVersions the server answered 410 for

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        self.lists.append((limit, continue_))
        return await super().list(res, namespace, label_selector=label_selector,
                                  field_selector=field_selector, limit=limit,
                                  continue_=continue_, resource_version=resource_version)

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncIterator[tuple[str, Obj]]:
        self.watched_from.append(resource_version)
        try:
            async with contextlib.aclosing(closable(super().watch(
                    res, namespace, resource_version=resource_version,
                    label_selector=label_selector, field_selector=field_selector,
                    timeout_seconds=timeout_seconds, allow_bookmarks=allow_bookmarks))) as events:
                async for event in events:
                    yield event
        except errors.Gone:
            self.gone_from.append(resource_version)
            raise


class Handlers:
    """Records every handler call and replays them into the model a controller would hold,
    failing on an add for a known key or an update/delete for an unknown one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (handler, key, resourceVersion)
        self.model: dict[str, str] = {}  # key -> resourceVersion, from the calls alone
        self.errors: list[str] = []

    def on_add(self, obj: Obj) -> None:
        key, rv = object_key(obj), obj["metadata"]["resourceVersion"]
        self.calls.append(("add", key, rv))
        if key in self.model:
            self.errors.append(f"add for known {key}")
        self.model[key] = rv

    def on_update(self, old: Obj, new: Obj) -> None:
        key, rv = object_key(new), new["metadata"]["resourceVersion"]
        self.calls.append(("update", key, rv))
        if self.model.get(key) != old["metadata"]["resourceVersion"]:
            self.errors.append(f"update of {key} from {old['metadata']['resourceVersion']}, "
                               f"model has {self.model.get(key)}")
        if old["metadata"]["resourceVersion"] == rv:
            self.errors.append(f"update of {key} without a change ({rv})")
        self.model[key] = rv

    def on_delete(self, obj: Obj) -> None:
        key = object_key(obj)
        self.calls.append(("delete", key, obj["metadata"]["resourceVersion"]))
        if self.model.pop(key, None) is None:
            self.errors.append(f"delete of unknown {key}")


async def server_state(client: RESTClient, namespace: str) -> dict[str, str]:
    listed = await client.list(CONFIGMAPS, namespace, label_selector=MINE)
    return {f"{namespace}/{item['metadata']['name']}": item["metadata"]["resourceVersion"]
            for item in listed["items"]}


def cache_state(informer: Informer) -> dict[str, str]:
    return {object_key(obj): obj["metadata"]["resourceVersion"] for obj in informer.cache.list()}


# The test's own ConfigMaps; the namespace also gets `kube-root-ca.crt` from a controller.
MINE = "test=client-against-server"


def configmap(name: str, value: str = "0") -> Obj:
    return {"metadata": {"name": name, "labels": {"test": "client-against-server"}},
            "data": {"value": value}}


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_informer_pages_follows_and_relists_after_410(config: ClientConfig) -> None:
    namespace, initial = "informer", 23
    client = RecordingClient(config)
    async with client:
        await client.create(NAMESPACES, {"metadata": {"name": namespace}})
        for n in range(initial):
            await client.create(CONFIGMAPS, configmap(f"cm-{n}"), namespace)

        informer = Informer(client, CONFIGMAPS, namespace=namespace, page_size=PAGE_SIZE,
                            label_selector=MINE,
                            backoff=Backoff(initial=0.01, cap=0.1, jitter=0),
                            watch_timeout_seconds=60)
        handlers = Handlers()
        informer.add_handlers(on_add=handlers.on_add, on_update=handlers.on_update,
                              on_delete=handlers.on_delete)
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.wait_synced(), 20)
            # Listed in pages of PAGE_SIZE, each after the first with the previous one's token.
            pages = math.ceil(initial / PAGE_SIZE)
            assert [limit for limit, _ in client.lists] == [PAGE_SIZE] * pages
            assert client.lists[0][1] is None and all(token for _, token in client.lists[1:])
            assert cache_state(informer) == await server_state(client, namespace)
            assert sorted(call[:2] for call in handlers.calls) == sorted(
                ("add", f"{namespace}/cm-{n}") for n in range(initial))

            # Live changes arrive through the watch, each once.
            mark = len(handlers.calls)
            added = await client.create(CONFIGMAPS, configmap("live"), namespace)
            updated = await client.patch(CONFIGMAPS, "cm-1", {"data": {"value": "1"}}, namespace)
            await client.delete(CONFIGMAPS, "cm-2", namespace)
            await until(lambda: len(handlers.calls) >= mark + 3, "the live events")
            assert [call[:2] for call in handlers.calls[mark:]] == [
                ("add", f"{namespace}/live"), ("update", f"{namespace}/cm-1"),
                ("delete", f"{namespace}/cm-2")]
            assert handlers.calls[mark][2] == added["metadata"]["resourceVersion"]
            assert handlers.calls[mark + 1][2] == updated["metadata"]["resourceVersion"]
        finally:
            await stop(task)

        # Stopped: more writes than the history holds, so the informer's place is compacted.
        stale = informer.last_resource_version
        assert stale is not None
        for n in range(HISTORY + 20):
            await client.patch(CONFIGMAPS, "cm-3", {"data": {"value": f"away-{n}"}}, namespace)
        await client.create(CONFIGMAPS, configmap("while-away"), namespace)
        await client.patch(CONFIGMAPS, "cm-5", {"data": {"value": "away"}}, namespace)
        await client.delete(CONFIGMAPS, "cm-4", namespace)
        expected = await server_state(client, namespace)

        # Started again, the same informer resumes from `stale`: 410, relist, watch on.
        mark, lists_before = len(handlers.calls), len(client.lists)
        watches_before = len(client.watched_from)
        task = asyncio.create_task(informer.run())
        try:
            await until(lambda: cache_state(informer) == expected, "the relisted cache")
            assert client.gone_from == [stale]
            assert client.watched_from[watches_before] == stale  # first, the 410
            assert len(client.lists) - lists_before == math.ceil(len(expected) / PAGE_SIZE)
            relisted = sorted(call[:2] for call in handlers.calls[mark:])
            assert relisted == [("add", f"{namespace}/while-away"),
                                ("delete", f"{namespace}/cm-4"),
                                ("update", f"{namespace}/cm-3"),
                                ("update", f"{namespace}/cm-5")]

            # And the watch after the relist follows new changes.
            mark = len(handlers.calls)
            await client.create(CONFIGMAPS, configmap("after-relist"), namespace)
            await until(lambda: len(handlers.calls) > mark, "the event after the relist")
            final = await server_state(client, namespace)
            await until(lambda: cache_state(informer) == final, "the final cache")
        finally:
            await stop(task)
        assert handlers.errors == []
        assert handlers.model == final == cache_state(informer)
        assert [call[:2] for call in handlers.calls[mark:]] == [
            ("add", f"{namespace}/after-relist")]


async def test_rest_watch_from_a_compacted_version_raises_gone(config: ClientConfig) -> None:
    async with RESTClient(config) as client:
        first = await client.create(CONFIGMAPS, configmap("gone-probe"), "default")
        rv = first["metadata"]["resourceVersion"]
        for n in range(HISTORY + 5):
            await client.patch(CONFIGMAPS, "gone-probe", {"data": {"value": str(n)}}, "default")
        with pytest.raises(errors.Gone) as caught:
            async with contextlib.aclosing(closable(client.watch(
                    CONFIGMAPS, "default", resource_version=rv, timeout_seconds=10))) as events:
                async for _ in events:
                    pass
        assert caught.value.code == 410
        assert str(caught.value).startswith(f"too old resource version: {rv} ("), caught.value


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def released_after(queue: WorkQueue, clock: FakeClock, delay: float) -> None:
    """The one delayed key comes back after exactly `delay` on the queue's clock."""
    assert (queue.len(), queue.delayed()) == (0, 1)
    clock.advance(delay * 0.9)
    assert queue.release_due() == 0, f"released before {delay} s"
    clock.advance(delay * 0.1 + 1e-9)
    assert queue.release_due() == 1, f"not released after {delay} s"
    assert (queue.len(), queue.delayed()) == (1, 0)


async def test_workqueue_backoff_grows_while_a_key_fails_and_resets_on_forget(
        config: ClientConfig) -> None:
    clock = FakeClock()
    queue = WorkQueue(clock=clock, name="backoff")
    key = "default/arrives-late"
    synced: list[str] = []

    async with RESTClient(config) as client:
        async def sync(item: str) -> None:
            namespace, _, name = item.partition("/")
            await client.get(CONFIGMAPS, name, namespace)  # NotFound until it exists
            synced.append(item)

        queue.add(key)
        for failures in range(8):
            await process_next(queue, sync)
            assert queue.num_requeues(key) == failures + 1
            released_after(queue, clock, BASE_DELAY * 2**failures)

        # Another key's backoff is its own: its first retry waits the first delay.
        other = "default/other"
        queue.add_rate_limited(other)
        assert (queue.num_requeues(other), queue.num_requeues(key)) == (1, 8)
        clock.advance(BASE_DELAY * 0.9)
        assert queue.release_due() == 0
        clock.advance(BASE_DELAY * 0.1 + 1e-9)
        assert queue.release_due() == 1

        await client.create(CONFIGMAPS, configmap("arrives-late"), "default")
        await process_next(queue, sync)  # the first queued key: succeeds, so it is forgotten
        assert synced == [key]
        assert (queue.num_requeues(key), queue.num_requeues(other)) == (0, 1)
        assert queue.get_nowait() == other
        queue.done(other)
        queue.forget(other)

        await client.delete(CONFIGMAPS, "arrives-late", "default")
        queue.add(key)
        await process_next(queue, sync)  # fails again: back to the first delay
        assert queue.num_requeues(key) == 1
        released_after(queue, clock, BASE_DELAY)
    queue.shutdown()

    # The growth stops at the cap.
    limiter = ExponentialBackoff()
    delays = [limiter.when("k") for _ in range(25)]
    assert delays[:3] == [BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == MAX_DELAY
