"""A work queue of keys with client-go's semantics: dedup, one worker per key, delays, backoff.

Controllers turn every informer event into a key (`namespace/name`) and `add` it; workers `get`
a key, sync it, then `done` it. Two sets make that safe (as client-go's `queue.go`):

* `dirty`: keys that need processing. Adding a key that is already dirty is a no-op, so a burst
  of events for one object costs one sync.
* `processing`: keys a worker holds. A key added while it is being processed is only marked
  dirty; `done()` puts it back in the queue. So no key is ever synced by two workers at once, and
  no change is missed: the re-queued sync will see it.

`add_after(key, seconds)` parks a key in a heap ordered by ready time on the injectable `clock`
(only the earliest ready time per key is kept); an asyncio timer moves due keys into the queue.
Tests with a fake clock call `release_due()` after advancing it.

`add_rate_limited(key)` is `add_after` with a per-key exponential backoff (5 ms doubling up to
1000 s, client-go's `DefaultItemBasedRateLimiter`); `forget(key)` resets it after a success.
client-go's default controller limiter also has an overall 10 qps token bucket; that is left out.

`shutdown()` stops accepting keys and wakes every blocked `get()`; `get()` keeps handing out
what is already queued and raises `ShutDown` once the queue is empty.

`run_workers(queue, sync, n)` is the standard worker loop around all of this.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

from tinykube import clock as clocks

log = logging.getLogger(__name__)

Clock = Callable[[], float]

BASE_DELAY = 0.005  # seconds, first retry
MAX_DELAY = 1000.0  # seconds, backoff cap
MAX_RETRIES = 15  # run_workers drops a key after this many failures in a row (~82 s of backoff)


class ShutDown(Exception):
    """Raised by `WorkQueue.get()` once the queue is shut down and drained."""


class ExponentialBackoff:
    """Per-key failure counter: `when(key)` is `base * 2**failures`, capped at `cap`."""

    def __init__(self, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> None:
        self.base, self.cap = base, cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        """The delay before retrying `key`; counts one more failure."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * 5 ms is far beyond any cap; avoid huge floats
            return self.cap
        return min(self.base * 2.0**failures, self.cap)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)


class WorkQueue:
    """Deduplicating, delaying, rate-limited queue of string keys. See the module docstring.

    Every key returned by `get()` must be handed back with `done(key)`, also when syncing it
    failed; otherwise the key is never processed again.
    """

    def __init__(self, *, clock: Clock | None = None,
                 rate_limiter: ExponentialBackoff | None = None, name: str = "") -> None:
        self.name = name
        self._timekeeper = clocks.installed()  # whose timers release delayed keys
        self._clock = clock or self._timekeeper.now
        self._timekeeper.track(self)
        self._limiter = rate_limiter or ExponentialBackoff()
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._shutting_down = False
        # Delayed keys: heap of (ready_at, seq, key); `_ready_at` holds each key's live entry.
        self._delayed: list[tuple[float, int, str]] = []
        self._ready_at: dict[str, float] = {}
        self._seq = itertools.count()
        self._timer: clocks.Cancellable | None = None

    # --- plain queue ----------------------------------------------------------------------------

    def add(self, key: str) -> None:
        """Mark `key` as needing a sync. No-op if already queued or after shutdown."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        clocks.touch()
        if key in self._processing:
            return  # done() re-queues it
        self._queue.append(key)
        self._wake_one()

    def get_nowait(self) -> str | None:
        """The next key (now being processed), or None if nothing is queued."""
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    async def get(self) -> str:
        """Wait for the next key. Raises `ShutDown` once shut down and drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were woken for a key: pass the wake-up on
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        key = self.get_nowait()
        assert key is not None
        return key

    def done(self, key: str) -> None:
        """Finish processing `key`; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Refuse new keys, drop delayed ones, and wake every waiting `get()`."""
        self._shutting_down = True
        self._delayed.clear()
        self._ready_at.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._getters:
            self._wake_one()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def quiescent(self, resource_version: int | None) -> bool:
        """No key queued or in process (`clock.settle`); delayed keys wait on the clock."""
        return self._shutting_down or not (self._queue or self._processing)

    def len(self) -> int:
        """Keys waiting to be handed out (not those being processed or delayed)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # --- delays ---------------------------------------------------------------------------------

    def add_after(self, key: str, seconds: float) -> None:
        """Add `key` once `seconds` have passed on the clock (keeps the earliest time per key)."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        ready_at = self._clock() + seconds
        if key in self._ready_at and self._ready_at[key] <= ready_at:
            return
        self._ready_at[key] = ready_at
        heapq.heappush(self._delayed, (ready_at, next(self._seq), key))
        self._arm_timer()

    def release_due(self) -> int:
        """Move every delayed key whose time has come into the queue; returns how many."""
        now, released = self._clock(), 0
        while self._delayed and self._delayed[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._delayed)
            if self._ready_at.get(key) != ready_at:
                continue  # superseded by an earlier add_after
            del self._ready_at[key]
            self.add(key)
            released += 1
        return released

    def delayed(self) -> int:
        """How many keys are waiting for their delay to pass."""
        return len(self._ready_at)

    def _arm_timer(self) -> None:
        """(Re)start the asyncio timer for the earliest delayed key; no-op without a loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # synchronous use (tests): the caller drives release_due()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._delayed:
            wait = max(0.0, self._delayed[0][0] - self._clock())
            self._timer = self._timekeeper.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.release_due()
        self._arm_timer()

    # --- rate limiting --------------------------------------------------------------------------

    def add_rate_limited(self, key: str) -> None:
        """Add `key` after its backoff (5 ms, 10 ms, 20 ms, ... up to 1000 s)."""
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: str) -> None:
        """Reset `key`'s backoff (call after a successful sync)."""
        self._limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self._limiter.num_requeues(key)


SyncFunc = Callable[[str], Awaitable[None]]


async def process_next(queue: WorkQueue, sync: SyncFunc, max_retries: int = MAX_RETRIES) -> None:
    """Get one key, sync it, then forget it or retry it with backoff; always `done()` it.

    Raises `ShutDown` when the queue is shut down and drained.
    """
    key = await queue.get()
    try:
        await sync(key)
    except asyncio.CancelledError:
        raise
    except Exception:
        if queue.num_requeues(key) < max_retries:
            log.warning("%s: sync of %s failed, will retry", queue.name, key, exc_info=True)
            queue.add_rate_limited(key)
        else:
            log.error("%s: dropping %s after %d retries", queue.name, key, max_retries,
                      exc_info=True)
            queue.forget(key)
    else:
        queue.forget(key)
    finally:
        queue.done(key)


async def run_workers(queue: WorkQueue, sync: SyncFunc, n: int = 1, *,
                      max_retries: int = MAX_RETRIES) -> None:
    """Run `n` workers on `queue` until it is shut down (then they drain it) or cancelled."""

    async def worker() -> None:
        try:
            while True:
                await process_next(queue, sync, max_retries)
        except ShutDown:
            return

    async with asyncio.TaskGroup() as group:
        for _ in range(n):
            group.create_task(worker())
