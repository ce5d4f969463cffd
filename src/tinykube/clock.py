"""The time every component schedules by: the wall clock, or a test clock that tests move.

`Clock` is what components need of time: `time()` (seconds since the epoch: timestamps),
`now()` (seconds for intervals: probe periods, back-offs), `utcnow()`, `sleep(seconds)` and
`call_later(delay, callback)`. `RealClock` is the event loop's. `TestClock` (`tinykube up
--test-clock`) stands still at the time the cluster started until `advance` moves it; its
sleeps and timers fire only then, in order of their due times.

Components take the clock as a constructor parameter; the parameter's default is the
process's installed clock (`installed()`), which the composition root sets once, before it
builds anything (`install`). So a test clock reaches every controller, queue and node agent,
also ones added later, without each call site passing it, and unit tests still pass their own.

Quiescence. `advance(seconds)` must return only once every reaction due by the new time has
been applied. The driver (`ClockDriver`, in the API server's process) walks from the current
time to the target one due time at a time, the earliest timer of either process first. At each
step both processes set their clock to that time, fire what is due and `settle`: the process is
quiescent when, twice in a row with a loop turn between, and nothing happened in between,

  * no timer of the clock is due;
  * no task is inside a `busy()` section (the node agent's probe runs, a container's start,
    stop or restart), unless it sleeps on the clock or waits `idle()` for a process to end;
  * every tracked object says it is quiescent (`Quiescent`): each work queue has no key
    queued or in process, each API client has no request in flight (watches aside), and each
    informer has seen the API server's resourceVersion as of this check: the API server is
    asked to send every watch a bookmark now (`progress`), so an informer that saw the
    bookmark has every event before it.

What it cannot fast-forward: anything that runs in real time outside the clock. Process and
container pods run their commands in real time (a `sleep 60` takes a minute), exec probes
take as long as their command, image pulls and network I/O take what they take, a process
that outlives SIGTERM by more than the kubelet's EXIT_WAIT waits out its grace period on the
clock, and a write from outside the cluster (kubectl) counts only once it has reached the API
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import heapq
import itertools
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

SETTLE_TIMEOUT = 30.0  # real seconds a step may take to settle before advance fails
MAX_STEPS = 100_000  # due times one advance may step through (a bound, never reached)
POLL = 0.001  # real seconds between quiescence checks while something is under way


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Quiescent(Protocol):
    """What `settle` asks of a tracked object; `resource_version` is the API server's latest
    (None when unknown: informers then count as quiescent)."""

    def quiescent(self, resource_version: int | None) -> bool: ...


class Clock:
    """The wall clock (this base is the real one: `RealClock`)."""

    testing = False

    def time(self) -> float:
        return time.time()

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.time(), datetime.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Mark this task's reaction under way (a probe run, a container's restart): a test
        clock waits for its end, except while the task sleeps on the clock or is `idle`."""
        yield

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        """Within `busy`: this task waits for something outside the cluster's reactions (a
        process's exit, for as long as it runs)."""
        yield

    def track(self, obj: Quiescent) -> None:
        """Have `settle` wait for `obj` too (a test clock only)."""


RealClock = Clock


@dataclasses.dataclass(eq=False)
class _Timer:
    when: float
    callback: Callable[[], object] | None

    def cancel(self) -> None:
        self.callback = None


class TestClock(Clock):
    """A clock that moves only when told (`set`), firing its due timers (`fire_due`)."""

    __test__ = False  # not a pytest class
    testing = True

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._timers: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._busy: dict[asyncio.Task[Any] | None, int] = {}  # busy sections per task
        self.activity = 0  # bumped by everything that may cause a write: see `settle`
        self._tracked: weakref.WeakSet[Quiescent] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"TestClock({self.utcnow().isoformat()}, timers={len(self._timers)})"

    def time(self) -> float:
        return self._now

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)
        timer = self.call_later(seconds, wake)
        try:
            with self.idle():
                await future
        finally:
            timer.cancel()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable:
        timer = _Timer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        task = asyncio.current_task()
        self._busy[task] = self._busy.get(task, 0) + 1
        self.activity += 1
        try:
            yield
        finally:
            self._set_busy(task, self._busy.pop(task, 1) - 1)

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        task = asyncio.current_task()
        held = self._busy.pop(task, 0)
        try:
            yield
        finally:
            self._set_busy(task, self._busy.pop(task, 0) + held)

    def _set_busy(self, task: asyncio.Task[Any] | None, count: int) -> None:
        if count > 0:
            self._busy[task] = count
        self.activity += 1

    def track(self, obj: Quiescent) -> None:
        self._tracked.add(obj)

    def touch(self) -> None:
        """Something happened that may lead to a write (an informer event, a queued key)."""
        self.activity += 1

    def next_due(self) -> float | None:
        """When the earliest live timer is due."""
        while self._timers and self._timers[0][2].callback is None:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def set(self, when: float) -> None:
        """Move to `when` (never back)."""
        self._now = max(self._now, when)

    def fire_due(self) -> int:
        """Run the callbacks of every timer due by now; how many ran."""
        fired = 0
        while (due := self.next_due()) is not None and due <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            callback, timer.callback = timer.callback, None
            if callback is not None:
                callback()
                fired += 1
        self.activity += fired
        return fired

    def unsettled(self, resource_version: int | None) -> list[str]:
        """What is not quiescent (for the error when a step does not settle)."""
        due = self.next_due()
        found = [f"{len(self._busy)} busy tasks"] if self._busy else []
        if due is not None and due <= self._now:
            found.append("a due timer")
        return found + [_describe(obj) for obj in list(self._tracked)
                        if not obj.quiescent(resource_version)]

    def quiescent(self, resource_version: int | None) -> bool:
        """Nothing due, nothing busy, every tracked object quiescent."""
        due = self.next_due()
        return (not self._busy and (due is None or due > self._now)
                and all(obj.quiescent(resource_version) for obj in list(self._tracked)))


