"""The store the API server talks to: all objects in memory, every write made durable first.

`Store` keeps each resource's objects in a dict keyed by `(namespace, name)` and a bounded history
of watch events. A write goes: assign the next resourceVersion -> write it to the backend's open
transaction -> update memory; once per turn of the event loop (`loop.call_soon`) the batch is
committed and only then are its events fanned out to watchers (group commit: one commit for all
the writes of the requests that ran in that turn). Because the API server runs on one event loop
and backend calls are synchronous, writes are totally ordered by resourceVersion and a watcher
sees the events of each object in order, with no locks.

Nothing uncommitted leaves the process: the API server answers a request only after
`settle(since)`, which waits for the commit of every write made up to the moment it is called
(the request's own, and any it may have read) and raises `InternalError` if a write made after
`since` (the durable version when the request started) could not be committed. If a commit
fails (a full or failing disk), the store reloads itself from the database, which holds exactly
the committed state, closes every watch (clients relist) and keeps counting resourceVersions
upwards, so a lost write's version is never reused.
Without a running event loop (start-up, tests) each write commits at once.

Watch semantics are kube-apiserver's watch cache:
- `resource_version` unset or "0": synthetic ADDED events for the current state, then live events.
- a resourceVersion inside the history: the events after it, then live events.
- older than the history: `Gone` ("too old resource version"), which makes informers relist.
- a watcher with a selector sees an object leave its selection as DELETED and enter it as ADDED.

Memory is bounded in bytes as well as in events, because one event holds a whole object: the
history keeps at most `history` events and `history_bytes` of encoded objects (the oldest go
first, and watches from before them get `Gone`), and each watcher at most `WatchLimits` of
encoded live events not yet sent (a watcher that stays over it is terminated and its backlog
dropped; see `Watcher`). Events are shared: a queued event is the history's object and its
cached encoding, so 2 x `buffer_bytes` <= `history_bytes` means a backlog pins nothing the
history does not hold anyway.

Paged lists are consistent snapshots, as kube-apiserver's (etcd reads at the first page's
revision) are: the first page (`list`) reads the current objects and the API server puts that
page's resourceVersion in the continue token; every later page (`list_at`) is served from the
state at that resourceVersion, so objects created, modified or deleted since the first page do
not show up, modified ones appear as they were, and every page reports the same
resourceVersion. No snapshot is kept: `list_at` takes the current objects and undoes, newest
first, the resource's events after the snapshot (the history's and the not yet committed
ones): ADDED removes the key, MODIFIED and DELETED put back the event's previous object (with
its own resourceVersion). Namespace and selector apply to the rebuilt objects, so a selector
sees the labels of the snapshot. The first page costs nothing extra; a later page costs the
events since the snapshot plus the sort of the keys after the page's start key. A snapshot
older than the history (or after a reload) cannot be rebuilt: `Gone`, which the API server
answers as kube-apiserver does for a compacted continue token (410 Expired with a token that
continues at the current resourceVersion). A list with `resourceVersionMatch=Exact` (or a bare
resourceVersion and a limit) is such a snapshot too, and `reach` lets a list not older than a
version wait for the write that reaches it (see apiserver/list_options.py).

A write whose stored encoding is over `MAX_OBJECT_BYTES` (1.5 MiB, etcd's default
`--max-request-bytes`, which is what bounds an object in a real cluster) is refused before
anything is written. kube-apiserver passes etcd's `etcdserver: request is too large` on as a
500; here it is a 413 `RequestEntityTooLarge` with that text and the sizes, since the client
sent too much and retrying cannot help.

Objects are stored as plain dicts in their storage version. Callers must treat what they get
back as read-only (the API server copies before changing); each object also caches its JSON
encoding, so lists and watch fan-out encode an object once however many clients read it.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from tinykube.api import errors
from tinykube.settings import (
    DEFAULT_WATCH_BUFFER_BYTES,
    DEFAULT_WATCH_HISTORY,
    DEFAULT_WATCH_HISTORY_BYTES,
    WATCH_DRAIN_GRACE,
)
from tinykube.store.sqlite import SQLiteBackend

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Matcher = Callable[[Obj], bool]
# Fields whose exact-match watches are indexed, as the real watch cache indexes pods by node:
# a node's pod watch is then offered only the events of its own pods.
INDEXED_FIELDS = ("spec.nodeName", "metadata.name")
IndexKey = tuple[str, str]  # (field path, value)
MAX_OBJECT_BYTES = 1536 * 1024  # etcd's default --max-request-bytes


def _field(obj: Obj | None, path: str) -> str | None:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return None if node is None else str(node)


def storage_order(key: tuple[str, str]) -> str:
    """kube-apiserver's list order: its storage keys `<namespace>/<name>` in byte order (so
    namespace `a-b` comes before `a`, as `-` sorts before `/`)."""
    return f"{key[0]}/{key[1]}"


@dataclasses.dataclass(slots=True)
class Entry:
    """A stored object with its resourceVersion and cached JSON encoding."""

    obj: Obj
    rv: int
    _raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self.obj)
        return self._raw


@dataclasses.dataclass(slots=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    rv: int
    resource: str  # storage key of the resource, e.g. "apps/statefulsets"
    entry: Entry
    prev: Obj | None = None

    @property
    def size(self) -> int:
        """The encoded size of the event's object (shared by every watcher that queues it)."""
        return len(self.entry.raw)


