"""The ReplicaSet controller: keep `spec.replicas` pods from the template alive.

Gather / decide / apply, as in upstream's pkg/controller/replicaset:

1. Gather: the ReplicaSet from its informer, and its pods from the pod informer (indexed by the
   uid of their controller ownerReference), keeping only active ones (not terminating, not
   Succeeded/Failed) that match the selector.
2. Decide (pure): `diff_replicas(replicas, pods)` says how many pods to create, or which pods to
   delete. Deletion order is upstream's ranking, simplified: unscheduled before scheduled,
   Pending before Unknown before Running, not ready before ready, then newest first.
   `compute_status(rs, pods, now)` gives the status.
3. Apply: creates run in slow-start batches (1, 2, 4, ... as upstream's `slowStartBatch`, so a
   broken template fails once, not 500 times), deletes in one batch; each write records an event
   (`SuccessfulCreate` "Created pod: x", `SuccessfulDelete` "Deleted pod: x").

Expectations. The pod informer shows our own creates and deletes a little later than the API
answered them; syncing in between would create or delete twice. `Expectations` remembers the
pod names written per ReplicaSet, and `sync` does not scale again until the cache shows every
created pod and every deleted pod gone or terminating (or `ttl` has passed, so a lost event
cannot wedge a ReplicaSet). Status is still written meanwhile.

`minReadySeconds`: a pod is available once it has been Ready that long (by its Ready
condition's lastTransitionTime); the key is re-queued for when the next pod becomes available.
Orphan adoption is not done: pods are only ever counted through their controller reference.

ReplicationControllers run through the same code, as upstream's RC manager wraps the
ReplicaSet controller: an RC is a ReplicaSet whose selector is a plain label map.
`ReplicationControllerController` only names its resource and turns that map into a
LabelSelector (`label_selector`); pods, expectations, status and events are shared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources, selectors
from tinykube.api.clone import clone
from tinykube.api.meta import owner_reference
from tinykube.client import events
from tinykube.client.controller import Controller, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Pod = Mapping[str, Any]

TEMPLATE_HASH_LABEL = "pod-template-hash"
CONTROLLER_INDEX = "controller-uid"
BURST = 500  # at most this many pod creations or deletions per sync (upstream's burstReplicas)
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


# --- pod helpers ------------------------------------------------------------------------------

def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with `controller: true`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def controller_uid_index(obj: Mapping[str, Any]) -> list[str]:
    """Index function: the uid of the object's controller (none if it has no controller)."""
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def is_active(pod: Pod) -> bool:
    """Counts towards replicas: not terminating and not finished."""
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _ready_condition(pod: Pod) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def is_ready(pod: Pod) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def available_in(pod: Pod, min_ready_seconds: int, now: datetime.datetime) -> float | None:
    """Seconds until `pod` is available: 0 if it is, None if it is not even ready."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, min_ready_seconds - (now - since).total_seconds())


# --- decide -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Diff:
    """How to reach `spec.replicas`: create this many pods, or delete these pods."""

    create: int = 0
    delete: tuple[str, ...] = ()


def deletion_order(pods: Sequence[Pod]) -> list[Pod]:
    """Pods ranked for deletion, first to go first (upstream's ActivePodsWithRanks, simplified)."""
    newest_first = sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                               p["metadata"]["name"]), reverse=True)
    return sorted(newest_first, key=lambda p: (
        bool((p.get("spec") or {}).get("nodeName")),
        _PHASE_RANK.get((p.get("status") or {}).get("phase", "Pending"), 0),
        is_ready(p),
    ))


def diff_replicas(replicas: int, pods: Sequence[Pod]) -> Diff:
    """What to do about `pods` (the active ones) to have `replicas`; at most BURST at once."""
    missing = replicas - len(pods)
    if missing > 0:
        return Diff(create=min(missing, BURST))
    if missing < 0:
        doomed = deletion_order(pods)[:min(-missing, BURST)]
        return Diff(delete=tuple(p["metadata"]["name"] for p in doomed))
    return Diff()


