"""Structural schema of the kinds tinykube serves: unknown fields and JSON type errors.

kube-apiserver decodes a request body into Go structs with sigs.k8s.io/json (case-sensitive
field names, int-preserving). Two things that decoder reports are reproduced here on plain
dicts, without the Go types:

**Unknown fields** (`unknown_fields`), for the `fieldValidation` query parameter. Paths are
the strict decoder's: JSON names joined by `.`, list elements as `[i]`, map keys as `.key`,
in document order, e.g. `spec.template.spec.containers[0].imagePullPolicyy`. The decoder does
not look inside an unknown field, nor inside free-form values (`ControllerRevision.data`,
`managedFields[].fieldsV1`). What the API server does with them:

- `Strict`: 400 BadRequest, reason BadRequest, message
  `Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field
  "spec.foo", unknown field "spec.bar"` (every path, comma-separated); kubectl prints it as
  `Error from server (BadRequest): error when creating "pod.yaml": <message>`.
- `Warn` (the default since 1.27 when the parameter is absent): the write succeeds and each
  path becomes one `Warning: 299 - "unknown field \\"spec.foo\\""` header; kubectl prints
  `Warning: unknown field "spec.foo"`.
- `Ignore`: the fields are dropped silently.

**Type errors** (`type_errors`): a value whose JSON type cannot decode into the Go field,
whatever `fieldValidation` says. Upstream answers 400 BadRequest with
`Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string into
Go struct field ServicePort.spec.ports.port of type int32`: the innermost Go struct, then the
JSON path from the root *without* list indices or map keys (encoding/json's error context),
then the Go type. Go reports only the first such error, so callers should use the first
message; a type error wins over unknown fields. Quantities that do not parse and secret data
that is not base64 fail the same way with the parser's own message. Best effort, documented
gaps: named string types (`v1.Protocol`) are reported as `string`; timestamps are only
checked to be strings; the byte offset of a base64 error is approximate.

**Design.** `schema_data.json` is generated from the official `kubernetes` Python client by
`scripts/gen_schema.py` (tinykube never imports that client). It is compiled once, on first
use, into a graph of `_Type` nodes: a struct node holds a dict of JSON name -> node, so a
check is plain dict lookups and recursion. Nodes know whether anything below them is a struct
(`has_struct`), so the unknown-field walk skips lists of strings, labels and the like
entirely, and child paths are built only when the walk descends.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.resources
import json
import re
from typing import Any

# Node kinds. Scalars first; _STRUCT and later are containers.
_STRING, _INT32, _INT64, _BOOL, _FLOAT64, _BYTES, _INTSTR, _QUANTITY, _ANY = range(9)
_STRUCT, _LIST, _MAP = range(9, 12)

_SCALAR_KINDS = {
    "string": (_STRING, "string"),
    "int32": (_INT32, "int32"),
    "int64": (_INT64, "int64"),
    "bool": (_BOOL, "bool"),
    "float64": (_FLOAT64, "float64"),
    "bytes": (_BYTES, "[]uint8"),
    "intstr": (_INTSTR, "intstr.IntOrString"),
    "quantity": (_QUANTITY, "resource.Quantity"),
    "object": (_ANY, "runtime.RawExtension"),
}
_INT_RANGE = {_INT32: (-(2**31), 2**31 - 1), _INT64: (-(2**63), 2**63 - 1)}
# Client model names carry a group/version prefix the Go struct name does not.
_MODEL_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")


def split_model(model: str) -> tuple[str, str]:
    """A client model name as (version prefix, Go type name): `V1ServiceSpec` ->
    ("V1", "ServiceSpec"), `CoreV1Event` -> ("CoreV1", "Event")."""
    match = _MODEL_PREFIX.match(model)
    return (match.group(0), model[match.end():]) if match else ("", model)

# resource.ParseQuantity: a signed decimal number, then a binary suffix (Ki..Ei), a decimal
# suffix (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
_QUANTITY_FORMAT = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_QUANTITY_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_QUANTITY_SUFFIX = re.compile(r"^(?:|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)$")
QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"
_BASE64_ALPHABET = re.compile(r"[^A-Za-z0-9+/=\r\n]")


class _Type:
    """One node of the compiled schema."""

    __slots__ = ("elem", "fields", "go", "has_struct", "kind", "name")

    def __init__(self, kind: int, go: str, name: str = "") -> None:
        self.kind = kind
        self.go = go  # Go type as encoding/json prints it ("int32", "[]v1.Container")
        self.name = name  # Go struct name, for structs ("PodSpec")
        self.fields: dict[str, _Type] = {}  # structs: JSON name -> type
        self.elem: _Type | None = None  # lists and maps: element type
        self.has_struct = kind == _STRUCT  # is a struct this node or below it?


class _Schema:
    """The compiled schema: kinds by "apiVersion/Kind" and their root struct types."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.structs: dict[str, _Type] = {}
        for model in document["types"]:
            name = split_model(model)[1]
            self.structs[model] = _Type(_STRUCT, "v1." + name, name)
        for model, fields in document["types"].items():
            struct = self.structs[model]
            struct.fields = {key: self._compile(spec) for key, spec in fields.items()}
        self.kinds: dict[str, _Type] = {
            kind: self.structs[model] for kind, model in document["kinds"].items()
        }

    def _compile(self, spec: str) -> _Type:
        if spec.startswith("[]"):
            return self._container(_LIST, self._compile(spec[2:]), "[]")
        if spec.startswith("map["):
            return self._container(_MAP, self._compile(spec[4:-1]), "map[string]")
        if spec in _SCALAR_KINDS:
            kind, go = _SCALAR_KINDS[spec]
            return _Type(kind, go)
        return self.structs[spec]

    @staticmethod
    def _container(kind: int, elem: _Type, go_prefix: str) -> _Type:
        go = "v1.ResourceList" if kind == _MAP and elem.kind == _QUANTITY else go_prefix + elem.go
        node = _Type(kind, go)
        node.elem = elem
        node.has_struct = elem.has_struct
        return node


