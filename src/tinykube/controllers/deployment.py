"""The Deployment controller: one ReplicaSet per pod template, rolled from old to new.

Upstream's pkg/controller/deployment, as gather / decide / apply:

1. Gather: the Deployment and the ReplicaSets it controls (indexed by controller uid).
2. Find the new ReplicaSet: the oldest one whose template equals the Deployment's, ignoring
   the `pod-template-hash` label (as kubectl's rollout undo compares them). A rollback is
   simply the Deployment's template changing back to an old ReplicaSet's: that ReplicaSet is
   new again and gets the next revision number. Otherwise a new one is created, named
   `<deploy>-<hash>` where the hash (`template_hash`) covers the template without that label
   and `status.collisionCount`.
3. Decide one step (pure, `rolling_step` / `recreate_step`): a map of ReplicaSet name to new
   replica count. Rolling updates follow upstream's `reconcileNewReplicaSet` (scale the new
   one up within `replicas + maxSurge`; one step per sync) then `reconcileOldReplicaSets`
   (first scale away old unavailable pods, then scale old ones down, oldest first, as far as
   `replicas - maxUnavailable` available pods allow). maxSurge rounds up and maxUnavailable
   down, and both zero means maxUnavailable 1 (`resolve_fenceposts`).
   A ReplicaSet's availability is `min(spec.replicas, status.availableReplicas)`: right after
   we scale one down its status still counts the pod being deleted, and counting it would let
   the next step scale down one pod too many.
4. Apply: create / scale ReplicaSets (PUT with resourceVersion, so a stale cache gets a
   Conflict), with `ScalingReplicaSet` events worded as upstream's; remember the writes in a
   `WriteTracker` so no step is decided before the informer shows them; set the revision
   annotation on the Deployment; delete old ReplicaSets beyond `revisionHistoryLimit` once the
   rollout is complete; write status with conditions Available and Progressing
   (`compute_status`), which is what `kubectl rollout status` reads.

Not done: proportional scaling of several active ReplicaSets (a scale during a rollout is
absorbed by the rolling steps instead), `ProgressDeadlineExceeded`, and pausing beyond "no
new ReplicaSet and no steps while paused". Recreate waits for old ReplicaSets to report zero
active pods, not for terminating pods to be gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from tinykube import clock as clocks
from tinykube.api import errors, resources
from tinykube.api.clone import clone
from tinykube.api.meta import owner_reference
from tinykube.client import events
from tinykube.client.controller import Applied, Controller, StaleCacheError, WriteTracker
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.replicaset import (
    CONTROLLER_INDEX,
    TEMPLATE_HASH_LABEL,
    controller_ref,
    controller_uid_index,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RS = Mapping[str, Any]

REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {REVISION, DESIRED_REPLICAS, MAX_REPLICAS,
               "deployment.kubernetes.io/revision-history",
               "kubectl.kubernetes.io/last-applied-configuration"}
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # upstream's rand.SafeEncodeString alphabet
DEFAULT_SURGE = DEFAULT_UNAVAILABLE = "25%"
DEFAULT_HISTORY = 10


# --- templates and revisions ------------------------------------------------------------------

def _without_hash(template: Mapping[str, Any]) -> Obj:
    copied: Obj = clone(dict(template))
    labels = (copied.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(TEMPLATE_HASH_LABEL, None)
    return copied


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """FNV-32a of the template (without `pod-template-hash`), spelled with safe characters."""
    data = orjson.dumps(_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(digit) % len(_SAFE)] for digit in str(value))


def same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from the `pod-template-hash` label (kubectl's EqualIgnoreHash)."""
    return _without_hash(a) == _without_hash(b)


def revision_of(rs: RS) -> int:
    text = ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0")
    return int(text) if str(text).isdigit() else 0


def by_age(rss: Sequence[RS]) -> list[RS]:
    """Oldest first (creationTimestamp, then name), as upstream's ReplicaSetsByCreationTimestamp."""
    return sorted(rss, key=lambda rs: (rs["metadata"].get("creationTimestamp", ""),
                                       rs["metadata"]["name"]))


def find_new(deploy: Mapping[str, Any], rss: Sequence[RS]) -> RS | None:
    """The oldest ReplicaSet (of `rss`, the Deployment's own) running its current template.

    Templates are compared ignoring the hash label; failing that, a ReplicaSet labelled with
    the template's hash counts too, so that a template the API server defaults differently
    in ReplicaSets can never make us create ReplicaSet after ReplicaSet.
    """
    template = deploy["spec"].get("template") or {}
    for rs in by_age(rss):
        if same_template(rs["spec"].get("template") or {}, template):
            return rs
    collisions = int((deploy.get("status") or {}).get("collisionCount") or 0)
    expected = template_hash(template, collisions)
    for rs in by_age(rss):
        if (rs["metadata"].get("labels") or {}).get(TEMPLATE_HASH_LABEL) == expected:
            return rs
    return None


