"""The apiextensions controllers, run inside the API server as kube-apiserver runs them.

One loop watches CustomResourceDefinitions in the store and, after every change, reconciles
all of them (a handful; the decisions are `api.apiextensions.names`' pure functions):

- naming + establishing: `status.acceptedNames` and the `NamesAccepted` / `Established`
  conditions, written through the registry's status path;
- serving: the rows of every established CRD (`api.apiextensions.model.rows`) are registered
  in `api.resources`, so routing, discovery and OpenAPI serve them at once, with a local
  APIService per group-version (kube's crdregistration controller); a CRD that is gone takes
  its rows and APIServices with it;
- finalizing: a CRD being deleted (the registry gave it the
  `customresourcecleanup.apiextensions.k8s.io` finalizer) gets `Terminating`
  (`InstanceDeletionInProgress`), its objects are deleted through the registry, and once none
  is left the finalizer goes and the CRD with it. While objects wait on their own finalizers
  the loop looks again every `RETRY` seconds.

Each API server runs its own loop (with etcd, every server sees every CRD); their writes are
idempotent and a Conflict just means another one got there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tinykube.api import errors, resources
from tinykube.api.apiextensions import model, names
from tinykube.api.clone import clone
from tinykube.api.meta import rfc3339
from tinykube.apiserver import system_objects
from tinykube.apiserver.registry import Registry
from tinykube.store.cache import Entry

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CRDS = resources.must(model.GROUP, "v1", "customresourcedefinitions")
API_SERVICES = resources.must("apiregistration.k8s.io", "v1", "apiservices")
FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"
RETRY = 0.2


class CRDController:
    """Keeps CRD status and the served custom resources in step with the stored CRDs."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.store = registry.store
        self._served: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"CRDController(serving={sorted(self._served)})"

    def _crds(self) -> list[Entry]:
        entries = self.store.list(CRDS.storage_key, None, None)
        return sorted(entries, key=lambda e: (e.obj["metadata"].get("creationTimestamp", ""),
                                              e.obj["metadata"]["name"]))

    def reconcile(self) -> bool:
        """One pass over every CRD; True when some CRD still waits for its objects to go."""
        waiting = False
        for entry in self._crds():
            try:
                current = self._sync_status(entry)
                if current.obj["metadata"].get("deletionTimestamp"):
                    waiting = self._finalize(current) or waiting
            except (errors.Conflict, errors.NotFound):  # another API server wrote it first
                waiting = waiting or bool(entry.obj["metadata"].get("deletionTimestamp"))
        self._serve()
        return waiting

    def _sync_status(self, entry: Entry) -> Entry:
        crd = entry.obj
        others = [e.obj for e in self._crds() if e.obj["metadata"]["name"] !=
                  crd["metadata"]["name"]]
        accepted, condition = names.accepted_names(crd, others)
        now = rfc3339(self.registry.clock())
        status = {**(crd.get("status") or {}), "acceptedNames": accepted}
        status["conditions"] = names.conditions({**crd, "status": status}, condition, now)
        if status == crd.get("status"):
            return entry
        updated = clone(crd)
        updated["status"] = status
        updated["metadata"]["resourceVersion"] = str(entry.rv)
        return self.registry.update(CRDS, updated, subresource="status")

    def _finalize(self, entry: Entry) -> bool:
        """Delete the CRD's objects; drop the finalizer once none is left. True: still some."""
        crd = entry.obj
        rows = model.rows(crd)
        if rows:
            res = resources.storage_resource(rows[0]) if rows[0].converted else rows[0]
            left = self.store.list(res.storage_key, None, None)
            for item in left:
                meta = item.obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    with contextlib.suppress(errors.NotFound, errors.Conflict):
                        self.registry.delete(res, meta.get("namespace", ""), meta["name"], {})
            if self.store.list(res.storage_key, None, None):
                return True
        finalizers = [f for f in crd["metadata"].get("finalizers") or [] if f != FINALIZER]
        if finalizers == (crd["metadata"].get("finalizers") or []):
            return False
        updated = clone(crd)
        updated["metadata"]["finalizers"] = finalizers
        updated["metadata"]["resourceVersion"] = str(entry.rv)
        self.registry.update(CRDS, updated)
        return False

    def _serve(self) -> None:
        """Register the rows of established CRDs and unregister those of CRDs that are gone."""
        wanted: dict[tuple[str, str], list[resources.Resource]] = {}
        for entry in self._crds():
            crd = entry.obj
            if not names.is_established(crd):
                continue
            spec = crd.get("spec") or {}
            plural = ((crd.get("status") or {}).get("acceptedNames") or {}).get("plural", "")
            wanted[(spec.get("group", ""), plural)] = model.rows(crd)
        for key in self._served - wanted.keys():
            resources.unregister(*key)
        for key, rows in wanted.items():
            if _changed(key, rows):
                resources.register(key[0], key[1], rows)
        self._served = set(wanted)
        self._api_services({(r.group, r.version) for rows in wanted.values() for r in rows})

    def _api_services(self, served: set[tuple[str, str]]) -> None:
        """One local APIService per served custom group-version, as kube's crdregistration
        controller keeps them (labelled automanaged `true`); the others it made go."""
        existing = {e.obj["metadata"]["name"]: e for e in
                    self.store.list(API_SERVICES.storage_key, None, None)
                    if (e.obj["metadata"].get("labels") or {}).get(_AUTOMANAGED) == "true"}
        for group, version in sorted(served):
            name = f"{version}.{group}"
            if name in existing or self.store.get(API_SERVICES.storage_key, "", name):
                continue
            with contextlib.suppress(errors.AlreadyExists, errors.Invalid):
                entry = self.registry.create(API_SERVICES, {
                    "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": {"name": name, "labels": {_AUTOMANAGED: "true"}},
                    "spec": {"group": group, "version": version, "groupPriorityMinimum": 1000,
                             "versionPriority": 100}})
                self.registry.update(API_SERVICES, {
                    **entry.obj, "status": system_objects.available(
                        rfc3339(self.registry.clock()))}, subresource="status")
        for name, entry in existing.items():
            spec = entry.obj.get("spec") or {}
            if (spec.get("group"), spec.get("version")) not in served:
                with contextlib.suppress(errors.NotFound):
                    self.registry.delete(API_SERVICES, "", name, {})

    def stop_serving(self) -> None:
        """Unregister every custom resource this controller served (the server is stopping)."""
        for key in self._served:
            resources.unregister(*key)
        self._served = set()

    async def run_forever(self) -> None:
        """Reconcile after every CRD event (and every RETRY s while objects are going)."""
        waiting = self.reconcile()
        while True:
            watcher = self.store.watch(CRDS.storage_key, None, self.store.resource_version)
            try:
                while True:
                    try:
                        async with asyncio.timeout(RETRY if waiting else None):
                            event = await watcher.queue.get()
                    except TimeoutError:
                        event = None
                    else:
                        if event is None:
                            break  # the store ended this watch: start another
                    while not watcher.queue.empty():
                        if watcher.queue.get_nowait() is None:
                            break
                    try:
                        waiting = self.reconcile()
                    except Exception:  # a bad CRD must not stop the others being served
                        log.exception("reconciling CustomResourceDefinitions")
            finally:
                watcher.close()


def _changed(key: tuple[str, str], rows: list[resources.Resource]) -> bool:
    """Whether `rows` differ from what is served for `key` (then the documents are rebuilt)."""
    served = [r for r in resources.custom_resources() if (r.group, r.plural) == key]
    if len(served) != len(rows):
        return True
    return any(a != b or a.custom != b.custom for a, b in zip(served, rows, strict=True))
