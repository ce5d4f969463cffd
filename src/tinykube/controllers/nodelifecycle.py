"""The node lifecycle controller: nodes that stop reporting, their taints, and taint eviction.

As upstream's pkg/controller/nodelifecycle and its taint eviction (the NoExecute taint
manager), level-triggered on one key per Node:

1. Gather: the Node, its Lease in `kube-node-lease` and the pods bound to it.
2. Decide (pure):
   - `node_health(node, lease, now, grace)`: the node was last heard of at the later of its
     Lease's `renewTime` and its Ready condition's `lastHeartbeatTime` (its creation, if
     never). Past `grace` (`--node-monitor-grace-period`, 40 s) every kubelet condition
     (Ready, MemoryPressure, DiskPressure, PIDPressure) becomes `Unknown` with reason
     `NodeStatusUnknown` and message `Kubelet stopped posting node status.` (a condition it
     never posted: `NodeStatusNeverUpdated`, `Kubelet never posted node status.`).
   - `node_taints(node)`: Ready `Unknown` wants `node.kubernetes.io/unreachable`, Ready
     `False` wants `node.kubernetes.io/not-ready`, each as NoSchedule and NoExecute (with
     `timeAdded`); Ready `True` wants neither. Other taints are kept as they are.
   - `eviction(pod, taints, now)`: against the node's NoExecute taints a pod that does not
     tolerate one is evicted at once; one that tolerates all of them with the smallest
     `tolerationSeconds` (of the first toleration matching each taint; none: forever) is
     evicted that long after the taint was added (upstream counts from when it saw the
     taint; `timeAdded` is the same moment and survives a restart).
3. Apply: conditions through the Node's status, taints through its spec; pods of a node
   that is not Ready get Ready `False` (a Warning `NodeNotReady` event each, as upstream's
   MarkPodsNotReady); pods due for eviction get the `DisruptionTarget` condition, the
   `TaintManagerEviction` event `Marking for deletion Pod ns/name` and are deleted. The key
   comes back when the next grace period or eviction is due.

When the node agent renews its Lease again, the Ready condition it posts (`kubelet.agent`
re-posts its conditions when it finds them changed) clears the taints here.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources
from tinykube.api.clone import clone
from tinykube.api.meta import rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.replicaset import parse_time
from tinykube.controllers.scheduler import tolerates

log = logging.getLogger(__name__)
Obj = dict[str, Any]
GRACE_PERIOD = 40.0  # --node-monitor-grace-period
NODES = resources.must("", "v1", "nodes")
LEASES = resources.must("coordination.k8s.io", "v1", "leases")
PODS = resources.must("", "v1", "pods")
LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
# Ready's status -> the taint key it wants (upstream's NoSchedule and NoExecute passes)
READY_TAINT = {"Unknown": UNREACHABLE, "False": NOT_READY}
UNKNOWN = ("NodeStatusUnknown", "Kubelet stopped posting node status.")
NEVER = ("NodeStatusNeverUpdated", "Kubelet never posted node status.")


def _condition(obj: Mapping[str, Any], type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def last_heard(node: Mapping[str, Any], lease: Mapping[str, Any] | None) -> datetime.datetime:
    """The latest sign of life: lease renewal, Ready heartbeat, or else the creation."""
    times = [parse_time((lease or {}).get("spec", {}).get("renewTime")),
             parse_time((_condition(node, "Ready") or {}).get("lastHeartbeatTime"))]
    found = [t for t in times if t is not None]
    if found:
        return max(found)
    return parse_time(node["metadata"].get("creationTimestamp")) or \
        datetime.datetime.now(datetime.UTC)


def node_health(node: Mapping[str, Any], lease: Mapping[str, Any] | None,
                now: datetime.datetime, grace: float) -> tuple[list[Obj] | None, float]:
    """(the conditions to write, or None if none change; seconds until the next check)."""
    left = grace - (now - last_heard(node, lease)).total_seconds()
    if left >= 0:
        return None, left + 0.001
    stamp = rfc3339(now)
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    changed = False
    for type_ in KUBELET_CONDITIONS:
        cond = next((c for c in conditions if c.get("type") == type_), None)
        if cond is None:
            created = node["metadata"].get("creationTimestamp") or stamp
            conditions.append({"type": type_, "status": "Unknown", "reason": NEVER[0],
                               "message": NEVER[1], "lastHeartbeatTime": created,
                               "lastTransitionTime": stamp})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason=UNKNOWN[0], message=UNKNOWN[1],
                        lastTransitionTime=stamp)
            changed = True
    return (conditions if changed else None), grace


def node_taints(node: Mapping[str, Any], conditions: Sequence[Mapping[str, Any]],
                now: datetime.datetime) -> list[Obj] | None:
    """The node's taints for its Ready status, or None if they stay as they are."""
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:  # a node that has not posted yet: its grace period is still running
        return None
    wanted = READY_TAINT.get(str(ready))
    current = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
    kept = [t for t in current if t.get("key") not in READY_TAINT.values() or
            (t.get("key") == wanted and t.get("effect") in ("NoSchedule", "NoExecute"))]
    if wanted is not None:
        for effect in ("NoSchedule", "NoExecute"):
            if not any(t.get("key") == wanted and t.get("effect") == effect for t in kept):
                kept.append({"key": wanted, "effect": effect, "timeAdded": rfc3339(now)})
    return None if kept == current else kept


