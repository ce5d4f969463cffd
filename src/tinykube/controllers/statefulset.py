"""The StatefulSet controller: ordered, stable pods `<name>-<ordinal>`.

`reconcile(sts, pods, revisions)` decides, purely, what to do next; the controller applies it.
The rules are upstream's (pkg/controller/statefulset/stateful_set_control.go):

1. The update revision is a hash of the pod template; a ControllerRevision records each one.
2. Missing ordinals below `replicas` are created. With `OrderedReady`, one at a time and only
   once every lower ordinal is Running and Ready; with `Parallel`, all at once.
3. Ordinals at or above `replicas` are deleted, highest first (one at a time unless Parallel).
4. Rolling update: once all pods exist and are ready, the highest-ordinal pod at or above
   `partition` that is not at the update revision is deleted, and step 2 recreates it.
5. Status counts replicas, ready, current and updated pods, and moves `currentRevision` to the
   update revision once every pod is on it, which is what `kubectl rollout status` waits for.

Pods get `hostname` = pod name and `subdomain` = `serviceName`, which is what gives them the
DNS names `web-0.nginx.<ns>.svc.<zone>`. PVCs from `volumeClaimTemplates` are created as
`<claim>-<sts>-<ordinal>` and kept on scale-down, as upstream's default retention policy does;
the PV controller binds them (a recreated pod names the same claims, so it gets the same
volumes back).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tinykube.api import errors, resources, selectors
from tinykube.api.meta import owner_reference
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import Informer
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def ordinal_of(sts_name: str, pod_name: str) -> int | None:
    prefix, _, suffix = pod_name.rpartition("-")
    if prefix != sts_name or not suffix.isdigit():
        return None
    return int(suffix)


def is_running_and_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status", {})
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready and \
        not pod.get("metadata", {}).get("deletionTimestamp")


@dataclasses.dataclass
class Plan:
    create_pods: list[Obj] = dataclasses.field(default_factory=list)
    delete_pods: list[str] = dataclasses.field(default_factory=list)
    create_claims: list[Obj] = dataclasses.field(default_factory=list)
    create_revision: Obj | None = None
    status: Obj = dataclasses.field(default_factory=dict)


def new_pod(sts: Mapping[str, Any], ordinal: int, revision: str) -> Obj:
    spec = sts["spec"]
    template = spec.get("template", {})
    name = f"{sts['metadata']['name']}-{ordinal}"
    meta = copy.deepcopy(template.get("metadata") or {})
    labels = {**(meta.get("labels") or {}), POD_NAME_LABEL: name,
              POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision}
    pod_meta: Obj = {"name": name, "namespace": sts["metadata"]["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(sts)]}
    if meta.get("annotations"):
        pod_meta["annotations"] = meta["annotations"]
    pod_spec = copy.deepcopy(template.get("spec") or {})
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []]
    if claims:
        volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
        volumes += [{"name": c, "persistentVolumeClaim": {
            "claimName": f"{c}-{sts['metadata']['name']}-{ordinal}"}} for c in claims]
        pod_spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def new_claims(sts: Mapping[str, Any], ordinal: int) -> list[Obj]:
    claims = []
    for template in sts["spec"].get("volumeClaimTemplates") or []:
        meta = template.get("metadata") or {}
        claims.append({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": f"{meta['name']}-{sts['metadata']['name']}-{ordinal}",
                "namespace": sts["metadata"]["namespace"],
                "labels": {**(sts["spec"].get("selector", {}).get("matchLabels") or {}),
                           **(meta.get("labels") or {})}},
            "spec": copy.deepcopy(template.get("spec") or {}),
        })
    return claims


def _revision(sts: Mapping[str, Any], hash_: str, number: int) -> Obj:
    name = sts["metadata"]["name"]
    template = copy.deepcopy(sts["spec"].get("template", {}))
    template["$patch"] = "replace"
    return {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": f"{name}-{hash_}", "namespace": sts["metadata"]["namespace"],
                     "labels": {**(sts["spec"].get("selector", {}).get("matchLabels") or {}),
                                REVISION_LABEL: f"{name}-{hash_}"},
                     "ownerReferences": [owner_reference(sts)]},
        "data": {"spec": {"template": template}},
        "revision": number,
    }


def reconcile(sts: Mapping[str, Any], pods: list[Mapping[str, Any]],
              revisions: list[Mapping[str, Any]], claims: set[str]) -> Plan:
    """What to do next for `sts`, given its pods, revisions and existing claim names."""
    spec, name = sts["spec"], sts["metadata"]["name"]
    replicas = int(spec.get("replicas", 1))
    parallel = spec.get("podManagementPolicy") == "Parallel"
    update_rev = f"{name}-{template_hash(spec.get('template', {}))}"
    plan = Plan()
    known = {r["metadata"]["name"] for r in revisions}
    if update_rev not in known:
        number = max((int(r.get("revision", 0)) for r in revisions), default=0) + 1
        plan.create_revision = _revision(sts, update_rev.rsplit("-", 1)[1], number)
    current_rev = sts.get("status", {}).get("currentRevision") or update_rev
    by_ordinal: dict[int, Mapping[str, Any]] = {}
    for pod in pods:
        ordinal = ordinal_of(name, pod["metadata"]["name"])
        if ordinal is not None:
            by_ordinal[ordinal] = pod
    partition = int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {})
                    .get("partition", 0) or 0)
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"

    blocked = False
    for ordinal in range(replicas):
        existing = by_ordinal.get(ordinal)
        if existing is None:
            if blocked:
                break
            revision = current_rev if rolling and ordinal < partition else update_rev
            plan.create_pods.append(new_pod(sts, ordinal, revision))
            plan.create_claims += [c for c in new_claims(sts, ordinal)
                                   if c["metadata"]["name"] not in claims]
            if not parallel:
                blocked = True
        elif not parallel and not is_running_and_ready(existing):
            blocked = True
    excess = sorted((o for o in by_ordinal if o >= replicas), reverse=True)
    terminating = any(p.get("metadata", {}).get("deletionTimestamp") for p in pods)
    all_ready = all(is_running_and_ready(by_ordinal[o]) for o in range(replicas)
                    if o in by_ordinal) and len(
        [o for o in by_ordinal if o < replicas]) == replicas
    if excess and (parallel or (not terminating and not plan.create_pods)):
        plan.delete_pods = [by_ordinal[o]["metadata"]["name"]
                            for o in (excess if parallel else excess[:1])
                            if not by_ordinal[o]["metadata"].get("deletionTimestamp")]
    elif rolling and all_ready and not terminating and not excess:
        for ordinal in range(replicas - 1, partition - 1, -1):
            stale = by_ordinal[ordinal]
            if stale["metadata"].get("labels", {}).get(REVISION_LABEL) != update_rev:
                plan.delete_pods = [stale["metadata"]["name"]]
                break
    plan.status = _status(sts, by_ordinal, replicas, current_rev, update_rev)
    return plan


def _status(sts: Mapping[str, Any], by_ordinal: Mapping[int, Mapping[str, Any]], replicas: int,
            current_rev: str, update_rev: str) -> Obj:
    live = [p for p in by_ordinal.values() if not p["metadata"].get("deletionTimestamp")]
    ready = sum(1 for p in live if is_running_and_ready(p))

    def at(rev: str) -> int:
        return sum(1 for p in live if p["metadata"].get("labels", {}).get(REVISION_LABEL) == rev)
    updated = at(update_rev)
    if updated == replicas and len(live) == replicas and ready == replicas:
        current_rev = update_rev
    return {
        "observedGeneration": sts["metadata"].get("generation", 1),
        "replicas": len(live), "readyReplicas": ready, "availableReplicas": ready,
        "currentReplicas": at(current_rev), "updatedReplicas": updated,
        "currentRevision": current_rev, "updateRevision": update_rev, "collisionCount": 0,
    }


class StatefulSetController(Controller):
    name = "statefulset-controller"

    def __init__(self, client: RESTClient) -> None:
        self.res = resources.must("apps", "v1", "statefulsets")
        self.pods_res = resources.must("", "v1", "pods")
        self.rev_res = resources.must("apps", "v1", "controllerrevisions")
        self.pvc_res = resources.must("", "v1", "persistentvolumeclaims")
        self.sets = shared_informer(client, self.res)
        self.pods = shared_informer(client, self.pods_res)
        self.revisions = shared_informer(client, self.rev_res)
        self.claims = shared_informer(client, self.pvc_res)
        super().__init__(client, [self.sets, self.pods, self.revisions, self.claims])
        self.recorder = events.Recorder(client, "statefulset-controller")
        self.sets.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                               on_delete=self.enqueue)
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_pod)

    def _on_pod(self, pod: Mapping[str, Any]) -> None:
        for ref in pod.get("metadata", {}).get("ownerReferences") or []:
            if ref.get("kind") == "StatefulSet" and ref.get("controller"):
                self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    def _owned(self, informer: Informer, sts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        uid = sts["metadata"]["uid"]
        namespace = sts["metadata"]["namespace"]
        return [o for o in informer.cache.list()
                if o["metadata"].get("namespace") == namespace
                and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]

    async def sync(self, key: str) -> None:
        sts = self.sets.cache.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        namespace = sts["metadata"]["namespace"]
        selector = selectors.from_label_selector(sts["spec"].get("selector"))
        pods = [p for p in self._owned(self.pods, sts)
                if selectors.match_labels(selector, p["metadata"].get("labels"))]
        claims = {c["metadata"]["name"] for c in self.claims.cache.list()
                  if c["metadata"].get("namespace") == namespace}
        plan = reconcile(sts, pods, self._owned(self.revisions, sts), claims)
        await self._apply(sts, plan)

    async def _apply(self, sts: Mapping[str, Any], plan: Plan) -> None:
        namespace = sts["metadata"]["namespace"]
        if plan.create_revision is not None:
            await _create_ignoring_exists(self.client, self.rev_res, plan.create_revision)
        for claim in plan.create_claims:  # bound by the PV controller, as upstream
            await _create_ignoring_exists(self.client, self.pvc_res, claim)
        for pod in plan.create_pods:
            if await _create_ignoring_exists(self.client, self.pods_res, pod) is not None:
                await self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                          f"create Pod {pod['metadata']['name']} in StatefulSet "
                                          f"{sts['metadata']['name']} successful")
        for name in plan.delete_pods:
            try:
                await self.client.delete(self.pods_res, name, namespace)
            except errors.NotFound:
                continue
            await self.recorder.event(sts, "Normal", "SuccessfulDelete",
                                      f"delete Pod {name} in StatefulSet "
                                      f"{sts['metadata']['name']} successful")
        if any(sts.get("status", {}).get(k) != v for k, v in plan.status.items()):
            await self.client.patch(self.res, sts["metadata"]["name"], {"status": plan.status},
                                    namespace, patch_type="merge", subresource="status")


async def _create_ignoring_exists(client: RESTClient, res: resources.Resource,
                                  obj: Obj) -> Obj | None:
    try:
        return await client.create(res, obj, obj["metadata"]["namespace"])
    except errors.AlreadyExists:
        return None