def _describe(obj: object) -> str:
    res = getattr(obj, "res", None)
    name = getattr(res, "qualified", None) or getattr(obj, "name", "")
    return f"{type(obj).__name__}({name})"


Progress = Callable[[], Awaitable[int | None]]  # bookmarks to every watch; the latest RV


async def settle(clock: TestClock, progress: Progress | None,
                 limit: float = SETTLE_TIMEOUT) -> None:
    """Fire what is due and return once this process is quiescent (module docstring);
    TimeoutError (saying what was under way) if it is not within `limit` real seconds."""
    seen: list[int | None] = [None]  # the latest resourceVersion asked for
    try:
        await _settle(clock, progress, limit, seen)
    except TimeoutError:
        raise TimeoutError("not quiescent: " + ", ".join(clock.unsettled(seen[0])[:10])
                           ) from None


async def _settle(clock: TestClock, progress: Progress | None, limit: float,
                  seen: list[int | None]) -> None:
    async with asyncio.timeout(limit):
        while True:
            clock.fire_due()
            for _ in range(3):  # let woken tasks run up to their next await
                await asyncio.sleep(0)
            before = clock.activity
            if not clock.quiescent(None):
                await asyncio.sleep(POLL)
                continue
            seen[0] = rv = await progress() if progress is not None else None
            before = clock.activity  # the progress request itself is activity
            while not clock.quiescent(rv):
                if clock.activity != before:
                    break
                await asyncio.sleep(POLL)
            await asyncio.sleep(0)
            if clock.activity == before and clock.quiescent(rv):
                return


Peer = Callable[[float], Awaitable[float | None]]  # another process: step to a time; its next


class ClockDriver:
    """Moves a test clock shared by this process and, optionally, a `peer` process (the
    components child of `tinykube up`), one due time at a time (module docstring)."""

    def __init__(self, clock: TestClock, progress: Progress | None,
                 peer: Peer | None = None) -> None:
        self.clock, self.progress, self.peer = clock, progress, peer
        self._lock = asyncio.Lock()

    async def advance(self, seconds: float) -> int:
        """Move the clock `seconds` on; return once the cluster is quiescent at the new time.
        How many due times it stepped through."""
        async with self._lock:
            target = self.clock.time() + seconds
            steps = 0
            due = await self._step(self.clock.time())
            while due is not None and due <= target:
                if steps >= MAX_STEPS:
                    raise RuntimeError(f"the test clock stepped {steps} times without reaching "
                                       "its target")
                due = await self._step(max(due, self.clock.time()))
                steps += 1
            if self.clock.time() < target:
                await self._step(target)
            return steps

    async def _step(self, when: float) -> float | None:
        """Set both processes to `when`, settle them; the earliest time due next."""
        self.clock.set(when)
        await settle(self.clock, self.progress)
        if self.peer is None:
            return self.clock.next_due()
        peer_due = await self.peer(when)
        await settle(self.clock, self.progress)  # what the peer's writes caused here
        dues = [d for d in (self.clock.next_due(), peer_due) if d is not None]
        return min(dues) if dues else None


_installed: Clock = RealClock()


def installed() -> Clock:
    """The process's clock (the real one unless a composition root installed another)."""
    return _installed


def install(clock: Clock) -> Clock:
    """Make `clock` the process's clock; the one installed before (to put back)."""
    global _installed
    previous, _installed = _installed, clock
    return previous


def installed_test_clock() -> TestClock | None:
    return _installed if isinstance(_installed, TestClock) else None


def touch() -> None:
    """Record activity that may lead to a write (an informer event, a queued key), when a test
    clock is installed; nothing otherwise."""
    if isinstance(_installed, TestClock):
        _installed.activity += 1
