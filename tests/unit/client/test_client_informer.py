"""Informer against the fake API server: paging, watch, bookmarks, 410 relist, handlers, indexer.

The handler's view is the oracle: a Recorder turns every handler call into
("add"|"update"|"delete", name, resourceVersion or "old->new") and the tests assert the exact
sequence, so a lost or duplicated event fails the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_kube_api import FakeKubeAPI

from tinykube.api import resources
from tinykube.client.informer import (
    Backoff,
    Indexer,
    Informer,
    label_index,
    namespace_index,
    object_key,
    shared,
)
from tinykube.client.rest import RESTClient

_SERVICES = resources.lookup("", "v1", "services")
assert _SERVICES is not None
SERVICES = _SERVICES

Obj = dict[str, Any]
Seen = tuple[str, str, str]


def _name_rv(obj: Obj) -> tuple[str, str]:
    return obj["metadata"]["name"], obj["metadata"]["resourceVersion"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Seen] = []
        self._changed = asyncio.Event()

    def on_add(self, obj: Obj) -> None:
        self._note(("add", *_name_rv(obj)))

    def on_update(self, old: Obj, new: Obj) -> None:
        old_name, old_rv = _name_rv(old)
        new_name, new_rv = _name_rv(new)
        name = new_name if old_name == new_name else f"{old_name}!={new_name}"
        self._note(("update", name, f"{old_rv}->{new_rv}"))

    def on_delete(self, obj: Obj) -> None:
        self._note(("delete", *_name_rv(obj)))

    def _note(self, seen: Seen) -> None:
        self.events.append(seen)
        self._changed.set()

    async def wait_for(self, count: int) -> list[Seen]:
        async def reached() -> None:
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(reached(), timeout=5)
        return self.events


class Sleeps:
    """Injected instead of asyncio.sleep: records the backoff and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_informer(client: RESTClient, sleeps: Sleeps
                        ) -> AsyncIterator[Any]:
    tasks: list[asyncio.Task[None]] = []

    def start(**kwargs: Any) -> tuple[Informer, Recorder]:
        informer = Informer(client, SERVICES, namespace="default", sleep=sleeps,
                            backoff=Backoff(rng=lambda: 0.5), watch_timeout_seconds=60,
                            **kwargs)
        recorder = Recorder()
        informer.add_handlers(on_add=recorder.on_add, on_update=recorder.on_update,
                              on_delete=recorder.on_delete)
        tasks.append(asyncio.create_task(informer.run()))
        return informer, recorder

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _cache_view(informer: Informer) -> dict[str, str]:
    return {object_key(obj): obj["metadata"]["resourceVersion"] for obj in informer.cache.list()}


def _server_view(api: FakeKubeAPI) -> dict[str, str]:
    return {key: obj["metadata"]["resourceVersion"] for key, obj in api.objects.items()}


async def test_lists_in_pages_then_watches_live_events(fake_api: FakeKubeAPI,
                                                       make_informer: Any) -> None:
    for name in ("a", "b", "c"):
        fake_api.create(name)
    informer, recorder = make_informer(page_size=2)
    assert not informer.has_synced
    await asyncio.wait_for(informer.wait_synced(), timeout=5)
    assert informer.has_synced
    assert recorder.events == [("add", "a", "1"), ("add", "b", "2"), ("add", "c", "3")]
    lists = [r.query for r in fake_api.requests if "watch" not in r.query]
    assert lists == [{"limit": "2"}, {"limit": "2", "continue": "2"}]
    assert informer.cache.get("default/a")["kind"] == "Service"

    watch = await fake_api.next_watch()
    assert watch["resourceVersion"] == "3" and watch["allowWatchBookmarks"] == "true"
    assert watch["timeoutSeconds"] == "60"

    fake_api.modify("a")
    fake_api.delete("b")
    fake_api.create("d")
    assert (await recorder.wait_for(6))[3:] == [
        ("update", "a", "1->4"), ("delete", "b", "5"), ("add", "d", "6")]
    assert _cache_view(informer) == _server_view(fake_api)


