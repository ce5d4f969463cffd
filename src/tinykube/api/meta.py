"""Small helpers over object metadata shared by every component.

- `rfc3339`: Kubernetes timestamps (`metav1.Time`: UTC, second precision, `Z`).
- `owner_reference`: the controller ownerReference an object's controller puts on what it
  creates (`controller: true`, `blockOwnerDeletion: true`, as upstream controllers set it).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any

_now_text: list[Any] = [-1, ""]  # [the second, its timestamp]: "now" is asked for very often


def rfc3339(moment: datetime.datetime | None = None) -> str:
    """`moment` (default: now) as a Kubernetes timestamp, e.g. `2026-11-27T04:30:00Z`."""
    if moment is None:
        second = int(time.time())
        if second != _now_text[0]:
            _now_text[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))]
        return str(_now_text[1])
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(owner: Mapping[str, Any], *, kind: str | None = None,
                    api_version: str | None = None) -> dict[str, Any]:
    """A controller ownerReference to `owner` (kind and apiVersion from the object unless given,
    for objects whose list items arrived without them)."""
    meta = owner["metadata"]
    return {"apiVersion": api_version or owner["apiVersion"], "kind": kind or owner["kind"],
            "name": meta["name"], "uid": meta.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}
