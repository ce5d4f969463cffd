"""RFC 7386 JSON merge patch (`application/merge-patch+json`).

Maps merge recursively, a `null` in the patch deletes the key, anything else (lists included)
replaces the original value. kubectl label, annotate and scale send this. Pure: the arguments
are never changed, the result shares nothing with them.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def merge_patch(original: Obj, patch: Obj) -> Obj:
    """RFC 7386: returns a new object; neither argument is changed."""
    merged: Obj = _merge_json(original, patch)
    return merged


def _merge_json(original: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    base = original if isinstance(original, dict) else {}
    merged = {key: copy.deepcopy(value) for key, value in base.items() if key not in patch}
    for key, value in patch.items():
        if value is not None:
            merged[key] = _merge_json(base.get(key), value)
    return merged
