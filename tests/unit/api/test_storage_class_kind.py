"""storage.k8s.io/v1 StorageClass as the API serves it: its table entry, kube's defaults
(`SetDefaults_StorageClass`) and validation messages (`ValidateStorageClass[Update]`), each case
a valid defaulted class changed in one place."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tinykube.api import defaults, resources, storageclasses, validation
from tinykube.api.resources import ALL_VERBS

CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "standard"},
    "provisioner": "rancher.io/local-path",
    "parameters": {"type": "ssd"},
}


def storage_class(**changes: Any) -> dict[str, Any]:
    obj = defaults.apply_defaults("StorageClass", copy.deepcopy(CLASS))
    obj.update(changes)
    return obj


def test_resource_table_entry() -> None:
    res = resources.lookup("storage.k8s.io", "v1", "storageclasses")
    assert res is not None
    assert (res.kind, res.namespaced, res.short_names, res.verbs, res.subresources,
            res.not_run) == ("StorageClass", False, ("sc",), ALL_VERBS, (), False)


DEFAULTS = [
    ("unset", {}, ("Delete", "Immediate")),
    ("retain-kept", {"reclaimPolicy": "Retain"}, ("Retain", "Immediate")),
    ("wffc-kept", {"volumeBindingMode": "WaitForFirstConsumer"},
     ("Delete", "WaitForFirstConsumer")),
]


@pytest.mark.parametrize(("fields", "expected"), [d[1:] for d in DEFAULTS],
                         ids=[d[0] for d in DEFAULTS])
def test_defaults(fields: dict[str, Any], expected: tuple[str, str]) -> None:
    obj = defaults.apply_defaults("StorageClass", {**copy.deepcopy(CLASS), **fields})
    assert (obj["reclaimPolicy"], obj["volumeBindingMode"]) == expected


def test_valid_class_passes() -> None:
    obj = storage_class()
    assert validation.validate("StorageClass", obj, None) == []
    assert validation.validate("StorageClass", obj, obj) == []


INVALID = [
    ("no-provisioner", {"provisioner": ""}, ["provisioner: Required value"]),
    ("bad-provisioner", {"provisioner": "a b"},
     ['provisioner: Invalid value: "a b": name part must consist of alphanumeric characters, '
      "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
      "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
    ("empty-parameter-key", {"parameters": {"": "x"}},
     ['parameters: Invalid value: "": field can not be empty.']),
    ("reclaim-recycle", {"reclaimPolicy": "Recycle"},
     ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']),
    ("binding-mode", {"volumeBindingMode": "Later"},
     ['volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", '
      '"WaitForFirstConsumer"']),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_create(changes: dict[str, Any], expected: list[str]) -> None:
    errors = validation.validate("StorageClass", storage_class(**changes), None)
    assert [str(e) for e in errors] == expected


UPDATES = [
    ("parameters", {"parameters": {"type": "hdd"}},
     ["parameters: Forbidden: updates to parameters are forbidden."]),
    ("provisioner", {"provisioner": "other.io/x"},
     ["provisioner: Forbidden: updates to provisioner are forbidden."]),
    ("reclaim-policy", {"reclaimPolicy": "Retain"},
     ["reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."]),
    ("binding-mode", {"volumeBindingMode": "WaitForFirstConsumer"},
     ['volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable']),
    ("expansion-allowed", {"allowVolumeExpansion": True}, []),
]


@pytest.mark.parametrize(("changes", "expected"), [u[1:] for u in UPDATES],
                         ids=[u[0] for u in UPDATES])
def test_update(changes: dict[str, Any], expected: list[str]) -> None:
    old = storage_class()
    new = storage_class(**changes)
    new["metadata"] = {**old["metadata"]}
    assert [str(e) for e in validation.validate("StorageClass", new, old)] == expected


def sc(name: str, created: str, default: str | None = "true",
       key: str = "storageclass.kubernetes.io/is-default-class") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if default is not None:
        meta["annotations"] = {key: default}
    return {"metadata": meta}


DEFAULT_CHOICES = [
    ("none-marked", [sc("a", "2026-01-01T00:00:00Z", None)], None),
    ("false-is-not-default", [sc("a", "2026-01-01T00:00:00Z", "false")], None),
    ("beta-annotation", [sc("a", "2026-01-01T00:00:00Z",
                            key="storageclass.beta.kubernetes.io/is-default-class")], "a"),
    ("newest-wins", [sc("old", "2026-01-01T00:00:00Z"), sc("new", "2026-02-01T00:00:00Z"),
                     sc("plain", "2026-03-01T00:00:00Z", None)], "new"),
    ("same-age-by-name", [sc("a", "2026-01-01T00:00:00Z"), sc("b", "2026-01-01T00:00:00Z")],
     "b"),
]


@pytest.mark.parametrize(("classes", "expected"), [d[1:] for d in DEFAULT_CHOICES],
                         ids=[d[0] for d in DEFAULT_CHOICES])
def test_default_storage_class(classes: list[dict[str, Any]], expected: str | None) -> None:
    chosen = storageclasses.default_storage_class(classes)
    assert (chosen["metadata"]["name"] if chosen else None) == expected
