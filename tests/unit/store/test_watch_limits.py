"""Memory bounds of the watch cache: the history in bytes, each watcher's backlog in bytes.

A watcher whose client does not read is terminated once its live backlog stays over
`buffer_bytes` for `drain_grace` seconds, or goes over twice that at once; its backlog is
dropped at that moment. The initial state and replayed history do not count (they are the
store's and the history's objects). A watcher that drains in time is kept.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import errors
from tinykube.store.cache import Store, Watcher, WatchLimits
from tinykube.store.sqlite import SQLiteBackend

CONFIGMAPS = "core/configmaps"
KIB = 1024


def configmap(name: str, size: int, version: int = 0) -> dict[str, Any]:
    """A ConfigMap whose JSON is about `size` bytes."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"blob": f"{version:08d}" + "x" * (size - 120)}}


def open_store(path: Path, *, history: int = 1000, history_bytes: int = 1 << 30,
               buffer_bytes: int = 64 * KIB, grace: float = 60.0) -> Store:
    return Store(SQLiteBackend(path / "state.db"), history=history,
                 history_bytes=history_bytes,
                 watch_limits=WatchLimits(buffer_bytes=buffer_bytes, drain_grace=grace))


def update(store: Store, times: int, size: int = 8 * KIB) -> None:
    for i in range(times):
        store.update(CONFIGMAPS, configmap("big", size, i))


def queued(watcher: Watcher) -> list[str]:
    """The types of the events queued (None: the end of the watch), without taking them."""
    names = []
    while not watcher.queue.empty():
        event = watcher.queue.get_nowait()
        names.append("END" if event is None else event.type)
    return names


@pytest.mark.parametrize(("updates", "terminated"), [
    pytest.param(7, False, id="under-the-bound"),  # 7 x 8 KiB < 64 KiB
    pytest.param(15, False, id="over-the-bound-within-twice"),  # waits for the grace period
    pytest.param(17, True, id="over-twice-the-bound"),  # 17 x 8 KiB > 128 KiB: at once
])
def test_a_watcher_far_behind_is_terminated_and_its_backlog_dropped(
        tmp_path: Path, updates: int, terminated: bool) -> None:
    store = open_store(tmp_path)
    store.create(CONFIGMAPS, configmap("big", 8 * KIB))
    watcher = store.watch(CONFIGMAPS, None, store.resource_version)
    told: list[bool] = []
    watcher.on_terminate = lambda: told.append(True)
    update(store, updates)
    assert watcher.terminated is terminated and told == ([True] if terminated else [])
    if terminated:
        assert watcher.queue.bytes == 0 and queued(watcher) == ["END"]
        assert watcher not in store._watchers[CONFIGMAPS]  # the store holds it no more
        update(store, 1)
        assert queued(watcher) == []  # nothing is queued after the end
    else:
        assert watcher.queue.bytes > 0 and queued(watcher) == ["MODIFIED"] * updates
        assert watcher.queue.bytes == 0  # taking an event gives its bytes back


def test_closing_a_watcher_releases_its_backlog(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.create(CONFIGMAPS, configmap("big", 8 * KIB))
    watcher = store.watch(CONFIGMAPS, None, store.resource_version)
    update(store, 5)
    watcher.close()  # the client left: the API server closes its watcher
    assert watcher.queue.bytes == 0 and queued(watcher) == ["END"] and not watcher.terminated


def test_initial_state_and_replayed_history_do_not_count(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for i in range(40):  # 320 KiB of objects, 2.5 x the hard bound
        store.create(CONFIGMAPS, configmap(f"cm{i}", 8 * KIB))
    from_start = store.watch(CONFIGMAPS, None, None)
    replaying = store.watch(CONFIGMAPS, None, 1)
    for watcher in (from_start, replaying):
        assert not watcher.closed and watcher.queue.bytes == 0
    store.update(CONFIGMAPS, configmap("cm0", 8 * KIB, 1))  # a live event counts
    assert 8 * KIB <= from_start.queue.bytes == replaying.queue.bytes < 9 * KIB
    assert queued(from_start) == ["ADDED"] * 40 + ["MODIFIED"]


async def test_a_watcher_that_stays_behind_past_the_grace_period_is_terminated(
        tmp_path: Path) -> None:
    store = open_store(tmp_path, grace=0.05)
    store.create(CONFIGMAPS, configmap("big", 8 * KIB))
    slow = store.watch(CONFIGMAPS, None, store.resource_version)
    keeping_up = store.watch(CONFIGMAPS, None, store.resource_version)
    ended = asyncio.Event()
    slow.on_terminate = ended.set
    update(store, 12)  # 96 KiB: over the bound, under twice the bound
    await store.settle(0)
    while not keeping_up.queue.empty():  # this client reads what it was sent
        keeping_up.queue.get_nowait()
    async with asyncio.timeout(5):
        await ended.wait()
    assert slow.terminated and slow.queue.bytes == 0
    for _ in range(500):  # its own check has run too (it clears the deadline)...
        if keeping_up._deadline is None:
            break
        await asyncio.sleep(0.01)
    assert keeping_up._deadline is None and not keeping_up.closed  # ...and it drained in time
    update(store, 1)
    await store.settle(0)
    assert queued(keeping_up) == ["MODIFIED"]
    store.close()


@pytest.mark.parametrize(("history", "history_bytes", "kept"), [
    pytest.param(100, 40 * KIB, 4, id="bytes-bound"),  # 5 events of 8 KiB > 40 KiB
    pytest.param(3, 1 << 30, 3, id="count-bound"),
])
def test_history_is_bounded_in_events_and_bytes(tmp_path: Path, history: int,
                                               history_bytes: int, kept: int) -> None:
    store = open_store(tmp_path, history=history, history_bytes=history_bytes)
    store.create(CONFIGMAPS, configmap("big", 8 * KIB))
    update(store, 9)  # RVs 2..10
    oldest_kept = store.resource_version - kept
    with pytest.raises(errors.Gone, match=f"too old resource version: {oldest_kept - 1} "):
        store.watch(CONFIGMAPS, None, oldest_kept - 1)
    assert queued(store.watch(CONFIGMAPS, None, oldest_kept)) == ["MODIFIED"] * kept
