"""Which PersistentVolume a claim can bind to: the pure half of the volume binder.

The PV controller (`persistentvolume.py`) and the scheduler's volume binding both decide with
these functions, ports of kube's `pkg/controller/volume/persistentvolume/util`:

- `find_matching_volume` is `FindMatchingVolume`: a volume already bound or pre-bound to the
  claim (its `claimRef` names the claim, with the claim's uid or none) wins if it is big
  enough, of the claim's class and fits the node; otherwise, unless binding waits for the first
  consumer and no node is chosen yet, the smallest Available volume that has every access mode
  the claim asks for, its class, a size at least the request, labels the claim's `selector`
  matches and, when a node is given, a `nodeAffinity` that node satisfies.
- `volume_mismatch` is `checkVolumeSatisfyClaim`, the reason a volume the claim names by
  `volumeName` cannot be bound, in kube's words.

The annotations the binder writes and reads are kube's, named here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from tinykube.api import quantity
from tinykube.api.selectors import selector_matches
from tinykube.controllers.nodeaffinity import node_labels, terms_match

Obj = Mapping[str, Any]

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def annotations_of(obj: Obj) -> Mapping[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def claim_class(pvc: Obj) -> str:
    """`GetPersistentVolumeClaimClass`: the beta annotation, else `storageClassName`."""
    beta = annotations_of(pvc).get(BETA_STORAGE_CLASS)
    return beta if beta is not None else str(pvc.get("spec", {}).get("storageClassName") or "")


def volume_class(pv: Obj) -> str:
    beta = annotations_of(pv).get(BETA_STORAGE_CLASS)
    return beta if beta is not None else str(pv.get("spec", {}).get("storageClassName") or "")


def _bytes(value: object) -> Fraction:
    parsed = quantity.parse(value)
    return parsed[0] if parsed is not None else Fraction(0)


def requested(pvc: Obj) -> Fraction:
    return _bytes(((pvc.get("spec", {}).get("resources") or {}).get("requests") or {})
                  .get("storage"))


def capacity(pv: Obj) -> Fraction:
    return _bytes((pv.get("spec", {}).get("capacity") or {}).get("storage"))


def claim_key(pvc: Obj) -> str:
    return f"{pvc['metadata'].get('namespace', '')}/{pvc['metadata']['name']}"


def claim_ref(pvc: Obj) -> dict[str, Any]:
    """`reference.GetReference` of a claim, as the binder writes it into `claimRef`."""
    meta = pvc["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace", ""),
            "name": meta["name"], "uid": meta.get("uid", ""), "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion", "")}


def is_bound_to(pv: Obj, pvc: Obj) -> bool:
    """`IsVolumeBoundToClaim`: `claimRef` names the claim, with its uid or none."""
    ref = pv.get("spec", {}).get("claimRef") or {}
    meta = pvc["metadata"]
    if not ref or ref.get("name") != meta["name"] or \
            ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def fits_node(pv: Obj, node: Obj | None) -> bool:
    """The volume's required `nodeAffinity` holds on `node` (any volume fits no node)."""
    if node is None:
        return True
    required = ((pv.get("spec", {}).get("nodeAffinity") or {}).get("required") or {})
    if not required:
        return True
    return terms_match(node_labels(node), required.get("nodeSelectorTerms") or [])


def _modes_fit(pv: Obj, pvc: Obj) -> bool:
    have = set(pv.get("spec", {}).get("accessModes") or [])
    return set(pvc.get("spec", {}).get("accessModes") or []) <= have


def _mode(obj: Obj) -> str:
    return str(obj.get("spec", {}).get("volumeMode") or "Filesystem")


def find_matching_volume(pvc: Obj, volumes: Iterable[Obj], node: Obj | None,
                         delay_binding: bool) -> Obj | None:
    """The volume `pvc` should bind to, or None (see the module docstring)."""
    want = requested(pvc)
    wanted_class = claim_class(pvc)
    selector = pvc.get("spec", {}).get("selector")
    best: Obj | None = None
    for pv in volumes:
        if not _modes_fit(pv, pvc) or _mode(pv) != _mode(pvc):
            continue
        if pv.get("metadata", {}).get("deletionTimestamp"):
            continue
        size = capacity(pv)
        if is_bound_to(pv, pvc):
            if size >= want and volume_class(pv) == wanted_class and fits_node(pv, node):
                return pv
            continue
        if delay_binding and node is None:
            continue
        if pv.get("spec", {}).get("claimRef") or \
                (pv.get("status") or {}).get("phase") != "Available":
            continue
        if selector and not selector_matches(selector, pv["metadata"].get("labels")):
            continue
        if volume_class(pv) != wanted_class or not fits_node(pv, node) or size < want:
            continue
        if best is None or size < capacity(best):
            best = pv
    return best


def volume_mismatch(pv: Obj, pvc: Obj) -> str | None:
    """`checkVolumeSatisfyClaim`: why `pvc` cannot bind the volume it names, or None."""
    if pv.get("metadata", {}).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{pv["metadata"]["name"]}"'
    if capacity(pv) < requested(pvc):
        return "requested PV is too small"
    if volume_class(pv) != claim_class(pvc):
        return "storageClassName does not match"
    if _mode(pv) != _mode(pvc):
        return "incompatible volumeMode"
    if not _modes_fit(pv, pvc):
        return "incompatible accessMode"
    return None


def is_delay_binding(pvc: Obj, classes: Mapping[str, Obj]) -> bool:
    """`IsDelayBindingMode`: the claim's class exists and waits for the first consumer."""
    name = claim_class(pvc)
    sc = classes.get(name) if name else None
    return sc is not None and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's volumes name (`ephemeral` volumes name `<pod>-<volume>`)."""
    names = []
    for volume in pod.get("spec", {}).get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
            names.append(volume["persistentVolumeClaim"]["claimName"])
        elif volume.get("ephemeral") is not None:
            names.append(f"{pod['metadata']['name']}-{volume.get('name', '')}")
    return names


CLAIMS_INDEX = "claims"


def pod_claims_index(pod: Obj) -> list[str]:
    """Index function (`CLAIMS_INDEX`): the `namespace/claim` keys a pod's volumes name."""
    namespace = pod.get("metadata", {}).get("namespace", "")
    return [f"{namespace}/{name}" for name in claim_names(pod)]