def new_pod(rs: Mapping[str, Any]) -> Obj:
    """A pod from the ReplicaSet's template, named `<rs>-<random>` by the API server."""
    template = rs["spec"].get("template") or {}
    template_meta = template.get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    rs_hash = (rs["metadata"].get("labels") or {}).get(TEMPLATE_HASH_LABEL)
    if rs_hash and TEMPLATE_HASH_LABEL not in labels:
        labels[TEMPLATE_HASH_LABEL] = rs_hash
    meta: Obj = {"generateName": f"{rs['metadata']['name']}-",
                 "namespace": rs["metadata"]["namespace"], "labels": labels,
                 "ownerReferences": [owner_reference(rs)]}
    if template_meta.get("annotations"):
        meta["annotations"] = clone(template_meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": clone(template.get("spec") or {})}


def compute_status(rs: Mapping[str, Any], pods: Sequence[Pod], now: datetime.datetime) -> Obj:
    """The status of `rs` given its active pods (conditions are kept as they are)."""
    min_ready = int(rs["spec"].get("minReadySeconds") or 0)
    template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels")
    template_selector = selectors.from_label_selector({"matchLabels": template_labels or {}})
    status: Obj = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if selectors.match_labels(
            template_selector, p["metadata"].get("labels"))),
        "readyReplicas": sum(1 for p in pods if is_ready(p)),
        "availableReplicas": sum(1 for p in pods if available_in(p, min_ready, now) == 0),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    if (rs.get("status") or {}).get("conditions"):
        status["conditions"] = rs["status"]["conditions"]
    return status


def next_available_in(rs: Mapping[str, Any], pods: Sequence[Pod],
                      now: datetime.datetime) -> float | None:
    """Seconds until the next ready-but-not-yet-available pod becomes available."""
    min_ready = int(rs["spec"].get("minReadySeconds") or 0)
    waits = [w for p in pods if (w := available_in(p, min_ready, now))]
    return min(waits) if waits else None


# --- expectations -----------------------------------------------------------------------------