def new_name(deploy: Mapping[str, Any], taken: Callable[[str], RS | None]) -> tuple[str, int]:
    """(name, collisionCount) for a new ReplicaSet, skipping names held by other templates."""
    count = int((deploy.get("status") or {}).get("collisionCount") or 0)
    while True:
        name = f"{deploy['metadata']['name']}-{template_hash(deploy['spec']['template'], count)}"
        if taken(name) is None:
            return name, count
        count += 1


def new_replicaset(deploy: Mapping[str, Any], name: str, *, replicas: int, revision: int,
                   max_surge: int) -> Obj:
    """The ReplicaSet body for the Deployment's current template."""
    spec = deploy["spec"]
    pod_hash = name.rsplit("-", 1)[1]
    template = clone(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[TEMPLATE_HASH_LABEL] = pod_hash
    selector = clone(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[TEMPLATE_HASH_LABEL] = pod_hash
    desired = int(spec.get("replicas", 1))
    annotations = {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items()
                   if k not in _NOT_COPIED}
    annotations |= {REVISION: str(revision), DESIRED_REPLICAS: str(desired),
                    MAX_REPLICAS: str(desired + max_surge)}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": deploy["metadata"]["namespace"],
                     "labels": dict(template["metadata"]["labels"]),
                     "annotations": annotations,
                     "ownerReferences": [owner_reference(deploy)]},
        "spec": {"replicas": replicas, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                 "selector": selector, "template": template},
    }


# --- surge and unavailability -------------------------------------------------------------------

