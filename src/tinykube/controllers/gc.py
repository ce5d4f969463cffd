"""The garbage collector: cascading deletion through ownerReferences, as upstream's.

The API server turns a DELETE's propagation policy into a finalizer (`api.ownership`); this
controller does the rest, through the API only:

* Background (the default): the owner goes at once. A dependent whose owners are all gone
  (dangling) is deleted, with Background propagation so that its own dependents follow; this
  cascades level by level (Deployment -> ReplicaSets -> Pods).
* Foreground (`kubectl delete --cascade=foreground`): the owner stays, with deletionTimestamp
  and the `foregroundDeletion` finalizer. Its dependents are deleted: in Foreground themselves
  when they have dependents of their own (a ReplicaSet with pods), else as their finalizers
  say. Once no dependent with `blockOwnerDeletion: true` exists any more (pods in graceful
  deletion still count), the finalizer is removed and the API server lets the owner go.
* Orphan (`--cascade=orphan`): the owner stays with the `orphan` finalizer until the owner's
  reference has been removed from every dependent; then the finalizer goes, and the owner.

A dependent that still has a live owner ("solid") is kept; references to owners that are gone
or waiting for their dependents are removed from it, so that it never blocks them.

Design. One informer per kind the collector watches (`ownership.collected_resources`: every
stored kind but Events), each cache indexed by uid and by owner uid. Queue keys are
`<storage key>|<namespace>/<name>`, and `sync` looks at the object in whichever role its state
gives it: an owner being deleted with one of our finalizers, or a dependent. Objects are queued
when they appear or their references change, when they become such an owner, when one of their
owners is deleted, when one of their dependents goes (for an owner waiting on it), and on a
periodic full scan (`resync_period`).

Owners are looked up in the caches first (`classify`, pure); an owner missing from them is
checked with a live GET (uid compared), as upstream does, because a just-created owner may not
be cached yet. Dependents are deleted with a uid precondition, so a new object with the same
name is never hit. Finalizers and references are removed with strategic merge patches that
name only what goes, so concurrent writers of other fields or finalizers are never undone.

Custom resources: as upstream's collector resyncs its monitors from discovery, this one adds an
informer for the storage version of every established CustomResourceDefinition it sees (the
CRD informer is one of its own) and drops it when the CRD goes; CRs are then owners and
dependents like built-in objects. The API server refuses strategic merge patches for them, so
their references and finalizers are removed with a JSON merge patch of the whole list,
conditional on the resourceVersion read (a Conflict retries), as upstream's collector does
for custom resources. An owner of a kind not watched yet (a CRD just established) is found
through the CRDs and checked with a GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tinykube.api import errors, ownership, resources
from tinykube.api.apiextensions import model as crd_model
from tinykube.api.apiextensions import names as crd_names
from tinykube.client.controller import Controller
from tinykube.client.informer import Informer, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
Verdict = Literal["solid", "waiting", "dangling"]

UID_INDEX = "uid"
OWNER_INDEX = "owner-uid"
RESYNC_PERIOD = 60.0  # seconds between full scans
CRD_KEY = f"{crd_model.GROUP}/customresourcedefinitions"
UNSERVED = object()  # an owner of a kind the API server does not serve: taken to exist


def uid_index(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [str(uid)] if uid else []


def owner_uid_index(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in refs if ref.get("uid")]


def owner_refs(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def blocks(dependent: Obj, owner_uid: str) -> bool:
    """True when `dependent` holds up its owner's foreground deletion."""
    return any(ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion") is True
               for ref in owner_refs(dependent))


