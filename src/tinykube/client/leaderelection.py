"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `tools/leaderelection`.

Several candidates (the controllers of `tinykube up` and any `tinykube controllers`) share one
Lease per job (`kube-system/kube-controller-manager`, `kube-system/kube-scheduler`); the one
named in `spec.holderIdentity` does the work, the others wait. The rules are client-go's:

- A candidate tries every `retry_period` (2 s). It creates the Lease if there is none; it takes
  one whose holder is empty (released) or whose record has not changed for `lease_duration`
  (15 s) *by the candidate's own clock*: it remembers when it last saw the record change
  (`Observed.at`), so no two hosts' clocks are ever compared. Taking it from another holder
  bumps `leaseTransitions` and sets `acquireTime`; every write sets `renewTime` (MicroTime) and
  carries the resourceVersion it read, so two candidates racing for one record cannot both win
  (the second gets 409 Conflict).
- The leader renews every `retry_period`. If no renewal has succeeded for `renew_deadline`
  (10 s) counted from when the last good attempt *started*, it has lost: its work is cancelled
  at once. Since `renew_deadline < lease_duration`, a leader stops before any other candidate
  may take over, so two leaders never work at the same time (as long as clocks run at the same
  rate, which is client-go's assumption too).

`decide` (one acquire-or-renew attempt given the Lease read and the time) and `still_leading`
are pure and tested as tables; `LeaderElector` is the loop around them, with time injected.

Where we differ from kube: kube-controller-manager and kube-scheduler exit when they lose the
lease (and their supervisor restarts them); `LeaderElector.run` instead stops the term's work,
then becomes a candidate again and starts fresh work (new informers, new queues) when it wins
again. On a clean stop the leader releases the Lease (client-go's `ReleaseOnCancel`): the
holder is emptied, so another candidate takes over at its next retry instead of waiting out
the lease.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import math
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Literal

import aiohttp

from tinykube.api import errors, resources
from tinykube.client.events import Recorder
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
LEASES = resources.must("coordination.k8s.io", "v1", "leases")
#: The spec fields that make up the leader election record.
RECORD_FIELDS = ("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
                 "leaseTransitions")


@dataclasses.dataclass(frozen=True)
class Timing:
    """client-go's defaults (kube-controller-manager's `--leader-elect-*` flags)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problem(self) -> str | None:
        """Why these durations cannot work (client-go's NewLeaderElector checks), or None."""
        if self.lease_duration <= self.renew_deadline:
            return "the lease duration must be greater than the renew deadline"
        if self.renew_deadline <= 1.2 * self.retry_period:
            return "the renew deadline must be greater than 1.2 times the retry period"
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            return "the lease duration, renew deadline and retry period must be positive"
        return None


@dataclasses.dataclass(frozen=True)
class Observed:
    """The record a candidate last read, and when it changed, by the candidate's clock."""

    record: tuple[Any, ...]
    at: float


@dataclasses.dataclass(frozen=True)
class Step:
    """One attempt's decision: write `spec` (create the Lease or update it), or wait."""

    action: Literal["create", "update", "wait"]
    observed: Observed | None
    spec: dict[str, Any] | None = None


def micro_time(moment: datetime.datetime) -> str:
    """A MicroTime as the API writes it (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_of(lease: Obj) -> tuple[Any, ...]:
    spec = lease.get("spec") or {}
    return tuple(spec.get(field) for field in RECORD_FIELDS)


def decide(lease: Obj | None, identity: str, observed: Observed | None, now: float,
           wall: datetime.datetime, timing: Timing) -> Step:
    """One try to acquire or renew (client-go's tryAcquireOrRenew), given the Lease as read
    (None: there is none), what was observed before, the monotonic `now` and the wall time."""
    stamp = micro_time(wall)
    duration = max(1, math.ceil(timing.lease_duration))
    if lease is None:
        return Step("create", Observed((), now), {
            "holderIdentity": identity, "leaseDurationSeconds": duration,
            "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0})
    record = record_of(lease)
    if observed is None or observed.record != record:
        observed = Observed(record, now)
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    if holder and holder != identity and observed.at + timing.lease_duration > now:
        return Step("wait", observed)
    transitions = int(spec.get("leaseTransitions") or 0)
    acquired = spec.get("acquireTime") or stamp
    if holder != identity:  # taken over (or from a released lease): a new term
        transitions, acquired = transitions + 1, stamp
    return Step("update", observed, {
        "holderIdentity": identity, "leaseDurationSeconds": duration,
        "acquireTime": acquired, "renewTime": stamp, "leaseTransitions": transitions})


def still_leading(last_renew_started: float, now: float, timing: Timing) -> bool:
    """A leader keeps leading while its last good renewal started under `renew_deadline` ago."""
    return now - last_renew_started < timing.renew_deadline


def default_identity() -> str:
    """client-go's convention: the host name and a unique suffix."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


Work = Callable[[], Coroutine[Any, Any, None]]  # one term's work, cancelled when it ends

# Failures of one attempt: retried at the next retry period, never fatal.
_ATTEMPT_ERRORS = (errors.APIError, aiohttp.ClientError, TimeoutError, OSError)


class LeaderElector:
    """Runs `work` while this candidate holds the Lease `namespace/name`; see the docstring."""

    def __init__(self, client: RESTClient, name: str, *, namespace: str = "kube-system",
                 identity: str | None = None, timing: Timing = Timing(),
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime.datetime] =
                 lambda: datetime.datetime.now(datetime.UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.timing = timing
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.on_change = on_change  # told "leading" / "stopped leading" (for announcements)
        self.observed: Observed | None = None
        self.leading = False
        self.recorder = Recorder(client, name)

    def __repr__(self) -> str:
        return f"<LeaderElector {self.namespace}/{self.name} {self.identity} " \
               f"leading={self.leading}>"

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True if this candidate holds the Lease afterwards."""
        try:
            lease: Obj | None = await self.client.get(LEASES, self.name, self.namespace)
        except errors.NotFound:
            lease = None
        step = decide(lease, self.identity, self.observed, self.clock(), self.wall(),
                      self.timing)
        self.observed = step.observed
        if step.action == "wait":
            return False
        assert step.spec is not None
        if lease is None:
            written = await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": step.spec}, self.namespace)
        else:
            body = {**lease, "spec": {**(lease.get("spec") or {}), **step.spec}}
            written = await self.client.update(LEASES, body, self.namespace)
        self.observed = Observed(record_of(written), self.clock())
        return True

    async def _attempt(self, limit: float) -> bool:
        try:
            async with asyncio.timeout(max(0.0, limit)):
                return await self.try_acquire_or_renew()
        except _ATTEMPT_ERRORS as exc:
            log.info("%s: lease %s/%s: %r", self.identity, self.namespace, self.name, exc)
            return False

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (tries every retry period)."""
        while not await self._attempt(self.timing.renew_deadline):
            await self.sleep(self.timing.retry_period)

    async def renew_until_lost(self) -> None:
        """Renew every retry period; return once a renewal has not succeeded for the renew
        deadline (the lease is lost)."""
        last_good = self.clock()
        while True:
            left = last_good + self.timing.renew_deadline - self.clock()
            await self.sleep(min(self.timing.retry_period, max(0.0, left)))
            started = self.clock()
            if not still_leading(last_good, started, self.timing):
                return
            if await self._attempt(last_good + self.timing.renew_deadline - started):
                last_good = started
            elif not still_leading(last_good, self.clock(), self.timing):
                return

    async def run(self, work: Work) -> None:
        """Forever: acquire, run `work()` while leading, stop it at once when the lease is
        lost. An exception from `work` ends `run` with it; cancelling `run` releases the
        Lease if this candidate holds it."""
        try:
            while True:
                await self.acquire()
                await self._lead(work)
        finally:
            if self.leading:
                self.leading = False
                await asyncio.shield(self.release())

    async def _lead(self, work: Work) -> None:
        self.leading = True
        log.info("%s: became leader of %s/%s", self.identity, self.namespace, self.name)
        self._announce("leading")
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": self.namespace}}
        with_uid = await self._get_lease() or lease
        await self.recorder.event(with_uid, "Normal", "LeaderElection",
                                  f"{self.identity} became leader")
        worker = asyncio.create_task(work(), name=f"{self.name}/work")
        renewer = asyncio.create_task(self.renew_until_lost(), name=f"{self.name}/renew")
        try:
            done, _ = await asyncio.wait([worker, renewer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (worker, renewer):
                task.cancel()
            await asyncio.gather(worker, renewer, return_exceptions=True)
        if worker in done:  # the work never ends on its own: that is a failure
            raise worker.exception() or RuntimeError(f"{self.name}: the work ended")
        self.leading = False
        self.observed = None
        log.warning("%s: leader election lost for %s/%s: work stopped", self.identity,
                    self.namespace, self.name)
        self._announce("stopped leading")

    async def _get_lease(self) -> Obj | None:
        try:
            return await self.client.get(LEASES, self.name, self.namespace)
        except _ATTEMPT_ERRORS:
            return None

    def _announce(self, what: str) -> None:
        if self.on_change is not None:
            self.on_change(what)

    async def release(self) -> None:
        """Give the Lease up (empty holder, as client-go's release), if this candidate still
        holds it; failures are logged: the lease then simply expires."""
        try:
            async with asyncio.timeout(self.timing.renew_deadline):
                lease = await self.client.get(LEASES, self.name, self.namespace)
                if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                    return
                stamp = micro_time(self.wall())
                spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                        "renewTime": stamp, "acquireTime": stamp}
                await self.client.update(LEASES, {**lease, "spec": spec}, self.namespace)
        except _ATTEMPT_ERRORS as exc:
            log.info("%s: could not release %s/%s: %r", self.identity, self.namespace,
                     self.name, exc)
