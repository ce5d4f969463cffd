"""A CustomResourceDefinition as rows of the resource table, and `None` conversion.

An established CRD serves one `Resource` per served version, each carrying a `CustomKind`: the
CRD's name and that version's schema, printer columns and subresources. Every part of the API
server reads the row as it reads a built-in one (routing, discovery, OpenAPI, storage keys);
what differs for custom kinds asks `res.custom`. Versions other than the storage version are
`converted` rows (`storage_version` set), so codecs know to rewrite them.

Conversion: kube's `None` strategy changes only `apiVersion` (`convert`). A CRD with
`conversion.strategy: Webhook` carries its webhook on every row (`CustomKind.webhook`); the API
server converts those objects with `apiserver.crd_conversion` (I/O) before encoding and after
decoding, so `convert` never sees them in another version (`needs_webhook`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from tinykube.api.resources import STATUS_VERBS, Resource, Subresource

Obj = dict[str, Any]
GROUP = "apiextensions.k8s.io"


@dataclasses.dataclass(frozen=True)
class CustomKind:
    """What a custom resource version needs beyond its `Resource` row."""

    crd_name: str
    schema: Obj | None  # openAPIV3Schema of this version (None: none given)
    columns: tuple[Obj, ...]  # additionalPrinterColumns
    status: bool  # the status subresource is enabled
    scale: Obj | None  # the scale subresource (specReplicasPath, ...), or None
    storage_version: str
    list_kind: str
    preserve_unknown: bool = False  # spec.preserveUnknownFields (v1 CRDs: false)
    deprecation_warning: str = ""
    terminating: bool = False  # the CRD is being deleted: no new objects
    # spec.conversion.webhook (clientConfig, conversionReviewVersions) of a CRD whose strategy
    # is Webhook; None for `None` conversion
    webhook: Obj | None = dataclasses.field(default=None, compare=False, hash=False)
    selectable: tuple[str, ...] = ()  # selectableFields, as field selector keys (`spec.color`)

    @functools.cached_property
    def has_defaults(self) -> bool:
        """Whether the schema defaults anything (else reads serve the stored bytes)."""
        return '"default"' in json.dumps(self.schema) if self.schema else False


def _version_rows(crd: Obj) -> list[Obj]:
    return [v for v in (crd.get("spec") or {}).get("versions") or [] if isinstance(v, dict)]


def storage_version(crd: Obj) -> str:
    for version in _version_rows(crd):
        if version.get("storage"):
            return str(version.get("name", ""))
    return ""


def _deprecation(crd: Obj, version: Obj) -> str:
    if not version.get("deprecated"):
        return ""
    if version.get("deprecationWarning"):
        return str(version["deprecationWarning"])
    names = (crd.get("status") or {}).get("acceptedNames") or {}
    group = (crd.get("spec") or {}).get("group", "")
    return f"{group}/{version.get('name')} {names.get('kind', '')} is deprecated"


def rows(crd: Obj) -> list[Resource]:
    """The served versions of an established CRD, as resource rows (accepted names only)."""
    spec = crd.get("spec") or {}
    names = (crd.get("status") or {}).get("acceptedNames") or {}
    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    if not (group and plural and kind):
        return []
    stored = storage_version(crd)
    result = []
    for version in _version_rows(crd):
        if not version.get("served"):
            continue
        name = str(version.get("name", ""))
        subresources = version.get("subresources") or {}
        custom = CustomKind(
            crd_name=crd["metadata"]["name"],
            schema=((version.get("schema") or {}).get("openAPIV3Schema")),
            columns=tuple(version.get("additionalPrinterColumns") or ()),
            status="status" in subresources, scale=subresources.get("scale"),
            storage_version=stored, list_kind=names.get("listKind") or f"{kind}List",
            preserve_unknown=bool(spec.get("preserveUnknownFields")),
            deprecation_warning=_deprecation(crd, version),
            terminating=bool(crd["metadata"].get("deletionTimestamp")),
            webhook=_conversion_webhook(spec),
            selectable=tuple(str(f.get("jsonPath", "")).lstrip(".")
                             for f in version.get("selectableFields") or []
                             if isinstance(f, dict)))
        subs = []
        if custom.status:
            subs.append(Subresource("status", group, name, kind, STATUS_VERBS))
        if custom.scale is not None:
            subs.append(Subresource("scale", "autoscaling", "v1", "Scale", STATUS_VERBS))
        result.append(Resource(
            group, name, plural, kind, namespaced=spec.get("scope") != "Cluster",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(subs), storage_version="" if name == stored else stored,
            deprecated_warning=custom.deprecation_warning,
            singular_name=names.get("singular") or kind.lower(), custom=custom))
    return result


def _conversion_webhook(spec: Obj) -> Obj | None:
    conversion = spec.get("conversion") or {}
    if not isinstance(conversion, dict) or conversion.get("strategy") != "Webhook":
        return None
    webhook = conversion.get("webhook")
    return webhook if isinstance(webhook, dict) else {}


def needs_webhook(res: Resource, obj: Obj | None, api_version: str) -> bool:
    """Whether `obj` of a custom resource needs its CRD's conversion webhook to become
    `api_version` (a webhook-converted kind, in another version)."""
    return (res.custom is not None and res.custom.webhook is not None and obj is not None
            and obj.get("apiVersion") != api_version)


def convert(obj: Obj, api_version: str) -> Obj:
    """`None` conversion: the same object under another apiVersion (webhook conversion would
    call out here)."""
    if obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version}
