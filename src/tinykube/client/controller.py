"""The controller runner every tinykube controller is built on (sample-controller shape).

A controller owns some informers and one workqueue. Informer handlers only turn events into
keys (`namespace/name`) and add them to the queue; `sync(key)` re-reads the current state from
the informer caches and makes the world match it (level-triggered, so a missed or merged event
costs nothing). The runner:

1. starts every informer and waits until all have synced, so no `sync` acts on a partial cache;
2. starts N workers; each loops on `process_next`: get a key, `sync` it, then `forget` it on
   success or `add_rate_limited` it on failure (per-key exponential backoff from the queue);
3. drops a key after `max_retries` consecutive failures, with a log line. With the queue's
   default backoff (5 ms doubling) 15 retries span about 80 s; any later event for the key
   starts it again.

The workqueue's guarantees are the concurrency model: a key is never in two workers at once,
and a key added while it is being processed is processed again afterwards.

`StaleCacheError` is the quiet failure: a controller raises it when its informer cache has not
yet caught up with its own writes; the key is retried with backoff and nothing is logged.

`Plan` and `apply_plan` are the shared "apply" half of gather / decide / apply: a pure reconcile
function returns a `Plan`, `apply_plan` performs every write without stopping at the first
failure, and `Applied.raise_failures` reports them all as one `ExceptionGroup`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tinykube.api import errors
from tinykube.api.resources import Resource
from tinykube.client.informer import Informer
from tinykube.client.rest import RESTClient
from tinykube.client.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]

#: Consecutive failures after which a key is dropped (upstream controllers use 15).
MAX_RETRIES = 15
#: Delay before a key whose informer cache was behind our own writes is synced again.
STALE_RETRY_SECONDS = 0.005


class StaleCacheError(Exception):
    """The informer cache is behind this controller's own writes; retry the key later."""


def object_key(obj: Obj) -> str:
    """The cache and queue key of an object: `namespace/name`, or `name` if cluster-scoped."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str, str]:
    """`ns/name` -> (`ns`, `name`); a cluster-scoped `name` -> (``, `name`)."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


