"""OpenAPI v3 documents, generated from the resource registry (`tinykube.api.resources`).

kubectl reads OpenAPI for two things. Before `apply`, `create -f` and `replace` it asks whether
the server validates fields itself: it reads the `/openapi/v3` index, fetches the object's
group-version document and looks for a path item whose `patch` operation carries
`x-kubernetes-group-version-kind` for the object's kind and lists a `fieldValidation` query
parameter. If it finds one, it sends `fieldValidation=Strict` and does no client-side schema check.
And `kubectl explain` reads the component schemas.

The paths are deliberately small: per kind, the collection path (`get` = list, `post`,
`delete` = deletecollection) and the item path (`get`, `put`, `patch`, `delete`), each operation
tagged with its GVK and `x-kubernetes-action` and carrying the query parameters kube-apiserver
lists, with operation ids named as kube-apiserver names them. Verbs the registry does not grant
get no operation. There is, on purpose, no `requestBody`: without one, kubectl's apply patcher
judges that the v3 document cannot drive a strategic merge patch and uses the Go types compiled
into it, the normal case for built-in kinds. `components.schemas` holds each kind's schema and
every type it reaches (`openapi_schemas`), with descriptions, which is what `kubectl explain`
reads.

The index links each document as `serverRelativeURL` with `?hash=` the uppercase hex SHA-512 of
its bytes, as kube-apiserver does. Documents are serialized once per state of the resource
table and cached (keyed by `resources.generation()`, so one built in a thread while a CRD came
is never served after it).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from tinykube.api import resources
from tinykube.api.apiextensions import openapi as crd_openapi
from tinykube.api.resources import Resource
from tinykube.apiserver import openapi_schemas

Document = dict[str, Any]

_INFO = {"title": "Kubernetes", "version": "unversioned"}
_OK = {"200": {"description": "OK"}}
_CREATED = {"200": {"description": "OK"}, "201": {"description": "Created"},
            "202": {"description": "Accepted"}}


def _query(name: str, description: str, schema_type: str = "string") -> Document:
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": schema_type, "uniqueItems": True}}


def _path_param(name: str) -> Document:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server handles unknown or duplicate fields: Ignore, Warn or Strict.",
)
_FORCE = _query("force", "Force an Apply request, re-acquiring conflicting fields.", "boolean")
_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_WRITE_PARAMS = (_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION)
_DELETE_PARAMS = (
    _DRY_RUN,
    _query("gracePeriodSeconds", "Seconds before the object is deleted.", "integer"),
    _query("propagationPolicy", "Orphan, Background or Foreground."),
)
_LIST_PARAMS = (_query("fieldSelector", "Restrict the list by their fields."),
                _query("labelSelector", "Restrict the list by their labels."),
                _query("limit", "Maximum number of items to return.", "integer"),
                _query("resourceVersion", "Which resource versions may serve the request."),
                _query("watch", "Watch for changes instead of listing.", "boolean"))


# --- operations -------------------------------------------------------------------------------


def _group_version_id(resource: Resource) -> str:
    """`CoreV1`, `AppsV1beta1`, `DiscoveryV1`: the group-version part of an operation id."""
    group = resource.group.removesuffix(".k8s.io") or "core"
    return "".join(part.capitalize() for part in group.split(".")) + resource.version.capitalize()


def _operation_id(verb: str, resource: Resource, *, collection: bool = False) -> str:
    """kube-apiserver's operation ids: `patchAppsV1NamespacedStatefulSet`, `listCoreV1Node`,
    `deleteCoreV1CollectionNamespacedService`."""
    scope = "Namespaced" if resource.namespaced else ""
    prefix = "Collection" if collection else ""
    return f"{verb}{_group_version_id(resource)}{prefix}{scope}{resource.kind}"


def _operation(resource: Resource, action: str, operation_id: str,
               parameters: tuple[Document, ...], responses: Document = _OK) -> Document:
    return {
        "operationId": operation_id,
        "parameters": list(parameters),
        "responses": responses,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": resource.group, "version": resource.version, "kind": resource.kind,
        },
    }


# registry verb, HTTP method, x-kubernetes-action, operation id verb, query parameters
_ITEM_OPERATIONS: tuple[tuple[str, str, str, str, tuple[Document, ...]], ...] = (
    ("get", "get", "get", "read", ()),
    ("update", "put", "put", "replace", _WRITE_PARAMS),
    ("patch", "patch", "patch", "patch", (*_WRITE_PARAMS, _FORCE)),
    ("delete", "delete", "delete", "delete", _DELETE_PARAMS),
)


def _item_operations(resource: Resource) -> Document:
    """Operations on one object, keyed by HTTP method, for the verbs the resource grants."""
    operations: Document = {}
    for verb, method, action, id_verb, parameters in _ITEM_OPERATIONS:
        if verb in resource.verbs:
            operations[method] = _operation(resource, action, _operation_id(id_verb, resource),
                                            parameters)
    return operations


def _collection_operations(resource: Resource) -> Document:
    """Operations on the collection: list (and watch), create, deletecollection."""
    operations: Document = {}
    if "list" in resource.verbs:
        operations["get"] = _operation(resource, "list", _operation_id("list", resource),
                                       _LIST_PARAMS)
    if "create" in resource.verbs:
        operations["post"] = _operation(resource, "post", _operation_id("create", resource),
                                        _WRITE_PARAMS, _CREATED)
    if "deletecollection" in resource.verbs:
        operations["delete"] = _operation(resource, "deletecollection",
                                          _operation_id("delete", resource, collection=True),
                                          (*_DELETE_PARAMS, *_LIST_PARAMS))
    return operations


# --- paths ------------------------------------------------------------------------------------


def _collection_path(resource: Resource) -> str:
    prefix = f"/apis/{resource.group}" if resource.group else "/api"
    namespace = "/namespaces/{namespace}" if resource.namespaced else ""
    return f"{prefix}/{resource.version}{namespace}/{resource.plural}"


def _path_params(resource: Resource, item: bool) -> list[Document]:
    names = ["name"] if item else []
    if resource.namespaced:
        names.append("namespace")
    return [*(_path_param(name) for name in names), _PRETTY]


def paths(resource: Resource) -> Document:
    """The path items of one resource: its collection and (if stored) its object path."""
    collection = _collection_path(resource)
    paths = {collection: {**_collection_operations(resource),
                          "parameters": _path_params(resource, item=False)}}
    if "get" in resource.verbs:  # reviews, bindings: create-only, no object path
        paths[collection + "/{name}"] = {**_item_operations(resource),
                                         "parameters": _path_params(resource, item=True)}
    return paths


# --- documents --------------------------------------------------------------------------------


def _index_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _documents() -> dict[str, bytes]:
    return _documents_of(resources.generation())


@functools.lru_cache(maxsize=2)
def _documents_of(generation: int) -> dict[str, bytes]:
    """Every group-version document, serialized, keyed by its index path (`apis/apps/v1`);
    built on first use (they hold every schema, which `tinykube up` need not wait for).

    Index keys and paths are in alphabetical order, as kube-apiserver's JSON (Go maps) has them.
    """
    paths_by_key: dict[str, Document] = {}
    kinds_by_key: dict[str, list[tuple[str, str]]] = {}
    custom_by_key: dict[str, Document] = {}
    for resource in list(resources.ALL):  # a snapshot: a CRD may change the table meanwhile
        key = _index_key(resource.group, resource.version)
        paths_by_key.setdefault(key, {}).update(paths(resource))
        if resource.custom is not None:
            custom_by_key.setdefault(key, openapi_schemas.closure("V1ObjectMeta")).update(
                crd_openapi.schemas(resource))
        elif resource.stored or resource.provider:
            kinds_by_key.setdefault(key, []).append((resource.api_version, resource.kind))
    return {
        key: orjson.dumps({"openapi": "3.0.0", "info": _INFO,
                           "paths": dict(sorted(paths_by_key[key].items())),
                           "components": {"schemas": dict(sorted({
                               **openapi_schemas.schemas(kinds_by_key.get(key, [])),
                               **custom_by_key.get(key, {})}.items()))}})
        for key in sorted(paths_by_key)
    }


def document_hash(document: bytes) -> str:
    """The `hash` query value for a document: uppercase hex SHA-512, as kube-apiserver uses."""
    return hashlib.sha512(document).hexdigest().upper()


def index() -> Document:
    """The `/openapi/v3` answer: every group-version document with its hashed URL."""
    return _index_of(resources.generation())


@functools.lru_cache(maxsize=2)
def _index_of(generation: int) -> Document:
    return {
        "paths": {
            key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(doc)}"}
            for key, doc in _documents_of(generation).items()
        },
    }


def group_version(path: str) -> bytes | None:
    """The serialized document for `api/v1` or `apis/<group>/<version>`, or None if not served."""
    return _documents().get(path.strip("/"))
