"""Defaults and status rules of the CustomResourceDefinition object (kube's v1 defaulters and
the CRD strategy): `singular` and `listKind` from the kind, conversion strategy `None`, and
`status.storedVersions` that gains the storage version at every create and update."""

from __future__ import annotations

from typing import Any

from tinykube.api.apiextensions import model

Obj = dict[str, Any]


def default_crd(crd: Obj) -> None:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
    conversion = spec.setdefault("conversion", {})
    if isinstance(conversion, dict):
        conversion.setdefault("strategy", "None")
    status = crd.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("acceptedNames", {"plural": "", "kind": ""})
        status.setdefault("conditions", [])
        stored = status.setdefault("storedVersions", [])
        storage = model.storage_version(crd)
        if storage and isinstance(stored, list) and storage not in stored:
            stored.append(storage)