class Expectations:
    """Pod writes per ReplicaSet key that the pod informer has not shown yet."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, ttl: float = 30.0) -> None:
        self.clock = clock
        self.ttl = ttl
        # rs key -> (pod cache keys created, pod cache keys deleted, when)
        self._pending: dict[str, tuple[set[str], set[str], float]] = {}

    def __repr__(self) -> str:
        return f"<Expectations keys={len(self._pending)}>"

    def expect(self, key: str, *, created: Iterable[str], deleted: Iterable[str]) -> None:
        """Remember pod keys (`ns/name`) this sync created and deleted."""
        created, deleted = set(created), set(deleted)
        if created or deleted:
            self._pending[key] = (created, deleted, self.clock())

    def satisfied(self, key: str, pod_cache: Callable[[str], Pod | None]) -> bool:
        """True once the cache shows every expected write (or the expectation expired)."""
        if key not in self._pending:
            return True
        created, deleted, at = self._pending[key]
        created = {k for k in created if pod_cache(k) is None}
        deleted = {k for k in deleted if (p := pod_cache(k)) is not None and is_active(p)}
        if (not created and not deleted) or self.clock() - at > self.ttl:
            del self._pending[key]
            return True
        self._pending[key] = (created, deleted, at)
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)


# --- the controller ---------------------------------------------------------------------------

class ReplicaSetController(Controller):
    name = "replicaset-controller"
    resource = ("apps", "v1", "replicasets")

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must(*self.resource)
        self.pods_res = resources.must("", "v1", "pods")
        self.sets = shared_informer(client, self.res)
        self.pods = shared_informer(client, self.pods_res)
        self.pods.cache.add_index(CONTROLLER_INDEX, controller_uid_index)
        super().__init__(client, [self.sets, self.pods])
        self.now = now or clocks.installed().utcnow  # injected in tests
        self.expectations = Expectations()
        self.recorder = events.Recorder(client, self.name)
        self.sets.add_handlers(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self.enqueue)
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _old, new: self._on_pod(new),
                               on_delete=self._on_pod)

    def _on_pod(self, pod: Pod) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == self.res.kind:
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    @staticmethod
    def label_selector(rs: Mapping[str, Any]) -> Any:
        """The object's pod selector as a LabelSelector."""
        return rs["spec"].get("selector")

    def active_pods(self, rs: Mapping[str, Any]) -> list[Pod]:
        """Active pods controlled by `rs` that match its selector."""
        selector = selectors.from_label_selector(self.label_selector(rs))
        return [p for p in self.pods.cache.by_index(CONTROLLER_INDEX, rs["metadata"]["uid"])
                if is_active(p) and selectors.match_labels(selector, p["metadata"].get("labels"))]

    async def sync(self, key: str) -> None:
        rs = self.sets.cache.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        pods = self.active_pods(rs)
        if rs["metadata"].get("deletionTimestamp"):
            pass  # being deleted: leave the pods to the garbage collector
        elif not self.expectations.satisfied(key, self.pods.cache.get):
            self.queue.add_after(key, self.expectations.ttl)  # in case an event was lost
        else:
            diff = diff_replicas(int(rs["spec"].get("replicas", 1)), pods)
            created = await self._create_pods(rs, diff.create)
            deleted = await self._delete_pods(rs, diff.delete)
            namespace = rs["metadata"]["namespace"]
            self.expectations.expect(key, created=[f"{namespace}/{n}" for n in created],
                                     deleted=[f"{namespace}/{n}" for n in deleted])
            if len(created) < diff.create or len(deleted) < len(diff.delete):
                self.queue.add_rate_limited(key)
        await self._write_status(rs, pods)

    async def _create_pods(self, rs: Mapping[str, Any], count: int) -> list[str]:
        """Create `count` pods in batches of 1, 2, 4, ...; stop after a batch with a failure."""
        created: list[str] = []
        batch = 1
        while len(created) < count:
            size = min(batch, count - len(created))
            results = await asyncio.gather(*(self._create_pod(rs) for _ in range(size)))
            created += [name for name in results if name is not None]
            if None in results:
                break
            batch *= 2
        return created

    async def _create_pod(self, rs: Mapping[str, Any]) -> str | None:
        try:
            pod = await self.client.create(self.pods_res, new_pod(rs), rs["metadata"]["namespace"])
        except errors.APIError as exc:
            log.info("%s: creating a pod for %s failed: %s", self.name, object_key(rs), exc)
            await self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {exc}")
            return None
        name = str(pod["metadata"]["name"])
        await self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return name

    async def _delete_pods(self, rs: Mapping[str, Any], names: Sequence[str]) -> list[str]:
        results = await asyncio.gather(*(self._delete_pod(rs, name) for name in names))
        return [name for name, ok in zip(names, results, strict=True) if ok]

    async def _delete_pod(self, rs: Mapping[str, Any], name: str) -> bool:
        try:
            await self.client.delete(self.pods_res, name, rs["metadata"]["namespace"])
        except errors.NotFound:
            return True
        except errors.APIError as exc:
            log.info("%s: deleting pod %s failed: %s", self.name, name, exc)
            return False
        await self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return True

    async def _write_status(self, rs: Mapping[str, Any], pods: Sequence[Pod]) -> None:
        now = self.now()
        status = compute_status(rs, pods, now)
        if any((rs.get("status") or {}).get(k) != v for k, v in status.items()):
            await self.client.patch(self.res, rs["metadata"]["name"], {"status": status},
                                    rs["metadata"]["namespace"], patch_type="merge",
                                    subresource="status")
        wait = next_available_in(rs, pods, now)
        if wait is not None:
            self.queue.add_after(object_key(rs), wait)


class ReplicationControllerController(ReplicaSetController):
    """ReplicationControllers: the ReplicaSet logic with a map selector."""

    name = "replication-controller"
    resource = ("", "v1", "replicationcontrollers")

    @staticmethod
    def label_selector(rs: Mapping[str, Any]) -> Any:
        return {"matchLabels": rs["spec"].get("selector") or {}}
