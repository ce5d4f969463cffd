"""`/openapi/v2`: the Swagger 2.0 document and its gnostic protobuf encoding.

The encoding is checked by decoding it back with a reader written here against the generated
field table (and `api.protobuf.fields` for the wire format), so a wrong field number, wire type
or shape shows up as a difference from the message dict the encoder was given.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import protobuf, resources
from tinykube.apiserver import gnostic, openapi_v2

ROOT = Path(__file__).resolve().parents[3]


def decode(message: str, data: bytes) -> dict[str, Any]:
    """The inverse of `gnostic._encode`, for the tests."""
    by_number = {entry[0]: (name, entry[1], entry[2])
                 for name, entry in gnostic._messages()[message].items()}
    out: dict[str, Any] = {}
    for number, _wire, raw in protobuf.fields(data):
        name, kind, shape = by_number[number]
        if kind.startswith("openapi.v2."):
            assert isinstance(raw, bytes)
            value: Any = decode(kind, raw)
        elif kind == "string":
            assert isinstance(raw, bytes)
            value = raw.decode()
        elif kind == "double":
            assert isinstance(raw, bytes)
            value = struct.unpack("<d", raw)[0]
        elif kind == "bool":
            value = bool(raw)
        else:
            value = raw
        if shape == "repeated":
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


@pytest.mark.parametrize(("message", "value", "wire"), [
    ("openapi.v2.Document", {"swagger": "2.0"}, b"\x0a\x032.0"),
    ("openapi.v2.TypeItem", {"value": ["string", "null"]}, b"\x0a\x06string\x0a\x04null"),
    ("openapi.v2.Schema", {"unique_items": True, "maximum": 1.5},
     b"\x39" + struct.pack("<d", 1.5) + b"\x80\x01\x01"),
    ("openapi.v2.Schema", {"unique_items": False, "description": ""}, b""),
    ("openapi.v2.Schema", {"max_length": -1}, b"\x58" + b"\xff" * 9 + b"\x01"),
    ("openapi.v2.Paths", {"path": [{"name": "/a", "value": {}}]},
     b"\x12\x06\x0a\x02/a\x12\x00"),
], ids=["string", "repeated-string", "double-and-field-16-bool", "proto3-zero-values-omitted",
        "negative-int64", "nested-empty-message"])
def test_wire_encoding(message: str, value: dict[str, Any], wire: bytes) -> None:
    assert gnostic._encode(message, value) == wire


def test_unknown_field_is_an_error_not_dropped() -> None:
    with pytest.raises(KeyError):
        gnostic.encode_document({"swagger": "2.0", "basePath2": "/"})


@pytest.mark.parametrize(("swagger", "message"), [
    ({"type": "string", "format": "int32"},
     {"type": {"value": ["string"]}, "format": "int32"}),
    ({"$ref": "#/definitions/X", "description": "d"},
     {"_ref": "#/definitions/X", "description": "d"}),
    ({"type": "array", "items": {"type": "integer"}},
     {"type": {"value": ["array"]}, "items": {"schema": [{"type": {"value": ["integer"]}}]}}),
    ({"type": "object", "additionalProperties": {"type": "string"}},
     {"type": {"value": ["object"]},
      "additional_properties": {"schema": {"type": {"value": ["string"]}}}}),
    ({"properties": {"a": {"type": "boolean"}}, "required": ["a"]},
     {"properties": {"additional_properties": [{"name": "a",
                                                "value": {"type": {"value": ["boolean"]}}}]},
      "required": ["a"]}),
    ({"x-kubernetes-patch-merge-key": "name", "x-kubernetes-group-version-kind": [
        {"group": "", "kind": "Pod", "version": "v1"}]},
     {"vendor_extension": [
         {"name": "x-kubernetes-patch-merge-key", "value": {"yaml": '"name"\n'}},
         {"name": "x-kubernetes-group-version-kind",
          "value": {"yaml": '[{"group":"","kind":"Pod","version":"v1"}]\n'}}]}),
], ids=["scalar", "ref", "array", "map", "properties", "vendor-extensions-as-yaml"])
def test_schema_is_rewritten_as_gnostic_reads_it(swagger: dict[str, Any],
                                                  message: dict[str, Any]) -> None:
    assert gnostic._schema(swagger) == message


def test_parameters_and_responses_take_their_oneof_wrappers() -> None:
    operation = {"operationId": "listCoreV1Pod",
                 "parameters": [{"name": "limit", "in": "query", "type": "integer"},
                                {"name": "name", "in": "path", "required": True,
                                 "type": "string"}],
                 "responses": {"200": {"description": "OK"}}}
    assert gnostic._operation(operation) == {
        "operation_id": "listCoreV1Pod",
        "parameters": [
            {"parameter": {"non_body_parameter": {"query_parameter_sub_schema": {
                "name": "limit", "in": "query", "type": "integer"}}}},
            {"parameter": {"non_body_parameter": {"path_parameter_sub_schema": {
                "name": "name", "in": "path", "required": True, "type": "string"}}}}],
        "responses": {"response_code": [
            {"name": "200", "value": {"response": {"description": "OK"}}}]},
    }


def _proto3(value: Any) -> Any:
    """What survives the wire: proto3 writes no empty scalar and no empty repeated field."""
    if isinstance(value, dict):
        return {k: _proto3(v) for k, v in value.items() if v not in ("", 0, False, [])}
    if isinstance(value, list):
        return [_proto3(v) for v in value]
    return value


def test_the_whole_document_decodes_to_what_was_encoded() -> None:
    body, _etag = openapi_v2.encoded(openapi_v2.PROTOBUF)
    expected = _proto3(gnostic._document(openapi_v2.document()))
    assert decode("openapi.v2.Document", body) == expected


def test_every_stored_kind_has_a_definition_tagged_with_its_gvk() -> None:
    tagged = {(g["group"], g["version"], g["kind"])
              for schema in openapi_v2.document()["definitions"].values()
              for g in schema.get("x-kubernetes-group-version-kind", [])}
    missing = [r.qualified + "/" + r.version for r in resources.ALL
               if r.stored and (r.group, r.version, r.kind) not in tagged]
    assert missing == []


def _keys(value: Any) -> set[str]:
    """Every schema keyword used (property names, such as JSONSchemaProps' `allOf`, are not)."""
    if isinstance(value, dict):
        own = set(value) - {"properties"}
        props = value.get("properties")
        inner = props.values() if isinstance(props, dict) else []
        return own | {k for v in [*inner, *(v for k, v in value.items() if k != "properties")]
                      for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []  # not a property
        return found + [ref for v in value.values() for ref in _refs(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _refs(v)]
    return []


def test_v2_shapes_refs_resolve_and_no_v3_leftovers() -> None:
    """kubectl's proto model parser fails on an unresolved `$ref`; v2 has no `allOf` wrapper,
    no `schema` in a non-body parameter and no `fieldValidation` (see the module docstring)."""
    document = openapi_v2.document()
    definitions = document["definitions"]
    refs = _refs(document)
    assert refs and all(r.startswith("#/definitions/") for r in refs)
    assert [r for r in refs if r.removeprefix("#/definitions/") not in definitions] == []
    assert not {"allOf", "requestBody"} & _keys(document["definitions"])
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation if isinstance(operation, list) else \
                    operation["parameters"]:
                assert "schema" not in parameter
                assert parameter["name"] != "fieldValidation"


@pytest.mark.parametrize(("accept", "chosen"), [
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", openapi_v2.PROTOBUF),
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", openapi_v2.PROTOBUF),
    ("application/json", openapi_v2.JSON),
    ("", openapi_v2.JSON),
    ("*/*", openapi_v2.JSON),
    ("text/html, application/json;q=0.9", openapi_v2.JSON),
    ("application/yaml", None),
], ids=["kubectl", "dotted", "json", "none", "any", "json-second", "unacceptable"])
def test_negotiate(accept: str, chosen: str | None) -> None:
    assert openapi_v2.negotiate(accept) == chosen


def test_etag_is_the_quoted_uppercase_sha512_of_each_encoding() -> None:
    import hashlib
    for media_type in (openapi_v2.PROTOBUF, openapi_v2.JSON):
        body, etag = openapi_v2.encoded(media_type)
        assert etag == f'"{hashlib.sha512(body).hexdigest().upper()}"'


@pytest.mark.skipif(not Path("/usr/bin/kubectl").exists(), reason="needs a kubectl binary")
def test_committed_field_table_matches_the_kubectl_binary() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_openapi_v2_proto.py"),
                             "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
