"""Request decoding and response encoding: JSON, YAML, Tables, versions, field validation.

Decoding turns a request body into a dict in the storage version, after the checks
kube-apiserver makes before any registry logic: the media type (JSON, YAML, or Kubernetes
protobuf, which `api.protobuf` turns into the same dict), a parseable document within the
nesting and YAML alias bounds of `api.bounds` (400), the object's apiVersion and kind against
the URL, JSON types that Go could decode (400) and, with `fieldValidation=Strict`, no unknown
fields (400; `Warn` turns them into Warning headers).

Encoding serves stored objects in the version the URL asked for, reusing each object's cached
JSON bytes when no conversion is needed, and builds lists by joining those bytes.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import orjson
import yaml

from tinykube.api import bounds, conversion, errors, printers, protobuf, schema
from tinykube.api.apiextensions import model as crd_model
from tinykube.api.apiextensions import printing as crd_printing
from tinykube.api.apiextensions import schema as crd_schema
from tinykube.api.clone import clone
from tinykube.api.resources import Resource
from tinykube.store.cache import Entry

Obj = dict[str, Any]

JSON = "application/json"
TABLE_MARKER = "as=Table"
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml",
               "application/apply-patch+yaml")
_BODY_TYPES = frozenset({"", "*/*", JSON, *_YAML_TYPES})
_ADVERTISED_TYPES = (JSON, "application/yaml", protobuf.MEDIA_TYPE)


def parse_body(body: bytes, content_type: str) -> Any:
    """Parse a JSON, YAML or protobuf body; 400 with the parser's complaint when it is malformed.

    Another media type gets 415, as kube-apiserver answers it; no Content-Type means JSON.
    """
    media = content_type.split(";")[0].strip().lower()
    if media not in _BODY_TYPES and not protobuf.is_protobuf(media):
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(_ADVERTISED_TYPES)}")
    if protobuf.is_protobuf(media):
        try:
            decoded = protobuf.decode(body)
            bounds.check_depth(decoded)
            return decoded
        except (protobuf.ProtobufError, bounds.TooDeep) as exc:
            raise errors.BadRequest(
                f"the object provided is unrecognized ({_summary(body)}): {exc}") from exc
    try:
        if media in _YAML_TYPES:
            return bounds.load_yaml(body)
        parsed = orjson.loads(body)
        bounds.check_json(body, parsed)
        return parsed
    except bounds.ExcessiveAliasing as exc:  # as sigs.k8s.io/yaml reports goyaml's refusal
        raise errors.BadRequest(
            f"the object provided is unrecognized ({_summary(body)}): {exc}") from exc
    except (orjson.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError, bounds.TooDeep) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        parser = "yaml" if media in _YAML_TYPES else "json"
        raise errors.BadRequest(  # kube-apiserver's wording (transformDecodeError)
            f"the object provided is unrecognized ({_summary(body)}): couldn't get "
            f"version/kind; {parser} parse error: {problem}") from exc


def _summary(body: bytes, limit: int = 30) -> str:
    """The start of a body as kube-apiserver quotes it: text when it looks like JSON, else hex."""
    if not body:
        return "<empty>"
    head, more = body[:limit], " ..." if len(body) > limit else ""
    if body.startswith(b"{"):
        return head.decode("utf-8", "replace") + more
    return head.hex() + more


def decode_object(res: Resource, body: Any, *, field_validation: str,
                  warnings: list[str]) -> Obj:
    """Check a parsed object against the URL's resource and convert it to the storage version."""
    if not isinstance(body, dict):
        raise errors.BadRequest("Object 'Kind' is missing in '" + _short(body) + "'")
    api_version = body.get("apiVersion") or res.api_version
    kind = body.get("kind") or res.kind
    if kind != res.kind:
        raise errors.BadRequest(
            f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")
    if api_version != res.api_version:
        raise errors.BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({res.api_version})")
    body = {**body, "apiVersion": api_version, "kind": kind}
    if res.custom is not None:
        return _decode_custom(res, body, field_validation, warnings)
    # Checked in the version sent when the schema has it (the field names are that version's),
    # else after conversion (the legacy apps versions share apps/v1's types).
    checked = body if schema.has_kind(api_version, kind) else conversion.to_storage(
        body, api_version)
    checked_version = str(checked.get("apiVersion", api_version))
    type_errors = schema.type_errors(checked_version, kind, checked)
    if type_errors:
        raise errors.BadRequest(
            f'{kind} in version "{res.version}" cannot be handled as a {kind}: {type_errors[0]}')
    if field_validation == "Strict":
        unknown = schema.unknown_fields(checked_version, kind, checked)
        if unknown:
            listed = ", ".join(f'unknown field "{path}"' for path in unknown)
            raise errors.BadRequest(
                f'{kind} in version "{res.version}" cannot be handled as a {kind}: '
                f"strict decoding error: {listed}")
    else:  # Warn or Ignore: the field is dropped, as decoding into a Go struct drops it
        if checked is body:
            body = checked = dict(body)
        unknown = schema.drop_unknown_fields(checked_version, kind, checked)
        if field_validation == "Warn":
            warnings.extend(f'unknown field "{path}"' for path in unknown)
    stored = checked if checked is not body else conversion.to_storage(body, api_version)
    if not isinstance(stored.get("metadata"), dict):
        stored["metadata"] = {}
    return stored


def _decode_custom(res: Resource, body: Obj, field_validation: str,
                   warnings: list[str]) -> Obj:
    """A custom resource: unknown fields pruned (Strict: 400), metadata type-checked as any
    ObjectMeta, schema defaults applied, `None` conversion to the storage version."""
    obj = clone(body)
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    meta_errors = schema.type_errors("v1", "ConfigMap", {"metadata": obj["metadata"]})
    if meta_errors:
        raise errors.BadRequest(f'{res.kind} in version "{res.version}" cannot be handled as a '
                                f"{res.kind}: {meta_errors[0]}")
    unknown = [] if res.custom.preserve_unknown else crd_schema.prune(res.custom.schema, obj)
    unknown += [f"metadata.{p}" for p in schema.drop_unknown_fields(
        "v1", "ConfigMap", {"metadata": obj["metadata"]})]
    if unknown and field_validation == "Strict":
        listed = ", ".join(f'unknown field "{path}"' for path in unknown)
        raise errors.BadRequest(f'{res.kind} in version "{res.version}" cannot be handled as a '
                                f"{res.kind}: strict decoding error: {listed}")
    if field_validation == "Warn":
        warnings.extend(f'unknown field "{path}"' for path in unknown)
    crd_schema.apply_defaults(res.custom.schema, obj)
    if res.custom.webhook is not None:
        return obj  # the handler has the CRD's webhook convert it (apiserver.crd_conversion)
    return crd_model.convert(obj, res.stored_api_version)


def check_patched(res: Resource, patched: Obj) -> None:
    """A patch's result within MAX_DEPTH: the body and the patch were each checked when parsed,
    but together they can nest deeper than either."""
    try:
        bounds.check_depth(patched)
    except bounds.TooDeep as exc:
        raise errors.BadRequest(f'{res.kind} in version "{res.version}" cannot be handled as a '
                                f"{res.kind}: {exc}") from exc


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if value is not None else ""
    return text[:100]


# --- encoding -------------------------------------------------------------------------------

def object_bytes(res: Resource, entry: Entry) -> bytes:
    """An object's JSON in the version `res` serves."""
    if res.custom is not None:
        if not res.converted and not _has_defaults(res):
            return entry.raw
        return orjson.dumps(served(res, entry.obj))
    if not res.converted:
        return entry.raw
    return orjson.dumps(conversion.from_storage(entry.obj, res.api_version))


def served(res: Resource, obj: Obj) -> Obj:
    if res.custom is not None:  # defaulted on read too, as kube-apiserver does
        if _has_defaults(res):
            obj = clone(obj)
            crd_schema.apply_defaults(res.custom.schema, obj)
        if crd_model.needs_webhook(res, obj, res.api_version):  # converted before, always
            raise errors.InternalError(f"Internal error occurred: {res.kind} "
                                       f"{obj.get('apiVersion')} was not converted to "
                                       f"{res.api_version} by its conversion webhook")
        return crd_model.convert(obj, res.api_version)
    return conversion.from_storage(obj, res.api_version) if res.converted else obj


def _has_defaults(res: Resource) -> bool:
    return bool(res.custom.has_defaults)


def list_bytes(res: Resource, entries: Iterable[Entry], *, resource_version: int,
               continue_token: str = "", remaining: int | None = None) -> bytes:
    meta: Obj = {"resourceVersion": str(resource_version)}
    if continue_token:
        meta["continue"] = continue_token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    list_kind = res.custom.list_kind if res.custom is not None else f"{res.kind}List"
    head = orjson.dumps({"kind": list_kind, "apiVersion": res.api_version,
                         "metadata": meta})
    items = b",".join(object_bytes(res, e) for e in entries)
    return head[:-1] + b',"items":[' + items + b"]}"


def wants_table(accept: str) -> bool:
    return TABLE_MARKER in accept


def table(res: Resource, objects: list[Obj], *, now: datetime.datetime, include_object: str,
          resource_version: int | str = "", continue_token: str = "",
          with_headers: bool = True) -> Obj:
    # Printed from the storage version, as kube prints from its internal version (an
    # autoscaling/v1 HPA shows its v2 metrics); rows carry the served version.
    result: Obj = printers.table(
        res.kind, objects, now=now, serve=lambda obj: served(res, obj),
        include_object=include_object or "Metadata", resource_version=str(resource_version),
        continue_token=continue_token, with_headers=with_headers,
        printer=crd_printing.printer(res.custom) if res.custom is not None else None)
    return result


def watch_line(event_type: str, object_bytes_: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + object_bytes_ + b"}\n"