def scaled_value(value: int | str | None, total: int, *, round_up: bool, default: str) -> int:
    """An IntOrString (`3` or `"25%"`) against `total`, rounded up or down."""
    if value is None:
        value = default
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def resolve_fenceposts(strategy: Mapping[str, Any] | None, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate strategy for `replicas` pods."""
    rolling = (strategy or {}).get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), replicas, round_up=True, default=DEFAULT_SURGE)
    unavailable = scaled_value(rolling.get("maxUnavailable"), replicas, round_up=False,
                               default=DEFAULT_UNAVAILABLE)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # both zero would never make progress
    return surge, min(unavailable, replicas)


# --- one step ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Scale:
    """A ReplicaSet as the step functions see it."""

    name: str
    replicas: int  # spec.replicas
    available: int  # min(spec.replicas, status.availableReplicas)


def scale_of(rs: RS) -> Scale:
    replicas = int(rs["spec"].get("replicas", 1))
    available = int((rs.get("status") or {}).get("availableReplicas") or 0)
    return Scale(rs["metadata"]["name"], replicas, min(replicas, available))


def rolling_step(*, replicas: int, max_surge: int, max_unavailable: int, new: Scale,
                 olds: Sequence[Scale]) -> dict[str, int]:
    """One rolling-update step: new replica counts by name (`olds` oldest first)."""
    target = _new_target(replicas, max_surge, new, olds)
    if target != new.replicas:
        return {new.name: target}
    return _scale_down_olds(replicas, max_unavailable, new, olds)


def _new_target(replicas: int, max_surge: int, new: Scale, olds: Sequence[Scale]) -> int:
    if new.replicas >= replicas:
        return replicas
    current = new.replicas + sum(old.replicas for old in olds)
    room = replicas + max_surge - current
    return new.replicas + max(0, min(room, replicas - new.replicas))


def _scale_down_olds(replicas: int, max_unavailable: int, new: Scale,
                     olds: Sequence[Scale]) -> dict[str, int]:
    if not any(old.replicas for old in olds):
        return {}
    min_available = replicas - max_unavailable
    total = new.replicas + sum(old.replicas for old in olds)
    budget = total - min_available - (new.replicas - new.available)
    if budget <= 0:
        return {}
    counts = {old.name: old.replicas for old in olds}
    # 1. Old pods that are not available cost no availability: scale them away first.
    for old in olds:
        unhealthy = min(budget, counts[old.name] - old.available)
        if unhealthy > 0:
            counts[old.name] -= unhealthy
            budget -= unhealthy
    # 2. Then available old pods, oldest ReplicaSet first, keeping min_available.
    excess = new.available + sum(old.available for old in olds) - min_available
    for old in olds:
        cut = min(max(excess, 0), counts[old.name])
        counts[old.name] -= cut
        excess -= cut
    return {old.name: counts[old.name] for old in olds if counts[old.name] != old.replicas}


def recreate_step(*, replicas: int, new: Scale, olds: Sequence[Scale],
                  old_pods: int) -> dict[str, int]:
    """Recreate: all old ReplicaSets to zero, wait for their pods to go, then the new one up."""
    down = {old.name: 0 for old in olds if old.replicas}
    if down:
        return down
    if old_pods or new.replicas == replicas:
        return {}
    return {new.name: replicas}


def to_clean_up(olds: Sequence[RS], history_limit: int) -> list[str]:
    """Old ReplicaSets beyond `history_limit` to delete, lowest revision first.

    As upstream's cleanupDeployment: of the `len - limit` lowest revisions, those still
    running pods are skipped (kept), not replaced by the next candidate.
    """
    candidates = sorted((rs for rs in olds if not rs["metadata"].get("deletionTimestamp")),
                        key=lambda rs: (revision_of(rs), rs["metadata"].get("creationTimestamp",
                                                                            "")))
    surplus = candidates[:max(len(candidates) - history_limit, 0)]
    return [rs["metadata"]["name"] for rs in surplus
            if int(rs["spec"].get("replicas", 1)) == 0
            and not (rs.get("status") or {}).get("replicas")]


# --- status -----------------------------------------------------------------------------------

def _condition(type_: str, status: str, reason: str, message: str, now: str,
               current: Mapping[str, Any] | None) -> Obj:
    """A condition that keeps its times when nothing changed (upstream SetDeploymentCondition)."""
    if current and current.get("status") == status and current.get("reason") == reason:
        return {**current, "message": message}
    since = current.get("lastTransitionTime", now) if current and \
        current.get("status") == status else now
    return {"type": type_, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": since, "reason": reason, "message": message}


def _progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Upstream's DeploymentProgressing: any counter moved towards the goal."""
    def get(status: Mapping[str, Any], key: str) -> int:
        return int(status.get(key) or 0)
    old_olds = get(old, "replicas") - get(old, "updatedReplicas")
    new_olds = get(new, "replicas") - get(new, "updatedReplicas")
    return (get(new, "updatedReplicas") > get(old, "updatedReplicas") or new_olds < old_olds
            or get(new, "readyReplicas") > get(old, "readyReplicas")
            or get(new, "availableReplicas") > get(old, "availableReplicas"))


def compute_status(deploy: Mapping[str, Any], new: RS | None, rss: Sequence[RS], *,
                   max_unavailable: int, now: str, created_new: bool = False) -> Obj:
    """Deployment status from its ReplicaSets' statuses, with Available and Progressing."""
    def total(key: str) -> int:
        return sum(int((rs.get("status") or {}).get(key) or 0) for rs in rss)
    replicas = int(deploy["spec"].get("replicas", 1))
    old_status = deploy.get("status") or {}
    status: Obj = {
        "observedGeneration": deploy["metadata"].get("generation", 1),
        "replicas": total("replicas"),
        "updatedReplicas": int(((new or {}).get("status") or {}).get("replicas") or 0),
        "readyReplicas": total("readyReplicas"),
        "availableReplicas": total("availableReplicas"),
    }
    status["unavailableReplicas"] = max(0, replicas - status["availableReplicas"])
    if old_status.get("collisionCount"):
        status["collisionCount"] = old_status["collisionCount"]
    current = {c.get("type"): c for c in old_status.get("conditions") or []}
    if status["availableReplicas"] >= replicas - max_unavailable:
        available = _condition("Available", "True", "MinimumReplicasAvailable",
                               "Deployment has minimum availability.", now,
                               current.get("Available"))
    else:
        available = _condition("Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.", now,
                               current.get("Available"))
    conditions = [available]
    progressing = _progressing_condition(deploy, new, status, now, created_new,
                                         current.get("Progressing"))
    if progressing is not None:
        conditions.append(progressing)
    status["conditions"] = conditions
    return status


def _progressing_condition(deploy: Mapping[str, Any], new: RS | None, status: Mapping[str, Any],
                           now: str, created_new: bool,
                           current: Mapping[str, Any] | None) -> Obj | None:
    replicas = int(deploy["spec"].get("replicas", 1))
    name = (new or {}).get("metadata", {}).get("name", "")
    complete = (status["updatedReplicas"] == replicas == status["replicas"]
                and status["availableReplicas"] == replicas)
    if new is not None and complete:
        return _condition("Progressing", "True", "NewReplicaSetAvailable",
                          f'ReplicaSet "{name}" has successfully progressed.', now, current)
    if created_new:
        return _condition("Progressing", "True", "NewReplicaSetCreated",
                          f'Created new replica set "{name}"', now, current)
    if new is not None and _progressing(deploy.get("status") or {}, status):
        since = current.get("lastTransitionTime", now) if current and \
            current.get("status") == "True" else now
        return {"type": "Progressing", "status": "True", "lastUpdateTime": now,
                "lastTransitionTime": since, "reason": "ReplicaSetUpdated",
                "message": f'ReplicaSet "{name}" is progressing.'}
    if new is not None and current is None:
        return _condition("Progressing", "True", "FoundNewReplicaSet",
                          f'Found new replica set "{name}"', now, current)
    return dict(current) if current else None


def scaling_message(name: str, old: int, new: int) -> str:
    direction = "up" if new > old else "down"
    return f"Scaled {direction} replica set {name} from {old} to {new}"


# --- the controller ---------------------------------------------------------------------------

class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("apps", "v1", "deployments")
        self.rs_res = resources.must("apps", "v1", "replicasets")
        self.deployments = shared_informer(client, self.res)
        self.replicasets = shared_informer(client, self.rs_res)
        self.replicasets.cache.add_index(CONTROLLER_INDEX, controller_uid_index)
        super().__init__(client, [self.deployments, self.replicasets])
        self.now = now or clocks.installed().utcnow  # injected in tests
        self.tracker = WriteTracker(self.replicasets.cache.get)
        self.recorder = events.Recorder(client, "deployment-controller")
        self.deployments.add_handlers(on_add=self.enqueue,
                                      on_update=lambda _old, new: self.enqueue(new),
                                      on_delete=self.enqueue)
        self.replicasets.add_handlers(on_add=self._on_rs,
                                      on_update=lambda _old, new: self._on_rs(new),
                                      on_delete=lambda rs: self._on_rs(rs, deleted=True))

    def _on_rs(self, rs: RS, *, deleted: bool = False) -> None:
        ref = controller_ref(rs)
        if ref is not None and ref.get("kind") == "Deployment":
            key = f"{rs['metadata']['namespace']}/{ref['name']}"
            self.tracker.observed(key, rs, deleted=deleted)
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        deploy = self.deployments.cache.get(key)
        if deploy is None:
            self.tracker.forget(key)
            return
        if self.tracker.is_stale(key):
            raise StaleCacheError(key)
        rss = self.replicasets.cache.by_index(CONTROLLER_INDEX, deploy["metadata"]["uid"])
        if deploy["metadata"].get("deletionTimestamp") or deploy["spec"].get("paused"):
            await self.write_status(deploy, find_new(deploy, rss), rss, created_new=False)
            return
        await Rollout(self, deploy, rss).run()

    async def write_status(self, deploy: Mapping[str, Any], new: RS | None, rss: Sequence[RS],
                            *, created_new: bool) -> Obj:
        _, max_unavailable = _fenceposts(deploy)
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        status = compute_status(deploy, new, rss, max_unavailable=max_unavailable, now=stamp,
                                created_new=created_new)
        if status != (deploy.get("status") or {}):
            await self.client.patch(self.res, deploy["metadata"]["name"], {"status": status},
                                    deploy["metadata"]["namespace"], patch_type="merge",
                                    subresource="status")
        return status


def _fenceposts(deploy: Mapping[str, Any]) -> tuple[int, int]:
    strategy = deploy["spec"].get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    return resolve_fenceposts(strategy, int(deploy["spec"].get("replicas", 1)))


class Rollout:
    """One sync of one Deployment: the apply half, with the writes it made."""

    def __init__(self, controller: DeploymentController, deploy: Mapping[str, Any],
                 rss: Sequence[RS]) -> None:
        self.ctl = controller
        self.deploy = deploy
        self.namespace = str(deploy["metadata"]["namespace"])
        self.key = f"{self.namespace}/{deploy['metadata']['name']}"
        self.new = find_new(deploy, rss)
        self.olds = by_age([rs for rs in rss if rs is not self.new])
        self.applied = Applied()

    def __repr__(self) -> str:
        return f"<Rollout {self.key} new={self.new and self.new['metadata']['name']}>"

    async def run(self) -> None:
        spec = self.deploy["spec"]
        replicas = int(spec.get("replicas", 1))
        max_surge, max_unavailable = _fenceposts(self.deploy)
        revision = max((revision_of(rs) for rs in self.olds), default=0) + 1
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        name = self.new["metadata"]["name"] if self.new else \
            new_name(self.deploy, lambda n: self.ctl.replicasets.cache.get(
                f"{self.namespace}/{n}"))[0]
        new_scale = scale_of(self.new) if self.new else Scale(name, 0, 0)
        olds = [scale_of(rs) for rs in self.olds]
        if recreate:
            old_pods = sum(int((rs.get("status") or {}).get("replicas") or 0) for rs in self.olds)
            step = recreate_step(replicas=replicas, new=new_scale, olds=olds, old_pods=old_pods)
        else:
            step = rolling_step(replicas=replicas, max_surge=max_surge,
                                max_unavailable=max_unavailable, new=new_scale, olds=olds)
        created_new = False
        if self.new is None and (not recreate or name in step):
            created_new = await self._create_new(name, step.pop(name, 0), revision, max_surge)
        elif self.new is not None and revision_of(self.new) < revision and self.olds:
            step.setdefault(name, new_scale.replicas)  # rollback: the revision moves on
        for rs in [*self.olds, *([self.new] if self.new else [])]:
            if rs["metadata"]["name"] in step:
                await self._scale(rs, step[rs["metadata"]["name"]], revision, max_surge)
        self.ctl.tracker.wrote(self.key, self.namespace, self.applied)
        self.applied.raise_failures()
        await self._set_revision()
        new = self._new_now()
        rss = [*self._current(self.olds), *([new] if new is not None else [])]
        status = await self.ctl.write_status(self.deploy, new, rss, created_new=created_new)
        if status["conditions"][-1].get("reason") == "NewReplicaSetAvailable":
            await self._clean_up()

    def _current(self, rss: Sequence[RS]) -> list[RS]:
        """`rss` with the objects we just updated swapped in."""
        updated = {rs["metadata"]["name"]: rs for rs in self.applied.updated}
        return [updated.get(rs["metadata"]["name"], rs) for rs in rss]

    async def _create_new(self, name: str, replicas: int, revision: int, max_surge: int) -> bool:
        body = new_replicaset(self.deploy, name, replicas=replicas, revision=revision,
                              max_surge=max_surge)
        try:
            created = await self.ctl.client.create(self.ctl.rs_res, body, self.namespace)
        except errors.APIError as exc:
            self.applied.failures.append(exc)
            return False
        self.applied.created.append(created)
        if replicas:
            await self.ctl.recorder.event(self.deploy, "Normal", "ScalingReplicaSet",
                                          scaling_message(name, 0, replicas))
        return True

    async def _scale(self, rs: RS, replicas: int, revision: int, max_surge: int) -> None:
        body = clone(dict(rs))
        old = int(body["spec"].get("replicas", 1))
        body["spec"]["replicas"] = replicas
        desired = int(self.deploy["spec"].get("replicas", 1))
        annotations = body["metadata"].setdefault("annotations", {})
        annotations |= {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(desired + max_surge)}
        if rs is self.new:
            annotations[REVISION] = str(max(revision, revision_of(rs)) if self.olds
                                        else revision_of(rs) or 1)
        try:
            updated = await self.ctl.client.update(self.ctl.rs_res, body, self.namespace)
        except errors.APIError as exc:
            self.applied.failures.append(exc)
            return
        self.applied.updated.append(updated)
        if old != replicas:
            await self.ctl.recorder.event(self.deploy, "Normal", "ScalingReplicaSet",
                                          scaling_message(rs["metadata"]["name"], old, replicas))

    def _new_now(self) -> RS | None:
        """The new ReplicaSet as we last wrote it (None if there is none yet)."""
        if self.applied.created:
            return self.applied.created[0]
        return self._current([self.new])[0] if self.new is not None else None

    async def _set_revision(self) -> None:
        new = self._new_now()
        if new is None:
            return
        revision = str(revision_of(new))
        if (self.deploy["metadata"].get("annotations") or {}).get(REVISION) != revision:
            await self.ctl.client.patch(
                self.ctl.res, self.deploy["metadata"]["name"],
                {"metadata": {"annotations": {REVISION: revision}}}, self.namespace,
                patch_type="merge")

    async def _clean_up(self) -> None:
        limit = self.deploy["spec"].get("revisionHistoryLimit")
        limit = DEFAULT_HISTORY if limit is None else int(limit)
        for name in to_clean_up(self._current(self.olds), limit):
            with contextlib.suppress(errors.NotFound):
                await self.ctl.client.delete(self.ctl.rs_res, name, self.namespace)

