"""A fake RESTClient for the workload controllers' tests: records every call, answers from a dict.

Objects live in `objects[(plural, namespace, name)]`. `create` fills in `generateName`, uid and
resourceVersion; `update` bumps resourceVersion; `delete` removes; `get`/`list` read. Every call
is appended to `calls` as `(verb, plural, name-or-body)` so tests assert the exact writes.
Events are recorded (`events`) instead of stored.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from tinykube.api import errors
from tinykube.api.resources import Resource

Obj = dict[str, Any]
Call = tuple[str, str, Any]
Calls = list[Call]  # (an alias: inside the class `list` is the method)
Events = list[tuple[str, str, str]]


class FakeClient:
    def __init__(self, objects: list[tuple[str, Obj]] | None = None) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.calls: Calls = []
        self.events: Events = []  # (type, reason, message)
        self.deletes: list[dict[str, Any]] = []  # the options of each delete call
        self._ids = itertools.count(1)
        for plural, obj in objects or []:
            meta = obj["metadata"]
            self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj

    async def get(self, res: Resource, name: str, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("get", res.plural, name))
        obj = self.objects.get((res.plural, namespace or "", name))
        if obj is None:
            raise errors.NotFound.for_object(res.plural, res.group, name)
        return copy.deepcopy(obj)

    async def list(self, res: Resource, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("list", res.plural, namespace))
        items = [copy.deepcopy(o) for (plural, ns, _), o in self.objects.items()
                 if plural == res.plural and ns == (namespace or "")]
        return {"items": items, "metadata": {"resourceVersion": "1"}}

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None,
                     **_: Any) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if res.plural == "events":
            self.events.append((obj["type"], obj["reason"], obj["message"]))
            return obj
        number = next(self._ids)
        meta.setdefault("name", f"{meta.get('generateName', 'x-')}{number:05d}")
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["resourceVersion"] = str(100 + number)
        self.calls.append(("create", res.plural, obj))
        self.objects[(res.plural, namespace or meta.get("namespace", ""), meta["name"])] = obj
        return copy.deepcopy(obj)

    async def update(self, res: Resource, obj: Obj, namespace: str | None = None,
                     subresource: str | None = None) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(100 + next(self._ids))
        self.calls.append(("update" if not subresource else f"update/{subresource}",
                           res.plural, obj))
        return obj

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    **kwargs: Any) -> Obj:
        if res.plural == "events":
            return {}
        subresource = kwargs.get("subresource")
        self.calls.append(("patch" if not subresource else f"patch/{subresource}",
                           res.plural, patch))
        return {}

    async def delete(self, res: Resource, name: str, namespace: str | None = None,
                     **kwargs: Any) -> Obj:
        self.calls.append(("delete", res.plural, name))
        self.deletes.append(kwargs)
        if self.objects.pop((res.plural, namespace or "", name), None) is None:
            raise errors.NotFound.for_object(res.plural, res.group, name)
        return {}

    def writes(self) -> Calls:
        """Every call but reads."""
        return [c for c in self.calls if c[0] not in ("get", "list")]