class Controller:
    """Base class: subclasses create informers, register handlers, and implement `sync`."""

    name: str = "controller"
    max_retries: int = MAX_RETRIES

    def __init__(self, client: RESTClient, informers: Sequence[Informer], *,
                 queue: WorkQueue | None = None) -> None:
        self.client = client
        self.informers = list(informers)
        # `queue` is given only by tests (e.g. with a fake clock).
        self.queue = queue if queue is not None else WorkQueue(name=self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} queued={self.queue.len()}>"

    def enqueue(self, obj: Obj) -> None:
        """Event handler: queue the object's own key."""
        self.queue.add(object_key(obj))

    async def sync(self, key: str) -> None:
        """Make the world match the cached state for `key`; raise to be retried."""
        raise NotImplementedError

    # --- running ----------------------------------------------------------------------------

    def start(self, *, workers: int = 1) -> list[asyncio.Task[None]]:
        """Start the informers and the workers; cancel the returned tasks to stop."""
        tasks = [asyncio.create_task(informer.run(), name=f"{self.name}/informer")
                 for informer in self.informers]
        tasks.append(asyncio.create_task(self.run_workers(workers), name=f"{self.name}/workers"))
        return tasks

    async def run(self, *, workers: int = 1) -> None:
        """Run informers and workers until cancelled."""
        tasks = self.start(workers=workers)
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run_workers(self, workers: int) -> None:
        """Wait for every informer to sync, then process keys with `workers` workers."""
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers))
        log.debug("%s: caches synced, starting %d workers", self.name, workers)
        try:
            await asyncio.gather(*(self._worker() for _ in range(workers)))
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        try:
            while True:
                await self.process_next()
        except ShutDown:
            return

    async def process_next(self) -> None:
        """Take one key from the queue and sync it; always marks the key done."""
        key = await self.queue.get()
        try:
            await self.sync(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is retried, never fatal
            self.handle_error(key, exc)
        else:
            self.queue.forget(key)
        finally:
            self.queue.done(key)

    def handle_error(self, key: str, exc: Exception) -> None:
        """Requeue with backoff, or drop the key after `max_retries` failures in a row.

        A stale cache is not a failure: the informer is a few milliseconds behind our own
        write, so the key is retried after a short fixed delay instead of a growing backoff
        (which under load grew to seconds and held endpoint updates back).
        """
        if isinstance(exc, StaleCacheError):
            self.queue.add_after(key, STALE_RETRY_SECONDS)
            return
        retries = self.queue.num_requeues(key)
        if retries >= self.max_retries:
            log.warning("%s: dropping %s after %d retries: %s", self.name, key, retries, exc)
            self.queue.forget(key)
            return
        log.info("%s: error syncing %s (retry %d): %r", self.name, key, retries + 1, exc)
        self.queue.add_rate_limited(key)


# --- plans --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a pure reconcile function decided: objects to create, to update, names to delete.

    `create` bodies may use `metadata.generateName`; `update` bodies carry the
    `resourceVersion` they were computed from, so a stale update fails with Conflict.
    """

    create: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    update: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    delete: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


@dataclasses.dataclass
class Applied:
    """The objects the API server returned for each write that succeeded, and the failures."""

    created: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    updated: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    failures: list[Exception] = dataclasses.field(default_factory=list)

    def raise_failures(self) -> None:
        """Raise every failed write at once, as one ExceptionGroup (no-op if none failed)."""
        if self.failures:
            raise ExceptionGroup(f"{len(self.failures)} write(s) failed", self.failures)


async def apply_plan(client: RESTClient, res: Resource, namespace: str, plan: Plan) -> Applied:
    """Perform every write of `plan`, carrying on past failures (see `Applied.failures`).

    Deletes go first so that a slice set shrinks before it grows. A delete of an object that is
    already gone counts as done. The caller records what was written, then calls
    `raise_failures()` so the key is retried.
    """
    applied = Applied()
    for name in plan.delete:
        try:
            await client.delete(res, name, namespace)
        except errors.NotFound:
            pass
        except Exception as exc:  # API errors and transport errors alike
            applied.failures.append(exc)
            continue
        applied.deleted.append(name)
    for body in plan.create:
        await _write(client.create(res, body, namespace), applied.created, applied.failures)
    for body in plan.update:
        await _write(client.update(res, body, namespace), applied.updated, applied.failures)
    return applied


async def _write(call: Awaitable[dict[str, Any]], done: list[dict[str, Any]],
                 failures: list[Exception]) -> None:
    try:
        done.append(await call)
    except Exception as exc:  # API errors and transport errors alike
        failures.append(exc)


# --- stale cache detection -------------------------------------------------------------------


def _newer_or_same(seen: str, written: str) -> bool:
    """Compare resourceVersions: numerically when both are numbers, else by equality."""
    if seen.isdigit() and written.isdigit():
        return int(seen) >= int(written)
    return seen == written


class WriteTracker:
    """Writes a controller made that its informer has not shown yet (upstream's slice tracker).

    An entry exists from our write until the informer delivers that version (or newer) or the
    deletion. `wrote` consults the cache first, because the watch event may arrive before the
    write's response does. Entries older than `expiry` seconds are ignored so that a lost event
    cannot wedge a key forever.
    """

    def __init__(self, cache_get: Callable[[str], Obj | None], *,
                 clock: Callable[[], float] = time.monotonic, expiry: float = 10.0) -> None:
        self.cache_get = cache_get  # the informer cache of the written objects
        self.clock = clock
        self.expiry = expiry
        # owner key (what the queue holds) -> object name -> (written RV or None; write time)
        self._pending: dict[str, dict[str, tuple[str | None, float]]] = {}

    def __repr__(self) -> str:
        return f"<WriteTracker keys={len(self._pending)}>"

    def wrote(self, owner_key: str, namespace: str, applied: Applied) -> None:
        now = self.clock()
        pending = self._pending.setdefault(owner_key, {})
        for obj in [*applied.created, *applied.updated]:
            name, written = obj["metadata"]["name"], str(obj["metadata"].get("resourceVersion"))
            cached = self.cache_get(f"{namespace}/{name}" if namespace else name)
            seen = str((cached or {}).get("metadata", {}).get("resourceVersion", ""))
            if cached is None or not _newer_or_same(seen, written):
                pending[name] = (written, now)
        for name in applied.deleted:
            if self.cache_get(f"{namespace}/{name}" if namespace else name) is not None:
                pending[name] = (None, now)
        if not pending:
            del self._pending[owner_key]

    def observed(self, owner_key: str, obj: Obj, *, deleted: bool = False) -> bool:
        """Record an informer event; True if it was the echo of our own write."""
        pending = self._pending.get(owner_key, {})
        name = obj["metadata"]["name"]
        if name not in pending:
            return False
        written, _ = pending[name]
        seen = str(obj["metadata"].get("resourceVersion", ""))
        if not deleted and (written is None or not _newer_or_same(seen, written)):
            return False
        del pending[name]
        if not pending:
            self._pending.pop(owner_key, None)
        return True

    def is_stale(self, owner_key: str) -> bool:
        now = self.clock()
        return any(now - at < self.expiry for _, at in self._pending.get(owner_key, {}).values())

    def forget(self, owner_key: str) -> None:
        self._pending.pop(owner_key, None)
