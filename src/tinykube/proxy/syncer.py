"""Keeping a backend in step with the API: informers, a debounced full resync, and a diff.

Level-triggered, as kube-proxy's `syncProxyRules`: informer handlers only mark the state dirty;
the sync loop wakes, waits `min_interval` so that a burst of changes (a rollout touches many
EndpointSlices) costs one sync, rebuilds the whole desired table with `model.build_table` from the
informer caches, and hands the backend only the difference (`plan`). Nothing in the cache is ever
mutated.

Bind failures are part of the state, not exceptions: a key that fails to bind stays out of
`applied`, so every later sync retries it (cheap: one bind call); the failure is logged and
passed to `on_bind_failure(error, service)` only when it is new, so a Service gets one Event per
distinct failure and not one per sync. While any key is failing the loop also resyncs every
`retry_interval` seconds, so a port freed by another program is picked up without an API change.

What one Service and all of them may make the backend open is bounded (`limits`): the addresses
left out are a `Refusal` per Service, logged and passed to `on_refusal(refusal, service)` when it
is new or changed, as bind failures are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from tinykube.api import resources
from tinykube.api.resources import Resource
from tinykube.client.informer import Informer
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.proxy import limits, model
from tinykube.proxy.backend import Backend, BindError
from tinykube.proxy.limits import Limits, Refusal
from tinykube.proxy.model import ListenKey, ServicePortRule

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
Rules = dict[ListenKey, ServicePortRule]
BindFailureHandler = Callable[[BindError, Obj | None], Awaitable[None]]
RefusalHandler = Callable[[Refusal, Obj | None], Awaitable[None]]


@dataclass(frozen=True)
class Plan:
    """What the backend must do to turn `applied` into `desired`."""

    add: Rules = field(default_factory=dict)
    update: Rules = field(default_factory=dict)
    remove: tuple[ListenKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.update or self.remove)


def plan(desired: Rules, applied: Rules) -> Plan:
    """The difference between two tables (keys sorted, so the backend sees a stable order)."""
    add = {key: desired[key] for key in sorted(desired.keys() - applied.keys())}
    update = {key: desired[key] for key in sorted(desired.keys() & applied.keys())
              if desired[key] != applied[key]}
    return Plan(add, update, tuple(sorted(applied.keys() - desired.keys())))


@dataclass
class SyncResult:
    plan: Plan
    failing: dict[ListenKey, BindError]  # every key that is not bound now
    new_failures: list[BindError]  # the failures this sync saw first
    new_refusals: list[Refusal] = field(default_factory=list)  # left out by the limits: new


class SyncTarget(Protocol):
    """What `ProxyController` drives: `Syncer` (userspace listeners) or the nftables one."""

    @property
    def wants_retry(self) -> bool:
        """True while something failed: the controller resyncs every `retry_interval`."""
        ...

    async def sync(self, services: Iterable[Obj], slices: Iterable[Obj]) -> SyncResult: ...

    async def close(self) -> None: ...


class Syncer:
    """Applies desired tables to a backend and remembers what is applied and what failed."""

    def __init__(self, backend: Backend, *,
                 is_local: Callable[[str], bool] = model.is_loopback,
                 limits: Limits | None = None) -> None:
        self.backend = backend
        self.is_local = is_local
        self.limits = limits or Limits()
        self.applied: Rules = {}
        self.failing: dict[ListenKey, BindError] = {}
        self.refused: dict[tuple[str, str], Refusal] = {}  # (service, reason) -> what it lost

    def __repr__(self) -> str:
        return f"Syncer(applied={len(self.applied)}, failing={len(self.failing)})"

    @property
    def wants_retry(self) -> bool:
        return bool(self.failing)

    async def sync(self, services: Iterable[Obj], slices: Iterable[Obj]) -> SyncResult:
        """Build the desired table from API objects and apply it."""
        table = self.table(services, slices)
        for key, loser in table.conflicts:
            log.warning("%s: %s:%d/%s is already used by %s", loser, *key,
                        table.rules[key].service)
        kept, refusals = limits.limit(table.rules, self.applied, self.limits)
        new = self._note_refusals(refusals)
        result = await self.apply(kept)
        result.new_refusals = new
        return result

    def table(self, services: Iterable[Obj], slices: Iterable[Obj]) -> model.Table:
        """The desired listeners (a subclass may listen on other addresses)."""
        return model.build_table(services, slices, self.is_local)

    def _note_refusals(self, refusals: list[Refusal]) -> list[Refusal]:
        """Remember this sync's refusals; the new or changed ones (logged)."""
        current = {(r.service, r.reason): r for r in refusals}
        new = [r for key, r in current.items() if self.refused.get(key) != r]
        for refusal in new:
            log.warning("%s: %s", refusal.service, refusal.message)
        self.refused = current
        return new

    async def apply(self, desired: Rules) -> SyncResult:
        """Remove, then update, then add (so a freed address can be reused in one sync)."""
        steps = plan(desired, self.applied)
        for key in steps.remove:
            await self._call(self.backend.remove(key), key)
            del self.applied[key]
        for key, rule in steps.update.items():
            await self._call(self.backend.update(key, rule), key)
            self.applied[key] = rule
        failing, new = await self._add_all(steps.add)
        self.failing = failing
        return SyncResult(steps, failing, new)

    async def _add_all(self, rules: Rules) -> tuple[dict[ListenKey, BindError], list[BindError]]:
        failing: dict[ListenKey, BindError] = {}
        new: list[BindError] = []
        for key, rule in rules.items():
            try:
                await self.backend.add(key, rule)
            except BindError as error:
                failing[key] = error
                previous = self.failing.get(key)
                if previous is None or previous.errno != error.errno:
                    log.warning("%s: %s", rule.service, error)
                    new.append(error)
                continue
            self.applied[key] = rule
        return failing, new

    async def _call(self, step: Awaitable[None], key: ListenKey) -> None:
        try:
            await step
        except Exception:  # a backend bug must not stop the other listeners' updates
            log.exception("proxy backend failed on %s:%d/%s", *key)

    async def close(self) -> None:
        await self.backend.close()
        self.applied.clear()



