"""The scheduler: bind each pending pod to a node it fits on.

`choose_node` is the whole decision, pure: filter the nodes (cordoned unless the pod tolerates
`node.kubernetes.io/unschedulable`, `nodeSelector`, required node affinity with
`In`/`NotIn`/`Exists`/`DoesNotExist` and `matchFields` on `metadata.name` (how DaemonSet pods are
pinned), `NoSchedule` taints against the pod's tolerations, nodes already running their
`allocatable.pods`, and kube's NodeResourcesFit: every resource the pod requests (`podresources`:
containers, sidecars, the init peak and overhead) must fit in the node's allocatable minus what
the pods placed there request), then spread by the number of pods each node already runs. When
nothing fits it returns kube-scheduler's message, every reason counted, e.g.
`0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.` or
`0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.`

Pods with PersistentVolumeClaims go through volume binding (`volume_scheduling`, kube's
VolumeBinding plugin): a claim that is missing, being deleted or unbound with an Immediate
class keeps the pod Pending with kube's PreFilter message (`0/3 nodes are available: pod has
unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is
not helpful for scheduling.`); bound volumes restrict the nodes to their `nodeAffinity`; for
claims whose class is `WaitForFirstConsumer` the scheduler picks a node, then pre-binds a free
static volume there (its `claimRef`) or writes the node into the claim's
`volume.kubernetes.io/selected-node` for the provisioner, and binds the pod only once every
claim is bound (each claim change re-queues the pods that name it), so the pod lands where its
volume is.

The controller around it watches pods and nodes, enqueues unbound pods, binds through the
`pods/<name>/binding` subresource, and for a pod that fits nowhere tries preemption
(`preemption`: lower-priority pods evicted, the node nominated), then sets `PodScheduled=False`
(reason `Unschedulable`) and records a `FailedScheduling` event with kube's PostFilter part
(`... preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.`).
Every node change re-queues the pending pods, so a pod is scheduled as soon as a node is
labelled to fit it, and a pod leaving a node re-queues the pods waiting for room.

Pod counts per node are kept incrementally from pod events, and a pod counts on its node from
the moment we bind it (upstream's "assumed" pods): recounting the cache per pod was quadratic,
and a burst of binds made before the cache showed them all landed on the same node.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube.api import errors, podresources, resources
from tinykube.api.meta import rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import preemption
from tinykube.controllers import volume_scheduling as vs
from tinykube.controllers import volumematch as vm
from tinykube.controllers.nodeaffinity import terms_match

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]

_REASON_TEXT = {
    "selector": "didn't match Pod's node affinity/selector",
    "unschedulable": "were unschedulable",
    "taint": "had untolerated taint",
    "notready": "had untolerated taint {node.kubernetes.io/not-ready: }",
    "full": "Too many pods",
    **vs.REASON_TEXT,
}
NodeFilter = Callable[[Obj], str | None]
Amounts = podresources.Amounts


# A cordoned node is tainted so (NodeUnschedulable plugin); DaemonSet pods tolerate it.
_UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def matches_selector(pod: Obj, node: Obj) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    spec = pod.get("spec", {})
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    fields = {"metadata.name": node.get("metadata", {}).get("name", "")}
    return terms_match(labels, required.get("nodeSelectorTerms") or [], fields)


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
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


def insufficient(wanted: Amounts, node: Obj, requested: Amounts) -> list[str]:
    """NodeResourcesFit: the resources the pod asks more of than the node has left, as
    kube-scheduler names them (`Insufficient cpu`); a resource the pod does not request never
    counts, a resource the node does not offer has none left."""
    allocatable = podresources.amounts(node.get("status", {}).get("allocatable"))
    return [f"Insufficient {name}" for name in sorted(wanted)
            if name != "pods" and wanted[name] > 0
            and wanted[name] > allocatable.get(name, 0) - requested.get(name, 0)]


def _reject_reasons(pod: Obj, node: Obj, running: int = 0, wanted: Amounts | None = None,
                    requested: Amounts | None = None) -> list[str]:
    tolerations = pod.get("spec", {}).get("tolerations") or []
    if node.get("spec", {}).get("unschedulable") and not tolerates(tolerations, _UNSCHEDULABLE):
        return ["unschedulable"]
    if not matches_selector(pod, node):
        return ["selector"]
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") == "NoSchedule" and not tolerates(tolerations, taint):
            return ["taint"]
    limit = _allocatable_pods(node)
    reasons = ["full"] if limit is not None and running >= limit else []
    return reasons + insufficient(wanted or {}, node, requested or {})


def _reason_text(reason: str, count: int) -> str:
    if reason.startswith("Insufficient "):
        return f"{count} {reason}"
    return f"{count} {'' if reason == 'full' else 'node(s) '}{_REASON_TEXT[reason]}"


def choose_node(pod: Obj, nodes: Sequence[Obj], pod_counts: Mapping[str, int],
                extra: NodeFilter | None = None,
                requested: Mapping[str, Amounts] | None = None) -> tuple[str | None, str]:
    """The node to bind `pod` to, or None and the FailedScheduling message; `extra` is one
    more filter (the volume binding's), run after the others; `requested` is what the pods
    already placed on each node request.

    Nodes are tried least loaded first (ties by name), so the usual pod, which fits anywhere,
    costs one filter instead of one per node; the reasons are gathered only when none fits."""
    wanted = podresources.pod_requests(pod)
    requested = requested or {}

    def load(node: Obj) -> tuple[int, str]:
        name = node["metadata"]["name"]
        return pod_counts.get(name, 0), name

    def reject(node: Obj) -> list[str]:
        name = node["metadata"]["name"]
        reasons = _reject_reasons(pod, node, pod_counts.get(name, 0), wanted,
                                  requested.get(name))
        if reasons or extra is None:
            return reasons
        reason = extra(node)
        return [reason] if reason else []

    for node in sorted(nodes, key=load):
        if not reject(node):
            return node["metadata"]["name"], ""
    reasons = collections.Counter(reason for node in nodes for reason in reject(node))
    if not nodes:
        return None, "no nodes available to schedule pods"
    parts = sorted(_reason_text(reason, count)
                   for reason, count in reasons.items())  # as upstream: counts included
    return None, f"0/{len(nodes)} nodes are available: {', '.join(parts)}."


def prefilter_message(nodes: int, error: str) -> str:
    """A PreFilter rejection as kube-scheduler words it (the pod fits no node whatever is
    preempted)."""
    return (f"0/{nodes} nodes are available: {error}. preemption: 0/{nodes} nodes are "
            f"available: {nodes} Preemption is not helpful for scheduling.")


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
        self.pvc_res = resources.must("", "v1", "persistentvolumeclaims")
        self.pv_res = resources.must("", "v1", "persistentvolumes")
        self.pods = shared_informer(client, self.pods_res)
        self.nodes = shared_informer(client, self.nodes_res)
        self.claims = shared_informer(client, self.pvc_res)
        self.volumes = shared_informer(client, self.pv_res)
        self.classes = shared_informer(client, resources.must("storage.k8s.io", "v1",
                                                              "storageclasses"))
        super().__init__(client, [self.pods, self.nodes, self.claims, self.volumes,
                                  self.classes])
        self.pods.cache.add_index(vm.CLAIMS_INDEX, vm.pod_claims_index)
        self.recorder = events.Recorder(client, "default-scheduler")
        self._placed: dict[str, tuple[str, Amounts]] = {}  # pod key -> node, its requests
        self._counts: collections.Counter[str] = collections.Counter()
        self._requested: dict[str, Amounts] = {}  # node -> what its placed pods request
        self._waiting: set[str] = set()  # unschedulable pods, retried when a pod leaves a node
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_pod_gone)
        self.nodes.add_handlers(on_add=lambda _n: self._requeue_pending(),
                                on_update=lambda _o, _n: self._requeue_pending())
        self.claims.add_handlers(on_add=self._on_claim, on_update=lambda _o, n: self._on_claim(n),
                                 on_delete=self._on_claim)
        self.volumes.add_handlers(on_add=lambda _v: self._requeue_waiting())
        self.classes.add_handlers(on_add=lambda _c: self._requeue_waiting())

    def _on_claim(self, pvc: Obj) -> None:
        for pod in self.pods.cache.by_index(vm.CLAIMS_INDEX, vm.claim_key(pvc)):
            if _is_pending_unbound(pod):
                self.enqueue(pod)

    def _requeue_waiting(self) -> None:
        """A new volume or class may unblock the pods that name claims."""
        for pod in self.pods.cache.list():
            if _is_pending_unbound(pod) and vm.claim_names(pod):
                self.enqueue(pod)

    def _on_pod(self, pod: Obj) -> None:
        node = pod.get("spec", {}).get("nodeName")
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            self._place(_key(pod), None)
        elif node:
            self._place(_key(pod), node, podresources.pod_requests(pod))
        # An unbound pod we just bound keeps its place: an older event must not undo it.
        if _is_pending_unbound(pod):
            self.enqueue(pod)

    def _on_pod_gone(self, pod: Obj) -> None:
        self._waiting.discard(_key(pod))
        self._place(_key(pod), None)

    def _place(self, key: str, node: str | None, wanted: Amounts | None = None) -> None:
        """Count pod `key`, which requests `wanted`, on `node` (None: on no node)."""
        old = self._placed.pop(key, None)
        if old is not None:
            self._counts[old[0]] -= 1
            self._charge(old[0], old[1], -1)
            if node != old[0]:
                self._retry_waiting()
        if node is not None:
            self._placed[key] = (node, wanted or {})
            self._counts[node] += 1
            self._charge(node, wanted or {}, 1)

    def _charge(self, node: str, wanted: Amounts, sign: int) -> None:
        total = self._requested.setdefault(node, {})
        for name, value in wanted.items():
            total[name] = total.get(name, 0) + sign * value

    def _retry_waiting(self) -> None:
        for key in self._waiting:
            self.queue.add(key)

    def _requeue_pending(self) -> None:
        for pod in self.pods.cache.list():
            self._on_pod(pod)

    async def sync(self, key: str) -> None:
        pod = self.pods.cache.get(key)
        if pod is None or not _is_pending_unbound(pod) or key in self._placed:
            return
        nodes = self.nodes.cache.list()
        state = self._pod_volumes(pod)
        if state is not None and state.error:
            await self._mark_unschedulable(pod, prefilter_message(len(nodes), state.error))
            return
        extra = None
        if state is not None:
            volumes, classes = self.volumes.cache.list(), self._classes()
            extra = lambda node: vs.node_reason(state, node, volumes, classes)  # noqa: E731
        node, message = choose_node(pod, nodes, self._counts, extra, self._requested)
        self._waiting.discard(key)
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if node is not None and state is not None and not state.ready:
            await self._reserve_volumes(state, node)
            return  # bound once its claims are: their changes re-queue it
        if node is not None:
            await self.client.create(
                self.pods_res, {"apiVersion": "v1", "kind": "Binding",
                                "metadata": {"name": name, "namespace": namespace},
                                "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                namespace, subresource_name=name, subresource="binding")
            self._place(key, node, podresources.pod_requests(pod))
            await self.recorder.event(pod, "Normal", "Scheduled",
                                      f"Successfully assigned {namespace}/{name} to {node}")
            return
        self._waiting.add(key)
        if message.startswith("0/"):
            message = await self._preempt(pod, nodes, message, extra)
        await self._mark_unschedulable(pod, message)

    def _pods_by_node(self) -> dict[str, list[Obj]]:
        by_node: dict[str, list[Obj]] = collections.defaultdict(list)
        for key, (node, _wanted) in self._placed.items():
            placed = self.pods.cache.get(key)
            if placed is not None:
                by_node[node].append(placed)
        return by_node

    async def _preempt(self, pod: Obj, nodes: Sequence[Obj], message: str,
                       extra: NodeFilter | None) -> str:
        """Preempt for `pod` if some node has victims (the FailedScheduling message stays the
        filters'), else the message with kube's PostFilter part."""
        by_node = self._pods_by_node()
        wanted = podresources.pod_requests(pod)

        def reasons(node: Obj, remaining: Sequence[Obj]) -> list[str]:
            requested: Amounts = {}
            for other in remaining:
                for resource, value in podresources.pod_requests(other).items():
                    requested[resource] = requested.get(resource, 0) + value
            found = _reject_reasons(pod, node, len(remaining), wanted, requested)
            if not found and extra is not None and (reason := extra(node)):
                found = [reason]
            return found

        now = {n["metadata"]["name"]: reasons(n, by_node.get(n["metadata"]["name"], []))
               for n in nodes}
        choice, why = preemption.choose(pod, nodes, now, by_node, reasons)
        if choice is None:
            return f"{message} preemption: {why}"
        await self._evict_victims(pod, choice)
        return message

    async def _evict_victims(self, pod: Obj, choice: preemption.Choice) -> None:
        condition = {"type": "DisruptionTarget", "status": "True",
                     "reason": "PreemptionByScheduler",
                     "message": "default-scheduler: preempting to accommodate a higher "
                                "priority pod", "lastTransitionTime": rfc3339()}
        for victim in choice.victims:
            meta = victim["metadata"]
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.client.patch(self.pods_res, meta["name"],
                                        {"status": {"conditions": [condition]}},
                                        meta["namespace"], patch_type="strategic",
                                        subresource="status")
                await self.client.delete(self.pods_res, meta["name"], meta["namespace"])
                await self.recorder.event(victim, "Normal", "Preempted",
                                          f"Preempted by pod {pod['metadata'].get('uid', '')} "
                                          f"on node {choice.node}")
        await self.client.patch(self.pods_res, pod["metadata"]["name"],
                                {"status": {"nominatedNodeName": choice.node}},
                                pod["metadata"]["namespace"], patch_type="merge",
                                subresource="status")

    def _classes(self) -> dict[str, Obj]:
        return {sc["metadata"]["name"]: sc for sc in self.classes.cache.list()}

    def _pod_volumes(self, pod: Obj) -> vs.PodVolumes | None:
        """The pod's claims sorted for volume binding; None if it names none."""
        if not vm.claim_names(pod):
            return None
        claims = {vm.claim_key(c): c for c in self.claims.cache.list()
                  if c["metadata"].get("namespace") == pod["metadata"].get("namespace")}
        volumes = {v["metadata"]["name"]: v for v in self.volumes.cache.list()}
        return vs.pod_volumes(pod, claims, volumes, self._classes())

    async def _reserve_volumes(self, state: vs.PodVolumes, node_name: str) -> None:
        """Pre-bind the chosen node's static volumes to the waiting claims, and name the node
        on the claims that are to be provisioned (kube's Reserve and PreBind)."""
        node = self.nodes.cache.get(node_name)
        plan = vs.node_plan(state, node, self.volumes.cache.list(), self._classes()) \
            if node is not None else None
        for pvc, pv in plan or []:
            if pv is not None and not vm.is_bound_to(pv, pvc):
                await self._prebind(pv, pvc)
            elif vm.annotations_of(pvc).get(vm.SELECTED_NODE) != node_name:
                await self.client.patch(self.pvc_res, pvc["metadata"]["name"], {"metadata": {
                    "annotations": {vm.SELECTED_NODE: node_name}}},
                    pvc["metadata"]["namespace"], patch_type="merge")

    async def _prebind(self, pv: Obj, pvc: Obj) -> None:
        meta = dict(pv["metadata"])
        meta["annotations"] = {**(meta.get("annotations") or {}), vm.BOUND_BY_CONTROLLER: "yes"}
        updated = {**pv, "metadata": meta, "spec": {**pv["spec"], "claimRef": vm.claim_ref(pvc)}}
        try:
            await self.client.update(self.pv_res, updated)
        except errors.Conflict:
            log.debug("volume %s changed while pre-binding it; retried on its event",
                      pv["metadata"]["name"])

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
