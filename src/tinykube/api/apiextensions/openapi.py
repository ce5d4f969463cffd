"""OpenAPI component schemas of custom resources, from their CRD's schema (what kube's
`controller/openapi/builder` publishes), so `kubectl explain` and kubectl's validation see them.

The component is named by the reversed group, the version and the kind
(`com.example.stable.v1.CronTab`), tagged with its group-version-kind; `apiVersion` and `kind`
get their usual descriptions, `metadata` refers to ObjectMeta. A List component
(`...CronTabList`) holds `items`. `v2` narrows a schema to what Swagger 2.0 (and gnostic's
protobuf) can say: no `anyOf`/`oneOf`/`not`/`nullable`, as kube's v2 publishing drops them.
"""

from __future__ import annotations

import copy
from typing import Any

from tinykube.api.resources import Resource

Document = dict[str, Any]
OBJECT_META = "io.k8s.api.v1.ObjectMeta"
_REF = "#/components/schemas/"
_API_VERSION = ("APIVersion defines the versioned schema of this representation of an object. "
                "Servers should convert recognized schemas to the latest internal value, and "
                "may reject unrecognized values.")
_KIND = ("Kind is a string value representing the REST resource this object represents. "
         "Servers may infer this from the endpoint the client submits requests to. Cannot be "
         "updated. In CamelCase.")
_V2_KEYS = {"$ref", "format", "title", "description", "default", "multipleOf", "maximum",
            "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
            "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties",
            "required", "enum", "additionalProperties", "type", "items", "allOf", "properties",
            "example"}


def component_name(res: Resource, kind: str | None = None) -> str:
    reversed_group = ".".join(reversed(res.group.split(".")))
    return f"{reversed_group}.{res.version}.{kind or res.kind}"


def schemas(res: Resource) -> dict[str, Document]:
    """The components of one custom resource version: the kind and its List."""
    custom = res.custom
    base: Document = copy.deepcopy(custom.schema) if custom.schema else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    props = base.setdefault("properties", {})
    props["apiVersion"] = {"description": _API_VERSION, "type": "string"}
    props["kind"] = {"description": _KIND, "type": "string"}
    props["metadata"] = {"allOf": [{"$ref": _REF + OBJECT_META}], "default": {}}
    base.setdefault("type", "object")
    gvk = [{"group": res.group, "version": res.version, "kind": res.kind}]
    base["x-kubernetes-group-version-kind"] = gvk
    list_kind = custom.list_kind
    listing: Document = {
        "description": f"{list_kind} is a list of {res.kind}", "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": _API_VERSION, "type": "string"},
            "items": {"type": "array", "items": {"$ref": _REF + component_name(res)}},
            "kind": {"description": _KIND, "type": "string"},
            "metadata": {"description": "Standard list metadata.", "type": "object"},
        },
        "x-kubernetes-group-version-kind": [{"group": res.group, "version": res.version,
                                             "kind": list_kind}],
    }
    return {component_name(res): base, component_name(res, list_kind): listing}


def v2(schema: Any) -> Any:
    """A v3 schema narrowed to Swagger 2.0's keywords (recursively)."""
    if not isinstance(schema, dict):
        return schema
    out: Document = {}
    for key, value in schema.items():
        if key.startswith("x-"):
            out[key] = value
        elif key not in _V2_KEYS:
            continue
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: v2(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = v2(value)
        elif key == "allOf" and isinstance(value, list):
            out[key] = [v2(part) for part in value]
        else:
            out[key] = value
    if "type" not in out and schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    return out