def classify(owner: Obj | None, ref: Obj) -> Verdict:
    """What one reference's owner means for the dependent: gone (or another object by the
    same name: dangling), being deleted in foreground (waiting), or live (solid)."""
    if owner is None:
        return "dangling"
    if (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
        return "dangling"
    return "waiting" if ownership.deleting_with(owner, ownership.FOREGROUND) else "solid"


@dataclasses.dataclass(frozen=True)
class Action:
    """What to do with a dependent: nothing, drop some references, or delete it."""

    kind: Literal["keep", "unlink", "delete"]
    drop: tuple[str, ...] = ()  # uids of the references to remove (unlink)
    policy: str = "Background"  # propagation of the delete


def decide(obj: Obj, verdicts: Sequence[tuple[Obj, Verdict]], *,
           has_dependents: bool) -> Action:
    """Upstream's attemptToDeleteItem, as a pure decision."""
    if not verdicts or deleting(obj):
        return Action("keep")
    if any(v == "solid" for _, v in verdicts):
        drop = tuple(str(ref.get("uid")) for ref, v in verdicts if v != "solid")
        return Action("unlink", drop) if drop else Action("keep")
    if has_dependents and any(v == "waiting" for _, v in verdicts):
        return Action("delete", policy="Foreground")
    finalizers = (obj.get("metadata") or {}).get("finalizers") or []
    policy = "Orphan" if ownership.ORPHAN in finalizers else \
        "Foreground" if ownership.FOREGROUND in finalizers else "Background"
    return Action("delete", policy=policy)


def queue_key(res: resources.Resource, obj: Obj) -> str:
    return f"{res.storage_key}|{object_key(dict(obj))}"


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, client: RESTClient, *, resync_period: float = RESYNC_PERIOD) -> None:
        self.resync_period = resync_period
        self.watched: dict[str, tuple[resources.Resource, Informer]] = {}
        for res in ownership.collected_resources():
            informer = shared_informer(client, res)
            informer.cache.add_index(UID_INDEX, uid_index)
            informer.cache.add_index(OWNER_INDEX, owner_uid_index)
            self.watched[res.storage_key] = (res, informer)
        super().__init__(client, [informer for _, informer in self.watched.values()])
        for res, informer in self.watched.values():
            self._handle(res, informer)
        # custom resources: CRD name -> (storage key, reflector task); (group, kind) -> key
        self._custom: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._custom_kinds: dict[tuple[str, str], str] = {}
        crds = self.watched.get(CRD_KEY)
        if crds is not None:
            crds[1].add_handlers(on_add=self._on_crd,
                                 on_update=lambda _old, new: self._on_crd(new),
                                 on_delete=self._forget_crd)

    def _handle(self, res: resources.Resource, informer: Informer) -> None:
        informer.add_handlers(on_add=functools.partial(self._on_add, res),
                              on_update=functools.partial(self._on_update, res),
                              on_delete=self._on_delete)

    # --- custom resources -------------------------------------------------------------------

    def _on_crd(self, crd: Obj) -> None:
        """Watch the storage version of an established CRD (again, if its names changed)."""
        name = str(crd["metadata"]["name"])
        row = next((r for r in crd_model.rows(dict(crd)) if not r.converted), None) \
            if crd_names.is_established(dict(crd)) else None
        current = self._custom.get(name)
        if row is not None and current is not None and current[0] == row.storage_key \
                and self.watched.get(row.storage_key, (None,))[0] == row:
            return
        self._forget_crd(crd)
        if row is None or row.storage_key in self.watched:
            return
        informer = Informer(self.client, row)
        informer.cache.add_index(UID_INDEX, uid_index)
        informer.cache.add_index(OWNER_INDEX, owner_uid_index)
        self._handle(row, informer)
        self.watched[row.storage_key] = (row, informer)
        self._custom_kinds[(row.group, row.kind)] = row.storage_key
        task = asyncio.create_task(informer.run(), name=f"{self.name}/informer/{name}")
        self._custom[name] = (row.storage_key, task)

    def _forget_crd(self, crd: Obj) -> None:
        found = self._custom.pop(str(crd["metadata"]["name"]), None)
        if found is None:
            return
        key, task = found
        task.cancel()
        row, _informer = self.watched.pop(key)
        self._custom_kinds.pop((row.group, row.kind), None)

    def _watched_for(self, ref: Obj) -> tuple[resources.Resource, Informer] | None:
        """Our informer for the kind an owner reference names, if we watch it."""
        api_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        res = resources.by_api_version(api_version, kind)
        if res is not None:
            return self.watched.get(resources.storage_resource(res).storage_key)
        key = self._custom_kinds.get((api_version.rpartition("/")[0], kind))
        return self.watched.get(key) if key is not None else None

    # --- handlers ---------------------------------------------------------------------------

    def _on_add(self, res: resources.Resource, obj: Obj) -> None:
        if owner_refs(obj) or self._finalizing(obj):
            self.queue.add(queue_key(res, obj))
        self._wake_owners(obj)

    def _on_update(self, res: resources.Resource, old: Obj, new: Obj) -> None:
        if owner_refs(new) != owner_refs(old) or self._finalizing(new):
            self.queue.add(queue_key(res, new))
            self._wake_owners(old)
        self._wake_owners(new)

    def _on_delete(self, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            for res, dependent in self.dependents_of(str(uid)):
                self.queue.add(queue_key(res, dependent))
        self._wake_owners(obj)

    @staticmethod
    def _finalizing(obj: Obj) -> bool:
        return ownership.deleting_with(obj, ownership.FOREGROUND) or \
            ownership.deleting_with(obj, ownership.ORPHAN)

    def _wake_owners(self, obj: Obj) -> None:
        """Queue the owners of `obj` that wait on their dependents (foreground or orphan)."""
        for ref in owner_refs(obj):
            found = self._cached(ref)
            if found is not None and found[1] is not None and self._finalizing(found[1]):
                self.queue.add(queue_key(found[0], found[1]))

    def resync(self) -> int:
        """Queue every object with owners or one of our finalizers (the full scan)."""
        count = 0
        for res, informer in self.watched.values():
            for obj in informer.cache.list():
                if owner_refs(obj) or self._finalizing(obj):
                    self.queue.add(queue_key(res, obj))
                    count += 1
        return count

    def start(self, *, workers: int = 1) -> list[asyncio.Task[None]]:
        tasks = super().start(workers=workers)
        tasks.append(asyncio.create_task(self._resync_loop(), name=f"{self.name}/resync"))
        return tasks

    async def _resync_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.resync_period)
                self.resync()
        finally:  # stopping: the custom resources' informers stop too
            for _key, task in self._custom.values():
                task.cancel()

    # --- caches -----------------------------------------------------------------------------

    def dependents_of(self, uid: str) -> list[tuple[resources.Resource, Obj]]:
        return [(res, obj) for res, informer in self.watched.values()
                for obj in informer.cache.by_index(OWNER_INDEX, uid)]

    def _cached(self, ref: Obj) -> tuple[resources.Resource, Obj | None] | None:
        """The referenced owner from our caches (None inside: not cached); None if we do not
        watch its kind."""
        watched = self._watched_for(ref)
        if watched is None:
            return None
        found = watched[1].cache.by_index(UID_INDEX, str(ref.get("uid", "")))
        return watched[0], (found[0] if found else None)

    async def _owner(self, ref: Obj, namespace: str) -> object:
        """The owner from the caches, else from the API server (None: not found)."""
        cached = self._cached(ref)
        if cached is not None and cached[1] is not None:
            return cached[1]
        res = resources.by_api_version(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if res is None:
            res = await self._custom_resource(ref)
        if res is None:
            return UNSERVED
        try:
            return await self.client.get(res, str(ref["name"]),
                                         namespace if res.namespaced else None)
        except errors.NotFound:
            return None

    async def _custom_resource(self, ref: Obj) -> resources.Resource | None:
        """The custom resource an owner reference names, from the established CRDs (kinds
        this process's table does not have); None if no CRD serves it."""
        crds = resources.must(crd_model.GROUP, "v1", "customresourcedefinitions")
        try:
            items = (await self.client.list(crds)).get("items") or []
        except errors.APIError:
            return None
        wanted = (str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        for crd in items:
            if not crd_names.is_established(crd):
                continue
            for row in crd_model.rows(crd):
                if (row.api_version, row.kind) == wanted:
                    return row
        return None

    # --- sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        storage_key, _, obj_key = key.partition("|")
        if storage_key not in self.watched:
            return  # a custom resource whose CRD has gone
        res, informer = self.watched[storage_key]
        obj = informer.cache.get(obj_key)
        if obj is None:
            return
        if ownership.deleting_with(obj, ownership.FOREGROUND):
            await self._foreground(res, obj)
        elif ownership.deleting_with(obj, ownership.ORPHAN):
            await self._orphan(res, obj)
        elif owner_refs(obj) and not deleting(obj):
            await self._dependent(res, obj)

    async def _dependent(self, res: resources.Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        namespace = str(meta.get("namespace") or "")
        verdicts: list[tuple[Obj, Verdict]] = []
        for ref in owner_refs(obj):
            owner = await self._owner(ref, namespace)
            verdict = "solid" if owner is UNSERVED else classify(
                owner if isinstance(owner, Mapping) else None, ref)
            verdicts.append((ref, verdict))
        waiting = any(v == "waiting" for _, v in verdicts)  # only then do dependents matter
        action = decide(obj, verdicts,
                        has_dependents=waiting and bool(self.dependents_of(str(meta["uid"]))))
        if action.kind == "unlink":
            await self._unlink(res, obj, action.drop)
        elif action.kind == "delete":
            log.info("%s: deleting %s %s (%s): no owner left", self.name, res.kind,
                     object_key(dict(obj)), action.policy)
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.client.delete(res, meta["name"], namespace or None,
                                         propagation_policy=action.policy,
                                         preconditions={"uid": meta["uid"]})

    async def _foreground(self, res: resources.Resource, owner: Obj) -> None:
        """Delete the dependents; drop the finalizer once none blocks the owner any more."""
        uid = str(owner["metadata"]["uid"])
        dependents = self.dependents_of(uid)
        if not any(blocks(dependent, uid) for _, dependent in dependents):
            await self._remove_finalizer(res, owner, ownership.FOREGROUND)
            return
        for dep_res, dependent in dependents:
            if not deleting(dependent):
                self.queue.add(queue_key(dep_res, dependent))

    async def _orphan(self, res: resources.Resource, owner: Obj) -> None:
        """Remove the owner's reference from every dependent, then the finalizer."""
        uid = str(owner["metadata"]["uid"])
        for dep_res, dependent in self.dependents_of(uid):
            await self._unlink(dep_res, dependent, (uid,))
        await self._remove_finalizer(res, owner, ownership.ORPHAN)

    async def _unlink(self, res: resources.Resource, obj: Obj, uids: Sequence[str]) -> None:
        meta = obj["metadata"]
        if res.custom is not None:
            kept = [r for r in owner_refs(obj) if r.get("uid") not in uids]
            await self._merge_metadata(res, obj, {"ownerReferences": kept or None})
            return
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}
                                                  for uid in uids]}}
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(res, meta["name"], patch, meta.get("namespace") or None,
                                    patch_type="strategic")

    async def _merge_metadata(self, res: resources.Resource, obj: Obj, changes: Obj) -> None:
        """A custom resource's metadata lists replaced, if it did not change meanwhile."""
        meta = obj["metadata"]
        patch = {"metadata": {**changes, "resourceVersion": meta.get("resourceVersion")}}
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(res, meta["name"], patch, meta.get("namespace") or None,
                                    patch_type="merge")

    async def _remove_finalizer(self, res: resources.Resource, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        log.info("%s: %s %s: removing finalizer %s", self.name, res.kind,
                 object_key(dict(obj)), finalizer)
        if res.custom is not None:
            kept = [f for f in meta.get("finalizers") or [] if f != finalizer]
            await self._merge_metadata(res, obj, {"finalizers": kept or None})
            return
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}}
        with contextlib.suppress(errors.NotFound):
            await self.client.patch(res, meta["name"], patch, meta.get("namespace") or None,
                                    patch_type="strategic")