def _seconds(toleration: Mapping[str, Any]) -> int | None:
    value = toleration.get("tolerationSeconds")
    return int(value) if isinstance(value, int) else None


def eviction(pod: Mapping[str, Any], taints: Sequence[Mapping[str, Any]],
             now: datetime.datetime) -> float | None:
    """Seconds until the pod is evicted for the node's NoExecute taints (<= 0: now);
    None if it never is."""
    no_execute = [t for t in taints if t.get("effect") == "NoExecute"]
    if not no_execute:
        return None
    tolerations = list((pod.get("spec") or {}).get("tolerations") or [])
    used = []
    for taint in no_execute:
        match = next((t for t in tolerations if tolerates([t], taint)), None)
        if match is None:
            return 0.0
        used.append(match)
    limits = [s for s in map(_seconds, used) if s is not None]
    if not limits:
        return None
    since = min(parse_time(t.get("timeAdded")) or now for t in no_execute)
    return max(0, min(limits)) - (now - since).total_seconds()


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return (_condition(pod, "Ready") or {}).get("status") == "True"


@dataclasses.dataclass
class NodePlan:
    conditions: list[Obj] | None  # the node's new conditions, if they change
    taints: list[Obj] | None  # the node's new taints, if they change
    ready: str  # the Ready status after the change
    recheck: float  # seconds until the key is due again
    evict: list[Obj] = dataclasses.field(default_factory=list)
    not_ready: list[Obj] = dataclasses.field(default_factory=list)  # pods to mark


def plan(node: Mapping[str, Any], lease: Mapping[str, Any] | None,
         pods: Sequence[Mapping[str, Any]], now: datetime.datetime, grace: float) -> NodePlan:
    """The whole decision for one node."""
    conditions, recheck = node_health(node, lease, now, grace)
    after = conditions if conditions is not None else \
        list((node.get("status") or {}).get("conditions") or [])
    ready = next((str(c.get("status")) for c in after if c.get("type") == "Ready"), "")
    taints = node_taints(node, after, now)
    result = NodePlan(conditions, taints, ready, recheck)
    effective = taints if taints is not None else (node.get("spec") or {}).get("taints") or []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if ready not in ("True", "") and pod_ready(pod):
            result.not_ready.append(dict(pod))
        due = eviction(pod, effective, now)
        if due is None:
            continue
        if due <= 0:
            result.evict.append(dict(pod))
        else:
            result.recheck = min(result.recheck, due + 0.001)
    return result


def _node_of(pod: Mapping[str, Any]) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


