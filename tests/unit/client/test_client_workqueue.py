"""WorkQueue: client-go queue semantics as step tables, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tinykube.client.workqueue import (
    ExponentialBackoff,
    ShutDown,
    WorkQueue,
    process_next,
    run_workers,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# A step is (operation, argument, expected result). Operations:
#   add K | get (-> key or None) | done K | after "K:secs" | tick secs (-> keys released)
#   limited K | forget K | len (-> int) | shutdown
Step = tuple[str, str | float | None, object]

SEMANTICS: list[tuple[str, list[Step]]] = [
    ("fifo order", [
        ("add", "a", None), ("add", "b", None), ("get", None, "a"), ("get", None, "b"),
        ("get", None, None)]),
    ("adding a queued key is a no-op", [
        ("add", "a", None), ("add", "b", None), ("add", "a", None), ("len", None, 2),
        ("get", None, "a"), ("get", None, "b"), ("get", None, None)]),
    ("a key added while processing waits for done", [
        ("add", "a", None), ("get", None, "a"), ("add", "a", None), ("len", None, 0),
        ("get", None, None), ("done", "a", None), ("len", None, 1), ("get", None, "a")]),
    ("adding twice while processing re-queues once", [
        ("add", "a", None), ("get", None, "a"), ("add", "a", None), ("add", "a", None),
        ("done", "a", None), ("len", None, 1), ("get", None, "a"), ("done", "a", None),
        ("get", None, None)]),
    ("done without a re-add does not re-queue", [
        ("add", "a", None), ("get", None, "a"), ("done", "a", None), ("len", None, 0)]),
    ("re-queued key goes to the back", [
        ("add", "a", None), ("get", None, "a"), ("add", "a", None), ("add", "b", None),
        ("done", "a", None), ("get", None, "b"), ("get", None, "a")]),
    ("add_after waits for the clock", [
        ("after", "a:10", None), ("len", None, 0), ("tick", 9.9, []), ("get", None, None),
        ("tick", 0.1, ["a"]), ("get", None, "a")]),
    ("add_after keeps the earliest time per key", [
        ("after", "a:10", None), ("after", "a:3", None), ("after", "a:20", None),
        ("tick", 3, ["a"]), ("get", None, "a"), ("done", "a", None), ("tick", 20, []),
        ("len", None, 0)]),
    ("add_after orders by ready time", [
        ("after", "late:5", None), ("after", "early:1", None), ("tick", 10, ["early", "late"])]),
    ("add_after zero adds now", [("after", "a:0", None), ("get", None, "a")]),
    ("delayed key already queued is a no-op when released", [
        ("after", "a:1", None), ("add", "a", None), ("tick", 1, []), ("len", None, 1)]),
    ("rate limited: 5 ms then 10 ms", [
        ("limited", "a", None), ("tick", 0.004, []), ("tick", 0.001, ["a"]), ("get", None, "a"),
        ("done", "a", None), ("limited", "a", None), ("tick", 0.009, []),
        ("tick", 0.001, ["a"])]),
    ("forget resets the backoff", [
        ("limited", "a", None), ("limited", "a", None), ("tick", 0.01, ["a"]),
        ("forget", "a", None), ("get", None, "a"), ("done", "a", None),
        ("limited", "a", None), ("tick", 0.005, ["a"])]),
    ("shutdown ignores new keys but drains queued ones", [
        ("add", "a", None), ("shutdown", None, None), ("add", "b", None), ("after", "c:0", None),
        ("get", None, "a"), ("get", None, None)]),
    ("shutdown drops delayed keys", [
        ("after", "a:1", None), ("shutdown", None, None), ("tick", 5, [])]),
]


def _run_steps(steps: list[Step]) -> None:
    clock = FakeClock()
    queue = WorkQueue(clock=clock)
    for index, (operation, argument, expected) in enumerate(steps):
        where = f"step {index}: {operation} {argument}"
        if operation == "add":
            queue.add(str(argument))
        elif operation == "get":
            assert queue.get_nowait() == expected, where
        elif operation == "done":
            queue.done(str(argument))
        elif operation == "after":
            key, seconds = str(argument).split(":")
            queue.add_after(key, float(seconds))
        elif operation == "tick":
            clock.now += float(argument or 0)
            before = list(queue._queue)
            queue.release_due()
            assert list(queue._queue)[len(before):] == expected, where
        elif operation == "limited":
            queue.add_rate_limited(str(argument))
        elif operation == "forget":
            queue.forget(str(argument))
        elif operation == "len":
            assert len(queue) == queue.len() == expected, where
        elif operation == "shutdown":
            queue.shutdown()
        else:
            raise AssertionError(f"unknown operation {operation}")


@pytest.mark.parametrize("steps", [steps for _, steps in SEMANTICS],
                         ids=[name for name, _ in SEMANTICS])
def test_queue_semantics(steps: list[Step]) -> None:
    _run_steps(steps)


@pytest.mark.parametrize(("failures", "expected"), [
    pytest.param(0, 0.005, id="first"),
    pytest.param(1, 0.010, id="second"),
    pytest.param(10, 5.12, id="eleventh"),
    pytest.param(17, 655.36, id="below-cap"),
    pytest.param(18, 1000.0, id="capped"),
    pytest.param(500, 1000.0, id="huge-count-capped"),
])
def test_exponential_backoff_sequence(failures: int, expected: float) -> None:
    limiter = ExponentialBackoff()
    for _ in range(failures):
        limiter.when("k")
    assert limiter.when("k") == pytest.approx(expected)
    assert limiter.num_requeues("k") == failures + 1
    assert limiter.when("other") == pytest.approx(0.005)


async def test_get_blocks_until_add_and_shutdown_wakes_all_getters() -> None:
    queue = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    queue.add("a")
    assert await first == "a"
    queue.shutdown()
    with pytest.raises(ShutDown):
        await second


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    queue = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await second == "a"


async def test_add_after_fires_from_the_asyncio_timer() -> None:
    queue = WorkQueue()
    queue.add_after("a", 0.001)
    assert queue.delayed() == 1
    assert await asyncio.wait_for(queue.get(), timeout=5) == "a"
    assert queue.delayed() == 0


def _failing_sync(failures_before_success: int, calls: list[str]) -> Callable[[str], object]:
    async def sync(key: str) -> None:
        calls.append(key)
        if len(calls) <= failures_before_success:
            raise RuntimeError("boom")
    return sync


@pytest.mark.parametrize(("failures", "max_retries", "requeued", "dropped"), [
    pytest.param(0, 3, 0, False, id="success-forgets"),
    pytest.param(1, 3, 1, False, id="failure-requeues-with-backoff"),
    pytest.param(5, 3, 3, True, id="dropped-after-max-retries"),
])
async def test_process_next_retry_policy(failures: int, max_retries: int, requeued: int,
                                         dropped: bool, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    queue = WorkQueue(clock=clock, name="test")
    calls: list[str] = []
    sync = _failing_sync(failures, calls)
    queue.add("ns/a")
    with caplog.at_level(logging.WARNING, logger="tinykube.client.workqueue"):
        for _ in range(max_retries + 1):
            if not queue.len():
                clock.now += 10_000
                queue.release_due()
            if not queue.len():
                break
            await process_next(queue, sync, max_retries)  # type: ignore[arg-type]
    assert len(calls) == min(failures, max_retries) + 1
    assert queue.len() == 0 and queue.delayed() == 0 and not queue._processing
    assert queue.num_requeues("ns/a") == 0  # forgotten on success and on drop
    assert any("dropping ns/a" in r.message for r in caplog.records) == dropped
    assert sum("will retry" in r.message for r in caplog.records) == requeued


async def test_run_workers_never_syncs_one_key_twice_at_once() -> None:
    queue = WorkQueue()
    running: set[str] = set()
    overlaps: list[str] = []
    synced: list[str] = []
    release = asyncio.Event()

    async def sync(key: str) -> None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        await release.wait()
        running.discard(key)
        synced.append(key)

    workers = asyncio.create_task(run_workers(queue, sync, 4))
    queue.add("a")
    queue.add("b")
    await _until(lambda: running == {"a", "b"})
    queue.add("a")  # while one worker holds "a"; two workers are idle
    for _ in range(5):
        await asyncio.sleep(0)
    assert running == {"a", "b"} and overlaps == []
    release.set()
    await _until(lambda: len(synced) == 3)
    queue.shutdown()
    await asyncio.wait_for(workers, timeout=5)
    assert overlaps == []
    assert sorted(synced) == ["a", "a", "b"]


async def _until(condition: Callable[[], bool], rounds: int = 100) -> None:
    """Let other tasks run until `condition` holds (event-loop turns, not time)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")
