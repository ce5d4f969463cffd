"""The garbage collector: delete objects whose owners are all gone (Background propagation).

Who does what with `ownerReferences` in tinykube:

* `propagationPolicy: Orphan` (`kubectl delete --cascade=orphan`): the API server strips the
  owner's reference from its dependents while deleting the owner; nothing is left for us.
* `propagationPolicy: Foreground` (`--cascade=foreground`): the API server deletes the direct
  dependents synchronously before the owner. Their own dependents (the pods of a Deployment's
  ReplicaSets) are then orphans of the kind below.
* `propagationPolicy: Background` (the default): the API server deletes only the owner. This
  controller then deletes every dependent whose ownerReferences *all* point at owners that no
  longer exist, which cascades level by level (Deployment -> ReplicaSets -> Pods).

Design. Informers watch the dependent kinds (`DEPENDENTS`: pods, replicasets,
controllerrevisions, endpointslices, leases; never PersistentVolumeClaims, which upstream keeps
for StatefulSets) and the owner kinds (`OWNERS`), each cache indexed by uid and by owner uid.
Queue keys are `<storage key>|<namespace>/<name>` of dependents. A dependent is queued when it
appears with ownerReferences, when its references change, when one of its owners is deleted
(found through the owner-uid index), and on a periodic full scan (`resync_period`).

`sync` decides with `owner_verdicts` (pure): an owner is present if a cache holds its uid,
absent if the cache of its kind does not, and unknown if we do not watch its kind. Absent or
unknown owners are then checked with a live GET (uid compared), as upstream does, because a
just-created owner may not be in our cache yet. Only when every owner is confirmed gone is the
dependent deleted, with Background propagation so that its own dependents follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from tinykube.api import errors, resources
from tinykube.client.controller import Controller
from tinykube.client.informer import Informer, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
Verdict = Literal["present", "absent", "unknown"]

UID_INDEX = "uid"
OWNER_INDEX = "owner-uid"
RESYNC_PERIOD = 60.0  # seconds between full scans
# (group, version, plural)
DEPENDENTS = (("", "v1", "pods"), ("apps", "v1", "replicasets"),
              ("apps", "v1", "controllerrevisions"), ("discovery.k8s.io", "v1", "endpointslices"),
              ("coordination.k8s.io", "v1", "leases"))
OWNERS = (("apps", "v1", "deployments"), ("apps", "v1", "statefulsets"),
          ("apps", "v1", "replicasets"), ("", "v1", "replicationcontrollers"),
          ("", "v1", "services"), ("", "v1", "nodes"))


def uid_index(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [str(uid)] if uid else []


def owner_uid_index(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in refs if ref.get("uid")]


def owner_refs(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def owner_verdicts(refs: Sequence[Obj],
                   lookup: Callable[[Obj], bool | None]) -> list[tuple[Obj, Verdict]]:
    """Each ref with what the caches say: `lookup(ref)` is True/False, or None if unwatched."""
    verdicts: list[tuple[Obj, Verdict]] = []
    for ref in refs:
        found = lookup(ref)
        verdicts.append((ref, "unknown" if found is None else "present" if found else "absent"))
    return verdicts


def needs_check(obj: Obj, verdicts: Sequence[tuple[Obj, Verdict]]) -> bool:
    """True if `obj` may be an orphan: it has owners, none is cached, it is not being deleted."""
    return bool(verdicts) and not (obj.get("metadata") or {}).get("deletionTimestamp") and \
        all(verdict != "present" for _, verdict in verdicts)


def queue_key(res: resources.Resource, obj: Obj) -> str:
    return f"{res.storage_key}|{object_key(dict(obj))}"


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, client: RESTClient, *, resync_period: float = RESYNC_PERIOD) -> None:
        self.resync_period = resync_period
        self.watched: dict[str, tuple[resources.Resource, Informer]] = {}
        for group, version, plural in {*DEPENDENTS, *OWNERS}:
            res = resources.must(group, version, plural)
            informer = shared_informer(client, res)
            informer.cache.add_index(UID_INDEX, uid_index)
            informer.cache.add_index(OWNER_INDEX, owner_uid_index)
            self.watched[res.storage_key] = (res, informer)
        super().__init__(client, [informer for _, informer in self.watched.values()])
        self.dependents = [self.watched[_storage_key(*d)] for d in DEPENDENTS]
        for res, informer in self.watched.values():
            if (res.group, res.version, res.plural) in DEPENDENTS:
                informer.add_handlers(on_add=functools.partial(self._on_add, res),
                                      on_update=functools.partial(self._on_update, res))
            informer.add_handlers(on_delete=self._on_owner_deleted)

    # --- handlers ---------------------------------------------------------------------------

    def _on_add(self, res: resources.Resource, obj: Obj) -> None:
        if owner_refs(obj):
            self.queue.add(queue_key(res, obj))

    def _on_update(self, res: resources.Resource, old: Obj, new: Obj) -> None:
        if owner_refs(new) and owner_refs(new) != owner_refs(old):
            self.queue.add(queue_key(res, new))

    def _on_owner_deleted(self, owner: Obj) -> None:
        uid = (owner.get("metadata") or {}).get("uid")
        if not uid:
            return
        for res, informer in self.dependents:
            for dependent in informer.cache.by_index(OWNER_INDEX, str(uid)):
                self.queue.add(queue_key(res, dependent))

    def resync(self) -> int:
        """Queue every dependent that has owners (the full scan); returns how many."""
        count = 0
        for res, informer in self.dependents:
            for obj in informer.cache.list():
                if owner_refs(obj):
                    self.queue.add(queue_key(res, obj))
                    count += 1
        return count

    def start(self, *, workers: int = 1) -> list[asyncio.Task[None]]:
        tasks = super().start(workers=workers)
        tasks.append(asyncio.create_task(self._resync_loop(), name=f"{self.name}/resync"))
        return tasks

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            self.resync()

    # --- sync -------------------------------------------------------------------------------

    def cached_owner(self, ref: Obj) -> bool | None:
        """Is the owner in our caches? None if we do not watch its kind."""
        res = resources.by_api_version(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if res is None:
            return None
        watched = self.watched.get(resources.storage_resource(res).storage_key)
        if watched is None:
            return None
        return bool(watched[1].cache.index_keys(UID_INDEX, str(ref.get("uid", ""))))

    async def sync(self, key: str) -> None:
        storage_key, _, obj_key = key.partition("|")
        res, informer = self.watched[storage_key]
        obj = informer.cache.get(obj_key)
        if obj is None:
            return
        verdicts = owner_verdicts(owner_refs(obj), self.cached_owner)
        if not needs_check(obj, verdicts):
            return
        namespace = str(obj["metadata"].get("namespace") or "")
        for ref, _ in verdicts:
            if await self._owner_exists(ref, namespace):
                return
        log.info("%s: deleting %s %s: all owners are gone", self.name, res.kind, obj_key)
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(res, obj["metadata"]["name"], namespace or None,
                                     propagation_policy="Background")

    async def _owner_exists(self, ref: Obj, namespace: str) -> bool:
        """Ask the API server; an owner of a kind it does not serve is taken to exist."""
        res = resources.by_api_version(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if res is None:
            return True
        try:
            owner = await self.client.get(res, str(ref["name"]),
                                          namespace if res.namespaced else None)
        except errors.NotFound:
            return False
        return bool(owner.get("metadata", {}).get("uid") == ref.get("uid"))


def _storage_key(group: str, version: str, plural: str) -> str:
    return resources.must(group, version, plural).storage_key
