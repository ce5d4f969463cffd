"""The scheduler's volume binding, pure: kube-scheduler's `VolumeBinding` plugin.

`pod_volumes` is the PreFilter: it reads the claims a pod names and sorts them into bound
claims (with their volumes), claims whose class waits for the first consumer
(`WaitForFirstConsumer`, still unbound) and the rest; it answers kube's message when the pod
cannot be scheduled at all: `persistentvolumeclaim "x" not found`, `... is being deleted`, or
`pod has unbound immediate PersistentVolumeClaims` (an Immediate claim is the PV controller's
to bind first; a claim whose class is missing counts as Immediate, as `IsDelayBindingMode`
says).

`node_reason` is the Filter, per node: a bound volume's `nodeAffinity` must hold there
(`node(s) had volume node affinity conflict`), and each waiting claim needs a free static
volume that fits the node or a class that provisions
(`node(s) didn't find available persistent volumes to bind`). `node_plan` is the Reserve
half: the static volume to pre-bind for each waiting claim on the chosen node, or None where
the claim gets the node in `volume.kubernetes.io/selected-node` and is provisioned there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.controllers import volumematch as vm

Obj = Mapping[str, Any]
NO_PROVISIONER = "kubernetes.io/no-provisioner"
AFFINITY_CONFLICT = "volume-affinity"
NO_VOLUME = "volume-none"
REASON_TEXT = {AFFINITY_CONFLICT: "had volume node affinity conflict",
               NO_VOLUME: "didn't find available persistent volumes to bind"}


@dataclasses.dataclass
class PodVolumes:
    error: str = ""  # the PreFilter's message; "" when the pod may be scheduled
    bound: list[Obj] = dataclasses.field(default_factory=list)  # volumes of bound claims
    waiting: list[Obj] = dataclasses.field(default_factory=list)  # unbound delayed claims

    @property
    def ready(self) -> bool:
        """Every claim is bound: the pod may be bound to its node."""
        return not self.error and not self.waiting


def is_bound(pvc: Obj) -> bool:
    return bool(pvc.get("spec", {}).get("volumeName")) and \
        vm.annotations_of(pvc).get(vm.BIND_COMPLETED) is not None


def pod_volumes(pod: Obj, claims: Mapping[str, Obj], volumes: Mapping[str, Obj],
                classes: Mapping[str, Obj]) -> PodVolumes:
    result = PodVolumes()
    namespace = pod["metadata"].get("namespace", "")
    immediate = False
    for name in vm.claim_names(pod):
        pvc = claims.get(f"{namespace}/{name}")
        if pvc is None:
            return PodVolumes(error=f'persistentvolumeclaim "{name}" not found')
        if pvc["metadata"].get("deletionTimestamp"):
            return PodVolumes(error=f'persistentvolumeclaim "{name}" is being deleted')
        if is_bound(pvc):
            pv = volumes.get(pvc["spec"]["volumeName"])
            if pv is None:
                return PodVolumes(
                    error=f'persistentvolume "{pvc["spec"]["volumeName"]}" not found')
            result.bound.append(pv)
        elif vm.is_delay_binding(pvc, classes) and not pvc.get("spec", {}).get("volumeName"):
            result.waiting.append(pvc)
        else:
            immediate = True
    if immediate:
        return PodVolumes(error="pod has unbound immediate PersistentVolumeClaims")
    return result


def _provisions(pvc: Obj, classes: Mapping[str, Obj]) -> bool:
    sc = classes.get(vm.claim_class(pvc))
    return sc is not None and sc.get("provisioner") != NO_PROVISIONER


def node_plan(state: PodVolumes, node: Obj, volumes: Sequence[Obj],
              classes: Mapping[str, Obj]) -> list[tuple[Obj, Obj | None]] | None:
    """For each waiting claim, the static volume it takes on `node` (None: provision it);
    None if some claim can have neither there. No volume is given to two claims."""
    taken: set[str] = set()
    plan: list[tuple[Obj, Obj | None]] = []
    for pvc in state.waiting:
        selected = vm.annotations_of(pvc).get(vm.SELECTED_NODE)
        if selected and selected != node["metadata"]["name"]:
            return None  # being provisioned on another node already
        free = [pv for pv in volumes if pv["metadata"]["name"] not in taken]
        pv = vm.find_matching_volume(pvc, free, node, True)
        if pv is None and not _provisions(pvc, classes):
            return None
        if pv is not None:
            taken.add(pv["metadata"]["name"])
        plan.append((pvc, pv))
    return plan


def node_reason(state: PodVolumes, node: Obj, volumes: Sequence[Obj],
                classes: Mapping[str, Obj]) -> str | None:
    if not all(vm.fits_node(pv, node) for pv in state.bound):
        return AFFINITY_CONFLICT
    if state.waiting and node_plan(state, node, volumes, classes) is None:
        return NO_VOLUME
    return None
