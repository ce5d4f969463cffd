"""Small helpers over object metadata shared by every component.

- `rfc3339`: Kubernetes timestamps (`metav1.Time`: UTC, second precision, `Z`).
- `owner_reference`: the controller ownerReference an object's controller puts on what it
  creates (`controller: true`, `blockOwnerDeletion: true`, as upstream controllers set it).
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Mapping
from typing import Any

from tinykube import clock as clocks

# On a Node whose agent runs in its own network namespace (`--network netns`): the address on
# the API server's host where its kubelet endpoint listens (the InternalIP is inside the
# namespaces, which the API server's host does not route to).
KUBELET_ADDRESS_ANNOTATION = "tinykube.io/kubelet-address"


@functools.lru_cache(maxsize=1)  # "now" is asked for very often, and changes once a second
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def rfc3339(moment: datetime.datetime | None = None) -> str:
    """`moment` (default: now) as a Kubernetes timestamp, e.g. `2026-11-27T04:30:00Z`."""
    seconds = clocks.installed().time() if moment is None else moment.timestamp()
    return _second_text(int(seconds // 1))  # `now`: the test clock's, if installed


def owner_reference(owner: Mapping[str, Any], *, kind: str | None = None,
                    api_version: str | None = None) -> dict[str, Any]:
    """A controller ownerReference to `owner` (kind and apiVersion from the object unless given,
    for objects whose list items arrived without them)."""
    meta = owner["metadata"]
    return {"apiVersion": api_version or owner["apiVersion"], "kind": kind or owner["kind"],
            "name": meta["name"], "uid": meta.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}
