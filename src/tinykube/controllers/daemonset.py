"""The DaemonSet controller: one pod of the template on every node that should run it.

Gather / decide / apply, as upstream's pkg/controller/daemon:

1. Gather: the DaemonSet, every Node, the DaemonSet's pods (by controller ownerReference uid)
   and its ControllerRevisions.
2. Decide (pure, `reconcile(ds, nodes, pods, revisions, now)`):
   - Which nodes: `node_should_run` is upstream's `NodeShouldRunDaemonPod`: the template's
     `nodeSelector` and required node affinity must match the node, and its taints must be
     tolerated by the template's tolerations plus those the DaemonSet controller adds to every
     daemon pod (`DAEMON_TOLERATIONS`: not-ready/unreachable NoExecute, disk/memory/pid-pressure
     and unschedulable NoSchedule, network-unavailable for hostNetwork pods). A node with an
     untolerated NoSchedule taint gets no new pod but keeps a running one; an untolerated
     NoExecute taint, or a selector that no longer matches, makes its pods misscheduled and
     they are deleted.
   - Pods are pinned, as upstream's scheduler path does: the pod's required node affinity is
     replaced by one term `matchFields: metadata.name In [node]`, and the scheduler binds it.
     Labels: the template's, `controller-revision-hash` and `pod-template-generation`.
   - Revisions: the update revision is a hash of the template; a ControllerRevision
     `<ds>-<hash>` (data `{"spec": {"template": ...}}`, revision number) records each template,
     as `kubectl rollout history|undo` read them. Going back to an old template renumbers its
     revision as the newest (upstream's dedup); revisions beyond `revisionHistoryLimit` that no
     pod uses are deleted, oldest first.
   - Manage: a node that should run the pod and has no live one gets one; extra pods on a node
     are deleted (keeping the oldest, or in a surge the updated one); failed pods are deleted
     and recreated.
   - Rolling update (`updateStrategy.type` RollingUpdate, upstream's `rollingUpdate`): with
     `maxSurge` 0, old pods are deleted while the number of unavailable nodes stays within
     `maxUnavailable` (old pods that are not available go first, at no cost); with `maxSurge`,
     new pods are created beside available old pods within the surge budget and the old pod is
     deleted once its replacement is available. Percentages are of the desired number of nodes,
     rounded up; both 0 means maxUnavailable 1. `OnDelete` only replaces pods the user deleted.
   - Status, as upstream's `updateDaemonSetStatus`: desired/current/ready/available/updated
     counts over the nodes that should run the pod (judged on each node's oldest pod),
     misscheduled pods, `numberUnavailable`, `observedGeneration`; this is what
     `kubectl rollout status ds/x` reads.
3. Apply: create revision, pods, deletes, status; events `SuccessfulCreate`
   "Created pod: x" and `SuccessfulDelete` "Deleted pod: x" as upstream. As upstream, pod
   writes wait for the informer to show the previous sync's creates and deletes
   (`Expectations`, shared with the ReplicaSet controller), so a lagging cache never makes a
   second pod for a node or deletes twice.

Availability uses `minReadySeconds` and the time passed in (`now`), so tables of scenarios
run with an injected clock; the key is re-queued for when the next pod becomes available.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources, selectors
from tinykube.api.clone import clone
from tinykube.api.meta import owner_reference
from tinykube.client import events
from tinykube.client.controller import Controller, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.replicaset import (
    CONTROLLER_INDEX,
    Expectations,
    available_in,
    controller_ref,
    controller_uid_index,
    is_ready,
)
from tinykube.controllers.scheduler import matches_selector, tolerates
from tinykube.controllers.statefulset import template_hash

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Pod = Mapping[str, Any]

REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
NODE_NAME_FIELD = "metadata.name"


def _toleration(key: str, effect: str) -> Obj:
    return {"key": key, "operator": "Exists", "effect": effect}


# Upstream's util.AddOrUpdateDaemonPodTolerations, in its order.
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    _toleration("node.kubernetes.io/not-ready", "NoExecute"),
    _toleration("node.kubernetes.io/unreachable", "NoExecute"),
    _toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
    _toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
    _toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
    _toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
)
HOST_NETWORK_TOLERATION = _toleration("node.kubernetes.io/network-unavailable", "NoSchedule")


# --- pods for nodes ---------------------------------------------------------------------------

def daemon_pod_spec(template_spec: Mapping[str, Any]) -> Obj:
    """The template's pod spec with the tolerations every daemon pod gets."""
    spec = clone(dict(template_spec))
    tolerations = list(spec.get("tolerations") or [])
    extra = [*DAEMON_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])]
    for tol in extra:
        # AddOrUpdateTolerationInPod: a toleration with the same key and effect is replaced
        tolerations = [t for t in tolerations
                       if (t.get("key"), t.get("effect")) != (tol["key"], tol["effect"])]
        tolerations.append(dict(tol))
    spec["tolerations"] = tolerations
    return spec


