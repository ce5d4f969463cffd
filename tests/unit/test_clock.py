"""The test clock (tinykube.clock): timers fire only when it is moved, in due order; settle
waits for tracked work; the driver steps through every due time of two processes."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tinykube import clock as clocks
from tinykube.api import errors
from tinykube.apiserver import clockapi
from tinykube.client.workqueue import WorkQueue

START = 1_000_000.0


@dataclasses.dataclass(eq=False)  # tracked in a WeakSet: hashed by identity
class Work:
    """A tracked object that is busy until `done` is set."""

    done: bool = False
    seen_rv: int = 0

    def quiescent(self, resource_version: int | None) -> bool:
        return self.done and (resource_version is None or self.seen_rv >= resource_version)


def test_timers_fire_in_due_order_only_when_moved() -> None:
    clock = clocks.TestClock(START)
    fired: list[str] = []
    clock.call_later(20, lambda: fired.append("b"))
    clock.call_later(10, lambda: fired.append("a"))
    cancelled = clock.call_later(15, lambda: fired.append("never"))
    cancelled.cancel()
    assert clock.fire_due() == 0 and fired == []
    assert clock.next_due() == START + 10
    clock.set(START + 20)
    assert clock.fire_due() == 2 and fired == ["a", "b"]
    assert clock.next_due() is None
    clock.set(START)  # never back
    assert clock.time() == START + 20


@pytest.mark.parametrize(("delay", "advance", "woken"), [
    (5, 4.999, False),
    (5, 5, True),
    (0, 0, True),
])
async def test_sleep_wakes_when_its_time_comes(delay: float, advance: float,
                                               woken: bool) -> None:
    clock = clocks.TestClock(START)
    sleeper = asyncio.create_task(clock.sleep(delay))
    await asyncio.sleep(0)
    clock.set(START + advance)
    clock.fire_due()
    await asyncio.sleep(0)
    assert sleeper.done() is woken
    sleeper.cancel()


async def test_settle_waits_for_tracked_work_and_the_progress_version() -> None:
    clock = clocks.TestClock(START)
    work = Work()
    clock.track(work)

    async def progress() -> int:
        return 7

    settling = asyncio.create_task(clocks.settle(clock, progress, limit=5))
    await asyncio.sleep(0.01)
    assert not settling.done()  # work under way
    work.done = True
    await asyncio.sleep(0.01)
    assert not settling.done()  # the informer has not seen resourceVersion 7
    work.seen_rv = 7
    await asyncio.wait_for(settling, 1)


async def test_settle_waits_for_busy_sections_but_not_for_sleepers() -> None:
    clock = clocks.TestClock(START)
    release = asyncio.Event()

    async def reaction() -> None:
        with clock.busy():
            await release.wait()
            await clock.sleep(60)  # asleep on the clock: not busy meanwhile

    task = asyncio.create_task(reaction())
    await asyncio.sleep(0)
    settling = asyncio.create_task(clocks.settle(clock, None, limit=5))
    await asyncio.sleep(0.01)
    assert not settling.done()
    release.set()
    await asyncio.wait_for(settling, 1)
    assert not task.done()
    task.cancel()


async def test_settle_says_what_did_not_settle() -> None:
    clock = clocks.TestClock(START)
    clock.track(queue := WorkQueue(name="stuck"))
    queue.add("ns/a")
    with pytest.raises(TimeoutError, match=r"not quiescent: WorkQueue\(stuck\)"):
        await clocks.settle(clock, None, limit=0.05)


async def test_a_workqueue_delay_is_on_the_installed_clock() -> None:
    clock = clocks.TestClock(START)
    previous = clocks.install(clock)
    try:
        queue = WorkQueue(name="delays")
    finally:
        clocks.install(previous)
    queue.add_after("ns/a", 30)
    clock.set(START + 29)
    clock.fire_due()
    assert queue.len() == 0
    clock.set(START + 30)
    clock.fire_due()
    assert queue.get_nowait() == "ns/a"
    assert not queue.quiescent(None)
    queue.done("ns/a")
    assert queue.quiescent(None)


async def test_the_driver_steps_through_every_due_time_of_both_processes() -> None:
    """A periodic timer here (every 10 s) and one in the peer (at 25 s): advancing 30 s steps
    to 10, 20, 25 and 30, with the peer set to each."""
    clock = clocks.TestClock(START)
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(clock.time() - START)
        clock.call_later(10, tick)
    clock.call_later(10, tick)
    peer_times: list[float] = []

    async def peer(when: float) -> float | None:
        peer_times.append(when - START)
        return START + 25 if when < START + 25 else None

    driver = clocks.ClockDriver(clock, None, peer)
    assert await driver.advance(30) == 4
    assert ticks == [10, 20, 30]
    assert peer_times == [0, 10, 20, 25, 30]
    assert clock.time() == START + 30


async def test_the_real_clock_keeps_time_and_tracks_nothing() -> None:
    real = clocks.RealClock()
    real.track(Work())
    with real.busy(), real.idle():
        pass
    assert abs(real.time() - real.utcnow().timestamp()) < 1
    assert not clocks.installed_test_clock()


@pytest.mark.parametrize(("body", "seconds", "message"), [
    (b'{"seconds": 90}', 90.0, None),
    (b'{"seconds": 0.5}', 0.5, None),
    (b'{"seconds": -1}', None, "must be a non-negative number, got -1"),
    (b'{"seconds": "60"}', None, "must be a non-negative number, got '60'"),
    (b'{"seconds": true}', None, "must be a non-negative number, got True"),
    (b"{}", None, "must be a non-negative number, got None"),
    (b"[60]", None, 'the body must be a JSON object: {"seconds": N}'),
    (b"sixty", None, 'the body must be a JSON object: {"seconds": N}'),
])
def test_the_advance_body_is_checked(body: bytes, seconds: float | None,
                                     message: str | None) -> None:
    if message is None:
        assert clockapi._seconds(body) == seconds
        return
    with pytest.raises(errors.BadRequest) as raised:
        clockapi._seconds(body)
    assert message in str(raised.value)
