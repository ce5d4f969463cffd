"""Printers for configuration and storage objects.

ConfigMap (DATA counts `data` and `binaryData` keys), Secret, ServiceAccount and
PersistentVolumeClaim and PersistentVolume (access modes abbreviated RWO / ROX / RWX / RWOP),
StorageClass (the default class's name followed by ` (default)`, unset policies printed as
their defaults, as `printStorageClass` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tinykube.api.printers.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    UNSET,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_list,
    get_path,
    name_of,
    wide,
)
from tinykube.api.storageclasses import is_default_class


def _configmap_cells(cm: Mapping[str, Any], now: datetime) -> list[Cell]:
    entries = len(as_dict(cm.get("data"))) + len(as_dict(cm.get("binaryData")))
    return [name_of(cm), entries, age_of(cm, now)]


def _secret_cells(secret: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(secret), str(secret.get("type") or ""), len(as_dict(secret.get("data"))),
            age_of(secret, now)]


def _service_account_cells(sa: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(sa), len(as_list(sa.get("secrets"))), age_of(sa, now)]


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: Iterable[Any]) -> str:
    present = set(modes)
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _pvc_cells(pvc: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(pvc.get("spec"))
    phase = str(get_path(pvc, "status", "phase") or "")
    if get_path(pvc, "metadata", "deletionTimestamp") is not None:
        phase = "Terminating"
    capacity = access = ""
    if spec.get("volumeName"):
        access = _access_modes(as_list(get_path(pvc, "status", "accessModes")))
        capacity = str(get_path(pvc, "status", "capacity", "storage") or "0")
    annotations = as_dict(get_path(pvc, "metadata", "annotations"))
    storage_class = annotations.get("volume.beta.kubernetes.io/storage-class",
                                    spec.get("storageClassName") or "")
    return [name_of(pvc), phase, str(spec.get("volumeName") or ""), capacity, access,
            str(storage_class), spec.get("volumeAttributesClassName") or UNSET, age_of(pvc, now),
            spec.get("volumeMode") or UNSET]


def _pv_cells(pv: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(pv.get("spec"))
    claim = as_dict(spec.get("claimRef"))
    phase = str(get_path(pv, "status", "phase") or "")
    if get_path(pv, "metadata", "deletionTimestamp") is not None:
        phase = "Terminating"
    annotations = as_dict(get_path(pv, "metadata", "annotations"))
    storage_class = annotations.get("volume.beta.kubernetes.io/storage-class",
                                    spec.get("storageClassName") or "")
    return [name_of(pv), str(get_path(spec, "capacity", "storage") or "0"),
            _access_modes(as_list(spec.get("accessModes"))),
            str(spec.get("persistentVolumeReclaimPolicy") or ""), phase,
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
            str(storage_class), spec.get("volumeAttributesClassName") or UNSET,
            str(get_path(pv, "status", "reason") or ""), age_of(pv, now),
            spec.get("volumeMode") or UNSET]


def _storage_class_cells(sc: Mapping[str, Any], now: datetime) -> list[Cell]:
    name = name_of(sc) + (" (default)" if is_default_class(sc) else "")
    return [name, str(sc.get("provisioner") or ""), str(sc.get("reclaimPolicy") or "Delete"),
            str(sc.get("volumeBindingMode") or "Immediate"),
            sc.get("allowVolumeExpansion") is True, age_of(sc, now)]


CONFIG_PRINTERS: dict[str, Printer] = {
    "ConfigMap": Printer((
        NAME_COLUMN, Column("Data", "Data contains the configuration data."), AGE_COLUMN,
    ), _configmap_cells),
    "Secret": Printer((
        NAME_COLUMN, Column("Type", "Used to facilitate programmatic handling of secret data."),
        Column("Data", "Data contains the secret data."), AGE_COLUMN,
    ), _secret_cells),
    "ServiceAccount": Printer((
        NAME_COLUMN,
        Column("Secrets", "Secrets is a list of the secrets in the same namespace that pods "
                          "running using this ServiceAccount are allowed to use."),
        AGE_COLUMN,
    ), _service_account_cells),
    "PersistentVolumeClaim": Printer((
        NAME_COLUMN,
        Column("Status", "phase represents the current phase of PersistentVolumeClaim."),
        Column("Volume", "volumeName is the binding reference to the PersistentVolume backing "
                         "this claim."),
        Column("Capacity", "capacity represents the actual resources of the underlying volume."),
        Column("Access Modes", "accessModes contains the actual access modes the volume backing "
                               "the PVC has."),
        Column("StorageClass", "StorageClass of the pvc"),
        Column("VolumeAttributesClass", "VolumeAttributesClass of the pvc"), AGE_COLUMN,
        wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
    ), _pvc_cells),
    "PersistentVolume": Printer((
        NAME_COLUMN,
        Column("Capacity", "capacity is the description of the persistent volume's resources "
                           "and capacity."),
        Column("Access Modes", "accessModes contains all ways the volume can be mounted."),
        Column("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a "
                                 "persistent volume when released from its claim."),
        Column("Status", "phase indicates if a volume is available, bound to a claim, or "
                         "released by a claim."),
        Column("Claim", "claimRef is part of a bi-directional binding between "
                        "PersistentVolume and PersistentVolumeClaim."),
        Column("StorageClass", "StorageClass of the pv"),
        Column("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        Column("Reason", "reason is a brief CamelCase string that describes any failure and is "
                         "meant for machine parsing and tidy display in the CLI."),
        AGE_COLUMN,
        wide("VolumeMode", "volumeMode defines if a volume is intended to be used with a "
                           "formatted filesystem or to remain in raw block state."),
    ), _pv_cells),
    "StorageClass": Printer((
        NAME_COLUMN,
        Column("Provisioner", "provisioner indicates the type of the provisioner."),
        Column("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically "
                                "provisioned PersistentVolumes of this storage class. Defaults "
                                "to Delete."),
        Column("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims "
                                    "should be provisioned and bound.  When unset, "
                                    "VolumeBindingImmediate is used. This field is only honored "
                                    "by servers that enable the VolumeScheduling feature."),
        Column("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class "
                                       "allow volume expand."),
        AGE_COLUMN,
    ), _storage_class_cells),
}