@dataclasses.dataclass(frozen=True, slots=True)
class WatchLimits:
    """How far a watcher may fall behind (see `Watcher`)."""

    buffer_bytes: int = DEFAULT_WATCH_BUFFER_BYTES
    drain_grace: float = WATCH_DRAIN_GRACE


class Backlog:
    """A watcher's queued events (None ends the watch), and the encoded bytes of the live ones.

    The part of `asyncio.Queue` a watch needs, plus the byte count: each item carries the size
    it was counted with (0 for the initial state and replayed history, see `Watcher`).
    """

    def __init__(self) -> None:
        self._items: collections.deque[tuple[Event | None, int]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.bytes = 0

    def __repr__(self) -> str:
        return f"Backlog(events={len(self._items)}, bytes={self.bytes})"

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Event | None, size: int = 0) -> None:
        self._items.append((item, size))
        self.bytes += size
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def get_nowait(self) -> Event | None:
        if not self._items:
            raise asyncio.QueueEmpty
        item, size = self._items.popleft()
        self.bytes -= size
        return item

    async def get(self) -> Event | None:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.get_nowait()

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


class Watcher:
    """One client's watch: a backlog of events filtered by namespace and selector.

    The initial state and the replayed history are queued uncounted: they reference objects the
    store and its history hold anyway (kube-apiserver's cacheWatcher walks them the same way,
    outside its buffer). Live events count their encoded size. A watcher more than
    `buffer_bytes` behind that has not caught up `drain_grace` seconds later, or more than twice
    `buffer_bytes` behind at any moment, is terminated as kube-apiserver terminates a watcher
    whose buffer stays full: its backlog is dropped at once, `on_terminate` (set by the API
    server) ends the stream, and the client re-watches from the last version it saw.
    """

    def __init__(self, store: Store, resource: str, namespace: str | None,
                 matcher: Matcher | None, index: IndexKey | None = None,
                 since_rv: int = 0, limits: WatchLimits = WatchLimits()) -> None:
        self._store = store
        self.since_rv = since_rv  # events up to this version are already in the queue
        self.resource = resource
        self.namespace = namespace
        self.matcher = matcher
        self.index = index  # only objects with this field value can match
        self.limits = limits
        self.queue = Backlog()
        self.closed = False
        self.terminated = False  # closed because it fell behind
        self.on_terminate: Callable[[], None] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"Watcher({self.resource!r}, ns={self.namespace!r}, backlog={self.queue!r})"

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.matcher is None or self.matcher(obj)

    def offer(self, event: Event, *, live: bool = True) -> None:
        """Queue the event as this watcher sees it (selector transitions become ADDED/DELETED)."""
        if self.closed or event.rv <= self.since_rv:
            return  # in the initial state already (it was written, not yet committed, then)
        now = self._matches(event.entry.obj)
        before = event.type == "MODIFIED" and self._matches(event.prev)
        if event.type == "MODIFIED" and now != before:
            kind = "ADDED" if now else "DELETED"
            event = Event(kind, event.rv, event.resource, event.entry, event.prev)
        elif not now:
            return
        self.queue.put_nowait(event, event.size if live else 0)
        if live:
            self._check_backlog()

    def _check_backlog(self) -> None:
        limit = self.limits.buffer_bytes
        if self.queue.bytes > 2 * limit:
            self.terminate()
        elif self.queue.bytes > limit and self._deadline is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (start-up, tests): only the hard bound applies
            self._deadline = loop.call_later(self.limits.drain_grace, self._check_drained)

    def _check_drained(self) -> None:
        self._deadline = None
        if not self.closed and self.queue.bytes > self.limits.buffer_bytes:
            self.terminate()

    def terminate(self) -> None:
        """End a watch that fell behind: drop its backlog, tell the API server."""
        if self.closed:
            return
        log.info("terminating a watch of %s: its client is %d bytes of events behind",
                 self.resource, self.queue.bytes)
        self.terminated = True
        self.close()
        if self.on_terminate is not None:
            self.on_terminate()

    def close(self) -> None:
        """End the watch and release its backlog (what is still queued is not sent)."""
        if not self.closed:
            self.closed = True
            self._store._forget(self)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self.queue.clear()
            self.queue.put_nowait(None)