async def test_an_expired_continue_token_falls_back_to_one_full_list(
        fake_api: FakeKubeAPI, make_informer: Any) -> None:
    for name in ("a", "b", "c"):
        fake_api.create(name)
    fake_api.expiring_continues = 1
    informer, recorder = make_informer(page_size=2)
    await asyncio.wait_for(informer.wait_synced(), timeout=5)
    lists = [r.query for r in fake_api.requests if "watch" not in r.query]
    assert lists == [{"limit": "2"}, {"limit": "2", "continue": "2"}, {}]
    assert recorder.events == [("add", "a", "1"), ("add", "b", "2"), ("add", "c", "3")]
    assert _cache_view(informer) == _server_view(fake_api)


async def test_410_relists_without_losing_or_duplicating_events(
        fake_api: FakeKubeAPI, make_informer: Any, sleeps: Sleeps) -> None:
    for name in ("a", "b", "c"):
        fake_api.create(name)
    informer, recorder = make_informer()
    await fake_api.next_watch()
    fake_api.modify("a")
    await recorder.wait_for(4)
    # The watch drops; meanwhile b changes, c goes, e appears, and history is compacted.
    fake_api.modify("b", silent=True)
    fake_api.delete("c", silent=True)
    fake_api.create("e", silent=True)
    fake_api.compact()
    fake_api.end_watches()
    assert (await fake_api.next_watch())["resourceVersion"] == "4"  # answered with 410
    relisted_watch = await fake_api.next_watch()
    assert relisted_watch["resourceVersion"] == "7"
    fake_api.create("f")
    assert await recorder.wait_for(8) == [
        ("add", "a", "1"), ("add", "b", "2"), ("add", "c", "3"),
        ("update", "a", "1->4"),
        ("update", "b", "2->5"), ("add", "e", "7"), ("delete", "c", "3"),  # the relist's diff
        ("add", "f", "8"),
    ]
    assert _cache_view(informer) == _server_view(fake_api)
    assert sleeps.delays == [pytest.approx(0.8 * 1.5)]  # one jittered backoff before relisting
    assert sum("watch" not in r.query for r in fake_api.requests) == 2  # two lists in all


async def test_bookmarks_advance_the_resource_version(fake_api: FakeKubeAPI,
                                                      make_informer: Any) -> None:
    fake_api.create("a")
    informer, recorder = make_informer()
    assert (await fake_api.next_watch())["resourceVersion"] == "1"
    fake_api.bookmark(advance_to=50)
    fake_api.end_watches()
    assert (await fake_api.next_watch())["resourceVersion"] == "50"
    assert informer.last_resource_version == "50"
    assert recorder.events == [("add", "a", "1")]  # bookmarks reach no handler


async def test_list_errors_back_off_and_sync_waits_for_a_successful_list(
        fake_api: FakeKubeAPI, make_informer: Any, sleeps: Sleeps) -> None:
    fake_api.create("a")
    fake_api.failing_lists = 3
    informer, recorder = make_informer()
    await asyncio.wait_for(informer.wait_synced(), timeout=5)
    assert sleeps.delays == [pytest.approx(d * 1.5) for d in (0.8, 1.6, 3.2)]
    assert recorder.events == [("add", "a", "1")]


async def test_handlers_added_after_sync_replay_adds_and_failures_are_contained(
        fake_api: FakeKubeAPI, make_informer: Any) -> None:
    fake_api.create("a")
    informer, recorder = make_informer()
    await asyncio.wait_for(informer.wait_synced(), timeout=5)
    late = Recorder()

    def broken(obj: Obj) -> None:
        raise RuntimeError("handler bug")

    informer.add_handlers(on_add=broken)
    informer.add_handlers(on_add=late.on_add)
    assert late.events == [("add", "a", "1")]
    await fake_api.next_watch()
    fake_api.create("b")
    assert await recorder.wait_for(2) == [("add", "a", "1"), ("add", "b", "2")]
    assert await late.wait_for(2) == [("add", "a", "1"), ("add", "b", "2")]


# --- Indexer (no server) ------------------------------------------------------------------------


def _svc(name: str, namespace: str | None, rv: str = "1", app: str = "web") -> Obj:
    meta: Obj = {"name": name, "resourceVersion": rv, "labels": {"app": app}}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"metadata": meta}


@pytest.mark.parametrize(("obj", "key"), [
    pytest.param(_svc("web", "default"), "default/web", id="namespaced"),
    pytest.param(_svc("node-1", None), "node-1", id="cluster-scoped"),
])
def test_object_key(obj: Obj, key: str) -> None:
    assert object_key(obj) == key


