"""Leader election: the acquire-or-renew decision and the leader's deadline as tables, and the
elector's loop against an in-memory Lease store with compare-and-swap (time injected)."""

from __future__ import annotations

import asyncio
import copy
import datetime
from typing import Any

import pytest

from tinykube.api import errors
from tinykube.client.leaderelection import (
    LeaderElector,
    Observed,
    Timing,
    decide,
    record_of,
    still_leading,
)

T = Timing()  # 15 s lease, 10 s renew deadline, 2 s retry
WALL = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
STAMP = "2026-01-02T03:04:05.678901Z"
OLD = "2026-01-02T03:00:00.000000Z"


def lease(holder: str | None, transitions: int = 3, renew: str = OLD) -> dict[str, Any]:
    spec: dict[str, Any] = {"leaseDurationSeconds": 15, "acquireTime": OLD, "renewTime": renew,
                            "leaseTransitions": transitions}
    if holder is not None:
        spec["holderIdentity"] = holder
    return {"metadata": {"name": "kube-scheduler", "namespace": "kube-system",
                         "resourceVersion": "7"}, "spec": spec}


def seen(obj: dict[str, Any], at: float) -> Observed:
    return Observed(record_of(obj), at)


# (case, lease read, observed before, now, expected action, expected transitions, acquireTime,
#  expected Observed.at)
DECIDE = [
    ("no lease: create it", None, None, 100.0, "create", 0, STAMP, 100.0),
    ("other holder, first seen now: wait a lease", lease("b"), None, 100.0, "wait", None,
     None, 100.0),
    ("other holder, unchanged for 14.9 s: wait", lease("b"), seen(lease("b"), 100.0), 114.9,
     "wait", None, None, 100.0),
    ("other holder, unchanged for 15 s: take it", lease("b"), seen(lease("b"), 100.0), 115.0,
     "update", 4, STAMP, 100.0),
    ("other holder renewed since: wait again", lease("b", renew=STAMP),
     seen(lease("b"), 100.0), 120.0, "wait", None, None, 120.0),
    ("released (empty holder): take it at once", lease(""), None, 100.0, "update", 4, STAMP,
     100.0),
    ("no holder field: take it at once", lease(None), None, 100.0, "update", 4, STAMP, 100.0),
    ("ours: renew, keep acquireTime and transitions", lease("a"), seen(lease("a"), 90.0),
     100.0, "update", 3, OLD, 90.0),
    ("ours after a restart (same identity): renew at once", lease("a"), None, 100.0, "update",
     3, OLD, 100.0),
]


@pytest.mark.parametrize(("obj", "before", "now", "action", "transitions", "acquired", "at"),
                         [c[1:] for c in DECIDE], ids=[c[0] for c in DECIDE])
def test_decide(obj: dict[str, Any] | None, before: Observed | None, now: float, action: str,
                transitions: int | None, acquired: str | None, at: float) -> None:
    step = decide(obj, "a", before, now, WALL, T)
    assert step.action == action
    assert step.observed is not None and step.observed.at == at
    if action == "wait":
        assert step.spec is None
        return
    assert step.spec == {"holderIdentity": "a", "leaseDurationSeconds": 15,
                         "acquireTime": acquired, "renewTime": STAMP,
                         "leaseTransitions": transitions}


def test_decide_rounds_a_short_lease_up_to_whole_seconds() -> None:
    step = decide(None, "a", None, 0.0, WALL, Timing(1.5, 1.0, 0.2))
    assert step.spec is not None and step.spec["leaseDurationSeconds"] == 2


# (case, last good renewal started at, now, still leading)
LEADING = [
    ("just renewed", 100.0, 100.0, True),
    ("9.9 s since", 100.0, 109.9, True),
    ("10 s since: lost", 100.0, 110.0, False),
    ("long gone", 100.0, 200.0, False),
]


@pytest.mark.parametrize(("last", "now", "expected"), [c[1:] for c in LEADING],
                         ids=[c[0] for c in LEADING])
def test_still_leading(last: float, now: float, expected: bool) -> None:
    assert still_leading(last, now, T) is expected


TIMINGS = [
    (Timing(), None),
    (Timing(10, 10, 2), "the lease duration must be greater than the renew deadline"),
    (Timing(15, 2.4, 2), "the renew deadline must be greater than 1.2 times the retry period"),
    (Timing(3, 2, 0.5), None),
]


