"""Paged lists as consistent snapshots: `Store.list_at` rebuilds a resource's objects as they were
at a resourceVersion from the current objects and the watch history.

Each case lists page 1 of ten pods with `Store.list` (what the API server does for a first page),
then writes on both sides of the page boundary, then pages on with `list_at(..., rv, after=key)`
(what it does for a continue token) and checks that the pages together are exactly page 1's
state: the same objects, with their labels and resourceVersions of that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tinykube.api import errors
from tinykube.store.cache import Entry, Matcher, Store
from tinykube.store.sqlite import SQLiteBackend

PODS = "core/pods"
CONFIGMAPS = "core/configmaps"
LIMIT = 4  # ten pods p00..p09: page 1 ends at p03
Key = tuple[str, str]


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}}


def open_store(path: Path, history: int = 100) -> Store:
    return Store(SQLiteBackend(path / "state.db"), history=history)


def key(entry: Entry) -> Key:
    meta = entry.obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def state(entries: list[Entry]) -> dict[Key, Any]:
    """Key -> (resourceVersion, labels), copied so later writes cannot change it."""
    return {key(e): (e.rv, e.obj["metadata"]["resourceVersion"],
                     orjson.loads(orjson.dumps(e.obj["metadata"].get("labels"))))
            for e in entries}


def page_on(store: Store, rv: int, after: Key, namespace: str | None = "default",
            matcher: Matcher | None = None) -> list[list[Entry]]:
    """The pages after `after` of a list at `rv`, LIMIT each, as the API server cuts them."""
    pages = []
    while True:
        entries = store.list_at(PODS, namespace, matcher, rv, after=after)
        pages.append(entries[:LIMIT])
        if len(entries) <= LIMIT:
            return pages
        after = key(entries[LIMIT - 1])


def relabel(store: Store, name: str, **labels: str) -> None:
    store.update(PODS, pod(name, **labels))


def churn_elsewhere(store: Store) -> None:
    """Writes to another resource and another namespace: nothing a pod list must undo."""
    store.create(CONFIGMAPS, {"metadata": {"name": "p05", "namespace": "default"}})
    store.create(PODS, pod("p05", "other"))
    store.update(PODS, pod("p05", "other", app="x"))
    store.delete(CONFIGMAPS, "default", "p05")


# Writes made after page 1; p00-p03 are on page 1, p04-p09 after the boundary.
MUTATIONS: list[tuple[str, Callable[[Store], None]]] = [
    ("nothing", lambda s: None),
    ("create-after-boundary", lambda s: s.create(PODS, pod("p05a", app="new"))),
    ("create-before-boundary", lambda s: s.create(PODS, pod("p01a", app="new"))),
    ("create-past-the-end", lambda s: s.create(PODS, pod("p99", app="new"))),
    ("modify-after-boundary", lambda s: relabel(s, "p07", app="changed")),
    ("modify-before-boundary", lambda s: relabel(s, "p02", app="changed")),
    ("modify-boundary-object", lambda s: relabel(s, "p03", app="changed")),
    ("modify-twice", lambda s: (relabel(s, "p06", app="one"), relabel(s, "p06", app="two"))),
    ("delete-after-boundary", lambda s: s.delete(PODS, "default", "p08")),
    ("delete-before-boundary", lambda s: s.delete(PODS, "default", "p01")),
    ("delete-boundary-object", lambda s: s.delete(PODS, "default", "p03")),
    ("delete-last", lambda s: s.delete(PODS, "default", "p09")),
    ("delete-then-recreate", lambda s: (s.delete(PODS, "default", "p06"),
                                        s.create(PODS, pod("p06", app="reborn")))),
    ("create-then-delete", lambda s: (s.create(PODS, pod("p05b")),
                                      s.delete(PODS, "default", "p05b"))),
    ("modify-then-delete", lambda s: (relabel(s, "p04", app="changed"),
                                      s.delete(PODS, "default", "p04"))),
    ("other-resource-and-namespace", churn_elsewhere),
    ("everything", lambda s: [m(s) for name, m in MUTATIONS[1:-1]]),
]


@pytest.mark.parametrize("mutate", [m for _, m in MUTATIONS], ids=[n for n, _ in MUTATIONS])
def test_later_pages_show_the_state_at_the_first_page(tmp_path: Path,
                                                      mutate: Callable[[Store], None]) -> None:
    store = open_store(tmp_path)
    for i in range(10):
        store.create(PODS, pod(f"p{i:02d}", app="web", n=str(i)))
    first = store.list(PODS, "default")
    rv = store.resource_version
    page_1 = first[:LIMIT]
    expected = state(first)

    mutate(store)
    later = page_on(store, rv, key(page_1[-1]))

    served = [e for page in [page_1, *later] for e in page]
    assert [key(e) for e in served] == sorted(expected)  # each once, in key order
    assert state(served) == expected  # as they were: labels and resourceVersions
    assert [len(p) for p in later] == [4, 2]
    store.close()


def test_a_selector_sees_the_labels_of_the_snapshot(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for i in range(10):
        store.create(PODS, pod(f"p{i:02d}", app="web" if i % 2 else "db"))

    def web(obj: dict[str, Any]) -> bool:
        return bool(obj["metadata"]["labels"].get("app") == "web")

    first = store.list(PODS, "default", web)
    rv = store.resource_version
    relabel(store, "p07", app="db")   # matched at the snapshot: still listed, as web
    relabel(store, "p08", app="web")  # did not match: not listed
    store.delete(PODS, "default", "p09")  # matched: still listed
    store.create(PODS, pod("p10", app="web"))  # created later: not listed

    later = page_on(store, rv, ("default", "p03"), matcher=web)
    served = [e for page in later for e in page]
    assert [e.obj["metadata"]["name"] for e in first] == ["p01", "p03", "p05", "p07", "p09"]
    assert [e.obj["metadata"]["name"] for e in served] == ["p05", "p07", "p09"]
    assert [e.obj["metadata"]["labels"]["app"] for e in served] == ["web"] * 3
    store.close()


def test_pages_across_namespaces_keep_storage_key_order(tmp_path: Path) -> None:
    """Keys order as kube-apiserver's storage keys `<namespace>/<name>` do: "a-b/x" < "a/x"."""
    store = open_store(tmp_path)
    for namespace in ("a", "a-b", "b"):
        for name in ("x", "y"):
            store.create(PODS, pod(name, namespace))
    first = store.list(PODS)
    rv = store.resource_version
    store.delete(PODS, "a", "x")
    store.create(PODS, pod("w", "a"))
    later = page_on(store, rv, key(first[1]), namespace=None)
    assert [key(e) for page in [first[:2], *later] for e in page] == [
        ("a-b", "x"), ("a-b", "y"), ("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    assert state(store.list_at(PODS, "a", None, rv, after=("a", ""))) == state(first[2:4])
    store.close()


def test_unchanged_objects_are_the_stored_entries(tmp_path: Path) -> None:
    """Only objects changed since the snapshot are rebuilt; the rest keep their cached JSON."""
    store = open_store(tmp_path)
    for i in range(3):
        store.create(PODS, pod(f"p{i}"))
    rv = store.resource_version
    current = store.list(PODS)
    relabel(store, "p1", app="changed")
    snapshot = store.list_at(PODS, None, None, rv)
    assert snapshot[0] is current[0] and snapshot[2] is current[2]
    assert snapshot[1] is not store.get(PODS, "default", "p1")
    assert orjson.loads(snapshot[1].raw) == current[1].obj
    assert store.list_at(PODS, None, None, store.resource_version) == store.list(PODS)
    store.close()


async def test_uncommitted_writes_are_undone_too(tmp_path: Path) -> None:
    """Inside a running loop writes wait for the turn's commit before joining the history."""
    store = open_store(tmp_path)
    for i in range(6):
        store.create(PODS, pod(f"p{i}", app="web"))
    await store.settle(0)
    rv = store.resource_version
    expected = state(store.list(PODS))
    store.create(PODS, pod("p2a"))
    relabel(store, "p3", app="changed")
    store.delete(PODS, "default", "p4")
    assert state(store.list_at(PODS, None, None, rv)) == expected  # all three still pending
    await store.settle(rv)
    assert state(store.list_at(PODS, None, None, rv)) == expected  # now in the history
    store.close()


@pytest.mark.parametrize(("history", "writes", "reopen", "snapshot", "gone"), [
    pytest.param(10, 5, False, 0, False, id="inside-history"),
    pytest.param(10, 10, False, 0, False, id="history-just-full"),
    pytest.param(10, 11, False, 0, True, id="compacted"),
    pytest.param(10, 0, True, 0, True, id="reopened-store"),
    pytest.param(10, 0, True, 1, False, id="reopened-at-current-version"),
    pytest.param(10, 0, False, 1, True, id="newer-than-the-store"),
])
def test_a_snapshot_older_than_the_history_is_gone(tmp_path: Path, history: int, writes: int,
                                                   reopen: bool, snapshot: int,
                                                   gone: bool) -> None:
    store = open_store(tmp_path, history)
    for i in range(5):
        store.create(PODS, pod(f"p{i}"))
    rv = store.resource_version + snapshot  # snapshot=1: the version after the last write
    for i in range(writes):
        relabel(store, "p4", n=str(i))
    if reopen:
        store.close()
        store = open_store(tmp_path, history)
        rv = store.resource_version + snapshot - 1
    if gone:
        with pytest.raises(errors.Gone):
            store.list_at(PODS, None, None, rv)
    else:
        assert len(store.list_at(PODS, None, None, rv)) == 5
    store.close()
