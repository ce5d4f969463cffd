"""The ResourceQuota controller: every quota's `status.hard` and `status.used`, from what exists.

As upstream's `pkg/controller/resourcequota`: a quota's status is its spec's `hard` and, for
each hard name some evaluator measures, the usage of the matching objects of its namespace
(`api.quota.quota_status`, the pure decision). The ResourceQuota admission plugin charges
`status.used` when it admits a create, so usage cannot overshoot between two syncs; this
controller puts it right afterwards (a refused or failed write, a deleted or finished pod).

Keys are quota keys (`namespace/name`). A quota is synced when it is created, when its
`spec.hard` changes or its status does not match its spec (status writes alone are admission's
or ours and are ignored, as upstream), when an object of a kind it counts is added, changes
its usage, or is deleted in its namespace (replenishment), and every `resync` seconds. Pods,
services, claims, configmaps, secrets, replication controllers and quotas come from informers;
the other `count/<resource>.<group>` kinds are listed from the API at each sync (so their
deletions show at the next resync). A status is written with the resourceVersion it was
computed from: when admission charged the quota meanwhile, the write conflicts and the key is
retried on fresh data.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, quota, resources
from tinykube.client.controller import Controller, split_key
from tinykube.client.informer import Informer, namespace_index
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]

RESYNC = 30.0  # seconds between full recomputations of a quota (upstream: 5 minutes)
NAMESPACE = "namespace"
# What informers watch: the kinds the default evaluators count.
INFORMED = (("", "pods"), ("", "services"), ("", "persistentvolumeclaims"),
            ("", "configmaps"), ("", "secrets"), ("", "replicationcontrollers"),
            ("", "resourcequotas"))


def needs_sync(old: Obj | None, new: Obj) -> bool:
    """Whether a quota event calls for a recomputation: a new quota, a changed `spec.hard`, a
    `status.hard` behind the spec, or a hard name without its used (upstream's `addQuota`)."""
    hard = _values((new.get("spec") or {}).get("hard"))
    status = new.get("status") or {}
    if old is None or hard != _values((old.get("spec") or {}).get("hard")):
        return True
    return hard != _values(status.get("hard")) or bool(set(hard) - set(status.get("used") or {}))


def _values(raw: object) -> dict[str, Fraction]:
    return {name: qty.value for name, qty in quota.parse_list(raw).items()}


def served(group: str, plural: str) -> resources.Resource | None:
    """The preferred-version resource of a (group, plural), if tinykube serves it."""
    for version in resources.GROUP_VERSIONS.get(group, []):
        res = resources.lookup(group, version, plural)
        if res is not None and res.namespaced and res.stored:
            return res
    return None


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"

    def __init__(self, client: RESTClient, *, resync: float = RESYNC,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("", "v1", "resourcequotas")
        self.informed: dict[tuple[str, str], Informer] = {
            (group, plural): shared_informer(client, resources.must(group, "v1", plural))
            for group, plural in INFORMED}
        self.quotas = self.informed[("", "resourcequotas")]
        super().__init__(client, list(self.informed.values()))
        self.resync = resync
        self.now = now or clocks.installed().utcnow
        for informer in self.informed.values():  # all first: a shared informer that has
            informer.cache.add_index(NAMESPACE, namespace_index)  # synced replays at once
        for pair, informer in self.informed.items():
            self._replenish_on(pair, informer)
        self.quotas.add_handlers(
            on_add=self.enqueue,
            on_update=lambda old, new: self.enqueue(new) if needs_sync(old, new) else None)

    def _replenish_on(self, pair: tuple[str, str], informer: Informer) -> None:
        evaluator = quota.evaluator_for(*pair)

        def changed(old: Obj, new: Obj) -> None:
            if not self._quota_keys(new):
                return  # most namespaces have no quota: skip the usage sums
            now = self.now()
            if evaluator.usage(old, now) != evaluator.usage(new, now):
                self._enqueue_namespace(new)
        informer.add_handlers(on_add=self._enqueue_namespace, on_update=changed,
                              on_delete=self._enqueue_namespace)

    def _quota_keys(self, obj: Obj) -> list[str]:
        """The keys of the quotas of `obj`'s namespace."""
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        return self.quotas.cache.index_keys(NAMESPACE, namespace)

    def _enqueue_namespace(self, obj: Obj) -> None:
        for key in self._quota_keys(obj):
            self.queue.add(key)

    async def _objects(self, namespace: str, pairs: Iterable[tuple[str, str]]
                       ) -> dict[tuple[str, str], list[Obj]]:
        """The objects of each counted kind in the namespace (a kind not served is left out)."""
        found: dict[tuple[str, str], list[Obj]] = {}
        for pair in pairs:
            informer = self.informed.get(pair)
            if informer is not None:
                found[pair] = list(informer.cache.by_index(NAMESPACE, namespace))
                continue
            res = served(*pair)
            if res is None:
                continue
            try:
                found[pair] = list((await self.client.list(res, namespace)).get("items") or [])
            except errors.APIError as exc:
                log.info("%s: cannot list %s in %s: %s", self.name, res.plural, namespace, exc)
        return found

    async def sync(self, key: str) -> None:
        cached = self.quotas.cache.get(key)
        if cached is None:
            return
        namespace, _name = split_key(key)
        hard = (cached.get("spec") or {}).get("hard") or {}
        objects = await self._objects(namespace, quota.tracked(hard))
        status = quota.quota_status(cached, objects, self.now())
        self.queue.add_after(key, self.resync)
        if status == {k: (cached.get("status") or {}).get(k) or {} for k in ("hard", "used")}:
            return
        body = {**cached, "status": {**(cached.get("status") or {}), **status}}
        try:
            await self.client.update(self.res, body, subresource="status")
        except errors.NotFound:
            return  # deleted meanwhile
