"""The disruption controller: the status of every PodDisruptionBudget.

Gather / decide / apply, as upstream's pkg/controller/disruption:

1. Gather: the budget, the pods of its namespace its selector matches (`api.disruption.selects`:
   an empty selector matches none), and the scalable controllers (ReplicaSets, Deployments,
   ReplicationControllers, StatefulSets) those pods belong to.
2. Decide (pure, `compute_status(pdb, pods, controllers, now)`):
   - expected pods and desired healthy: `minAvailable` as an int is the desired count over the
     pods found; a percentage, or `maxUnavailable` (int or percent), is taken of the summed
     scale of the pods' controllers (`spec.replicas`; a ReplicaSet of a Deployment counts as the
     Deployment), percentages rounded up. Pods without a controller are "unmanaged": left out
     of the scale, with upstream's `UnmanagedPods` warning. A pod whose controller is not a
     scalable kind fails the sync: `disruptionsAllowed` 0 and `DisruptionAllowed=False` with
     reason `SyncFailed` (upstream's failSafe).
   - current healthy: pods that are Ready, not terminating and not in `disruptedPods` (pods
     the eviction subresource has let go and the controller should not count; an entry is
     dropped once its pod is terminating or gone, or after 2 minutes, upstream's
     DeletionTimeout; the key is re-queued for the next expiry).
   - `disruptionsAllowed` = current healthy - desired healthy, at least 0 (0 when no pods are
     expected); `observedGeneration`; the `DisruptionAllowed` condition (`SufficientPods` /
     `InsufficientPods`).
3. Apply: the status through the status subresource when it changed; events `NoPods` and
   `UnmanagedPods` as upstream.

Pod events re-queue the budgets that select the pod; controller events re-queue every budget of
their namespace (a scale change moves the expected count).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import disruption, resources
from tinykube.api.clone import clone
from tinykube.client import events
from tinykube.client.controller import Controller, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.replicaset import controller_ref, parse_time

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DELETION_TIMEOUT = datetime.timedelta(minutes=2)
SCALABLE = ("ReplicaSet", "Deployment", "ReplicationController", "StatefulSet")


class SyncError(Exception):
    """The expected pod count cannot be worked out (upstream's failSafe)."""


def scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def expected_scale(pods: Sequence[Mapping[str, Any]],
                   controllers: Mapping[str, Mapping[str, Any]]) -> tuple[int, list[str]]:
    """The summed scale of the pods' controllers, and the names of pods with no controller."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = controller_ref(pod)
        if ref is None:
            unmanaged.append(pod["metadata"]["name"])
            continue
        owner = controllers.get(str(ref.get("uid")))
        if owner is not None and owner.get("kind") == "ReplicaSet":
            parent = controller_ref(owner)
            if parent is not None and parent.get("kind") == "Deployment":
                owner = controllers.get(str(parent.get("uid")))
        if owner is None or owner.get("kind") not in SCALABLE:
            raise SyncError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        scales[owner["metadata"]["uid"]] = int((owner.get("spec") or {}).get("replicas", 1))
    return sum(scales.values()), unmanaged


def expected_and_desired(
        pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
        controllers: Mapping[str, Mapping[str, Any]]) -> tuple[int, int, list[str]]:
    """(expected pods, desired healthy, unmanaged pod names), upstream's getExpectedPodCount."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        expected, unmanaged = expected_scale(pods, controllers)
        desired = max(0, expected - scaled(spec["maxUnavailable"], expected))
        return expected, desired, unmanaged
    minimum = spec.get("minAvailable")
    if isinstance(minimum, int):
        return len(pods), minimum, []
    if isinstance(minimum, str):
        expected, unmanaged = expected_scale(pods, controllers)
        return expected, scaled(minimum, expected), unmanaged
    return 0, 0, []


@dataclasses.dataclass
class Result:
    status: Obj
    recheck_after: float | None = None
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


def disrupted_pods(pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
                   now: datetime.datetime) -> tuple[dict[str, str], float | None]:
    """The `disruptedPods` entries still in force, and seconds until the first expires."""
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: float | None = None
    for pod in pods:
        name = pod["metadata"]["name"]
        since = parse_time(recorded.get(name))
        if since is None or pod["metadata"].get("deletionTimestamp"):
            continue
        left = (since + DELETION_TIMEOUT - now).total_seconds()
        if left > 0:
            kept[name] = recorded[name]
            recheck = left if recheck is None else min(recheck, left)
    return kept, recheck


def compute_status(pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
                   controllers: Mapping[str, Mapping[str, Any]],
                   now: datetime.datetime) -> Result:
    """The budget's status given the pods it selects and their controllers (by uid)."""
    old = clone(dict(pdb.get("status") or {}))
    result = Result(status=old)
    if not pods:
        result.events.append(("Normal", "NoPods", "No matching pods found"))
    try:
        expected, desired, unmanaged = expected_and_desired(pdb, pods, controllers)
    except SyncError as exc:
        result.events.append(("Warning", "CalculateExpectedPodCountFailed",
                              f"Failed to calculate the number of expected pods: {exc}"))
        old["disruptionsAllowed"] = 0
        disruption.set_allowed_condition(old, now, reason="SyncFailed", message=str(exc))
        return result
    if unmanaged:
        selector = (pdb.get("spec") or {}).get("selector")
        result.events.append(("Warning", "UnmanagedPods", (
            f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
            "unmanaged. As a result, the status of the PDB cannot be calculated correctly, "
            "which may result in undefined behavior. To account for these pods please set "
            '".spec.minAvailable" field of the PDB to an integer value.')))
    kept, result.recheck_after = disrupted_pods(pdb, pods, now)
    healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                  and p["metadata"]["name"] not in kept and disruption.is_ready(p))
    allowed = healthy - desired if expected > 0 else 0
    status: Obj = {"observedGeneration": pdb["metadata"].get("generation", 1),
                   "disruptionsAllowed": max(0, allowed), "currentHealthy": healthy,
                   "desiredHealthy": desired, "expectedPods": expected}
    if kept:
        status["disruptedPods"] = kept
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    disruption.set_allowed_condition(status, now)
    result.status = status
    return result


