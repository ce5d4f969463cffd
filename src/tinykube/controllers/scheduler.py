"""The scheduler: bind each pending pod to a node it fits on.

`choose_node` is the whole decision, pure: filter the nodes (cordoned, `nodeSelector`, required
node affinity with `In`/`NotIn`/`Exists`/`DoesNotExist`, `NoSchedule` taints against the pod's
tolerations, nodes already running their `allocatable.pods`), then spread by the number of pods
each node already runs. When nothing fits it
returns kube-scheduler's message, e.g.
`0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.`

The controller around it watches pods and nodes, enqueues unbound pods, binds through the
`pods/<name>/binding` subresource, and for a pod that fits nowhere sets `PodScheduled=False`
(reason `Unschedulable`) and records a `FailedScheduling` event. Every node change re-queues the
pending pods, so a pod is scheduled as soon as a node is labelled to fit it.

Pod counts per node are kept incrementally from pod events, and a pod counts on its node from
the moment we bind it (upstream's "assumed" pods): recounting the cache per pod was quadratic,
and a burst of binds made before the cache showed them all landed on the same node.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.api import resources
from tinykube.api.meta import rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]

_REASON_TEXT = {
    "selector": "didn't match Pod's node affinity/selector",
    "unschedulable": "were unschedulable",
    "taint": "had untolerated taint",
    "notready": "had untolerated taint {node.kubernetes.io/not-ready: }",
    "full": "Too many pods",
}


def _match_expression(labels: Mapping[str, str], expr: Obj) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def matches_selector(pod: Obj, node: Obj) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    spec = pod.get("spec", {})
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(all(_match_expression(labels, e) for e in term.get("matchExpressions") or [])
               for term in terms)


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol["key"] == taint["key"]):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _allocatable_pods(node: Obj) -> int | None:
    value = (node.get("status", {}).get("allocatable") or {}).get("pods")
    return int(value) if value is not None and str(value).isdigit() else None


def _reject_reason(pod: Obj, node: Obj, running: int = 0) -> str | None:
    if node.get("spec", {}).get("unschedulable"):
        return "unschedulable"
    if not matches_selector(pod, node):
        return "selector"
    tolerations = pod.get("spec", {}).get("tolerations") or []
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") == "NoSchedule" and not _tolerates(tolerations, taint):
            return "taint"
    limit = _allocatable_pods(node)
    if limit is not None and running >= limit:
        return "full"
    return None


def choose_node(pod: Obj, nodes: Sequence[Obj],
                pod_counts: Mapping[str, int]) -> tuple[str | None, str]:
    """The node to bind `pod` to, or None and the FailedScheduling message.

    Nodes are tried least loaded first (ties by name), so the usual pod, which fits anywhere,
    costs one filter instead of one per node; the reasons are gathered only when none fits."""
    def load(node: Obj) -> tuple[int, str]:
        name = node["metadata"]["name"]
        return pod_counts.get(name, 0), name

    for node in sorted(nodes, key=load):
        running, name = load(node)
        if _reject_reason(pod, node, running) is None:
            return name, ""
    reasons = collections.Counter(
        reason for node in nodes
        if (reason := _reject_reason(pod, node, pod_counts.get(node["metadata"]["name"], 0))))
    if not nodes:
        return None, "no nodes available to schedule pods"
    parts = sorted(f"{count} {'' if reason == 'full' else 'node(s) '}{_REASON_TEXT[reason]}"
                   for reason, count in reasons.items())  # as upstream: counts included
    return None, f"0/{len(nodes)} nodes are available: {', '.join(parts)}."


def _is_pending_unbound(pod: Obj) -> bool:
    return (not pod.get("spec", {}).get("nodeName")
            and not pod.get("metadata", {}).get("deletionTimestamp")
            and pod.get("spec", {}).get("schedulerName", "default-scheduler")
            == "default-scheduler"
            and pod.get("status", {}).get("phase", "Pending") == "Pending")


def _key(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


class Scheduler(Controller):
    """Binds pending pods; keys are pod keys `namespace/name`."""

    name = "scheduler"

    def __init__(self, client: RESTClient) -> None:
        self.pods_res = resources.must("", "v1", "pods")
        self.nodes_res = resources.must("", "v1", "nodes")
        self.pods = shared_informer(client, self.pods_res)
        self.nodes = shared_informer(client, self.nodes_res)
        super().__init__(client, [self.pods, self.nodes])
        self.recorder = events.Recorder(client, "default-scheduler")
        self._placed: dict[str, str] = {}  # pod key -> node, for pods that count on a node
        self._counts: collections.Counter[str] = collections.Counter()
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=lambda pod: self._place(_key(pod), None))
        self.nodes.add_handlers(on_add=lambda _n: self._requeue_pending(),
                                on_update=lambda _o, _n: self._requeue_pending())

    def _on_pod(self, pod: Obj) -> None:
        node = pod.get("spec", {}).get("nodeName")
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            self._place(_key(pod), None)
        elif node:
            self._place(_key(pod), node)
        # An unbound pod we just bound keeps its place: an older event must not undo it.
        if _is_pending_unbound(pod):
            self.enqueue(pod)

    def _place(self, key: str, node: str | None) -> None:
        """Count pod `key` on `node` (None: on no node)."""
        old = self._placed.pop(key, None)
        if old is not None:
            self._counts[old] -= 1
        if node is not None:
            self._placed[key] = node
            self._counts[node] += 1

    def _requeue_pending(self) -> None:
        for pod in self.pods.cache.list():
            self._on_pod(pod)

    async def sync(self, key: str) -> None:
        pod = self.pods.cache.get(key)
        if pod is None or not _is_pending_unbound(pod) or key in self._placed:
            return
        node, message = choose_node(pod, self.nodes.cache.list(), self._counts)
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if node is not None:
            await self.client.create(
                self.pods_res, {"apiVersion": "v1", "kind": "Binding",
                                "metadata": {"name": name, "namespace": namespace},
                                "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                namespace, subresource_name=name, subresource="binding")
            self._place(key, node)
            await self.recorder.event(pod, "Normal", "Scheduled",
                                      f"Successfully assigned {namespace}/{name} to {node}")
            return
        await self._mark_unschedulable(pod, message)

    async def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        conditions = pod.get("status", {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current and current.get("reason") == "Unschedulable" and \
                current.get("message") == message:
            return
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastProbeTime": None,
                     "lastTransitionTime": rfc3339()}
        await self.client.patch(self.pods_res, pod["metadata"]["name"],
                                {"status": {"conditions": [condition]}},
                                pod["metadata"]["namespace"], patch_type="strategic",
                                subresource="status")
        await self.recorder.event(pod, "Warning", "FailedScheduling", message)