@pytest.mark.parametrize(("timing", "problem"), TIMINGS)
def test_timing_problem(timing: Timing, problem: str | None) -> None:
    assert timing.problem() == problem


# --- the loop, against an in-memory Lease with resourceVersion checks ------------------------


class FakeLeases:
    """get/create/update of Leases (and events) with optimistic concurrency; `down` makes
    every call fail as an unreachable server would."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.down = False
        self.events: list[dict[str, Any]] = []

    def _check(self) -> None:
        if self.down:
            raise OSError("connection refused")

    async def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self._check()
        if name not in self.leases:
            raise errors.NotFound(f'leases.coordination.k8s.io "{name}" not found')
        return copy.deepcopy(self.leases[name])

    async def create(self, res: Any, obj: dict[str, Any],
                     namespace: str | None = None) -> dict[str, Any]:
        self._check()
        if res.plural == "events":
            self.events.append(obj)
            return obj
        name = obj["metadata"]["name"]
        if name in self.leases:
            raise errors.AlreadyExists(f'leases.coordination.k8s.io "{name}" already exists')
        return self._store(obj)

    async def update(self, res: Any, obj: dict[str, Any],
                     namespace: str | None = None) -> dict[str, Any]:
        self._check()
        name = obj["metadata"]["name"]
        if self.leases[name]["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise errors.Conflict("the object has been modified")
        return self._store(obj)

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        stored = copy.deepcopy(obj)
        stored["metadata"] = {**stored["metadata"], "resourceVersion": str(self.rv),
                              "uid": "u1"}
        self.leases[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


FAST = Timing(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)


def elector(api: FakeLeases, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(api, "kube-scheduler", identity=identity,  # type: ignore[arg-type]
                         timing=FAST, clock=clock, sleep=_yield)


async def _yield(_seconds: float) -> None:
    await asyncio.sleep(0)


async def _until(check: Any, clock: Clock, step: float = 0.05, limit: int = 400) -> None:
    """Advance the fake clock in small steps, letting the loops run, until `check()`."""
    for _ in range(limit):
        if check():
            return
        clock.now += step
        await asyncio.sleep(0.001)
    raise AssertionError("never happened")


async def test_one_leader_then_failover_when_it_cannot_renew() -> None:
    api, clock = FakeLeases(), Clock()
    working: dict[str, int] = {"a": 0, "b": 0}
    active: set[str] = set()
    overlap: list[set[str]] = []

    def work_of(name: str) -> Any:
        async def work() -> None:
            working[name] += 1
            active.add(name)
            if len(active) > 1:
                overlap.append(set(active))
            try:
                await asyncio.Event().wait()
            finally:
                active.discard(name)
        return work

    a, b = elector(api, "a", clock), elector(api, "b", clock)
    run_a = asyncio.create_task(a.run(work_of("a")))
    await _until(lambda: a.leading, clock)
    run_b = asyncio.create_task(b.run(work_of("b")))
    await _until(lambda: b.observed is not None, clock)
    assert not b.leading and active == {"a"}
    spec = api.leases["kube-scheduler"]["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("a", 0)

    api.down = True  # a can no longer renew; neither can b read
    await _until(lambda: not a.leading, clock)
    assert active == set()  # a stopped its work by the renew deadline
    api.down = False
    await _until(lambda: active == {"a"} or active == {"b"}, clock)
    # whichever won, the two never worked at once and the record says one took over
    assert overlap == []
    assert api.leases["kube-scheduler"]["spec"]["leaseTransitions"] >= 1
    for task in (run_a, run_b):
        task.cancel()
    await asyncio.gather(run_a, run_b, return_exceptions=True)
    assert api.leases["kube-scheduler"]["spec"]["holderIdentity"] == ""  # released
    assert any(e["reason"] == "LeaderElection" for e in api.events)


async def test_a_follower_waits_out_a_live_leader() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert await a.try_acquire_or_renew()
    for _ in range(20):  # 10 s of renewals by a, 0.5 s apart: b never takes over
        clock.now += 0.5
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    clock.now += 1.4
    assert not await b.try_acquire_or_renew()
    clock.now += 0.1  # 1.5 s since b saw the record change
    assert await b.try_acquire_or_renew()
    assert not await a.try_acquire_or_renew()  # a sees b's fresh record
    assert api.leases["kube-scheduler"]["spec"]["leaseTransitions"] == 1
