"""Discovery documents, generated from the resource registry (`tinykube.api.resources`).

kubectl learns every name it accepts (plurals, short names, the `all` category, scopes, kinds)
from these documents alone, so they are pure functions of the registry and nothing else.
Two families are served, as kube-apiserver serves them:

- **Aggregated** (`apidiscovery.k8s.io/v2`, and `v2beta1` for kubectl <= 1.28): the whole
  `/api` or `/apis` answer in one `APIGroupDiscoveryList`. kubectl parses it as aggregated only
  when the response Content-Type is exactly `AGGREGATED_CONTENT_TYPE[version]`; `negotiate`
  picks the version from the Accept header the way kube-apiserver does (first acceptable
  clause wins, a plain `application/json` clause means legacy).
- **Legacy**: `APIVersions` (`/api`), `APIGroupList` (`/apis`), `APIGroup` (`/apis/G`) and
  `APIResourceList` (`/api/v1`, `/apis/G/V`), where each subresource is its own entry
  (`statefulsets/scale`).

Order follows kube-apiserver: groups by its built-in group priority (core first, then
apiregistration.k8s.io, apps, events.k8s.io, ...), versions preferred first (`v2`, `v1`, then
`v1beta2`, then `v1beta1`), resources of a group-version alphabetically. kubectl keeps this order
(`get all` prints in it). Every advertised version is `freshness: Current`: a `Stale` one would
count as a failed group-version, and the legacy apps versions are really served.

Documents are built once and cached; callers get the shared dict and must not mutate it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from tinykube.api import resources
from tinykube.api.resources import Resource, Subresource

Document = dict[str, Any]

AGGREGATED_VERSIONS = ("v2", "v2beta1")
AGGREGATED_CONTENT_TYPE = {
    version: f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    for version in AGGREGATED_VERSIONS
}

# kube-apiserver's built-in APIService group priorities (higher first), in the order its
# aggregated discovery lists them (upstream api/discovery/aggregated_v2.json).
_GROUP_PRIORITY = {
    "": 18000,
    "apiregistration.k8s.io": 17900,  # the aggregator's own group, listed first under /apis
    "apps": 17800,
    "events.k8s.io": 17750,
    "authentication.k8s.io": 17700,
    "authorization.k8s.io": 17600,
    "autoscaling": 17500,
    "batch": 17400,
    "certificates.k8s.io": 17300,
    "networking.k8s.io": 17200,
    "policy": 17100,
    "rbac.authorization.k8s.io": 17000,
    "storage.k8s.io": 16800,
    "admissionregistration.k8s.io": 16700,
    "apiextensions.k8s.io": 16650,
    "scheduling.k8s.io": 16600,
    "coordination.k8s.io": 16500,
    "node.k8s.io": 16300,
    "discovery.k8s.io": 16200,
    "flowcontrol.apiserver.k8s.io": 16100,
    "metrics.k8s.io": 100,  # metrics-server's APIService (groupPriorityMinimum 100)
}
_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {"alpha": 0, "beta": 1, None: 2}


# --- ordering ---------------------------------------------------------------------------------


def _version_rank(version: str) -> tuple[int, int, int, int]:
    """Sort key putting the most preferred version first: v2, v1, v1beta2, v1beta1, v1alpha1."""
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (1, 0, 0, 0)  # not a Kubernetes-style version: after every real one
    major, stability, minor = match.groups()
    return (0, -_STABILITY[stability], -int(major), -int(minor or 0))


def _ordered_groups() -> list[str]:
    """Every served group in kube-apiserver order; groups it does not know keep registry order."""
    registry_order = list(resources.GROUP_VERSIONS)
    return sorted(registry_order,
                  key=lambda group: (-_GROUP_PRIORITY.get(group, 0), registry_order.index(group)))


def _versions(group: str) -> list[str]:
    """The group's served versions, preferred first."""
    return sorted(resources.GROUP_VERSIONS.get(group, []), key=_version_rank)


def _resources(group: str, version: str) -> list[Resource]:
    served = [r for r in resources.ALL if r.group == group and r.version == version]
    return sorted(served, key=lambda r: r.plural)


def _subresources(resource: Resource) -> list[Subresource]:
    return sorted(resource.subresources, key=lambda sub: sub.name)


# --- content negotiation ----------------------------------------------------------------------


def _parse_accept(header: str) -> list[tuple[str, dict[str, str]]]:
    """Accept clauses as (media type, params), best first: by q, then by header order."""
    clauses: list[tuple[float, int, str, dict[str, str]]] = []
    for position, clause in enumerate(header.split(",")):
        media_type, *raw_params = (part.strip() for part in clause.split(";"))
        if not media_type:
            continue
        params = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            clauses.append((quality, position, media_type.lower(), params))
    clauses.sort(key=lambda c: (-c[0], c[1]))
    return [(media_type, params) for _, _, media_type, params in clauses]


