"""Group commit: the writes of one event-loop turn share a commit, nothing is published or
answered before it, and a failed commit loses only uncommitted writes (never acknowledged)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import errors
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

PODS = "core/pods"


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}}


class CountingBackend(SQLiteBackend):
    """Counts commits; `fail_next` makes the next commit fail as a full disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits = 0
        self.fail_next = False

    def commit(self) -> None:
        if self.fail_next and self.in_transaction:
            self.fail_next = False
            self._db.execute("ROLLBACK")
            self._open_rv = None
            raise sqlite3.OperationalError("database or disk is full")
        if self.in_transaction:
            self.commits += 1
        super().commit()


def stored_names(path: Path) -> list[str]:
    """What another connection sees in the database: only committed rows."""
    backend = SQLiteBackend(path)
    try:
        return sorted(key.rsplit("/", 1)[1] for key, _rv, _data in backend.load())
    finally:
        backend.close()


async def test_writes_of_one_turn_share_one_commit_and_publish_after_it(tmp_path: Path) -> None:
    backend = CountingBackend(tmp_path / "state.db")
    store = Store(backend)
    watcher = store.watch(PODS, None, store.resource_version)
    since = store.durable_resource_version
    for i in range(10):
        store.create(PODS, pod(f"p{i}"))
    assert watcher.queue.empty() and backend.commits == 0
    assert stored_names(tmp_path / "state.db") == []
    await store.settle(since)
    assert backend.commits == 1 and watcher.queue.qsize() == 10
    assert stored_names(tmp_path / "state.db") == sorted(f"p{i}" for i in range(10))
    assert store.durable_resource_version == store.resource_version == 10
    store.close()


async def test_a_watch_started_mid_turn_gets_each_object_once(tmp_path: Path) -> None:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    store.create(PODS, pod("a"))
    watcher = store.watch(PODS, None, None)  # initial state holds "a", not yet committed
    await store.settle(0)
    names = []
    while not watcher.queue.empty():
        event = watcher.queue.get_nowait()
        assert event is not None
        names.append((event.type, event.entry.obj["metadata"]["name"]))
    assert names == [("ADDED", "a")]
    store.close()


async def test_a_failed_commit_reloads_the_committed_state(tmp_path: Path) -> None:
    backend = CountingBackend(tmp_path / "state.db")
    store = Store(backend)
    store.create(PODS, pod("kept"))
    await store.settle(0)
    watcher = store.watch(PODS, None, store.resource_version)
    since = store.durable_resource_version
    backend.fail_next = True
    store.create(PODS, pod("lost"))
    with pytest.raises(errors.InternalError):
        await store.settle(since)
    assert store.get(PODS, "ns", "lost") is None and store.get(PODS, "ns", "kept") is not None
    assert watcher.closed  # its client relists
    assert store.resource_version == 2  # the lost write's version is never handed out again
    assert store.create(PODS, pod("next")).rv == 3
    await store.settle(store.durable_resource_version)
    assert stored_names(tmp_path / "state.db") == ["kept", "next"]
    store.close()


def test_without_a_running_loop_each_write_commits_at_once(tmp_path: Path) -> None:
    backend = CountingBackend(tmp_path / "state.db")
    store = Store(backend)
    store.create(PODS, pod("a"))
    store.create(PODS, pod("b"))
    assert backend.commits == 2 and stored_names(tmp_path / "state.db") == ["a", "b"]
    store.close()


async def test_close_commits_what_is_pending(tmp_path: Path) -> None:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    store.create(PODS, pod("a"))
    store.close()
    await asyncio.sleep(0)  # the scheduled commit finds nothing left to do
    assert stored_names(tmp_path / "state.db") == ["a"]