@functools.cache
def document() -> dict[str, Any]:
    """The generated schema as stored: {"kinds": kind -> model, "types": model -> fields}."""
    text = importlib.resources.files("tinykube.api").joinpath("schema_data.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _schema() -> _Schema:
    return _Schema(document())


def _root(api_version: str, kind: str) -> _Type:
    root = _schema().kinds.get(f"{api_version}/{kind}")
    if root is None:
        raise KeyError(f"no schema for {kind} in {api_version}")
    return root


def known_kinds() -> frozenset[tuple[str, str]]:
    """Every (apiVersion, kind) the schema covers, e.g. ("apps/v1", "StatefulSet")."""
    pairs = (key.rsplit("/", 1) for key in _schema().kinds)
    return frozenset((api_version, kind) for api_version, kind in pairs)


def has_kind(api_version: str, kind: str) -> bool:
    """Whether `unknown_fields`/`type_errors` accept this apiVersion and kind."""
    return f"{api_version}/{kind}" in _schema().kinds


# ---------------------------------------------------------------------------------------------
# Unknown fields


def unknown_fields(api_version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Paths of the fields of `obj` the schema does not know, in document order.

    `obj` is a decoded JSON object of the given apiVersion and kind (apps/v1beta1 and v1beta2
    objects must be converted to apps/v1 first). Values of the wrong JSON type are not
    descended into; `type_errors` reports them. Raises KeyError for a kind not in
    `known_kinds()`.
    """
    found: list[str] = []
    _unknown_in_struct(_root(api_version, kind), obj, "", found, prune=False)
    return found


def drop_unknown_fields(api_version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Remove the fields `unknown_fields` reports from `obj` (in place); return their paths.

    kube-apiserver decodes into Go structs, so an unknown field it was told to Warn about or
    Ignore is never stored; this does the same to the decoded JSON.
    """
    found: list[str] = []
    _unknown_in_struct(_root(api_version, kind), obj, "", found, prune=True)
    return found


def _unknown_in_struct(struct: _Type, obj: dict[str, Any], prefix: str, found: list[str], *,
                       prune: bool) -> None:
    fields = struct.fields
    unknown = []
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            found.append(prefix + key)
            unknown.append(key)
        elif field.has_struct and value:
            _unknown_in_value(field, value, prefix + key, found, prune)
    if prune:
        for key in unknown:
            del obj[key]


def _unknown_in_value(node: _Type, value: Any, path: str, found: list[str], prune: bool) -> None:
    kind = node.kind
    if kind == _STRUCT:
        if isinstance(value, dict):
            _unknown_in_struct(node, value, path + ".", found, prune=prune)
    elif kind == _LIST:
        if isinstance(value, list):
            elem = node.elem
            assert elem is not None
            for index, item in enumerate(value):
                if item:
                    _unknown_in_value(elem, item, f"{path}[{index}]", found, prune)
    elif kind == _MAP and isinstance(value, dict):
        elem = node.elem
        assert elem is not None
        for key, item in value.items():
            if item:
                _unknown_in_value(elem, item, f"{path}.{key}", found, prune)


# ---------------------------------------------------------------------------------------------
# Type errors


def type_errors(api_version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Messages for values of `obj` that cannot decode into their Go type, in document order.

    Messages read like encoding/json's, e.g. `json: cannot unmarshal string into Go struct
    field ServicePort.spec.ports.port of type int32`; kube-apiserver reports only the first,
    prefixed with `Service in version "v1" cannot be handled as a Service: `. JSON null is
    accepted everywhere, as Go accepts it, and replaced in place by what Go's decoder makes of
    it, so nothing after decoding meets a null where it expects a value: a null field is
    removed (the Go field keeps its zero value) and a null list item or map value becomes the
    element's zero value (`{}` for a struct, `""`, `0`, `false`). Free-form values are left
    alone. Raises KeyError for a kind not in `known_kinds()`.
    """
    root = _root(api_version, kind)
    errors: list[str] = []
    _check_struct(root, obj, "", errors)
    return errors


def _check_struct(struct: _Type, obj: dict[str, Any], path: str, errors: list[str]) -> None:
    """Check a struct's fields; entering it makes it the innermost struct of the context."""
    fields = struct.fields
    prefix = path + "." if path else ""
    nulls = []
    for key, value in obj.items():
        field = fields.get(key)
        # Most fields are well-typed strings: skip them without a call.
        if field is None or (field.kind == _STRING and type(value) is str):
            continue
        if value is None:
            if field.kind != _ANY:
                nulls.append(key)
            continue
        _check_value(field, value, struct.name, prefix + key, errors)
    for key in nulls:
        del obj[key]


def _check_value(node: _Type, value: Any, struct_name: str, path: str, errors: list[str]) -> None:
    """Check one non-null value; `struct_name`.`path` is encoding/json's error context."""
    kind = node.kind
    if kind <= _FLOAT64:
        problem = _scalar_problem(kind, value)
        if problem:
            errors.append(_unmarshal_error(problem, struct_name, path, node.go))
    elif kind == _STRUCT:
        if isinstance(value, dict):
            _check_struct(node, value, path, errors)
        else:
            errors.append(_unmarshal_error(go_type(value), struct_name, path, node.go))
    elif kind >= _LIST:  # _LIST or _MAP
        _check_container(node, value, struct_name, path, errors)
    else:
        message = _special_problem(kind, value, struct_name, path)
        if message:
            errors.append(message)


def _check_container(
    node: _Type, value: Any, struct_name: str, path: str, errors: list[str]
) -> None:
    elem = node.elem
    assert elem is not None
    if node.kind == _LIST and isinstance(value, list):
        items: Any = value
    elif node.kind == _MAP and isinstance(value, dict):
        items = value.values()
    else:
        errors.append(_unmarshal_error(go_type(value), struct_name, path, node.go))
        return
    if elem.kind == _STRING:
        items = [item for item in items if type(item) is not str]
    has_null = False
    for item in items:
        if item is not None:
            _check_value(elem, item, struct_name, path, errors)
        else:
            has_null = True
    if has_null and elem.kind != _ANY:
        _replace_nulls(value, elem)


def _replace_nulls(container: list[Any] | dict[str, Any], elem: _Type) -> None:
    """Null items of a list or map become the element type's zero value, as in Go."""
    keys = range(len(container)) if isinstance(container, list) else list(container)
    for key in keys:
        if container[key] is None:  # type: ignore[index]
            container[key] = _zero(elem)  # type: ignore[index]


def _zero(node: _Type) -> Any:
    if node.kind in (_STRUCT, _MAP):
        return {}
    if node.kind == _LIST:
        return []
    return _ZEROS.get(node.kind, "")


_ZEROS = {_INT32: 0, _INT64: 0, _BOOL: False, _FLOAT64: 0.0, _INTSTR: 0, _QUANTITY: "0"}


def _scalar_problem(kind: int, value: Any) -> str:
    """encoding/json's description of `value` if it cannot decode into the scalar, else ""."""
    if kind == _STRING:
        return "" if isinstance(value, str) else go_type(value)
    if kind == _BOOL:
        return "" if isinstance(value, bool) else go_type(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return go_type(value)
    if kind == _FLOAT64:
        return ""
    low, high = _INT_RANGE[kind]
    if isinstance(value, float) or not low <= value <= high:
        return f"number {value}"
    return ""


def _special_problem(kind: int, value: Any, struct_name: str, path: str) -> str:
    """The error for an intstr, quantity or base64 value that does not decode, else ""."""
    if kind == _INTSTR:
        # IntOrString.UnmarshalJSON: a string, else decode the raw JSON into its int32.
        if isinstance(value, str):
            return ""
        problem = _scalar_problem(_INT32, value)
        return _unmarshal_error(problem, struct_name, path, "int32") if problem else ""
    if kind == _QUANTITY:
        return _quantity_problem(value)
    if kind == _BYTES:
        if not isinstance(value, str):
            return _unmarshal_error(go_type(value), struct_name, path, "[]uint8")
        return _base64_problem(value)
    return ""  # _ANY


def _quantity_problem(value: Any) -> str:
    """resource.Quantity.UnmarshalJSON: strings and numbers are parsed as quantities."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return QUANTITY_FORMAT_ERROR
    text = value.strip() if isinstance(value, str) else str(value)
    match = _QUANTITY_FORMAT.match(text)
    if match is None or not _QUANTITY_NUMBER.match(match.group(1)):
        return QUANTITY_FORMAT_ERROR
    if not _QUANTITY_SUFFIX.match(match.group(2)):
        return QUANTITY_SUFFIX_ERROR
    return ""


def _base64_problem(text: str) -> str:
    """Go's base64.StdEncoding error for `text`, or "" if it decodes (offset approximate)."""
    try:
        base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except binascii.Error:
        bad = _BASE64_ALPHABET.search(text)
        offset = bad.start() if bad else len(text) - len(text) % 4
        return f"illegal base64 data at input byte {offset}"
    return ""


def go_type(value: Any) -> str:
    """How Go's encoding/json names a JSON value in `cannot unmarshal <type> into ...`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "null"


def _unmarshal_error(problem: str, struct_name: str, path: str, go_type: str) -> str:
    return (
        f"json: cannot unmarshal {problem} into Go struct field {struct_name}.{path} "
        f"of type {go_type}"
    )