def pin_to_node(spec: Obj, node: str) -> Obj:
    """Replace the required node affinity with `metadata.name In [node]` (upstream's
    ReplaceDaemonSetPodNodeNameNodeAffinity)."""
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [node]}]}]}
    return spec


def target_node(pod: Pod) -> str:
    """The node a daemon pod is on, or is pinned to before it is bound (GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
             .get("nodeSelectorTerms") or [])
    for term in terms:
        for field in term.get("matchFields") or []:
            if field.get("key") == NODE_NAME_FIELD and field.get("operator") == "In" and \
                    len(field.get("values") or []) == 1:
                return str(field["values"][0])
    return ""


def node_should_run(ds: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should run a new pod, should keep a running one) on `node` (NodeShouldRunDaemonPod)."""
    spec = daemon_pod_spec(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    if not matches_selector({"spec": spec}, node):
        return False, False
    tolerations = spec["tolerations"]
    taints = (node.get("spec") or {}).get("taints") or []
    if node.get("spec", {}).get("unschedulable"):
        taints = [*taints, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    untolerated = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")
                   and not tolerates(tolerations, t)]
    if any(t.get("effect") == "NoExecute" for t in untolerated):
        return False, False
    if untolerated:
        return False, True
    return True, True


def template_generation(ds: Mapping[str, Any]) -> str:
    annotations = ds["metadata"].get("annotations") or {}
    return str(annotations.get(TEMPLATE_GENERATION_ANNOTATION)
               or ds["metadata"].get("generation", 1))


def new_pod(ds: Mapping[str, Any], node: str, hash_: str) -> Obj:
    """A daemon pod for `node`, named `<ds>-<random>` by the API server."""
    template = (ds.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    labels = {**(template_meta.get("labels") or {}), REVISION_LABEL: hash_,
              GENERATION_LABEL: template_generation(ds)}
    meta: Obj = {"generateName": f"{ds['metadata']['name']}-",
                 "namespace": ds["metadata"]["namespace"], "labels": labels,
                 "ownerReferences": [owner_reference(ds)]}
    if template_meta.get("annotations"):
        meta["annotations"] = clone(template_meta["annotations"])
    spec = pin_to_node(daemon_pod_spec(template.get("spec") or {}), node)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


# --- revisions --------------------------------------------------------------------------------

def revision_hash(ds: Mapping[str, Any]) -> str:
    return template_hash((ds.get("spec") or {}).get("template") or {})


def new_revision(ds: Mapping[str, Any], hash_: str, number: int) -> Obj:
    template = clone((ds.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    labels = {**(((ds["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}),
              REVISION_LABEL: hash_}
    meta: Obj = {"name": f"{ds['metadata']['name']}-{hash_}",
                 "namespace": ds["metadata"]["namespace"], "labels": labels,
                 "ownerReferences": [owner_reference(ds)]}
    if ds["metadata"].get("annotations"):
        meta["annotations"] = clone(ds["metadata"]["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": {"spec": {"template": template}}, "revision": number}


# --- decide -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Plan:
    create_on: list[str] = dataclasses.field(default_factory=list)  # node names
    delete_pods: list[str] = dataclasses.field(default_factory=list)
    create_revision: Obj | None = None
    renumber_revision: tuple[str, int] | None = None  # (name, new revision number)
    delete_revisions: list[str] = dataclasses.field(default_factory=list)
    status: Obj = dataclasses.field(default_factory=dict)
    requeue_after: float | None = None


def _creation(pod: Pod) -> tuple[str, str]:
    return str(pod["metadata"].get("creationTimestamp", "")), str(pod["metadata"]["name"])


def is_updated(pod: Pod, hash_: str) -> bool:
    return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == hash_


def is_available(pod: Pod, min_ready: int, now: datetime.datetime) -> bool:
    return available_in(pod, min_ready, now) == 0


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of `total`, percentages rounded up (GetScaledValueFromIntOrPercent)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


def surge_and_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    rolling = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {})
    surge = scaled(rolling.get("maxSurge", 0), desired)
    unavailable = scaled(rolling.get("maxUnavailable", 1), desired)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _revisions(ds: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]], hash_: str,
               pods: Sequence[Pod], plan: Plan) -> None:
    name = f"{ds['metadata']['name']}-{hash_}"
    top = max((int(r.get("revision", 0)) for r in revisions), default=0)
    current = next((r for r in revisions if r["metadata"]["name"] == name), None)
    if current is None:
        plan.create_revision = new_revision(ds, hash_, top + 1)
    elif int(current.get("revision", 0)) < top:
        plan.renumber_revision = (name, top + 1)
    limit = int(ds["spec"].get("revisionHistoryLimit", 10))
    used = {(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in pods}
    old = sorted((r for r in revisions if r["metadata"]["name"] != name
                  and (r["metadata"].get("labels") or {}).get(REVISION_LABEL) not in used),
                 key=lambda r: int(r.get("revision", 0)))
    plan.delete_revisions = [r["metadata"]["name"] for r in old[:max(0, len(old) - limit)]]


def _manage(should_run: bool, keep: bool, pods: list[Pod], hash_: str, surge: bool,
            node: str, plan: Plan) -> None:
    """Upstream's podsShouldBeOnNode for one node."""
    live = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if (pod.get("status") or {}).get("phase") == "Failed":
            plan.delete_pods.append(pod["metadata"]["name"])
            continue
        live.append(pod)
    if not keep:
        plan.delete_pods += [p["metadata"]["name"] for p in live]
        return
    if not live:
        if should_run:
            plan.create_on.append(node)
        return
    live.sort(key=_creation)
    if surge:
        new = [p for p in live if is_updated(p, hash_)]
        old = [p for p in live if not is_updated(p, hash_)]
        extra = new[:-1] + old[1:]  # at most the newest updated pod and the oldest old one
    else:
        extra = live[1:]
    plan.delete_pods += [p["metadata"]["name"] for p in extra]


def _rolling_update(nodes: list[str], by_node: Mapping[str, list[Pod]], hash_: str,
                    max_surge: int, max_unavailable: int, min_ready: int,
                    now: datetime.datetime, plan: Plan) -> None:
    unavailable, surging = 0, 0
    replace_now: list[str] = []
    candidates: list[str] = []
    surge_now: list[str] = []
    surge_candidates: list[str] = []
    for node in nodes:
        live = sorted((p for p in by_node.get(node, []) if not p["metadata"].get(
            "deletionTimestamp") and (p.get("status") or {}).get("phase") != "Failed"),
            key=_creation)
        new = [p for p in live if is_updated(p, hash_)]
        old = [p for p in live if not is_updated(p, hash_)]
        if not live or len(new) > 1 or len(old) > 1:
            unavailable += 1  # the manage step creates or trims; count it unavailable
            continue
        if new and not old:
            if not is_available(new[0], min_ready, now):
                unavailable += 1
            continue
        if new and old:
            if max_surge and is_available(new[0], min_ready, now):
                plan.delete_pods.append(old[0]["metadata"]["name"])
            elif max_surge:
                surging += 1
            else:
                unavailable += 1
            continue
        old_available = is_available(old[0], min_ready, now)
        if max_surge:
            (surge_candidates if old_available else surge_now).append(node)
        elif not old_available:
            replace_now.append(old[0]["metadata"]["name"])
        else:
            candidates.append(old[0]["metadata"]["name"])
    if max_surge:
        room = max(0, min(max_surge - surging, len(surge_candidates)))
        plan.create_on += surge_now + surge_candidates[:room]
    else:
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        plan.delete_pods += replace_now + candidates[:room]


def reconcile(ds: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], pods: Sequence[Pod],
              revisions: Sequence[Mapping[str, Any]], now: datetime.datetime) -> Plan:
    """What to do next for `ds`, given every node, its pods and its revisions."""
    plan = Plan()
    hash_ = revision_hash(ds)
    _revisions(ds, revisions, hash_, pods, plan)
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    by_node: dict[str, list[Pod]] = {}
    for pod in pods:
        by_node.setdefault(target_node(pod), []).append(pod)
    strategy = (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
    fits = {n["metadata"]["name"]: node_should_run(ds, n) for n in nodes}
    desired = sum(1 for run, _keep in fits.values() if run)
    max_surge, max_unavailable = surge_and_unavailable(ds, desired)
    surge = strategy == "RollingUpdate" and max_surge > 0
    for node, (run, keep) in sorted(fits.items()):
        _manage(run, keep, by_node.get(node, []), hash_, surge, node, plan)
    for node, orphans in by_node.items():  # pods on nodes that are gone
        if node not in fits:
            plan.delete_pods += [p["metadata"]["name"] for p in orphans
                                 if not p["metadata"].get("deletionTimestamp")]
    if strategy == "RollingUpdate":
        running = sorted(n for n, (run, _k) in fits.items() if run)
        _rolling_update(running, by_node, hash_, max_surge, max_unavailable, min_ready, now,
                        plan)
    plan.delete_pods = list(dict.fromkeys(plan.delete_pods))
    plan.create_on = list(dict.fromkeys(plan.create_on))
    plan.status = compute_status(ds, fits, by_node, hash_, min_ready, now)
    waits = [w for p in pods if (w := available_in(p, min_ready, now))]
    plan.requeue_after = min(waits) if waits else None
    return plan


def compute_status(ds: Mapping[str, Any], fits: Mapping[str, tuple[bool, bool]],
                   by_node: Mapping[str, list[Pod]], hash_: str, min_ready: int,
                   now: datetime.datetime) -> Obj:
    """Upstream's updateDaemonSetStatus: each node is judged on its oldest pod."""
    desired = current = ready = available = updated = misscheduled = 0
    for node, (run, _keep) in fits.items():
        pods = sorted((p for p in by_node.get(node, [])
                       if not (p["metadata"].get("deletionTimestamp") and (
                           p.get("status") or {}).get("phase") in ("Succeeded", "Failed"))),
                      key=_creation)
        if not run:
            misscheduled += 1 if pods else 0
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        if is_ready(pods[0]):
            ready += 1
            available += 1 if is_available(pods[0], min_ready, now) else 0
        updated += 1 if is_updated(pods[0], hash_) else 0
    status: Obj = {
        "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired, "numberReady": ready,
        "observedGeneration": ds["metadata"].get("generation", 1),
        "updatedNumberScheduled": updated, "numberAvailable": available,
        "numberUnavailable": desired - available,
    }
    for key in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
        if not status[key]:
            del status[key]  # omitempty, as kube-apiserver shows them
    if (ds.get("status") or {}).get("conditions"):
        status["conditions"] = ds["status"]["conditions"]
    return status


# --- the controller ---------------------------------------------------------------------------

class DaemonSetController(Controller):
    name = "daemonset-controller"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("apps", "v1", "daemonsets")
        self.pods_res = resources.must("", "v1", "pods")
        self.nodes_res = resources.must("", "v1", "nodes")
        self.rev_res = resources.must("apps", "v1", "controllerrevisions")
        self.sets = shared_informer(client, self.res)
        self.pods = shared_informer(client, self.pods_res)
        self.nodes = shared_informer(client, self.nodes_res)
        self.revisions = shared_informer(client, self.rev_res)
        self.pods.cache.add_index(CONTROLLER_INDEX, controller_uid_index)
        self.revisions.cache.add_index(CONTROLLER_INDEX, controller_uid_index)
        super().__init__(client, [self.sets, self.pods, self.nodes, self.revisions])
        self.now = now or clocks.installed().utcnow
        self.recorder = events.Recorder(client, self.name)
        self.expectations = Expectations()
        self.sets.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                               on_delete=self.enqueue)
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_pod)
        self.nodes.add_handlers(on_add=self._all, on_update=lambda _o, n: self._all(n),
                                on_delete=self._all)

    def _on_pod(self, pod: Pod) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "DaemonSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    def _all(self, _node: Mapping[str, Any]) -> None:
        for ds in self.sets.cache.list():
            self.enqueue(ds)

    async def sync(self, key: str) -> None:
        ds = self.sets.cache.get(key)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        selector = selectors.from_label_selector(ds["spec"].get("selector"))
        uid = ds["metadata"]["uid"]
        pods = [p for p in self.pods.cache.by_index(CONTROLLER_INDEX, uid)
                if selectors.match_labels(selector, p["metadata"].get("labels"))]
        revisions = list(self.revisions.cache.by_index(CONTROLLER_INDEX, uid))
        plan = reconcile(ds, self.nodes.cache.list(), pods, revisions, self.now())
        if not self.expectations.satisfied(key, self.pods.cache.get):
            # our last creates or deletes are not in the cache yet: acting again now would
            # create or delete twice; the status is written, the pods wait for the cache
            plan.create_on, plan.delete_pods = [], []
            self.queue.add_after(key, self.expectations.ttl)
        created, deleted = await self._apply(ds, plan)
        namespace = ds["metadata"]["namespace"]
        self.expectations.expect(key, created=[f"{namespace}/{n}" for n in created],
                                 deleted=[f"{namespace}/{n}" for n in deleted])
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)

    async def _apply(self, ds: Mapping[str, Any], plan: Plan) -> tuple[list[str], list[str]]:
        """Write the plan; the names of the pods created and deleted."""
        namespace = ds["metadata"]["namespace"]
        created: list[str] = []
        deleted: list[str] = []
        if plan.create_revision is not None:
            with contextlib.suppress(errors.AlreadyExists):
                await self.client.create(self.rev_res, plan.create_revision, namespace)
        if plan.renumber_revision is not None:
            await self.client.patch(self.rev_res, plan.renumber_revision[0],
                                    {"revision": plan.renumber_revision[1]}, namespace,
                                    patch_type="merge")
        hash_ = revision_hash(ds)
        for node in plan.create_on:
            try:
                pod = await self.client.create(self.pods_res, new_pod(ds, node, hash_),
                                               namespace)
            except errors.APIError as exc:
                await self.recorder.event(ds, "Warning", "FailedCreate",
                                          f"Error creating: {exc}")
                continue
            created.append(pod["metadata"]["name"])
            await self.recorder.event(ds, "Normal", "SuccessfulCreate",
                                      f"Created pod: {pod['metadata']['name']}")
        for pod_name in plan.delete_pods:
            try:
                await self.client.delete(self.pods_res, pod_name, namespace)
            except errors.NotFound:
                continue
            deleted.append(pod_name)
            await self.recorder.event(ds, "Normal", "SuccessfulDelete",
                                      f"Deleted pod: {pod_name}")
        for rev in plan.delete_revisions:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(self.rev_res, rev, namespace)
        if any((ds.get("status") or {}).get(k) != v for k, v in plan.status.items()) or \
                set(ds.get("status") or {}) - set(plan.status) - {"collisionCount"}:
            await self.client.update(self.res, {**ds, "status": plan.status}, namespace,
                                     subresource="status")
        log.debug("%s: synced %s", self.name, object_key(ds))
        return created, deleted

