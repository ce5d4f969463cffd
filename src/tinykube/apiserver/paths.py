"""URL paths of the Kubernetes API, parsed into what they address.

Shapes (core group under `/api/v1`, others under `/apis/<group>/<version>`):

    <prefix>/<plural>                                   list / watch / create (all namespaces)
    <prefix>/<plural>/<name>[/<subresource>]            cluster-scoped object
    <prefix>/namespaces/<ns>/<plural>                   namespaced collection
    <prefix>/namespaces/<ns>/<plural>/<name>[/<sub>]    namespaced object
    /api/v1/namespaces/<name>/{status,finalize}         subresources of a Namespace itself

`parse` returns None for anything that is not a resource path; the caller then decides
between discovery documents and 404.
"""

from __future__ import annotations

import dataclasses

from tinykube.api import resources
from tinykube.api.resources import Resource


@dataclasses.dataclass(frozen=True)
class Target:
    res: Resource
    namespace: str | None  # None: every namespace (or a cluster-scoped resource)
    name: str | None
    subresource: str = ""

    @property
    def is_collection(self) -> bool:
        return self.name is None


class UnknownResource(Exception):
    """An API path naming something the server does not have: `missing` is the (group, version,
    resource, subresource) it names, or None when the path is malformed for a served resource
    (a namespace on a cluster-scoped one, segments after a subresource)."""

    def __init__(self, path: str, missing: tuple[str, str, str, str] | None = None) -> None:
        super().__init__(path)
        self.missing = missing


def _split(path: str) -> tuple[str, str, list[str]] | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def parse(path: str) -> Target | None:
    """Parse a resource path; raise UnknownResource for an API path we do not serve."""
    split = _split(path)
    if split is None:
        return None
    group, version, rest = split
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (
            len(rest) == 3 and rest[2] in ("status", "finalize") and group == ""):
        namespace, rest = rest[1], rest[2:]
    else:
        namespace = None
    res = resources.lookup(group, version, rest[0])
    if res is None:
        raise UnknownResource(path, (group, version, rest[0], ""))
    sub = rest[2] if len(rest) >= 3 else ""
    if sub and res.subresource(sub) is None:
        raise UnknownResource(path, (group, version, rest[0], sub))  # e.g. pods/x/proxy/...
    if len(rest) > 3 or (namespace is not None and not res.namespaced):
        raise UnknownResource(path)
    name = rest[1] if len(rest) >= 2 else None
    return Target(res, namespace, name, sub)