class NodeLifecycleController(Controller):
    name = "node-lifecycle-controller"

    def __init__(self, client: RESTClient, *, grace_period: float = GRACE_PERIOD,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.nodes = shared_informer(client, NODES)
        self.leases = shared_informer(client, LEASES, namespace=LEASE_NAMESPACE)
        self.pods = shared_informer(client, PODS)
        super().__init__(client, [self.nodes, self.leases, self.pods])
        self.pods.cache.add_index("nodeName", _node_of)
        self.grace_period = grace_period
        self.now = now or clocks.installed().utcnow
        self.recorder = events.Recorder(client, self.name)
        self.nodes.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.leases.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n))

    def _on_pod(self, pod: Mapping[str, Any]) -> None:
        """A pod matters only on a node that is not Ready or has a NoExecute taint (a burst
        of pod events on healthy nodes costs nothing)."""
        for name in _node_of(pod):
            node = self.nodes.cache.get(name)
            if node is None:
                continue
            taints = (node.get("spec") or {}).get("taints") or []
            if (_condition(node, "Ready") or {}).get("status") != "True" or \
                    any(t.get("effect") == "NoExecute" for t in taints):
                self.queue.add(name)

    def enqueue(self, obj: Mapping[str, Any]) -> None:
        self.queue.add(str(obj["metadata"]["name"]))  # a node's name or its lease's

    async def sync(self, key: str) -> None:
        node = self.nodes.cache.get(key)
        if node is None:
            return
        lease = self.leases.cache.get(f"{LEASE_NAMESPACE}/{key}")
        pods = self.pods.cache.by_index("nodeName", key)
        now = self.now()
        decided = plan(node, lease, pods, now, self.grace_period)
        if decided.conditions is not None:
            log.info("%s: node %s stopped posting status; marking it %s", self.name, key,
                     decided.ready)
            await self.client.patch(NODES, key, {"status": {"conditions": decided.conditions}},
                                    patch_type="merge", subresource="status")
            if decided.ready not in ("True", ""):
                await self.recorder.event(node, "Normal", "NodeNotReady",
                                          f"Node {key} status is now: NodeNotReady")
        if decided.taints is not None:
            await self.client.patch(NODES, key, {"spec": {"taints": decided.taints}},
                                    patch_type="merge")
        for pod in decided.not_ready:
            await self._mark_not_ready(pod, now)
        for pod in decided.evict:
            await self._evict(pod, now)
        self.queue.add_after(key, decided.recheck)

    async def _mark_not_ready(self, pod: Obj, now: datetime.datetime) -> None:
        meta = pod["metadata"]
        conditions = clone((pod.get("status") or {}).get("conditions") or [])
        for cond in conditions:
            if cond.get("type") == "Ready":
                cond.update(status="False", lastTransitionTime=rfc3339(now))
        try:
            await self.client.patch(PODS, meta["name"], {"status": {"conditions": conditions}},
                                    meta["namespace"], patch_type="merge",
                                    subresource="status")
        except errors.NotFound:
            return
        await self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _evict(self, pod: Obj, now: datetime.datetime) -> None:
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        log.info("%s: evicting pod %s for its node's NoExecute taints", self.name, key)
        await self.recorder.event(pod, "Normal", "TaintManagerEviction",
                                  f"Marking for deletion Pod {key}")
        conditions = [c for c in clone((pod.get("status") or {}).get("conditions") or [])
                      if c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True",
                           "reason": "DeletionByTaintManager",
                           "message": "Taint manager: deleting due to NoExecute taint",
                           "lastTransitionTime": rfc3339(now)})
        try:
            await self.client.patch(PODS, meta["name"], {"status": {"conditions": conditions}},
                                    meta["namespace"], patch_type="merge",
                                    subresource="status")
            await self.client.delete(PODS, meta["name"], meta["namespace"],
                                     preconditions={"uid": meta.get("uid")})
        except (errors.NotFound, errors.Conflict):
            return
