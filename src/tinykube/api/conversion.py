"""Conversion between served versions and the storage version.

Only apps has several versions: `apps/v1beta1` and `apps/v1beta2` StatefulSets and Deployments
(removed upstream in 1.16, still used by old manifests such as the seed's `web.yaml`) are stored
as `apps/v1` and served back in the version asked for.

What differs, per the removed upstream types:
- v1beta1 defaulted a missing `spec.selector` from the template labels; v1 requires it.
- v1beta1 Deployments had `rollbackTo` and different strategy defaults (maxUnavailable 1,
  maxSurge 1); v1beta1 StatefulSets defaulted `updateStrategy` to OnDelete. We keep the v1
  defaults after conversion and document it.
- `Scale` and status shapes are the same for our purposes.
Everything else is structurally identical, so conversion rewrites `apiVersion` and fills the
selector; unknown legacy-only fields are dropped (`rollbackTo`).
"""

from __future__ import annotations

import copy
from typing import Any

STORAGE_API_VERSION = "apps/v1"
LEGACY = ("apps/v1beta1", "apps/v1beta2")


def to_storage(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    """Convert an object sent in `api_version` into its storage version (a new dict)."""
    if api_version not in LEGACY:
        return obj
    converted = copy.deepcopy(obj)
    converted["apiVersion"] = STORAGE_API_VERSION
    spec = converted.get("spec")
    if isinstance(spec, dict):
        spec.pop("rollbackTo", None)
        if api_version == "apps/v1beta1" and not spec.get("selector"):
            labels = _template_labels(spec)
            if labels:
                spec["selector"] = {"matchLabels": dict(labels)}
    return converted


def _template_labels(spec: dict[str, Any]) -> dict[str, Any] | None:
    """`spec.template.metadata.labels` if every step is an object (the type check that follows
    conversion reports the body that is not)."""
    template = spec.get("template")
    metadata = template.get("metadata") if isinstance(template, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else None


def from_storage(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    """Convert a stored object for serving in `api_version` (shares structure when unchanged)."""
    if api_version not in LEGACY or obj.get("apiVersion") == api_version:
        return obj
    served = dict(obj)
    served["apiVersion"] = api_version
    return served
