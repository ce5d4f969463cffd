"""Events, as `kubectl describe` shows them: one object per (object, reason, message), counted.

`Recorder.event` creates a core/v1 Event the first time and, for a repeat of the same reason and
message about the same object, bumps `count` and `lastTimestamp` instead (client-go's event
correlator does the same), so `describe` prints `3s (x4 over 10s)`. Recording never fails the
caller: an event that cannot be written is logged and dropped, as in client-go; one refused
because its namespace is being deleted (or is gone) only at debug level, as client-go does for
`NamespaceTerminating`: deleting a namespace stops its pods, whose events have nowhere to go.
"""

from __future__ import annotations

import collections
import logging
import secrets
import socket
from collections.abc import Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.api.meta import rfc3339
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)
MAX_REMEMBERED = 4096  # distinct events whose repeats are counted rather than recreated


class Recorder:
    def __init__(self, client: RESTClient, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self._res = resources.must("", "v1", "events")
        # (uid, reason, message, type) -> (event name, count), oldest first; bounded
        self._seen: collections.OrderedDict[tuple[str, str, str, str], tuple[str, int]] = \
            collections.OrderedDict()

    def __repr__(self) -> str:
        return f"Recorder({self.component!r}, seen={len(self._seen)})"

    async def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), reason, message, type_)
        now = rfc3339()
        try:
            if key in self._seen:
                name, count = self._seen[key]
                try:
                    await self.client.patch(self._res, name,
                                            {"count": count + 1, "lastTimestamp": now},
                                            namespace, patch_type="merge")
                except errors.NotFound:  # the event was deleted: record it afresh
                    del self._seen[key]
                    await self.event(obj, type_, reason, message)
                    return
                self._seen[key] = (name, count + 1)
                self._seen.move_to_end(key)
                return
            name = f"{meta.get('name', 'object')}.{secrets.token_hex(8)}"
            await self.client.create(self._res, {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""),
                    "name": meta.get("name", ""), "uid": meta.get("uid", ""),
                    "apiVersion": obj.get("apiVersion", ""),
                    "resourceVersion": meta.get("resourceVersion", "")},
                "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, "host": self.host},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host,
            }, namespace)
            self._seen[key] = (name, 1)
            if len(self._seen) > MAX_REMEMBERED:
                self._seen.popitem(last=False)
        except errors.APIError as exc:
            level = logging.DEBUG if _expected(exc, namespace) else logging.WARNING
            log.log(level, "could not record event %s for %s: %s", reason, meta.get("name"),
                    exc)


def _expected(exc: errors.APIError, namespace: str) -> bool:
    """A refusal that is normal, not worth a warning: the namespace is being deleted (403 with
    cause `NamespaceTerminating`, dropped at debug level by client-go's recorder too) or gone
    with it (404 for the namespace itself)."""
    details = exc.details or {}
    if isinstance(exc, errors.Forbidden):
        return any(cause.get("reason") == "NamespaceTerminating"
                   for cause in details.get("causes") or [])
    return isinstance(exc, errors.NotFound) and details.get("kind") == "namespaces" \
        and details.get("name") == namespace