class DisruptionController(Controller):
    name = "disruption-controller"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("policy", "v1", "poddisruptionbudgets")
        self.budgets = shared_informer(client, self.res)
        self.pods = shared_informer(client, resources.must("", "v1", "pods"))
        self.owners = [shared_informer(client, resources.must(*r)) for r in (
            ("apps", "v1", "replicasets"), ("apps", "v1", "deployments"),
            ("", "v1", "replicationcontrollers"), ("apps", "v1", "statefulsets"))]
        super().__init__(client, [self.budgets, self.pods, *self.owners])
        self.now = now or clocks.installed().utcnow
        self.recorder = events.Recorder(client, "controllermanager")
        self.budgets.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                                  on_delete=self.enqueue)
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_pod)
        for informer in self.owners:
            informer.add_handlers(on_add=self._on_owner,
                                  on_update=lambda _o, n: self._on_owner(n),
                                  on_delete=self._on_owner)

    def _on_pod(self, pod: Mapping[str, Any]) -> None:
        for pdb in self.budgets.cache.list():
            if disruption.selects(pdb, pod):
                self.enqueue(pdb)

    def _on_owner(self, owner: Mapping[str, Any]) -> None:
        namespace = owner["metadata"].get("namespace")
        for pdb in self.budgets.cache.list():
            if pdb["metadata"].get("namespace") == namespace:
                self.enqueue(pdb)

    def _controllers(self, namespace: str) -> dict[str, Mapping[str, Any]]:
        return {o["metadata"]["uid"]: o for informer in self.owners
                for o in informer.cache.list() if o["metadata"].get("namespace") == namespace}

    async def sync(self, key: str) -> None:
        pdb = self.budgets.cache.get(key)
        if pdb is None or pdb["metadata"].get("deletionTimestamp"):
            return
        namespace = pdb["metadata"]["namespace"]
        pods = [p for p in self.pods.cache.list() if disruption.selects(pdb, p)]
        result = compute_status(pdb, pods, self._controllers(namespace), self.now())
        for kind, reason, message in result.events:
            await self.recorder.event(pdb, kind, reason, message)
        if result.status != (pdb.get("status") or {}):
            await self.client.update(self.res, {**pdb, "status": result.status}, namespace,
                                     subresource="status")
        if result.recheck_after is not None:
            self.queue.add_after(key, result.recheck_after)
        log.debug("%s: synced %s", self.name, object_key(pdb))
