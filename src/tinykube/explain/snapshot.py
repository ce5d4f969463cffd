"""What `explain` reads: one consistent-enough listing of the objects cluster DNS depends on.

`gather(client)` lists, through the API (never the store), every Namespace, Service,
EndpointSlice, Pod and StatefulSet, each list paged. The lists are taken one after the other, so
they are not one snapshot of the store; for an explanation that is fine (the DNS server's own
informers are no more consistent). `Snapshot` keeps the raw API dicts and the few lookups the
explanations need; it is also what the unit tests build from YAML fixtures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tinykube.api import resources
from tinykube.client.rest import RESTClient

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# kind -> (group, version, plural), the lists `gather` takes
LISTED = {
    "Namespace": ("", "v1", "namespaces"),
    "Service": ("", "v1", "services"),
    "EndpointSlice": ("discovery.k8s.io", "v1", "endpointslices"),
    "Pod": ("", "v1", "pods"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
}


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


@dataclass
class Snapshot:
    """The raw objects, by kind, with the lookups explanations make."""

    objects: dict[str, list[Obj]] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Iterable[Obj]) -> Snapshot:
        """A snapshot of loose objects (each with its `kind`), as tests and fixtures give them."""
        snap = cls({kind: [] for kind in LISTED})
        for obj in items:
            if obj.get("kind") in LISTED:
                snap.objects[obj["kind"]].append(obj)
        return snap

    def all(self, kind: str) -> list[Obj]:
        return self.objects.get(kind, [])

    def in_namespace(self, kind: str, namespace: str) -> Iterator[Obj]:
        return (o for o in self.all(kind) if namespace_of(o) == namespace)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return next((o for o in self.in_namespace(kind, namespace) if name_of(o) == name), None)

    def namespaces(self) -> list[str]:
        return sorted({name_of(o) for o in self.all("Namespace")}
                      | {namespace_of(o) for o in self.all("Service")})

    def slices_of(self, namespace: str, service: str) -> list[Obj]:
        return [s for s in self.in_namespace("EndpointSlice", namespace)
                if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
                == service]


async def _list_all(client: RESTClient, group: str, version: str, plural: str) -> list[Obj]:
    res = resources.must(group, version, plural)
    items: list[Obj] = []
    token: str | None = None
    for _ in range(10_000):  # bounded: 500 per page
        page = await client.list(res, limit=500, continue_=token)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or None
        if not token:
            break
    return items


async def gather(client: RESTClient) -> Snapshot:
    """List every kind in `LISTED` through the API."""
    snap = Snapshot({})
    for kind, (group, version, plural) in LISTED.items():
        snap.objects[kind] = [{**o, "kind": kind}
                              for o in await _list_all(client, group, version, plural)]
    return snap
