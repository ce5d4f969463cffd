"""A custom resource against its CRD's structural schema: defaulting, pruning, validation.

In the order kube's apiextensions-apiserver applies them to a request body:

1. `prune(schema, obj)`: fields the schema does not specify are dropped (unless
   `x-kubernetes-preserve-unknown-fields`), and their paths returned, so the codec can answer
   `fieldValidation=Strict` with `strict decoding error: unknown field "spec.foo"` and `Warn`
   with one warning per path. `apiVersion`, `kind` and `metadata` at the root (and at an
   `x-kubernetes-embedded-resource`) are always kept; inside `metadata` the ObjectMeta rules
   apply.
2. `apply_defaults(schema, obj)`: every `default` of a property the object lacks, top-down
   (a defaulted object gets its own properties' defaults). Also run when an object is read from
   storage, as upstream does, so a default added to the CRD later shows on old objects.
3. `validate(schema, obj)`: kube-openapi's value validation, with the messages kube prints
   (`spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer:
   "string"`, `spec.size: Unsupported value: "XL": supported values: "S", "M"`,
   `spec.name: Required value`), plus the list rules (`x-kubernetes-list-type: set | map`:
   `Duplicate value`).

CEL rules (`x-kubernetes-validations`) are `rules`' job, run after these by `objects.validate`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tinykube.api.errors import FieldError, Rendered

Obj = dict[str, Any]
_META_FIELDS = ("apiVersion", "kind", "metadata")

_TYPE_NAMES = {bool: "boolean", str: "string", dict: "object", list: "array"}


# --- pruning ------------------------------------------------------------------------------


def prune(schema: Obj | None, obj: Obj) -> list[str]:
    """Drop what `schema` does not specify from `obj` (in place); the paths dropped."""
    if schema is None:
        return []
    dropped: list[str] = []
    _prune_object(schema, obj, "", dropped, root=True)
    return dropped


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _prune_object(s: Obj, obj: Obj, path: str, out: list[str], *, root: bool) -> None:
    props = s.get("properties") or {}
    additional = s.get("additionalProperties")
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    keep_meta = root or bool(s.get("x-kubernetes-embedded-resource"))
    for key in list(obj):
        if keep_meta and key in _META_FIELDS:
            if key == "metadata" and isinstance(obj[key], dict) and not root:
                pass  # an embedded object's metadata is kept whole
            continue
        sub = props.get(key)
        if sub is None and isinstance(additional, dict):
            sub = additional
        if sub is None:
            if not preserve and additional is not True:
                out.append(_child(path, key))
                del obj[key]
            continue
        _prune_value(sub, obj[key], _child(path, key), out)


def _prune_value(s: Obj, value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict) and not s.get("x-kubernetes-int-or-string"):
        if s.get("properties") or s.get("additionalProperties") is not None or \
                s.get("x-kubernetes-embedded-resource") or \
                not s.get("x-kubernetes-preserve-unknown-fields"):
            _prune_object(s, value, path, out, root=False)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        for index, item in enumerate(value):
            _prune_value(s["items"], item, f"{path}[{index}]", out)


# --- defaulting ---------------------------------------------------------------------------


def apply_defaults(schema: Obj | None, obj: Any) -> None:
    """Fill in `default`s where `obj` lacks the property (in place)."""
    if schema is None:
        return
    _default(schema, obj)


def _default(s: Obj, value: Any) -> None:
    if isinstance(value, dict):
        for name, prop in (s.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            if name not in value and "default" in prop:
                value[name] = json.loads(json.dumps(prop["default"]))
            if name in value:
                _default(prop, value[name])
        additional = s.get("additionalProperties")
        if isinstance(additional, dict):
            for key, item in value.items():
                if key not in (s.get("properties") or {}):
                    _default(additional, item)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        for item in value:
            _default(s["items"], item)


# --- validation ---------------------------------------------------------------------------


def validate(schema: Obj | None, obj: Obj) -> list[FieldError]:
    """Value errors of `obj` against `schema` (its metadata is validated elsewhere)."""
    if schema is None:
        return []
    out: list[FieldError] = []
    body = {k: v for k, v in obj.items() if k != "metadata"}
    root = {k: v for k, v in schema.items() if k != "properties"}
    root["properties"] = {k: v for k, v in (schema.get("properties") or {}).items()
                          if k != "metadata"}
    _validate(root, body, "", out)
    return out


def validate_value(s: Obj, value: Any, path: str) -> list[FieldError]:
    """Value errors of `value` (at `path`) against the schema `s` (a CRD's `default`)."""
    out: list[FieldError] = []
    _validate(s, value, path, out)
    return out


def prune_value(s: Obj, value: Any) -> list[str]:
    """What pruning would drop from `value` (in place) under the schema `s`."""
    dropped: list[str] = []
    _prune_value(s, value, "", dropped)
    return dropped


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _TYPE_NAMES.get(type(value), "object")


def _type_ok(kind: str, value: Any) -> bool:
    actual = type_name(value)
    if kind == "number":
        return actual in ("integer", "number")
    if kind == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == kind


def _go(value: Any) -> str:
    """A value as kube-openapi quotes it in its messages (%q for strings, %v else)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return '"null"'
    return str(value)


def unstructured(value: Any) -> Any:
    """A JSON value as Go's %#v prints it inside an unstructured object; scalars unchanged."""
    if isinstance(value, dict | list):
        return Rendered(_go_any(value))
    return value


def _go_any(value: Any) -> str:
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)}:{_go_any(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + pairs + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_any(v) for v in value) + "}"
    if value is None:
        return "interface {}(nil)"
    return _go(value)


def _invalid(path: str, value: Any, text: str) -> FieldError:
    return FieldError.invalid(path or "<root>", unstructured(value),
                              f"{path or '<root>'} in body {text}")


def _validate(s: Obj, value: Any, path: str, out: list[FieldError]) -> None:
    if value is None:
        if not s.get("nullable") and s.get("type"):
            out.append(FieldError("FieldValueTypeInvalid", path, _must_be(path, s["type"], None),
                                  "null", True))
        return
    if s.get("x-kubernetes-int-or-string"):
        if type_name(value) not in ("integer", "string"):
            out.append(FieldError("FieldValueTypeInvalid", path,
                                  f"{path} in body must be of type integer,string: "
                                  f"{json.dumps(type_name(value))}", type_name(value), True))
            return
    elif s.get("type") and not _type_ok(s["type"], value):
        out.append(FieldError("FieldValueTypeInvalid", path,
                              _must_be(path, s["type"], value), type_name(value), True))
        return
    _format(s, value, path, out)
    _enum(s, value, path, out)
    if isinstance(value, str):
        _string(s, value, path, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _number(s, value, path, out)
    elif isinstance(value, list):
        _array(s, value, path, out)
    elif isinstance(value, dict):
        _object(s, value, path, out)
    _junctors(s, value, path, out)


def _must_be(path: str, kind: str, value: Any) -> str:
    shown = json.dumps(type_name(value))
    return f"{path} in body must be of type {kind}: {shown}"


_FORMATS: dict[str, re.Pattern[str]] = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "date-time": re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?"
                            r"([Zz]|[+-]\d{2}:\d{2})$"),
    "uuid": re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                       r"[0-9a-fA-F]{12}$"),
    "ipv4": re.compile(r"^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$"),
    "hostname": re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
    "byte": re.compile(r"^[A-Za-z0-9+/]*={0,2}$"),
}