Target = TypeVar("Target", bound=SyncTarget)


class ProxyController(Generic[Target]):
    """Informers on Services and EndpointSlices driving a `Syncer` (see the module docstring).

    `extra` resources get informers too (the nftables proxy's NetworkPolicies, Pods and
    Namespaces, in `informers` by plural): their changes mark the state dirty like the
    Services', and the first sync waits for their caches; the target reads them itself."""

    def __init__(self, client: RESTClient, syncer: Target, *, min_interval: float = 0.05,
                 retry_interval: float = 10.0,
                 on_bind_failure: BindFailureHandler | None = None,
                 on_refusal: RefusalHandler | None = None,
                 extra: Sequence[Resource] = ()) -> None:
        self.syncer = syncer
        self.min_interval, self.retry_interval = min_interval, retry_interval
        self.on_bind_failure, self.on_refusal = on_bind_failure, on_refusal
        self.services = shared_informer(client, resources.must("", "v1", "services"))
        self.slices = shared_informer(
            client, resources.must("discovery.k8s.io", "v1", "endpointslices"))
        self.informers = {res.plural: shared_informer(client, res) for res in extra}
        self.syncs = 0
        # Called after each sync with the Services and EndpointSlices it applied (traces).
        self.after_sync: list[Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]] = []
        self.synced = asyncio.Event()  # set after the first sync with synced caches
        self._dirty = asyncio.Event()
        for informer in self._all_informers():
            informer.add_handlers(on_add=self._mark, on_update=self._mark_update,
                                  on_delete=self._mark)

    def __repr__(self) -> str:
        return f"ProxyController(syncs={self.syncs}, {self.syncer!r})"

    def _all_informers(self) -> list[Informer]:
        return [self.services, self.slices, *self.informers.values()]

    def _mark(self, _obj: dict[str, Any]) -> None:
        self._dirty.set()

    def _mark_update(self, _old: dict[str, Any], _new: dict[str, Any]) -> None:
        self._dirty.set()

    async def run(self) -> None:
        """Run the informers and the sync loop until cancelled (the caller closes the syncer)."""
        async with asyncio.TaskGroup() as group:
            for informer in self._all_informers():
                group.create_task(informer.run())
            group.create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        await asyncio.gather(*(informer.wait_synced() for informer in self._all_informers()))
        while True:
            self._dirty.clear()
            await self.sync_once()
            self.synced.set()
            await self._wait_dirty()
            await asyncio.sleep(self.min_interval)  # debounce: let a burst of events settle

    async def _wait_dirty(self) -> None:
        timeout = self.retry_interval if self.syncer.wants_retry else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._dirty.wait(), timeout)

    async def sync_once(self) -> SyncResult:
        services, slices = self.services.cache.list(), self.slices.cache.list()
        result = await self.syncer.sync(services, slices)
        self.syncs += 1
        for hook in self.after_sync:
            hook(services, slices)
        if self.on_bind_failure is not None:
            for error in result.new_failures:
                service = self.services.cache.get(result_service(result, error))
                await self.on_bind_failure(error, service)
        if self.on_refusal is not None:
            for refusal in result.new_refusals:
                await self.on_refusal(refusal, self.services.cache.get(refusal.service))
        return result


def result_service(result: SyncResult, error: BindError) -> str:
    """The `namespace/name` of the Service whose listener failed."""
    rule = result.plan.add.get(error.key)
    return rule.service if rule is not None else ""
