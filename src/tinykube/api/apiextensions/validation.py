"""Validation of a CustomResourceDefinition, worded as kube's
`apiextensions-apiserver/pkg/apis/apiextensions/validation` words it.

`validate_crd(obj)` checks a create, `validate_crd_update(obj, old)` what an update may not
change (group, plural; scope and kind once established) and that every stored version is still
listed. Schemas are checked by `structural`. Printer columns, scale paths and names follow
upstream's tables below.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tinykube.api.apiextensions import names as naming
from tinykube.api.apiextensions import rules, structural
from tinykube.api.apiextensions import schema as crd_schema
from tinykube.api.errors import FieldError
from tinykube.api.validation.names import dns1035_label_errors, dns1123_subdomain_errors

Obj = dict[str, Any]
_SCOPES = ["Cluster", "Namespaced"]
_COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
_COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64",
                   "password"]
_CONVERSION = ["None", "Webhook"]
_SIMPLE_PATH = re.compile(r"^(\.[A-Za-z0-9_-]+|\[[0-9]+\]|\['[^']*'\])+$")


def validate_crd(crd: Obj) -> list[FieldError]:
    spec = crd.get("spec") or {}
    errs: list[FieldError] = []
    name = (crd.get("metadata") or {}).get("name", "")
    names = spec.get("names") or {}
    if name != f"{names.get('plural', '')}.{spec.get('group', '')}":
        errs.append(FieldError.invalid("metadata.name", name,
                                       'must be spec.names.plural+"."+spec.group'))
    errs += _group(spec.get("group", ""))
    errs += _approval(spec.get("group", ""), (crd.get("metadata") or {}).get("annotations") or {})
    errs += _scope(spec.get("scope", ""))
    errs += _versions(spec.get("versions") or [])
    errs += _required_names(names)
    errs += validate_names(names, "spec.names")
    errs += _conversion(spec.get("conversion") or {})
    errs += validate_names((crd.get("status") or {}).get("acceptedNames") or {},
                           "status.acceptedNames")
    return errs


def validate_crd_update(crd: Obj, old: Obj) -> list[FieldError]:
    spec, old_spec = crd.get("spec") or {}, old.get("spec") or {}
    errs: list[FieldError] = []
    immutable = [("spec.group", spec.get("group"), old_spec.get("group")),
                 ("spec.names.plural", (spec.get("names") or {}).get("plural"),
                  (old_spec.get("names") or {}).get("plural"))]
    if naming.is_established(old):
        immutable += [("spec.scope", spec.get("scope"), old_spec.get("scope")),
                      ("spec.names.kind", (spec.get("names") or {}).get("kind"),
                       (old_spec.get("names") or {}).get("kind"))]
    for path, new, was in immutable:
        if new != was:
            errs.append(FieldError.invalid(path, new, "field is immutable"))
    served = {v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)}
    stored = (crd.get("status") or {}).get("storedVersions") or []
    for index, version in enumerate(stored):
        if version not in served:
            errs.append(FieldError.invalid(f"status.storedVersions[{index}]", version,
                                           "must appear in spec.versions"))
    return errs


def _group(group: str) -> list[FieldError]:
    if not group:
        return [FieldError.required("spec.group", "")]
    if problems := dns1123_subdomain_errors(group):
        return [FieldError.invalid("spec.group", group, ",".join(problems))]
    if len(group.split(".")) < 2:
        return [FieldError.invalid("spec.group", group, "should be a domain with at least one "
                                                        "dot")]
    return []


_APPROVAL = "api-approved.kubernetes.io"


def _approval(group: str, annotations: Obj) -> list[FieldError]:
    """Groups under k8s.io and kubernetes.io are the project's: kube asks for the API review's
    link (or "unapproved, ...") in an annotation."""
    protected = any(group == domain or group.endswith("." + domain)
                    for domain in ("k8s.io", "kubernetes.io"))
    if protected and not annotations.get(_APPROVAL):
        return [FieldError.required(
            f"metadata.annotations[{_APPROVAL}]",
            f'protected groups must have approval annotation "{_APPROVAL}", see '
            "https://github.com/kubernetes/enhancements/pull/1111")]
    return []


def _scope(scope: str) -> list[FieldError]:
    if not scope:
        return [FieldError.required("spec.scope", "")]
    if scope not in _SCOPES:
        return [FieldError.not_supported("spec.scope", scope, _SCOPES)]
    return []


def _versions(versions: list[Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    if not versions:
        return [FieldError.invalid("spec.versions", [], "must have exactly one version marked "
                                                        "as storage version")]
    names = [str((v or {}).get("name", "")) for v in versions]
    for index, version in enumerate(versions):
        errs += _version(version or {}, f"spec.versions[{index}]")
    if len(set(names)) != len(names):
        errs.append(FieldError.invalid("spec.versions", names, "must contain unique version "
                                                               "names"))
    if sum(1 for v in versions if (v or {}).get("storage")) != 1:
        errs.append(FieldError.invalid("spec.versions", names, "must have exactly one version "
                                                               "marked as storage version"))
    if not any((v or {}).get("served") for v in versions):
        errs.append(FieldError.invalid("spec.versions", names, "must have at least one "
                                                               "version marked as served"))
    return errs


def _version(version: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = str(version.get("name", ""))
    if problems := dns1035_label_errors(name):
        errs.append(FieldError.invalid(f"{path}.name", name, ",".join(problems)))
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    schema_path = f"{path}.schema.openAPIV3Schema"
    if not isinstance(schema, dict):
        errs.append(FieldError.required(schema_path, "schemas are required"))
    else:
        errs += structural.errors(schema, schema_path)
        errs += _unsupported(schema, schema_path)
        if not errs:
            errs += _defaults(schema, schema_path)
            errs += rules.crd_errors(schema, schema_path)
            errs += _selectable_fields(version.get("selectableFields") or [], schema,
                                       f"{path}.selectableFields")
    subresources = version.get("subresources") or {}
    if isinstance(subresources.get("scale"), dict):
        errs += _scale(subresources["scale"], f"{path}.subresources.scale")
    for index, column in enumerate(version.get("additionalPrinterColumns") or []):
        errs += _column(column or {}, f"{path}.additionalPrinterColumns[{index}]")
    if version.get("deprecationWarning") and not version.get("deprecated"):
        errs.append(FieldError.invalid(f"{path}.deprecationWarning",
                                       version["deprecationWarning"],
                                       "can only be set for deprecated versions"))
    return errs


MAX_SELECTABLE_FIELDS = 8
_SELECTABLE_TYPES = ("string", "boolean", "integer")


def _selectable_fields(fields: list[Any], schema: Obj, path: str) -> list[FieldError]:
    """`selectableFields`: simple paths (no array notation) to string, boolean or integer
    fields outside metadata, each once, at most 8."""
    errs: list[FieldError] = []
    seen: list[str] = []
    for index, item in enumerate(fields):
        json_path = str((item or {}).get("jsonPath") or "") if isinstance(item, dict) else ""
        at = f"{path}[{index}].jsonPath"
        if not json_path:
            errs.append(FieldError.required(at, ""))
            continue
        found, problem = _schema_at(schema, json_path)
        if problem:
            errs.append(FieldError.invalid(at, json_path, f"is an invalid path: {problem}"))
            continue
        if json_path.split(".")[1] == "metadata":
            errs.append(FieldError.invalid(at, json_path, "must not point to fields in metadata"))
        if (found or {}).get("type") not in _SELECTABLE_TYPES:
            errs.append(FieldError.invalid(at, json_path, (
                "must point to a field of type string, boolean or integer. Enum string fields "
                "and strings with formats are allowed.")))
        if json_path in seen:
            errs.append(FieldError.duplicate(at, json_path))
        else:
            seen.append(json_path)
    if len(seen) > MAX_SELECTABLE_FIELDS:
        errs.append(FieldError("FieldValueTooMany", path,
                               f"must have at most {MAX_SELECTABLE_FIELDS} items", len(seen),
                               True))
    return errs


def _schema_at(schema: Obj, json_path: str) -> tuple[Obj | None, str]:
    """The schema a `.a.b` path names, or the reason it names none (kube's ValidFieldPath)."""
    if "[" in json_path or "]" in json_path:
        return None, "array notation is not allowed"
    if not json_path.startswith(".") or json_path.endswith("."):
        return None, "expected [ or . at position 0" if not json_path.startswith(".") \
            else "unexpected end of JSON path"
    node: Any = schema
    for name in json_path[1:].split("."):
        props = node.get("properties") or {} if isinstance(node, dict) else {}
        if not name or name not in props:
            if name == "metadata" and node is schema:
                return {"type": "object"}, ""
            return None, "does not refer to a valid field"
        node = props[name]
    return node, ""


# JSON Schema keywords kube refuses in a CRD (specStandardValidatorV3).
_UNSUPPORTED = (("id", "id is not supported"),
                ("additionalItems", "additionalItems is not supported"),
                ("patternProperties", "patternProperties is not supported"),
                ("definitions", "definitions is not supported"),
                ("dependencies", "dependencies is not supported"),
                ("$ref", "$ref is not supported"))


def _unsupported(s: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, text in _UNSUPPORTED:
        if s.get(key):
            errs.append(FieldError.forbidden(f"{path}.{key}", text))
    if s.get("type") == "null":
        errs.append(FieldError.forbidden(f"{path}.type", "type cannot be set to null"))
    if isinstance(s.get("items"), list):
        errs.append(FieldError.forbidden(f"{path}.items", "items must be a schema object and "
                                                          "not an array"))
    if s.get("uniqueItems") is True:
        errs.append(FieldError.forbidden(f"{path}.uniqueItems", "uniqueItems cannot be set to "
                                         "true since the runtime complexity becomes quadratic"))
    errs += _extension_rules(s, path)
    if s.get("properties") and isinstance(s.get("additionalProperties"), dict | bool) and \
            s.get("additionalProperties") is not True:
        errs.append(FieldError.forbidden(f"{path}.additionalProperties",
                                         "additionalProperties and properties are mutual "
                                         "exclusive"))
    for name, prop in (s.get("properties") or {}).items():
        if isinstance(prop, dict):
            errs += _unsupported(prop, f"{path}.properties[{name}]")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(s.get(key), dict):
            errs += _unsupported(s[key], f"{path}.{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for index, nested in enumerate(s.get(key) or []):
            if isinstance(nested, dict):
                errs += _unsupported(nested, f"{path}.{key}[{index}]")
    return errs


def _defaults(s: Obj, path: str) -> list[FieldError]:
    """Every `default` must be valid against its schema and have nothing pruning would drop
    (kube's defaulting.ValidateDefaults; additionalProperties may hold none)."""
    errs: list[FieldError] = []
    if "default" in s:
        value = copy.deepcopy(s["default"])
        if isinstance(value, dict | list) and crd_schema.prune_value(s, value):
            errs.append(FieldError.invalid(f"{path}.default", crd_schema.unstructured(
                s["default"]), "must not have unknown fields"))
        else:
            errs += crd_schema.validate_value(s, s["default"], f"{path}.default")
    if isinstance(s.get("items"), dict):
        errs += _defaults(s["items"], f"{path}.items")
    for name, prop in (s.get("properties") or {}).items():
        if isinstance(prop, dict):
            errs += _defaults(prop, f"{path}.properties[{name}]")
    return errs


_LIST_TYPES = ["atomic", "set", "map"]
_MAP_TYPES = ["granular", "atomic"]


def _extension_rules(s: Obj, path: str) -> list[FieldError]:
    """x-kubernetes-list-type, -list-map-keys and -map-type, as kube checks them."""
    errs: list[FieldError] = []
    list_type = s.get("x-kubernetes-list-type")
    keys = s.get("x-kubernetes-list-map-keys") or []
    if list_type is not None and list_type not in _LIST_TYPES:
        errs.append(FieldError.not_supported(f"{path}.x-kubernetes-list-type", list_type,
                                             _LIST_TYPES))
    if keys and list_type != "map":
        errs.append(FieldError.forbidden(f"{path}.x-kubernetes-list-map-keys",
                                         "must only be set if x-kubernetes-list-type is map"))
    if list_type == "map" and not keys:
        errs.append(FieldError.required(f"{path}.x-kubernetes-list-map-keys",
                                        "must not be empty if x-kubernetes-list-type is map"))
    items: Obj = s["items"] if isinstance(s.get("items"), dict) else {}
    props = items.get("properties") or {}
    if list_type == "map" and keys and any(k not in props for k in keys):
        errs.append(FieldError.invalid(f"{path}.x-kubernetes-list-map-keys", keys,
                                       "entries must all be names of item properties"))
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and map_type not in _MAP_TYPES:
        errs.append(FieldError.not_supported(f"{path}.x-kubernetes-map-type", map_type,
                                             _MAP_TYPES))
    return errs


def _scale(scale: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for field, under in (("specReplicasPath", ".spec."), ("statusReplicasPath", ".status.")):
        value = scale.get(field, "")
        where = under.strip(".")
        if not value:
            errs.append(FieldError.required(f"{path}.{field}", ""))
        elif not _SIMPLE_PATH.match(value) or not value.startswith(under):
            errs.append(FieldError.invalid(f"{path}.{field}", value,
                                           f"should be a json path under .{where}"))
    selector = scale.get("labelSelectorPath")
    if selector and (not _SIMPLE_PATH.match(selector)
                     or not selector.startswith((".spec.", ".status."))):
        errs.append(FieldError.invalid(f"{path}.labelSelectorPath", selector,
                                       "should be a json path under either .spec or .status"))
    return errs


def _column(column: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not column.get("name"):
        errs.append(FieldError.required(f"{path}.name", ""))
    kind = column.get("type", "")
    if not kind:
        errs.append(FieldError.required(f"{path}.type", ""))
    elif kind not in _COLUMN_TYPES:
        errs.append(FieldError.not_supported(f"{path}.type", kind, _COLUMN_TYPES))
    if column.get("format") and column["format"] not in _COLUMN_FORMATS:
        errs.append(FieldError.not_supported(f"{path}.format", column["format"],
                                             _COLUMN_FORMATS))
    if not column.get("jsonPath"):
        errs.append(FieldError.required(f"{path}.jsonPath", ""))
    return errs


def _required_names(names: Obj) -> list[FieldError]:
    return [FieldError.required(f"spec.names.{field}", "")
            for field in ("plural", "singular", "kind", "listKind") if not names.get(field)]


def validate_names(names: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("plural", "singular"):
        value = names.get(field) or ""
        if value and (problems := dns1035_label_errors(value)):
            errs.append(FieldError.invalid(f"{path}.{field}", value, ",".join(problems)))
    for field in ("kind", "listKind"):
        value = names.get(field) or ""
        if value and (problems := dns1035_label_errors(value.lower())):
            errs.append(FieldError.invalid(f"{path}.{field}", value,
                                           "may have mixed case, but should otherwise match: "
                                           + ",".join(problems)))
    for field in ("shortNames", "categories"):
        for index, value in enumerate(names.get(field) or []):
            if problems := dns1035_label_errors(str(value)):
                errs.append(FieldError.invalid(f"{path}.{field}[{index}]", value,
                                               ",".join(problems)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(FieldError.invalid(f"{path}.listKind", names["listKind"],
                                       "kind and listKind may not be the same"))
    return errs


def _conversion(conversion: Obj) -> list[FieldError]:
    strategy = conversion.get("strategy", "None")
    if strategy not in _CONVERSION:
        return [FieldError.not_supported("spec.conversion.strategy", strategy, _CONVERSION)]
    if strategy == "Webhook" and not conversion.get("webhook"):
        return [FieldError.required("spec.conversion.webhook",
                                    "required when strategy is set to Webhook")]
    return []
