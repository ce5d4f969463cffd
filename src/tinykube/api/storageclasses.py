"""Which StorageClass is the default, read the same way by the printer (`(default)` after its
name), the DefaultStorageClass admission plugin and the PV controller's retroactive assignment.

A class is a default when either annotation, `storageclass.kubernetes.io/is-default-class` or
its beta form, is `"true"` (`storageutil.IsDefaultAnnotation`); of several, the newest wins, then
the name (`GetDefaultClass`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")


def is_default_class(sc: Obj) -> bool:
    meta = sc.get("metadata")
    annotations = (meta.get("annotations") if isinstance(meta, Mapping) else None) or {}
    return isinstance(annotations, Mapping) and \
        any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def default_storage_class(classes: Iterable[Obj]) -> Obj | None:
    marked = [c for c in classes if is_default_class(c)]
    if not marked:
        return None
    return max(marked, key=lambda c: (c["metadata"].get("creationTimestamp") or "",
                                      c["metadata"].get("name") or ""))