class Store:
    """Objects of every resource, a resourceVersion sequence, history and watchers."""

    cache_lags = False  # whether a client may have seen versions the cache does not hold yet

    def __init__(self, backend: SQLiteBackend, *, history: int = DEFAULT_WATCH_HISTORY,
                 max_object_bytes: int = MAX_OBJECT_BYTES,
                 history_bytes: int = DEFAULT_WATCH_HISTORY_BYTES,
                 watch_limits: WatchLimits = WatchLimits()) -> None:
        self.backend = backend
        self.max_object_bytes = max_object_bytes
        self.watch_limits = watch_limits
        self._objects: dict[str, dict[tuple[str, str], Entry]] = collections.defaultdict(dict)
        self._watchers: dict[str, set[Watcher]] = collections.defaultdict(set)  # unindexed
        self._indexed: dict[str, dict[IndexKey, set[Watcher]]] = collections.defaultdict(dict)
        self._history: collections.deque[Event] = collections.deque()
        self._history_limits = (history, history_bytes)
        self._history_bytes = 0  # encoded size of the history's objects
        self._rv = backend.last_rv()
        self._compacted_rv = self._rv  # watches from before this RV get 410 Gone
        self._durable_rv = self._rv  # every write up to here is committed (or known lost)
        self._pending: list[Event] = []  # written, not committed: published after the commit
        self._batch_done: asyncio.Future[None] | None = None
        self._progress: asyncio.Future[None] | None = None  # resolved by the next write
        self._lost: collections.deque[tuple[int, int]] = collections.deque(maxlen=100)
        self._commit_error = ""  # why the last commit failed; "" once one succeeds
        self._generations: collections.Counter[str] = collections.Counter()  # see `generation`
        self._reloads = 0
        self._load()

    def __repr__(self) -> str:
        count = sum(len(objs) for objs in self._objects.values())
        return f"Store(objects={count}, rv={self._rv}, backend={self.backend!r})"

    def _load(self) -> None:
        for key, rv, data in self.backend.load():
            group, plural, namespace, name = key.split("/", 3)
            self._objects[f"{group}/{plural}"][(namespace, name)] = Entry(orjson.loads(data), rv,
                                                                           bytes(data))

    @property
    def resource_version(self) -> int:
        return self._rv

    def generation(self, resource: str) -> tuple[int, int]:
        """A value that changes whenever an object of `resource` may have changed (a write,
        an event from another API server's write, a reload): what a cache derived from
        `list(resource)` checks before it trusts itself."""
        return self._reloads, self._generations[resource]

    @property
    def commit_error(self) -> str:
        """Why the last commit failed, or "" when it succeeded (what ComponentStatus reports)."""
        return self._commit_error

    @property
    def durable_resource_version(self) -> int:
        """Every write up to this version is committed: what a request may have read beyond
        it is settled (`settle`) before the request is answered."""
        return self._durable_rv

    # --- reads --------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Entry | None:
        return self._objects[resource].get((namespace, name))

    def list(self, resource: str, namespace: str | None = None,
             matcher: Matcher | None = None) -> list[Entry]:
        """Entries in kube-apiserver's order (`storage_order`)."""
        objects = self._objects[resource]
        keys = sorted(objects, key=storage_order) if namespace is None else sorted(
            k for k in objects if k[0] == namespace)  # one namespace: by name
        entries = [objects[k] for k in keys]
        if matcher is not None:
            entries = [e for e in entries if matcher(e.obj)]
        return entries

    def list_at(self, resource: str, namespace: str | None, matcher: Matcher | None, rv: int,
                *, after: tuple[str, str] | None = None) -> builtins.list[Entry]:
        """Entries as they were at resourceVersion `rv`, sorted as `list` sorts them; with
        `after`, only those whose key sorts after it (a continue page).

        Rebuilt from the current objects by undoing the resource's events newer than `rv`
        (newest first; the oldest undo of a key wins, which is its state at `rv`). Raises
        `Gone` when `rv` is older than the history (or newer than this store: a token from
        another data directory), because that state can no longer be rebuilt.
        """
        if rv < self._compacted_rv:
            raise errors.Gone(f"too old resource version: {rv} ({self._compacted_rv})")
        if rv > self._rv:
            raise errors.Gone(f"resource version {rv} is newer than the store's ({self._rv})")
        before: dict[tuple[str, str], Obj | None] = {}  # key -> object at `rv`, None: absent
        # Written but uncommitted events are newer than every event of the history.
        for event in itertools.chain(reversed(self._pending), reversed(self._history)):
            if event.rv <= rv:
                break
            if event.resource != resource:
                continue
            meta = event.entry.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            before[key] = None if event.type == "ADDED" else event.prev
        objects = self._objects[resource]
        start = storage_order(after) if after is not None else ""
        keys = [k for k in objects if (namespace is None or k[0] == namespace)
                and storage_order(k) > start]
        if before:
            restored = {k: Entry(obj, int(obj["metadata"]["resourceVersion"]))
                        for k, obj in before.items() if obj is not None
                        and (namespace is None or k[0] == namespace)
                        and storage_order(k) > start}
            keys = [k for k in keys if k not in before]  # changed, or created since
            keys.extend(restored)
            keys.sort(key=storage_order)
            entries = [restored.get(k) or objects[k] for k in keys]
        else:
            keys.sort(key=storage_order)
            entries = [objects[k] for k in keys]
        if matcher is not None:
            entries = [e for e in entries if matcher(e.obj)]
        return entries

    def count(self, resource: str) -> int:
        return len(self._objects[resource])

    # --- writes -------------------------------------------------------------------------

    def next_rv(self) -> int:
        return self._rv + 1

    def create(self, resource: str, obj: Obj) -> Entry:
        """Store a new object; the caller has set every field but resourceVersion."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._objects[resource]:
            raise errors.AlreadyExists(f"{key} already exists")
        return self._write("ADDED", resource, key, obj, None)

    def update(self, resource: str, obj: Obj, *, expected_rv: int | None = None) -> Entry:
        """Replace an object; `expected_rv` (if given) must equal the stored RV."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        current = self._objects[resource].get(key)
        if current is None:
            raise errors.NotFound(f"{key} not found")
        if expected_rv is not None and expected_rv != current.rv:
            raise errors.Conflict(f"{key} has resourceVersion {current.rv}, not {expected_rv}")
        return self._write("MODIFIED", resource, key, obj, current.obj)

    def delete(self, resource: str, namespace: str, name: str) -> Entry:
        current = self._objects[resource].get((namespace, name))
        if current is None:
            raise errors.NotFound(f"{namespace}/{name} not found")
        rv = self._rv + 1
        self.backend.delete(self._row_key(resource, (namespace, name)), rv)
        self._rv = rv
        del self._objects[resource][(namespace, name)]
        obj = {**current.obj, "metadata": {**current.obj["metadata"], "resourceVersion": str(rv)}}
        entry = Entry(obj, rv)
        self._written(Event("DELETED", rv, resource, entry, current.obj))
        return entry

    def _write(self, kind: str, resource: str, key: tuple[str, str], obj: Obj,
               prev: Obj | None) -> Entry:
        rv = self._rv + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        entry = Entry(obj, rv)
        if len(entry.raw) > self.max_object_bytes:
            raise errors.RequestEntityTooLarge(
                f"etcdserver: request is too large (the object is {len(entry.raw)} bytes "
                f"stored; the limit is {self.max_object_bytes})")
        self.backend.put(self._row_key(resource, key), rv, entry.raw)
        self._rv = rv
        self._objects[resource][key] = entry
        self._written(Event(kind, rv, resource, entry, prev))
        return entry

    # --- group commit -------------------------------------------------------------------

    def _written(self, event: Event) -> None:
        self._pending.append(event)
        self._generations[event.resource] += 1
        if self._progress is not None:
            if not self._progress.done():
                self._progress.set_result(None)
            self._progress = None
        if self._batch_done is not None:
            return  # the commit of this turn is scheduled already
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.commit()
            return
        self._batch_done = loop.create_future()
        loop.call_soon(self.commit)

    def commit(self) -> None:
        """Commit the open batch, then publish its events and wake whoever waits for it."""
        events, self._pending = self._pending, []
        done, self._batch_done = self._batch_done, None
        try:
            try:
                self.backend.commit()
            except Exception as error:  # sqlite3.Error, or a bug: either way nothing is stored
                self._lose(events, error)
            else:
                self._durable_rv = self._rv
                self._commit_error = ""
                for event in events:
                    self._publish(event)
        finally:  # waiters always wake; `settle` tells them whether their writes were lost
            if done is not None and not done.done():
                done.set_result(None)

    def _lose(self, events: builtins.list[Event], error: Exception) -> None:
        first = events[0].rv if events else self._rv
        log.error("could not commit %d writes (resourceVersions %d-%d): %s; reloading the "
                  "committed state and closing every watch. Check the disk of the data "
                  "directory.", len(events), first, self._rv, error)
        self._lost.append((first, self._rv))
        self._commit_error = f"could not commit resourceVersions {first}-{self._rv}: {error}"
        for watcher in self._all_watchers():
            watcher.close()
        self._objects.clear()
        self._history.clear()
        self._history_bytes = 0
        self._reloads += 1
        self._load()
        self._compacted_rv = self._durable_rv = self._rv  # versions go on upwards, never reused

    async def reach(self, rv: int) -> None:
        """Wait until resourceVersion `rv` is written (the caller bounds the wait: a list not
        older than a version this store has not reached waits for it)."""
        while self._rv < rv:
            if self._progress is None:
                self._progress = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._progress)  # shared by every waiter

    async def settle(self, since: int) -> None:
        """Wait until every write made so far is committed; raise InternalError if one made
        after resourceVersion `since` (the durable version when the caller started) was lost."""
        target = self._rv
        while self._durable_rv < target and self._batch_done is not None:
            await asyncio.shield(self._batch_done)
        if any(last > since and first <= target for first, last in self._lost):
            raise errors.InternalError("the write could not be stored (the data directory's "
                                       "disk failed); it was not applied")

    async def confirm(self, entry: Entry) -> Entry:
        """The stored entry of a write this store returned (the etcd store's writes finish
        later, see store/etcd.py; here a write is in memory at once and `settle` commits it)."""
        return entry

    async def sync(self) -> None:
        """Make the next read consistent (nothing to wait for: this process owns the data)."""

    @staticmethod
    def _row_key(resource: str, key: tuple[str, str]) -> str:
        return f"{resource}/{key[0]}/{key[1]}"

    # --- watch --------------------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        self._generations[event.resource] += 1  # (an etcd store's events come only here)
        self._history.append(event)
        self._history_bytes += event.size
        count, size = self._history_limits
        while len(self._history) > 1 and (len(self._history) > count
                                          or self._history_bytes > size):
            evicted = self._history.popleft()
            self._history_bytes -= evicted.size
            self._compacted_rv = evicted.rv  # a watch from here on misses nothing still held
        for watcher in self._interested(event):
            watcher.offer(event)

    def _interested(self, event: Event) -> Iterable[Watcher]:
        """Unindexed watchers, plus indexed ones whose value the object has (or had)."""
        watchers = list(self._watchers[event.resource])
        indexed = self._indexed.get(event.resource)
        if indexed:
            keys = {(path, value) for path in INDEXED_FIELDS
                    for obj in (event.entry.obj, event.prev)
                    if (value := _field(obj, path)) is not None}
            for key in keys:
                watchers.extend(indexed.get(key, ()))
        return watchers

    def _forget(self, watcher: Watcher) -> None:
        if watcher.index is None:
            self._watchers[watcher.resource].discard(watcher)
            return
        bucket = self._indexed[watcher.resource].get(watcher.index)
        if bucket is not None:
            bucket.discard(watcher)
            if not bucket:
                del self._indexed[watcher.resource][watcher.index]

    def watch(self, resource: str, namespace: str | None, resource_version: int | None,
              matcher: Matcher | None = None, index: IndexKey | None = None) -> Watcher:
        """Start a watch; raises `Gone` when `resource_version` is older than the history.

        `index` (a field of INDEXED_FIELDS and the value `matcher` requires of it) lets the
        store offer the watcher only the events of objects that have, or had, that value.
        """
        if index is not None and index[0] not in INDEXED_FIELDS:
            index = None
        watcher = Watcher(self, resource, namespace, matcher, index,
                          since_rv=resource_version or self._rv, limits=self.watch_limits)
        if not resource_version:
            for entry in self.list(resource, namespace, matcher):
                watcher.queue.put_nowait(Event("ADDED", entry.rv, resource, entry))
        else:
            if resource_version < self._compacted_rv:
                raise errors.Gone(
                    f"too old resource version: {resource_version} ({self._compacted_rv})")
            for event in self._history_after(resource_version):
                if event.resource == resource:
                    watcher.offer(event, live=False)
        if index is None:
            self._watchers[resource].add(watcher)
        else:
            self._indexed[resource].setdefault(index, set()).add(watcher)
        return watcher

    def _history_after(self, rv: int) -> Iterable[Event]:
        # History is ordered by RV; skip the prefix quickly from the right end when small.
        history = self._history
        if not history or history[-1].rv <= rv:
            return ()
        start = 0
        lo, hi = 0, len(history)
        while lo < hi:
            mid = (lo + hi) // 2
            if history[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        start = lo
        return [history[i] for i in range(start, len(history))]

    def _all_watchers(self) -> builtins.list[Watcher]:
        return [w for ws in self._watchers.values() for w in ws] + [
            w for buckets in self._indexed.values() for ws in buckets.values() for w in ws]

    def close(self) -> None:
        self.commit()
        for watcher in self._all_watchers():
            watcher.close()
        self.backend.close()