def _by_app(obj: Obj) -> list[str]:
    return [obj["metadata"]["labels"]["app"]]


@pytest.mark.parametrize(("operations", "index", "value", "expected"), [
    pytest.param([("put", _svc("a", "x"))], "namespace", "x", ["x/a"], id="put"),
    pytest.param([("put", _svc("a", "x")), ("put", _svc("a", "x", "2", app="db"))],
                 "app", "web", [], id="update-moves-index-value"),
    pytest.param([("put", _svc("a", "x")), ("put", _svc("a", "x", "2", app="db"))],
                 "app", "db", ["x/a"], id="update-new-index-value"),
    pytest.param([("put", _svc("a", "x")), ("delete", "x/a")], "namespace", "x", [],
                 id="delete-unindexes"),
    pytest.param([("put", _svc("b", "x")), ("put", _svc("a", "x")), ("put", _svc("c", "y"))],
                 "namespace", "x", ["x/a", "x/b"], id="sorted-by-key"),
    pytest.param([("put", _svc("a", "x")), ("replace", [_svc("b", "y")])], "namespace", "x",
                 [], id="replace-rebuilds"),
])
def test_indexer(operations: list[tuple[str, Any]], index: str, value: str,
                 expected: list[str]) -> None:
    indexer = Indexer()
    indexer.add_index("namespace", namespace_index)
    for operation, argument in operations:
        if operation == "put":
            indexer.put(object_key(argument), argument)
        elif operation == "delete":
            indexer.delete(argument)
        else:
            indexer.replace({object_key(o): o for o in argument})
    indexer.add_index("app", _by_app)  # added late: must index what is already there
    assert indexer.index_keys(index, value) == expected
    assert [object_key(o) for o in indexer.by_index(index, value)] == expected


def _labelled(name: str, namespace: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


SELECT_PODS = [
    _labelled("b", "x", app="web", tier="front"),
    _labelled("a", "x", app="web", tier="back"),
    _labelled("c", "y", app="web", tier="front"),
    _labelled("d", "x", app="db"),
]


@pytest.mark.parametrize(("namespace", "selector", "expected"), [
    pytest.param("x", {"app": "web"}, ["x/a", "x/b"], id="one-label-sorted-by-key"),
    pytest.param("x", {"app": "web", "tier": "front"}, ["x/b"], id="every-label-must-match"),
    pytest.param("y", {"app": "web"}, ["y/c"], id="namespace-bounds-it"),
    pytest.param("x", {"app": "web", "tier": "none"}, [], id="a-missing-value"),
    pytest.param("x", {"app": "db", "tier": "front"}, [], id="rarest-label-then-checked"),
    pytest.param("x", {}, [], id="empty-selects-nothing"),
])
def test_indexer_select(namespace: str, selector: dict[str, str], expected: list[str]) -> None:
    indexer = Indexer()
    indexer.add_index("label", label_index)
    for pod in SELECT_PODS:
        indexer.put(object_key(pod), pod)
    assert [object_key(o) for o in indexer.select(namespace, selector)] == expected


def test_indexer_rejects_unknown_and_conflicting_indices() -> None:
    indexer = Indexer()
    indexer.add_index("namespace", namespace_index)
    indexer.add_index("namespace", namespace_index)  # users of a shared cache may both ask
    with pytest.raises(ValueError, match="already exists"):
        indexer.add_index("namespace", lambda obj: [])
    with pytest.raises(KeyError):
        indexer.by_index("nope", "x")


async def test_shared_informers_run_one_reflector(fake_api: FakeKubeAPI,
                                                   client: RESTClient) -> None:
    """Two users of one shared informer: one list, and one user leaving stops nothing."""
    first = shared(client, SERVICES)
    second = shared(client, SERVICES)
    assert first is second
    assert shared(client, SERVICES, namespace="other") is not first
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    await asyncio.wait_for(first.wait_synced(), 5)
    tasks[0].cancel()  # one user leaving does not stop the other's reflector
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert not tasks[1].done()
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)
    lists = [r for r in fake_api.requests
             if r.method == "GET" and r.query.get("watch") not in ("true", "1")]
    assert len(lists) == 1
