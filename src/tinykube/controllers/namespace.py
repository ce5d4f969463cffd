"""The namespace controller: empty a terminating namespace, then let the API server remove it.

`kubectl delete namespace x` makes the API server set `deletionTimestamp` and phase
`Terminating`; the namespace stays while `spec.finalizers` holds `kubernetes`. This controller
then, as upstream's namespaced-resources deleter does:

1. lists every namespaced resource (preferred versions from `tinykube.api.resources`, and the
   custom resources of established CRDs) in the namespace, workloads first so that their
   controllers stop replacing pods;
2. deletes every object not already being deleted (Background propagation: pods keep their
   grace period and the node agent finishes them);
3. while anything remains, checks again after `poll_interval` seconds;
4. once nothing remains, removes `kubernetes` from `spec.finalizers` through
   `PUT /api/v1/namespaces/<name>/finalize`; the API server removes a namespace whose
   finalizers are all gone.

`plan_contents` is the pure decision (what to delete, whether anything remains) and
`finalized` builds the finalize body; both are table-tested. Lists go straight to the API
rather than through informers: namespace deletion is rare and a list per resource is cheap.
No status conditions (NamespaceDeletionContentFailure and friends) are written.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.api import errors, resources
from tinykube.api.apiextensions import model as crd_model
from tinykube.api.apiextensions import names as crd_names
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
POLL_INTERVAL = 1.0  # seconds between checks of a namespace that is still emptying
# Deleted first, so that controllers stop recreating what is deleted next.
_FIRST = ("deployments", "statefulsets", "replicasets")


def namespaced_resources() -> list[resources.Resource]:
    """Every namespaced resource once (preferred versions), workloads first."""
    found = [r for r in resources.preferred() if r.namespaced]
    return sorted(found, key=lambda r: _FIRST.index(r.plural) if r.plural in _FIRST
                  else len(_FIRST))


@dataclasses.dataclass(frozen=True)
class ContentsPlan:
    """Objects to delete as (resource, name), and whether the namespace is empty yet."""

    delete: tuple[tuple[resources.Resource, str], ...]
    remaining: int

    @property
    def empty(self) -> bool:
        return self.remaining == 0


def plan_contents(listed: Mapping[resources.Resource, Sequence[Mapping[str, Any]]]) -> ContentsPlan:
    """Delete what is not yet being deleted; everything listed still counts as remaining."""
    doomed = tuple((res, str(obj["metadata"]["name"]))
                   for res, objs in listed.items() for obj in objs
                   if not obj["metadata"].get("deletionTimestamp"))
    return ContentsPlan(doomed, sum(len(objs) for objs in listed.values()))


def is_terminating(namespace: Mapping[str, Any] | None) -> bool:
    return bool(namespace and namespace["metadata"].get("deletionTimestamp"))


def finalized(namespace: Mapping[str, Any]) -> Obj:
    """The namespace without the `kubernetes` finalizer, as a body for the finalize PUT."""
    body: Obj = copy.deepcopy(dict(namespace))
    spec = body.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
    return body


class NamespaceController(Controller):
    name = "namespace-controller"

    def __init__(self, client: RESTClient, *, poll_interval: float = POLL_INTERVAL) -> None:
        self.res = resources.must("", "v1", "namespaces")
        self.namespaces = shared_informer(client, self.res)
        super().__init__(client, [self.namespaces])
        self.poll_interval = poll_interval
        self.contents = namespaced_resources()
        self.crds = resources.must(crd_model.GROUP, "v1", "customresourcedefinitions")
        self.namespaces.add_handlers(on_add=self._on_namespace,
                                     on_update=lambda _old, new: self._on_namespace(new))

    def _on_namespace(self, namespace: Mapping[str, Any]) -> None:
        if is_terminating(namespace):
            self.enqueue(namespace)

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.cache.get(key)
        if namespace is None or not is_terminating(namespace):
            return
        plan = plan_contents(await self._list_contents(key))
        failures = await self._delete(key, plan)
        if failures or not plan.empty:
            self.queue.add_after(key, self.poll_interval)
            return
        finalizers = (namespace.get("spec") or {}).get("finalizers") or []
        if FINALIZER in finalizers or not finalizers:  # others' finalizers are theirs to drop
            await self._finalize(namespace)

    async def _custom_contents(self) -> list[resources.Resource]:
        """The namespaced custom resources of established CRDs (their storage versions), as
        upstream finds them through discovery."""
        crds = (await self.client.list(self.crds)).get("items") or []
        return [row for crd in crds if crd_names.is_established(crd)
                for row in crd_model.rows(crd) if row.namespaced and not row.converted]

    async def _list_contents(self, namespace: str) -> dict[resources.Resource, list[Obj]]:
        listed: dict[resources.Resource, list[Obj]] = {}
        for res in [*self.contents, *await self._custom_contents()]:
            if "list" not in res.verbs:
                continue
            items = (await self.client.list(res, namespace)).get("items") or []
            if items:
                listed[res] = items
        return listed

    async def _delete(self, namespace: str, plan: ContentsPlan) -> int:
        """Delete every planned object; returns how many deletes failed."""
        failures = 0
        for res, name in plan.delete:
            try:
                await self.client.delete(res, name, namespace, propagation_policy="Background")
            except errors.NotFound:
                continue
            except errors.APIError as exc:
                log.info("%s: deleting %s %s/%s failed: %s", self.name, res.kind, namespace,
                         name, exc)
                failures += 1
        return failures

    async def _finalize(self, namespace: Mapping[str, Any]) -> None:
        with contextlib.suppress(errors.NotFound):  # already removed
            await self.client.update(self.res, finalized(namespace), subresource="finalize")

