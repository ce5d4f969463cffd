"""PersistentVolume (`ValidatePersistentVolume` in `pkg/apis/core/validation`) and
StorageClass (`ValidateStorageClass[Update]` in `pkg/apis/storage/validation`).

A PersistentVolume needs access modes, a capacity and exactly one volume source; its reclaim
policy is Delete, Recycle or Retain. A StorageClass needs a provisioner that is a qualified
name, parameters with non-empty keys (at most 512 of them, 256 kB in all), a reclaim policy of
Delete or Retain and a binding mode of Immediate or WaitForFirstConsumer; once created, its
parameters, provisioner, reclaim policy and binding mode do not change.
"""

from __future__ import annotations

from tinykube.api.errors import FieldError
from tinykube.api.validation.names import (
    Errors,
    Obj,
    check_one_of,
    invalid_each,
    qualified_name_errors,
)

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


_MAX_PARAMETERS = 512
_MAX_PARAMETER_BYTES = 256 * 1024


def _check_parameters(params: object) -> Errors:
    if not isinstance(params, dict):
        return []
    if len(params) > _MAX_PARAMETERS:
        return [FieldError.too_long("parameters", "Provisioner Parameters exceeded max allowed",
                                    _MAX_PARAMETERS)]
    errors: Errors = [FieldError.invalid("parameters", "", "field can not be empty.")
                      for key in params if not key]
    size = sum(len(str(k)) + len(str(v)) for k, v in params.items())
    if size > _MAX_PARAMETER_BYTES:
        errors.append(FieldError.too_long("parameters", "", _MAX_PARAMETER_BYTES))
    return errors


def validate_storage_class(sc: Obj) -> Errors:
    provisioner = sc.get("provisioner") or ""
    errors: Errors = []
    if not provisioner:
        errors.append(FieldError.required("provisioner"))
    else:
        errors += invalid_each("provisioner", provisioner,
                               qualified_name_errors(str(provisioner).lower()))
    errors += _check_parameters(sc.get("parameters"))
    errors += check_one_of("reclaimPolicy", sc.get("reclaimPolicy"), ["Delete", "Retain"])
    errors += check_one_of("volumeBindingMode", sc.get("volumeBindingMode"),
                           ["Immediate", "WaitForFirstConsumer"])
    return errors


def validate_storage_class_update(sc: Obj, old: Obj) -> Errors:
    errors: Errors = []
    for field in ("parameters", "provisioner", "reclaimPolicy"):
        if (sc.get(field) or None) != (old.get(field) or None):
            errors.append(FieldError.forbidden(field, f"updates to {field} are forbidden."))
    if sc.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errors.append(FieldError.invalid("volumeBindingMode", sc.get("volumeBindingMode"),
                                         "field is immutable"))
    return errors