def _format(s: Obj, value: Any, path: str, out: list[FieldError]) -> None:
    pattern = _FORMATS.get(s.get("format", ""))
    if pattern is not None and isinstance(value, str) and not pattern.match(value):
        out.append(_invalid(path, value, f"must be of type {s['format']}: {json.dumps(value)}"))


def _enum(s: Obj, value: Any, path: str, out: list[FieldError]) -> None:
    choices = s.get("enum")
    if isinstance(choices, list) and choices and value not in choices:
        out.append(FieldError("FieldValueNotSupported", path, "supported values: " + ", ".join(
            json.dumps(c) if isinstance(c, str) else _go(c) for c in choices), value, True))


def _string(s: Obj, value: str, path: str, out: list[FieldError]) -> None:
    if "maxLength" in s and len(value) > int(s["maxLength"]):
        out.append(FieldError.too_long(path, value, int(s["maxLength"])))
    if "minLength" in s and len(value) < int(s["minLength"]):
        out.append(_invalid(path, value, f"should be at least {int(s['minLength'])} chars long"))
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # refused when the CRD was written
        if not matched:
            out.append(_invalid(path, value, f"should match '{pattern}'"))


def _number(s: Obj, value: float, path: str, out: list[FieldError]) -> None:
    if "maximum" in s:
        limit = s["maximum"]
        if value > limit or (s.get("exclusiveMaximum") and value == limit):
            word = "less than" if s.get("exclusiveMaximum") else "less than or equal to"
            out.append(_invalid(path, value, f"should be {word} {_go(limit)}"))
    if "minimum" in s:
        limit = s["minimum"]
        if value < limit or (s.get("exclusiveMinimum") and value == limit):
            word = "greater than" if s.get("exclusiveMinimum") else "greater than or equal to"
            out.append(_invalid(path, value, f"should be {word} {_go(limit)}"))
    factor = s.get("multipleOf")
    if factor and not math.isclose(value / factor, round(value / factor)):
        out.append(_invalid(path, value, f"should be a multiple of {_go(factor)}"))


