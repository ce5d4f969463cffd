"""The OpenAPI v2 (Swagger 2.0) document at `/openapi/v2`, built from the v3 documents' parts.

kubectl falls back to v2 when the v3 index has no document for an object's group-version, that
is for a wrong `apiVersion` or a kind nobody serves: its validator downloads `/openapi/v2`,
finds no schema for the kind, lets the object through, and the REST mapper then reports kube's
`resource mapping not found for name: ... no matches for kind "X" in version "Y"`. Without a
v2 document that step fails first, with "the server could not find the requested resource".
kubectl's apply also reads v2 for the patch strategies of an object's fields when the v3
document offers no strategic-merge request body (ours never does): the `x-kubernetes-patch-*`
extensions here come from the same table the server merges with (`api.patch.strategic_meta`).

One document for every group-version: the same path items (`apiserver.openapi.paths`) and the
same component schemas (`apiserver.openapi_schemas`) as v3, rewritten into v2's shapes: a
parameter's `schema` is inlined into the parameter, references point at `#/definitions/`, and
a v3 `allOf: [{$ref}]` wrapper (which v3 needs to carry a `default` beside a reference) becomes
the plain `$ref`.

One difference from kube-apiserver's v2, on purpose: no operation lists the `fieldValidation`
parameter. kubectl reads that parameter from v2 only for a kind the v3 documents lack, and then
reasons "if Namespace supports it, a CRD would too" and lists CustomResourceDefinitions (this
was written when tinykube served none, and a 404 there stopped the apply with "failed to check
CRD"). Without the parameter kubectl validates such an object client-side against these
schemas, finds none, and the REST mapper reports the unknown kind, as it does against
kube-apiserver. Served kinds, custom resources included, are unaffected: their v3 documents
advertise `fieldValidation`, and kubectl uses them first.

kubectl asks for it only as gnostic protobuf (`apiserver.gnostic`); JSON is
served too, as kube-apiserver does. Both encodings are built once, on first request.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from tinykube.api import resources
from tinykube.api.apiextensions import openapi as crd_openapi
from tinykube.apiserver import gnostic, openapi, openapi_schemas

Document = dict[str, Any]

# What kubectl asks for, and what kube-apiserver answers with (Go's mime parser rejects the `@`).
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PROTOBUF_ASKED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
JSON = "application/json"
_V3_REF, _V2_REF = "#/components/schemas/", "#/definitions/"
_INFO = {"title": "Kubernetes", "version": "unversioned"}


def _schema(v3: Document) -> Document:
    """One v3 schema in v2 form (recursively)."""
    all_of = v3.get("allOf")
    if all_of and len(all_of) == 1 and "$ref" in all_of[0]:
        out = {k: v for k, v in v3.items() if k not in ("allOf", "default")}
        out["$ref"] = _ref(all_of[0]["$ref"])
        return out
    out = dict(v3)
    if "$ref" in out:
        out["$ref"] = _ref(out["$ref"])
    if "properties" in out:
        out["properties"] = {name: _schema(prop) for name, prop in out["properties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _schema(out["additionalProperties"])
    if "items" in out:
        out["items"] = _schema(out["items"])
    return out


def _ref(v3_ref: str) -> str:
    return _V2_REF + v3_ref.removeprefix(_V3_REF)


def _parameters(v3: list[Document]) -> list[Document]:
    return [_parameter(p) for p in v3 if p["name"] != "fieldValidation"]


def _parameter(v3: Document) -> Document:
    """A v3 parameter with its `schema` inlined, as v2 writes non-body parameters."""
    out = {k: v for k, v in v3.items() if k != "schema"}
    out.update(v3.get("schema") or {})
    return out


def _path_item(v3: Document) -> Document:
    item: Document = {}
    for key, value in v3.items():
        if key == "parameters":
            item[key] = _parameters(value)
        else:
            item[key] = {**value, "parameters": _parameters(value["parameters"])}
    return item


def document() -> Document:
    """The whole v2 document: every served path and every schema the kinds reach."""
    return _document_of(resources.generation())


@functools.lru_cache(maxsize=2)
def _document_of(generation: int) -> Document:
    paths: Document = {}
    kinds: list[tuple[str, str]] = []
    custom: Document = {}
    for resource in list(resources.ALL):
        paths.update({path: _path_item(item) for path, item in openapi.paths(resource).items()})
        if resource.custom is not None:
            custom.update({name: crd_openapi.v2(schema)
                           for name, schema in crd_openapi.schemas(resource).items()})
        elif resource.stored or resource.provider:
            kinds.append((resource.api_version, resource.kind))
    definitions = {name: _schema(schema)
                   for name, schema in {**openapi_schemas.schemas(kinds), **custom}.items()}
    return {"swagger": "2.0", "info": _INFO, "paths": dict(sorted(paths.items())),
            "definitions": definitions}


def encoded(media_type: str) -> tuple[bytes, str]:
    """The document in `media_type` (PROTOBUF or JSON) and its ETag, as kube-apiserver's
    OpenAPI handler quotes it: the uppercase hex SHA-512 of the bytes."""
    return _encoded_of(media_type, resources.generation())


@functools.lru_cache(maxsize=4)
def _encoded_of(media_type: str, generation: int) -> tuple[bytes, str]:
    body = gnostic.encode_document(_document_of(generation)) if media_type == PROTOBUF else \
        orjson.dumps(_document_of(generation))
    return body, f'"{hashlib.sha512(body).hexdigest().upper()}"'


def negotiate(accept: str) -> str | None:
    """PROTOBUF or JSON for an Accept header (JSON when it names neither but allows anything),
    or None: 406."""
    ranges = [part.split(";")[0].strip() for part in accept.split(",") if part.strip()]
    for media in ranges or ["*/*"]:
        if media in (PROTOBUF, PROTOBUF_ASKED):
            return PROTOBUF
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None
