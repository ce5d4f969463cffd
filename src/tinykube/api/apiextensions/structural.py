"""The structural-schema rules of a CRD's `openAPIV3Schema` (kube's
`apiextensions-apiserver/pkg/apiserver/schema/validation.go`), on the schema as a dict.

A structural schema says, outside of any `allOf`/`anyOf`/`oneOf`/`not`, the type of every
field it names: a root of `type: object`, a `type` at every property and array item (unless
`x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields` stands for it), `items`
for every array, no `additionalProperties` at the root, `metadata` restricted to `name` and
`generateName`. Inside the logic junctors only value validations are allowed: a `type`,
`default`, `description`, `nullable` or Kubernetes extension there is "must be ... to be
structural". Errors are sorted by their text, as upstream sorts them.
"""

from __future__ import annotations

import re
from typing import Any

from tinykube.api.errors import FieldError

Obj = dict[str, Any]
ROOT, ITEM, FIELD = range(3)
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_JUNCTORS = ("allOf", "anyOf", "oneOf")


def _key(path: str, name: str) -> str:
    return f"{path}.properties[{name}]"


def errors(schema: Obj, path: str) -> list[FieldError]:
    """Every structural error of `schema` (at `path`), sorted as upstream sorts them."""
    found: list[FieldError] = []
    _invariants(schema, ROOT, path, found)
    return sorted(found, key=str)


def _invariants(s: Obj, level: int, path: str, out: list[FieldError]) -> None:
    if not isinstance(s, dict):
        return
    kind = s.get("type", "")
    if kind == "array" and s.get("items") is None:
        out.append(FieldError.required(f"{path}.items", "must be specified"))
    if isinstance(s.get("items"), dict):
        _invariants(s["items"], ITEM, f"{path}.items", out)
    for name, prop in (s.get("properties") or {}).items():
        _invariants(prop, FIELD, _key(path, name), out)
    additional = s.get("additionalProperties")
    if additional is not None:
        if level == ROOT:
            out.append(FieldError.forbidden(f"{path}.additionalProperties",
                                            "must not be used at the root"))
        if isinstance(additional, dict):
            _invariants(additional, FIELD, f"{path}.additionalProperties", out)
    _extensions(s, path, out)
    skip_any = s.get("anyOf") == _INT_OR_STRING_ANY_OF
    all_of = s.get("allOf") or []
    skip_first = bool(all_of) and isinstance(all_of[0], dict) and \
        all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF
    _value_validation(s, skip_any, skip_first, path, out)
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    check_metadata = level == ROOT or embedded
    if embedded and kind != "object":
        text = "must be object if x-kubernetes-embedded-resource is true"
        out.append(FieldError.invalid(f"{path}.type", kind, text) if kind
                   else FieldError.required(f"{path}.type", text))
    elif not kind and not s.get("x-kubernetes-int-or-string") and \
            not s.get("x-kubernetes-preserve-unknown-fields"):
        where = {ROOT: "at the root", ITEM: "for specified array items",
                 FIELD: "for specified object fields"}[level]
        out.append(FieldError.required(f"{path}.type", f"must not be empty {where}"))
    if embedded and additional is not None:
        out.append(FieldError.forbidden(f"{path}.additionalProperties",
                                        "must not be used if x-kubernetes-embedded-resource "
                                        "is set"))
    if level == ROOT and kind and kind != "object":
        out.append(FieldError.invalid(f"{path}.type", kind, "must be object at the root"))
    props = s.get("properties") or {}
    for name in ("kind", "apiVersion"):
        if name in props and check_metadata and (props[name] or {}).get("type") != "string":
            out.append(FieldError.invalid(f"{_key(path, name)}.type",
                                          (props[name] or {}).get("type", ""), "must be string"))
    if "metadata" in props:
        _metadata(props["metadata"] or {}, check_metadata, level, _key(path, "metadata"), out)
    if embedded and not s.get("x-kubernetes-preserve-unknown-fields") and not props:
        out.append(FieldError.required(
            f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is true "
            "without x-kubernetes-preserve-unknown-fields"))


def _metadata(s: Obj, check: bool, level: int, path: str, out: list[FieldError]) -> None:
    if check and s.get("type") != "object":
        out.append(FieldError.invalid(f"{path}.type", s.get("type", ""), "must be object"))
    if level != ROOT:
        return
    # name and generateName may be restricted; anything else is the implicit ObjectMeta's
    if set(s) - {"type", "properties", "default"} or \
            set(s.get("properties") or {}) - {"name", "generateName"}:
        out.append(FieldError.forbidden(path, "must not specify anything other than name and "
                                              "generateName, but metadata is implicitly "
                                              "specified"))


def _extensions(s: Obj, path: str, out: list[FieldError]) -> None:
    if s.get("x-kubernetes-int-or-string"):
        for ext in ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource"):
            if s.get(ext):
                out.append(FieldError.invalid(f"{path}.{ext}", True,
                                              "must be false if x-kubernetes-int-or-string is "
                                              "true"))


def _value_validation(s: Obj, skip_any: bool, skip_first_all: bool, path: str,
                      out: list[FieldError]) -> None:
    for junctor in _JUNCTORS:
        for index, nested in enumerate(s.get(junctor) or []):
            skip = (junctor == "anyOf" and skip_any)
            skip_nested_any = junctor == "allOf" and skip_first_all and index == 0
            if not skip:
                _nested(nested, skip_nested_any, f"{path}.{junctor}[{index}]", out)
    if isinstance(s.get("not"), dict):
        _nested(s["not"], False, f"{path}.not", out)
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            out.append(FieldError.invalid(f"{path}.pattern", pattern,
                                          f"must be a valid regular expression, but isn't: "
                                          f"{exc}"))


_FORBIDDEN_NESTED = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested(s: Obj, skip_any: bool, path: str, out: list[FieldError]) -> None:
    """A schema under a logic junctor: value validations only."""
    if not isinstance(s, dict):
        return
    _value_validation(s, skip_any, False, path, out)
    if isinstance(s.get("items"), dict):
        _nested(s["items"], False, f"{path}.items", out)
    for name, prop in (s.get("properties") or {}).items():
        _nested(prop, False, _key(path, name), out)
    for field, text in _FORBIDDEN_NESTED:
        if s.get(field) not in (None, False, "", []):
            out.append(FieldError.forbidden(f"{path}.{field}", text))
    if "metadata" in (s.get("properties") or {}):
        out.append(FieldError.forbidden(_key(path, "metadata"),
                                        "must not be specified in a nested context"))