def _array(s: Obj, value: list[Any], path: str, out: list[FieldError]) -> None:
    if "maxItems" in s and len(value) > int(s["maxItems"]):
        out.append(FieldError("FieldValueTooMany", path,
                              f"must have at most {int(s['maxItems'])} items", len(value), True))
    if "minItems" in s and len(value) < int(s["minItems"]):
        out.append(_invalid(path, value, f"should have at least {int(s['minItems'])} items"))
    if s.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
        out.append(_invalid(path, value, "shouldn't contain duplicates"))
    items = s.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(items, item, f"{path}[{index}]", out)
    _list_type(s, value, path, out)


def _list_type(s: Obj, value: list[Any], path: str, out: list[FieldError]) -> None:
    """x-kubernetes-list-type set (unique items) and map (unique keys), as upstream's listtype
    validation reports them."""
    kind = s.get("x-kubernetes-list-type")
    seen: set[str] = set()
    if kind == "set":
        for index, item in enumerate(value):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                out.append(FieldError.duplicate(f"{path}[{index}]", unstructured(item)))
            seen.add(key)
    elif kind == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = json.dumps({k: item.get(k) for k in keys}, sort_keys=True)
            if key in seen:
                out.append(FieldError.duplicate(f"{path}[{index}]", unstructured(
                    {k: item[k] for k in keys if k in item})))
            seen.add(key)


def _object(s: Obj, value: Obj, path: str, out: list[FieldError]) -> None:
    if "maxProperties" in s and len(value) > int(s["maxProperties"]):
        out.append(_invalid(path, value,
                            f"should have at most {int(s['maxProperties'])} properties"))
    if "minProperties" in s and len(value) < int(s["minProperties"]):
        out.append(_invalid(path, value,
                            f"should have at least {int(s['minProperties'])} properties"))
    for name in s.get("required") or []:
        if name not in value:
            out.append(FieldError.required(_child(path, name), ""))
    props = s.get("properties") or {}
    additional = s.get("additionalProperties")
    for key, item in value.items():
        child = _child(path, key)
        if key in props:
            _validate(props[key], item, child, out)
        elif isinstance(additional, dict):
            _validate(additional, item, child, out)
        elif additional is False:
            out.append(FieldError.forbidden(child, f"{child} in body is a forbidden property"))


def _junctors(s: Obj, value: Any, path: str, out: list[FieldError]) -> None:
    def passes(sub: Obj) -> bool:
        found: list[FieldError] = []
        _validate(sub, value, path, found)
        return not found

    all_of = [x for x in s.get("allOf") or [] if isinstance(x, dict)]
    for sub in all_of:
        _validate(sub, value, path, out)
    any_of = [x for x in s.get("anyOf") or [] if isinstance(x, dict)]
    if any_of and not any(passes(x) for x in any_of):
        out.append(_invalid(path, value, "must validate at least one schema (anyOf)"))
    one_of = [x for x in s.get("oneOf") or [] if isinstance(x, dict)]
    if one_of and sum(1 for x in one_of if passes(x)) != 1:
        out.append(_invalid(path, value, "must validate one and only one schema (oneOf)"))
    if isinstance(s.get("not"), dict) and passes(s["not"]):
        out.append(_invalid(path, value, "must not validate the schema (not)"))
