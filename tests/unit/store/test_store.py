"""The store: resourceVersions, durability across reopen, watch semantics and history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tinykube.api import errors
from tinykube.store.cache import Event, Store
from tinykube.store.sqlite import SQLiteBackend

PODS = "core/pods"


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}}


def open_store(path: Path, history: int = 100) -> Store:
    return Store(SQLiteBackend(path / "state.db"), history=history)


def drain(watcher: Any) -> list[tuple[str, str]]:
    events = []
    while not watcher.queue.empty():
        event: Event | None = watcher.queue.get_nowait()
        if event is None:
            break
        events.append((event.type, event.entry.obj["metadata"]["name"]))
    return events


def test_resource_versions_increase_and_survive_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    rvs = [store.create(PODS, pod(f"p{i}")).rv for i in range(3)]
    store.delete(PODS, "default", "p2")
    assert rvs == [1, 2, 3] and store.resource_version == 4
    store.close()

    reopened = open_store(tmp_path)
    assert reopened.resource_version == 4, "a delete's RV must survive a restart too"
    assert [e.obj["metadata"]["name"] for e in reopened.list(PODS)] == ["p0", "p1"]
    assert reopened.create(PODS, pod("p3")).rv == 5


def test_list_orders_by_namespace_then_name(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for ns, name in [("b", "x"), ("a", "z"), ("a", "y")]:
        store.create(PODS, pod(name, ns))
    assert [(e.obj["metadata"]["namespace"], e.obj["metadata"]["name"])
            for e in store.list(PODS)] == [("a", "y"), ("a", "z"), ("b", "x")]
    assert [e.obj["metadata"]["name"] for e in store.list(PODS, "a")] == ["y", "z"]


@pytest.mark.parametrize(("operation", "error"), [
    pytest.param(lambda s: s.create(PODS, pod("p")), errors.AlreadyExists, id="create-existing"),
    pytest.param(lambda s: s.update(PODS, pod("nope")), errors.NotFound, id="update-missing"),
    pytest.param(lambda s: s.update(PODS, pod("p"), expected_rv=99), errors.Conflict,
                 id="update-stale"),
    pytest.param(lambda s: s.delete(PODS, "default", "nope"), errors.NotFound,
                 id="delete-missing"),
])
def test_refused_writes_change_nothing(tmp_path: Path, operation: Any, error: type) -> None:
    store = open_store(tmp_path)
    store.create(PODS, pod("p"))
    with pytest.raises(error):
        operation(store)
    assert store.resource_version == 1
    assert [e.obj["metadata"]["name"] for e in store.list(PODS)] == ["p"]


def test_watch_from_zero_starts_with_current_state(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.create(PODS, pod("a"))
    watcher = store.watch(PODS, None, None)
    store.create(PODS, pod("b"))
    assert drain(watcher) == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_from_rv_replays_history(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    first = store.create(PODS, pod("a")).rv
    store.update(PODS, {**pod("a"), "spec": {"x": 1}})
    store.delete(PODS, "default", "a")
    watcher = store.watch(PODS, None, first)
    assert drain(watcher) == [("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_older_than_history_is_gone(tmp_path: Path) -> None:
    store = open_store(tmp_path, history=3)
    for i in range(6):
        store.create(PODS, pod(f"p{i}"))
    with pytest.raises(errors.Gone):
        store.watch(PODS, None, 1)
    watcher = store.watch(PODS, None, 3)  # the events after RV 3 are still held
    assert drain(watcher) == [("ADDED", "p3"), ("ADDED", "p4"), ("ADDED", "p5")]


def test_watch_history_starts_at_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.create(PODS, pod("a"))
    store.create(PODS, pod("b"))
    store.close()
    reopened = open_store(tmp_path)
    with pytest.raises(errors.Gone):
        reopened.watch(PODS, None, 1)
    assert drain(reopened.watch(PODS, None, 2)) == []


def test_selector_transitions_become_added_and_deleted(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.create(PODS, pod("a", app="web"))
    watcher = store.watch(PODS, "default", None,
                          lambda o: o["metadata"]["labels"].get("app") == "web")
    store.update(PODS, pod("a", app="db"))   # leaves the selection
    store.update(PODS, pod("a", app="web"))  # comes back
    store.create(PODS, pod("other", app="db"))  # never selected
    store.create(PODS, pod("elsewhere", "kube-system", app="web"))  # other namespace
    assert drain(watcher) == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a")]


def test_closed_watcher_gets_no_more_events(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    watcher = store.watch(PODS, None, None)
    watcher.close()
    store.create(PODS, pod("a"))
    assert drain(watcher) == []


def test_indexed_watch_sees_only_its_objects_and_their_transitions(tmp_path: Path) -> None:
    store = open_store(tmp_path)

    def on_node(node: str) -> dict[str, Any]:
        return {**pod("a"), "spec": {"nodeName": node}}

    watcher = store.watch(PODS, None, None,
                          lambda o: o.get("spec", {}).get("nodeName") == "n1",
                          ("spec.nodeName", "n1"))
    store.create(PODS, pod("unbound"))
    store.create(PODS, on_node("n2"))             # someone else's pod
    store.update(PODS, on_node("n1"))             # moves to n1: ADDED for this watcher
    store.update(PODS, {**on_node("n1"), "status": {"phase": "Running"}})
    store.update(PODS, on_node("n3"))             # leaves: DELETED for this watcher
    assert drain(watcher) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    watcher.close()
    store.update(PODS, on_node("n1"))
    assert drain(watcher) == []
