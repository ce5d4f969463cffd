"""RFC 7386 JSON merge patch (`application/merge-patch+json`).

Maps merge recursively, a `null` in the patch deletes the key, anything else (lists included)
replaces the original value. kubectl label, annotate and scale send this. Pure: the arguments
are never changed, the result shares nothing with them.
"""

from __future__ import annotations

from typing import Any

from tinykube.api.clone import clone

Obj = dict[str, Any]


def merge_patch(original: Obj, patch: Obj) -> Obj:
    """RFC 7386: returns a new object; neither argument is changed. Both are copied once
    (`clone`, an orjson round trip) and the patch is merged into the copy in place: a
    `copy.deepcopy` per untouched subtree cost more than the merge itself."""
    target = clone(original) if isinstance(original, dict) else {}
    merged: Obj = _merge_into(target, clone(patch))
    return merged


def _merge_into(target: Obj, patch: Any) -> Any:
    """Merge `patch` (a private copy) into `target` (a private copy, changed in place)."""
    if not isinstance(patch, dict):
        return patch
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            base = target.get(key)
            target[key] = _merge_into(base if isinstance(base, dict) else {}, value)
        else:
            target[key] = value
    return target
