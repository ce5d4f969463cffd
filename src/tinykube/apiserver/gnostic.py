"""A Swagger 2.0 document encoded as gnostic's `openapi.v2.Document` protobuf message.

kubectl (client-go's `OpenAPISchema`) asks for `/openapi/v2` only as
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and unmarshals it into
google/gnostic-models' `openapiv2` messages. Their field numbers are `openapi_v2_proto.json`,
generated from the real kubectl binary by `scripts/gen_openapi_v2_proto.py`.

Two steps. `_to_message` rewrites Swagger JSON into the shape of those messages, as gnostic's
own reader does: JSON objects with free keys become repeated `Named*` entries
(`paths` -> `path: [{name, value}]`, `properties` -> `additional_properties`), `type` becomes a
`TypeItem` list, `items` an `ItemsItem`, oneofs become their wrapper messages (a query
parameter is `ParametersItem.parameter.non_body_parameter.query_parameter_sub_schema`), and
every `x-` key becomes a `vendor_extension` whose value is YAML text (JSON, which is YAML) that
kubectl parses back. Then `_encode` writes that dict in the wire format against the table:
proto3, so empty scalars are left out. Only what the documents of `apiserver.openapi_v2` use is
covered: schemas, operations, non-body parameters and responses; a key the rewrite does not
know raises KeyError rather than being dropped unseen.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import struct
from typing import Any

Document = dict[str, Any]
_PKG = "openapi.v2."
_PARAMETER_SUB_SCHEMA = {"query": "query_parameter_sub_schema",
                         "path": "path_parameter_sub_schema",
                         "header": "header_parameter_sub_schema",
                         "formData": "form_data_parameter_sub_schema"}


@functools.cache
def _messages() -> dict[str, dict[str, list[Any]]]:
    text = importlib.resources.files("tinykube.apiserver").joinpath(
        "openapi_v2_proto.json").read_text()
    loaded: dict[str, dict[str, list[Any]]] = json.loads(text)
    return loaded


def encode_document(swagger: Document) -> bytes:
    """The protobuf bytes of a Swagger 2.0 document."""
    return _encode(_PKG + "Document", _document(swagger))


# --- Swagger JSON -> gnostic message dicts ------------------------------------------------------


def _snake(key: str) -> str:
    """`operationId` -> `operation_id`, `$ref` -> `_ref`: gnostic's field names."""
    if key == "$ref":
        return "_ref"
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _any(value: Any) -> Document:
    return {"yaml": json.dumps(value, separators=(",", ":")) + "\n"}


def _named(entries: Document, convert: Any) -> list[Document]:
    return [{"name": name, "value": convert(value)} for name, value in entries.items()]


def _plain(obj: Document, special: dict[str, Any]) -> Document:
    """Copy `obj` with snake-case keys, `x-` keys as vendor extensions and `special` keys
    converted by their function."""
    out: Document = {}
    extensions = []
    for key, value in obj.items():
        if key.startswith("x-"):
            extensions.append({"name": key, "value": _any(value)})
        elif key in special:
            out[_snake(key)] = special[key](value)
        else:
            out[_snake(key)] = value
    if extensions:
        out["vendor_extension"] = extensions
    return out


def _schema(schema: Document) -> Document:
    return _plain(schema, {
        "type": lambda t: {"value": t if isinstance(t, list) else [t]},
        "items": lambda items: {"schema": [_schema(items)]},
        "properties": lambda props: {"additional_properties": _named(props, _schema)},
        "additionalProperties": lambda extra: {"boolean": extra} if isinstance(extra, bool)
        else {"schema": _schema(extra)},
        "allOf": lambda parts: [_schema(part) for part in parts],
        "default": _any,
        "enum": lambda values: [_any(v) for v in values],
    })


def _parameter(parameter: Document) -> Document:
    if parameter["in"] == "body":
        return {"parameter": {"body_parameter": _plain(parameter, {"schema": _schema})}}
    sub_schema = _PARAMETER_SUB_SCHEMA[parameter["in"]]
    converted = _plain(parameter, {"default": _any, "enum": lambda vs: [_any(v) for v in vs]})
    return {"parameter": {"non_body_parameter": {sub_schema: converted}}}


def _responses(responses: Document) -> Document:
    return {"response_code": _named(responses, lambda response: {"response": _plain(
        response, {"schema": lambda s: {"schema": _schema(s)}})})}


def _operation(operation: Document) -> Document:
    return _plain(operation, {"parameters": lambda ps: [_parameter(p) for p in ps],
                              "responses": _responses})


def _path_item(item: Document) -> Document:
    special: dict[str, Any] = {method: _operation for method in
                               ("get", "put", "post", "delete", "options", "head", "patch")}
    special["parameters"] = lambda ps: [_parameter(p) for p in ps]
    return _plain(item, special)


def _document(swagger: Document) -> Document:
    return _plain(swagger, {
        "info": lambda info: _plain(info, {}),
        "paths": lambda paths: {"path": _named(paths, _path_item)},
        "definitions": lambda defs: {"additional_properties": _named(defs, _schema)},
    })


# --- the wire format --------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are ten bytes of two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def _scalar(number: int, kind: str, value: Any) -> bytes:
    if kind == "string":
        return _delimited(number, value.encode())
    if kind == "double":
        return _key(number, 1) + struct.pack("<d", float(value))
    if kind in ("bool", "int64", "uint32", "enum"):
        return _key(number, 0) + _varint(int(value))
    raise KeyError(f"scalar type {kind}")


def _encode(message: str, value: Document) -> bytes:
    """`value` (keys are the message's proto field names) in the wire format, by field number."""
    table = _messages()[message]
    parts: list[tuple[int, bytes]] = []
    for name, field_value in value.items():
        number, kind, shape = table[name]
        values = field_value if shape == "repeated" else [field_value]
        for item in values:
            if kind.startswith(_PKG):
                parts.append((number, _delimited(number, _encode(kind, item))))
            elif item not in ("", 0, False):  # proto3 leaves empty scalars out
                parts.append((number, _scalar(number, kind, item)))
    parts.sort(key=lambda part: part[0])
    return b"".join(part for _number, part in parts)
