"""PersistentVolume (`ValidatePersistentVolume` in `pkg/apis/core/validation`).

A PersistentVolume needs access modes, a capacity and exactly one volume source; its reclaim
policy is Delete, Recycle or Retain. Nothing provisions or binds volumes in tinykube: a
PersistentVolume is stored and listed (and pruned), and the claim binding is left to whoever
writes `claimRef`.
"""

from __future__ import annotations

from tinykube.api.errors import FieldError
from tinykube.api.validation.names import Errors, Obj, check_one_of

_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
# PersistentVolumeSpec's volume sources, in the order upstream counts them.
_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flexVolume",
            "rbd", "cinder", "cephfs", "fc", "flocker", "azureFile", "vsphereVolume", "quobyte",
            "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "local",
            "storageos", "csi", "iscsi", "nfs")


def validate_persistent_volume(pv: Obj) -> Errors:
    spec = pv.get("spec") or {}
    errors: Errors = []
    modes = spec.get("accessModes") or []
    if not modes:
        errors.append(FieldError.required("spec.accessModes"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            errors.append(FieldError.not_supported("spec.accessModes", mode, _ACCESS_MODES))
    if not spec.get("capacity"):
        errors.append(FieldError.required("spec.capacity"))
    errors += check_one_of("spec.persistentVolumeReclaimPolicy",
                           spec.get("persistentVolumeReclaimPolicy"),
                           ["Delete", "Recycle", "Retain"], required=False)
    sources = [name for name in _SOURCES if spec.get(name) is not None]
    if not sources:
        errors.append(FieldError.required("spec", "must specify a volume type"))
    for extra in sources[1:]:
        errors.append(FieldError.forbidden(f"spec.{extra}",
                                           "may not specify more than 1 volume type"))
    return errors