def _aggregated_version(params: dict[str, str]) -> str | None:
    if params.get("g") != "apidiscovery.k8s.io" or params.get("as") != "APIGroupDiscoveryList":
        return None
    version = params.get("v", "")
    return version if version in AGGREGATED_VERSIONS else None


def negotiate(accept_header: str) -> str | None:
    """The aggregated discovery version to answer with, or None for the legacy document.

    As kube-apiserver: the first acceptable clause decides. A JSON clause naming
    `APIGroupDiscoveryList` in a version we serve means aggregated; a plain JSON (or wildcard)
    clause means legacy; anything else (protobuf, unknown parameters or versions) is skipped.
    No acceptable clause at all (including an empty header) falls back to legacy.
    """
    for media_type, params in _parse_accept(accept_header):
        if media_type not in ("application/json", "application/*", "*/*"):
            continue
        if not params.keys() - {"pretty"}:
            return None
        if media_type == "application/json" and (version := _aggregated_version(params)):
            return version
    return None


# --- aggregated (apidiscovery.k8s.io) --------------------------------------------------------


def _response_kind(group: str, version: str, kind: str) -> Document:
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(resource: Resource) -> Document:
    entry: Document = {
        "resource": resource.plural,
        "responseKind": _response_kind(resource.group, resource.version, resource.kind),
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    if resource.subresources:
        entry["subresources"] = [
            {"subresource": sub.name,
             "responseKind": _response_kind(sub.group, sub.version, sub.kind),
             "verbs": list(sub.verbs)}
            for sub in _subresources(resource)
        ]
    return entry


def _aggregated_group(group: str) -> Document:
    return {
        "metadata": {"name": group},
        "versions": [
            {"version": version, "freshness": "Current",
             "resources": [_aggregated_resource(r) for r in _resources(group, version)]}
            for version in _versions(group)
        ],
    }


@functools.cache
def aggregated(core: bool, version: str = "v2") -> Document:
    """The `APIGroupDiscoveryList` for `/api` (core=True) or `/apis`, in `version` (v2|v2beta1)."""
    if version not in AGGREGATED_VERSIONS:
        raise ValueError(f"unknown aggregated discovery version {version!r}")
    groups = [g for g in _ordered_groups() if (g == "") == core]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": [_aggregated_group(group) for group in groups],
    }


# --- legacy -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def api_versions(server_address: str) -> Document:
    """The legacy `/api` answer: `APIVersions`, with the address clients reached us at."""
    return {
        "kind": "APIVersions",
        "versions": _versions(""),
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address},
        ],
    }


def _group_version_for_discovery(group: str, version: str) -> Document:
    return {"groupVersion": f"{group}/{version}", "version": version}


@functools.cache
def api_group(group: str) -> Document | None:
    """The legacy `/apis/<group>` answer (`APIGroup`), or None if we serve no such named group."""
    versions = _versions(group)
    if not group or not versions:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_group_version_for_discovery(group, v) for v in versions],
        "preferredVersion": _group_version_for_discovery(group, versions[0]),
    }


@functools.cache
def api_group_list() -> Document:
    """The legacy `/apis` answer: every named group (`APIGroupList`)."""
    groups = [api_group(group) for group in _ordered_groups() if group]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{k: v for k, v in g.items() if k not in ("kind", "apiVersion")}
                   for g in groups if g is not None],
    }


def _legacy_resource(resource: Resource) -> Document:
    entry: Document = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def _legacy_subresource(resource: Resource, sub: Subresource) -> Document:
    entry: Document = {
        "name": f"{resource.plural}/{sub.name}",
        "singularName": "",
        "namespaced": resource.namespaced,
    }
    if (sub.group, sub.version) != (resource.group, resource.version):
        entry["group"] = sub.group
        entry["version"] = sub.version
    entry["kind"] = sub.kind
    entry["verbs"] = list(sub.verbs)
    return entry


@functools.cache
def api_resource_list(group: str, version: str) -> Document | None:
    """The legacy `/api/v1` or `/apis/G/V` answer (`APIResourceList`), or None if not served.

    Subresources are entries of their own (`pods/log`, `statefulsets/scale`), listed right after
    their resource, as kube-apiserver's alphabetical order puts them.
    """
    served = _resources(group, version)
    if not served:
        return None
    entries: list[Document] = []
    for resource in served:
        entries.append(_legacy_resource(resource))
        entries.extend(_legacy_subresource(resource, sub) for sub in _subresources(resource))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def _forget() -> None:
    """Drop the cached documents (the resource table changed: a CRD came or went)."""
    for cached in (aggregated, api_versions, api_group, api_group_list, api_resource_list):
        cached.cache_clear()


resources.subscribe(_forget)
