"""The PATCH bodies kube-apiserver accepts, applied as pure functions over JSON-like dicts.

`apply_patch` dispatches on the request's Content-Type:

- `application/merge-patch+json`: RFC 7386 (`merge_patch`). Maps merge, `null` deletes a key,
  anything else (lists included) replaces. kubectl label/annotate/scale send this.
- `application/json-patch+json`: RFC 6902 (`json_patch`): add, remove, replace, move, copy and
  test on RFC 6901 pointers, with evanphx/json-patch v4's leniencies (negative array indices; a
  `test` for `null` passes on a missing member; a missing `value` is `null`).
- `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch
  (`strategic_merge_patch`), what kubectl apply, edit, set image and rollout restart send.
- `application/apply-patch+yaml`: server-side apply, *simplified*: the body is the full desired
  object and the result is its strategic merge onto the live object (`server_side_apply`). There
  are no managedFields: nothing removed from the applied config is removed from the object, and
  there are no field-manager conflicts. Creating an absent object is the caller's job.

Strategic merge patch needs per-field metadata that upstream reads from Go struct tags. Here it
is data: `FIELDS` maps a type name to the fields that have a patch strategy (`PodSpec.containers`
merges by `name`, `ObjectMeta.finalizers` is a set), and `KIND_PATHS` says, per kind, at which
dotted path each type sits (a Pod's `PodSpec` is at `spec`, a StatefulSet's at
`spec.template.spec`). A walker carries (kind, path, type) down the object; a field's entry
gives the strategy and the type of its value, so `Container.ports` is found below any PodSpec
without listing every path. Fields with no entry are atomic: lists are replaced, maps merge.
Kinds without an entry (custom resources) therefore get JSON-merge semantics for lists.

The server side of SMP follows apimachinery's `strategicpatch` (v0.32):
- `$patch: replace` on a map replaces it, `$patch: delete` empties it; in a merge list an item
  `{"$patch": "delete", <key>: v}` removes matching items and `{"$patch": "replace"}` makes the
  rest of the patch list the whole list. `$patch: merge` is refused, as upstream refuses it.
- `$setElementOrder/<field>` orders a merge list; an item only on the server goes right
  before the first ordered item it preceded on the server (upstream's mergeSortedSlice).
  `$deleteFromPrimitiveList/<field>` removes values from a primitive set;
  `$retainKeys` drops every key of the live map it does not list, wherever it appears.
- Without `$setElementOrder`, items the patch adds come *before* the remaining server-only
  items, as upstream puts them; kubectl always sends the order list, so this rarely shows.
- Values the patch introduces are stored without directives and `null`s, as upstream strips
  them. Two deliberate differences: `$deleteFromPrimitiveList` on an atomic list removes values
  (upstream replaces the list with the deletion list) and `$patch: replace` on a map that is not
  there yet stores the map (upstream drops it).

Errors are worded and coded as kube-apiserver words them: undecodable bodies are 400; a JSON
patch that does not apply and an SMP list of lists are 422 with the fixed generic message (the
reason is kept in `PatchRejected.cause`, not sent); SMP errors upstream leaves unconverted
(a missing merge key, `$patch: merge`) are 500s without a reason, which kubectl prints as
`Error from server: <message>`.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import yaml

from tinykube.api import errors

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# In the order kube-apiserver lists them for built-in resources.
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)
MAX_JSON_PATCH_OPERATIONS = 10000

_REJECTED = "the server rejected our request due to an error in our request"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_FROM = "$deleteFromPrimitiveList"


class PatchRejected(errors.Invalid):
    """422 for a patch that cannot be applied: apimachinery's `NewGenericServerResponse(422)`.

    The wire message is fixed and `details` is empty, so kubectl prints `The request is invalid:
    the server rejected our request due to an error in our request`. `cause` keeps the reason.
    """

    def __init__(self, cause: str) -> None:
        errors.APIError.__init__(self, _REJECTED, details={})
        self.kind = self.group = self.name = ""
        self.errors = []
        self.cause = cause


class PatchFailed(errors.InternalError):
    """500 with no reason: a plain Go error kube-apiserver returns unconverted."""

    reason = ""


# --- dispatch -------------------------------------------------------------------------------

def apply_patch(kind: str, original: Obj, patch_body: bytes, content_type: str) -> Obj:
    """Apply a PATCH request body of `content_type` to `original` (a `kind` object)."""
    media = content_type.split(";")[0].strip().lower()
    patcher = _PATCHERS.get(media)
    if patcher is None:
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(PATCH_TYPES))
    return patcher(kind, original, patch_body)


def server_side_apply(kind: str, live: Obj, applied: Obj) -> Obj:
    """Server-side apply, simplified to a strategic merge of the applied config (see above)."""
    return strategic_merge_patch(kind, live, applied)


def _go_type(value: Any) -> str:
    """The JSON type name Go's decoder puts in `cannot unmarshal <type> into ...`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "null"


def _parse_json(body: bytes, prefix: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"{prefix}{exc}") from exc


def _parse_object(body: bytes, prefix: str) -> Obj:
    parsed = _parse_json(body, prefix)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise errors.BadRequest(f"{prefix}json: cannot unmarshal {_go_type(parsed)} into Go "
                                "value of type map[string]interface {}")
    return parsed


def _parse_operations(body: bytes) -> list[Obj]:
    prefix = "error decoding patch: "
    parsed = _parse_json(body, prefix)
    if not isinstance(parsed, list):
        raise errors.BadRequest(f"{prefix}json: cannot unmarshal {_go_type(parsed)} into Go "
                                "value of type []handlers.jsonPatchOp")
    for operation in parsed:
        if not isinstance(operation, dict):
            raise errors.BadRequest(f"{prefix}json: cannot unmarshal {_go_type(operation)} into "
                                    "Go value of type handlers.jsonPatchOp")
        for name in ("op", "path", "from"):
            if name in operation and not isinstance(operation[name], str):
                raise errors.BadRequest(
                    f"{prefix}json: cannot unmarshal {_go_type(operation[name])} into Go struct "
                    f"field jsonPatchOp.{name} of type string")
    if len(parsed) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.RequestEntityTooLarge(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(parsed)}")
    return parsed


def _parse_applied(body: bytes) -> Obj:
    """An apply body: JSON (what kubectl sends) or YAML."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            parsed = yaml.load(body, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise errors.BadRequest(f"error decoding YAML: {exc}") from exc
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise errors.BadRequest(f"error decoding YAML: json: cannot unmarshal {_go_type(parsed)} "
                                "into Go value of type map[string]interface {}")
    return parsed


_PATCHERS: dict[str, Callable[[str, Obj, bytes], Obj]] = {
    JSON_PATCH: lambda _kind, obj, body: json_patch(obj, _parse_operations(body)),
    MERGE_PATCH: lambda _kind, obj, body: merge_patch(
        obj, _parse_object(body, "error decoding patch: ")),
    STRATEGIC_MERGE_PATCH: lambda kind, obj, body: strategic_merge_patch(
        kind, obj, _parse_object(body, "")),
    APPLY_PATCH: lambda kind, obj, body: server_side_apply(kind, obj, _parse_applied(body)),
}


# --- RFC 7386 JSON merge patch ----------------------------------------------------------------

def merge_patch(original: Obj, patch: Obj) -> Obj:
    """RFC 7386: returns a new object; neither argument is changed."""
    merged: Obj = _merge_json(original, patch)
    return merged


def _merge_json(original: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    base = original if isinstance(original, dict) else {}
    merged = {key: copy.deepcopy(value) for key, value in base.items() if key not in patch}
    for key, value in patch.items():
        if value is not None:
            merged[key] = _merge_json(base.get(key), value)
    return merged


# --- RFC 6902 JSON patch ---------------------------------------------------------------------

def json_patch(original: Obj, operations: Sequence[Mapping[str, Any]]) -> Obj:
    """RFC 6902: apply `operations` in order to a copy of `original`; PatchRejected if one fails."""
    document: Any = copy.deepcopy(original)
    for operation in operations:
        document = _apply_operation(document, operation)
    if not isinstance(document, dict):
        raise errors.Invalid("", "", "", [errors.FieldError.invalid(
            "patch", orjson.dumps(document).decode(), "the patched document is not an object")])
    return document


def _apply_operation(document: Any, operation: Mapping[str, Any]) -> Any:
    name = operation.get("op")
    if not isinstance(name, str) or name not in _OPERATIONS:
        raise PatchRejected(f"Unexpected kind: {name}")
    if not isinstance(operation.get("path"), str):
        raise PatchRejected("operation missing path field: missing value")
    return _OPERATIONS[name](document, operation)


def _pointer(text: str) -> list[str]:
    """RFC 6901 reference tokens of a JSON pointer."""
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchRejected(f'JSON pointer must be empty or start with a "/": {text}')
    return [token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/")]


def _index(token: str, length: int, *, inserting: bool = False) -> int:
    """An array index as evanphx/json-patch v4 reads it (negative counts from the end)."""
    if inserting and token == "-":
        return length
    if not _INTEGER.fullmatch(token):
        raise PatchRejected(f"Unable to access invalid index: {token}: invalid index referenced")
    index = int(token)
    if index < 0:
        index += length
    if not 0 <= index < length + (1 if inserting else 0):
        raise PatchRejected(f"Unable to access invalid index: {token}: invalid index referenced")
    return index


_MISSING = object()
_INTEGER = re.compile(r"-?[0-9]+")


def _resolve(document: Any, tokens: list[str]) -> Any:
    """The value at `tokens`, or _MISSING."""
    for token in tokens:
        if isinstance(document, dict) and token in document:
            document = document[token]
        elif isinstance(document, list) and _INTEGER.fullmatch(token) \
                and -len(document) <= int(token) < len(document):
            document = document[int(token)]
        else:
            return _MISSING
    return document


def _parent(document: Any, path: str, op: str) -> tuple[Any, str]:
    tokens = _pointer(path)
    container = _resolve(document, tokens[:-1]) if tokens else None
    if not isinstance(container, dict | list):
        raise PatchRejected(f'{op} operation does not apply: doc is missing path: "{path}": '
                            "missing value")
    return container, tokens[-1]


def _add(document: Any, path: str, value: Any) -> Any:
    if path == "":
        return value
    container, token = _parent(document, path, "add")
    if isinstance(container, dict):
        container[token] = value
    else:
        container.insert(_index(token, len(container), inserting=True), value)
    return document


def _remove(document: Any, path: str) -> Any:
    """Remove the value at `path`; returns it."""
    container, token = _parent(document, path, "remove")
    if isinstance(container, dict):
        if token not in container:
            raise PatchRejected(f"error in remove for path: '{path}': Unable to remove "
                                f"nonexistent key: {token}: missing value")
        return container.pop(token)
    return container.pop(_index(token, len(container)))


def _op_add(document: Any, operation: Mapping[str, Any]) -> Any:
    return _add(document, operation["path"], copy.deepcopy(operation.get("value")))


def _op_remove(document: Any, operation: Mapping[str, Any]) -> Any:
    _remove(document, operation["path"])
    return document


def _op_replace(document: Any, operation: Mapping[str, Any]) -> Any:
    path, value = operation["path"], copy.deepcopy(operation.get("value"))
    if path == "":
        return value
    if _resolve(document, _pointer(path)) is _MISSING:
        raise PatchRejected(f"replace operation does not apply: doc is missing key: {path}: "
                            "missing value")
    container, token = _parent(document, path, "replace")
    if isinstance(container, dict):
        container[token] = value
    else:
        container[_index(token, len(container))] = value
    return document


def _source(document: Any, operation: Mapping[str, Any]) -> Any:
    source = operation.get("from")
    value = _resolve(document, _pointer(source)) if isinstance(source, str) else _MISSING
    if value is _MISSING:
        raise PatchRejected(f"{operation['op']} operation does not apply: doc is missing from "
                            f"path: {source}: missing value")
    return value


def _op_move(document: Any, operation: Mapping[str, Any]) -> Any:
    source, path = operation.get("from"), operation["path"]
    _source(document, operation)
    if source == path:
        return document
    if path.startswith(f"{source}/"):
        raise PatchRejected(f"move operation does not apply: {source} is a prefix of {path}")
    return _add(document, path, _remove(document, source or ""))


def _op_copy(document: Any, operation: Mapping[str, Any]) -> Any:
    return _add(document, operation["path"], copy.deepcopy(_source(document, operation)))


def _op_test(document: Any, operation: Mapping[str, Any]) -> Any:
    path, expected = operation["path"], operation.get("value")
    tokens = _pointer(path)
    if tokens and not isinstance(_resolve(document, tokens[:-1]), dict | list):
        raise PatchRejected(f"test operation does not apply: is missing path: {path}: "
                            "missing value")
    actual = _resolve(document, tokens)
    if actual is _MISSING and expected is None:
        return document
    if actual is _MISSING or not _json_equal(actual, expected):
        raise PatchRejected(f"testing value {path} failed: test failed")
    return document


_OPERATIONS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "add": _op_add, "remove": _op_remove, "replace": _op_replace,
    "move": _op_move, "copy": _op_copy, "test": _op_test,
}


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, but booleans are not numbers."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(v, right[k])
                                                   for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    return isinstance(left, bool) == isinstance(right, bool) and bool(left == right)


# --- strategic merge patch: the metadata -----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FieldMeta:
    """The patch strategy of one field, as its Go struct tags declare it."""

    merge: bool = False  # patchStrategy "merge": lists merge (by merge_key, or as a set)
    merge_key: str | None = None  # patchMergeKey; None for primitive sets
    retain_keys: bool = False  # patchStrategy "retainKeys": kubectl sends `$retainKeys` here
    type: str | None = None  # the type of the value (of the items, for lists)


def _by(key: str, type_: str | None = None, *, retain_keys: bool = False) -> FieldMeta:
    return FieldMeta(merge=True, merge_key=key, retain_keys=retain_keys, type=type_)


_SET = FieldMeta(merge=True)
_ATOMIC = FieldMeta()
_CONDITIONS = {"conditions": _by("type")}

# Type name -> fields with a patch strategy (k8s.io/api v0.32.4; kubectl-compat.md §6.3).
FIELDS: dict[str, dict[str, FieldMeta]] = {
    "ObjectMeta": {"ownerReferences": _by("uid"), "finalizers": _SET},
    "PodSpec": {
        "containers": _by("name", "Container"),
        "initContainers": _by("name", "Container"),
        "ephemeralContainers": _by("name", "Container"),
        "volumes": _by("name", retain_keys=True),
        "imagePullSecrets": _by("name"),
        "hostAliases": _by("ip"),
        "topologySpreadConstraints": _by("topologyKey"),
        "schedulingGates": _by("name"),
        "resourceClaims": _by("name", retain_keys=True),
    },
    "Container": {
        "ports": _by("containerPort"),
        "env": _by("name"),
        "volumeMounts": _by("mountPath"),
        "volumeDevices": _by("devicePath"),
    },
    "PodStatus": {**_CONDITIONS, "podIPs": _by("ip"), "hostIPs": _by("ip")},
    "ServiceSpec": {"ports": _by("port")},  # not port+protocol: 53/TCP and 53/UDP collide
    "ServiceAccount": {"secrets": _by("name")},
    "NodeSpec": {"podCIDRs": _SET},
    "NodeStatus": {**_CONDITIONS, "addresses": _by("type")},
    "ConditionsStatus": _CONDITIONS,  # Namespace, PVC, StatefulSet, Deployment, ... status
    "DeploymentSpec": {"strategy": FieldMeta(retain_keys=True)},
}

_POD_TEMPLATE = {"spec.template.metadata": "ObjectMeta", "spec.template.spec": "PodSpec"}
_WORKLOAD = {**_POD_TEMPLATE, "status": "ConditionsStatus"}

_KIND_SPECIFIC: dict[str, dict[str, str]] = {
    "Pod": {"spec": "PodSpec", "status": "PodStatus"},
    "StatefulSet": _WORKLOAD,
    "Deployment": {**_WORKLOAD, "spec": "DeploymentSpec"},
    "ReplicaSet": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "Job": _POD_TEMPLATE,
    "CronJob": {"spec.jobTemplate.spec.template.metadata": "ObjectMeta",
                "spec.jobTemplate.spec.template.spec": "PodSpec"},
    "Service": {"spec": "ServiceSpec"},
    "ServiceAccount": {"": "ServiceAccount"},
    "Node": {"spec": "NodeSpec", "status": "NodeStatus"},
    "Namespace": {"status": "ConditionsStatus"},
    "PersistentVolumeClaim": {"status": "ConditionsStatus"},
    **{kind: {} for kind in ("ConfigMap", "Secret", "Endpoints", "EndpointSlice", "Event",
                             "Lease", "ControllerRevision", "RuntimeClass", "Scale")},
}
# Kind -> dotted path -> the type found there ("" is the object itself).
KIND_PATHS: dict[str, dict[str, str]] = {
    kind: {"metadata": "ObjectMeta", **paths} for kind, paths in _KIND_SPECIFIC.items()
}


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where the walker is: the kind, the dotted path of the current map, and its type."""

    kind: str
    path: str
    type: str | None

    def field(self, key: str) -> FieldMeta:
        return FIELDS.get(self.type or "", {}).get(key, _ATOMIC)

    def child(self, key: str) -> _Where:
        path = f"{self.path}.{key}" if self.path else key
        anchored = KIND_PATHS.get(self.kind, {}).get(path)
        return _Where(self.kind, path, anchored or self.field(key).type)


# --- strategic merge patch: the walker ------------------------------------------------------

def strategic_merge_patch(kind: str, original: Obj, patch: Obj) -> Obj:
    """Apply a strategic merge `patch` to a `kind` object; returns a new object."""
    root = _Where(kind, "", KIND_PATHS.get(kind, {}).get(""))
    return _merge_map(copy.deepcopy(original), patch, root)


def _merge_map(target: Obj, patch: Mapping[str, Any], where: _Where) -> Obj:
    """Merge `patch` into `target` (a private copy, changed in place) and return the result."""
    if _DIRECTIVE in patch:
        return _map_directive(patch, where)
    if _RETAIN_KEYS in patch:
        _retain_keys(target, patch)
    ordered = {_directive_field(key, _SET_ORDER, "setElementOrder list")
               for key in patch if key.startswith(_SET_ORDER)}
    for field in ordered:
        _merge_ordered(target, field, patch, where)
    deletions = []
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            deletions.append((_directive_field(key, _DELETE_FROM, "primitive list"), value))
        elif not _is_directive(key) and key not in ordered:
            _merge_field(target, key, value, where)
    for field, values in deletions:
        _delete_from_list(target, field, values)
    return target


def _is_directive(key: str) -> bool:
    return key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith((_SET_ORDER, _DELETE_FROM))


def _map_directive(patch: Mapping[str, Any], where: _Where) -> Obj:
    directive = patch[_DIRECTIVE]
    if directive == "replace":
        return _merge_map({}, {k: v for k, v in patch.items() if k != _DIRECTIVE}, where)
    if directive == "delete":
        return {}
    raise PatchFailed(f"unknown patch type: {_go_format(directive)} in map: "
                      f"{_go_format(dict(patch))}")


def _directive_field(key: str, prefix: str, what: str) -> str:
    """`<prefix>/<field>` -> field, or 400 as upstream's extractKey."""
    head, _, field = key.partition("/")
    if head != prefix or not field:
        raise errors.BadRequest(f"invalid patch format of {what}")
    return field


def _retain_keys(target: Obj, patch: Mapping[str, Any]) -> None:
    retained = patch[_RETAIN_KEYS]
    if not isinstance(retained, list):
        raise errors.BadRequest("invalid patch format of retainKeys")
    for key, value in patch.items():
        if value is not None and not _is_directive(key) and key not in retained:
            raise errors.BadRequest("invalid patch format of retainKeys")
    for key in [key for key in target if key not in retained]:
        del target[key]


def _merge_field(target: Obj, key: str, value: Any, where: _Where) -> None:
    """Merge one patch field into `target`; a patch value replaces one of a different shape."""
    current = target.get(key)
    if value is None or (isinstance(value, dict) and value.get(_DIRECTIVE) == "delete"
                         and not isinstance(current, dict)):
        target.pop(key, None)
    elif isinstance(value, dict):
        target[key] = _merge_map(current if isinstance(current, dict) else {}, value,
                                 where.child(key))
    elif isinstance(value, list):
        target[key] = _merge_list(current if isinstance(current, list) else [], value,
                                  where.field(key), where.child(key))
    else:
        target[key] = value


def _delete_from_list(target: Obj, field: str, values: Any) -> None:
    if not isinstance(values, list):
        raise errors.BadRequest("invalid patch format of primitive list")
    if isinstance(target.get(field), list):
        target[field] = [v for v in target[field]
                         if not any(_json_equal(v, gone) for gone in values)]


def _merge_list(live: list[Any], patch: list[Any], meta: FieldMeta, where: _Where) -> list[Any]:
    """A new list: `patch` merged into `live` by the field's strategy."""
    if not meta.merge:
        return [_merge_map({}, item, where) if isinstance(item, dict) else item
                for item in patch]
    if _element_kind(live, patch) != "map":
        merged = _unique([*live, *patch])
        return _order(merged, patch, live, None)
    if meta.merge_key is None:
        raise PatchFailed("cannot merge lists without merge key for type string")
    return _merge_map_list(live, patch, meta.merge_key, where)


def _merge_map_list(live: list[Any], patch: list[Any], key: str, where: _Where) -> list[Any]:
    """Merge items by `key`: 1. apply `$patch` items, 2. merge or append, 3. restore order."""
    plain, replace = [], False
    for item in patch:
        directive = item.get(_DIRECTIVE, None)
        if directive is None:
            plain.append(_require_key(item, key))
        elif directive == "delete":
            value = _require_key(item, key)[key]
            live = [old for old in live if not _json_equal(old.get(key), value)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchFailed("merging lists cannot yet be specified in the patch")
        else:
            raise PatchFailed(f"unknown patch type: {_go_format(directive)} in map: "
                              f"{_go_format(item)}")
    if replace:
        return [_merge_map({}, item, where) for item in plain]
    merged = list(live)
    for item in plain:
        position = _position(merged, item, key)
        if position < 0:
            merged.append(_merge_map({}, item, where))
        else:
            merged[position] = _merge_map(merged[position], item, where)
    return _order(merged, plain, live, key)


def _merge_ordered(target: Obj, field: str, patch: Mapping[str, Any], where: _Where) -> None:
    """Merge `field`, then order it by `$setElementOrder/<field>` (see `_order`)."""
    order, meta = patch[f"{_SET_ORDER}/{field}"], where.field(field)
    if not isinstance(order, list):
        raise errors.BadRequest("invalid patch format of setElementOrder list")
    value = patch.get(field, [])
    if not meta.merge or not isinstance(value, list):
        if field in patch:
            _merge_field(target, field, value, where)
        return
    current = target.get(field)
    if current is None and field not in patch:
        return
    live: list[Any] = current if isinstance(current, list) else []
    _check_order(value, order, meta.merge_key)
    merged = _merge_list(live, value, meta, where.child(field))
    target[field] = _order(merged, order, live, meta.merge_key)


def _check_order(patch: list[Any], order: list[Any], key: str | None) -> None:
    """The patch items must appear in `order`, in the same relative order."""
    for item in order:
        if key is not None:
            _require_key(item, key)
    positions = [_position(order, item, key) for item in patch
                 if not (isinstance(item, dict) and _DIRECTIVE in item)]
    if any(p < 0 for p in positions) or positions != sorted(positions):
        raise PatchFailed(f"the order in patch list:\n{_go_format(patch)}\n doesn't match "
                          f"{_SET_ORDER} list:\n{_go_format(order)}")


def _order(items: list[Any], order: list[Any], live: list[Any], key: str | None) -> list[Any]:
    """Upstream's normalizeElementOrder: items named in `order` sorted by it, the others by
    `live`; then interleaved so a server-only item goes before a patch item it preceded."""
    def rank(seq: list[Any]) -> Callable[[Any], int]:
        return lambda item: _position(seq, item, key) % (len(seq) + 1)

    named = sorted((i for i in items if _position(order, i, key) >= 0), key=rank(order))
    others = sorted((i for i in items if _position(order, i, key) < 0), key=rank(live))
    result: list[Any] = []
    while named and others:
        left, right = _position(live, others[0], key), _position(live, named[0], key)
        source = others if 0 <= left < right else named
        result.append(source.pop(0))
    return result + others + named


def _element_kind(*lists: list[Any]) -> str | None:
    """"map" or "scalar" for the items of `lists`; errors as upstream's sliceElementType."""
    kinds = set()
    for item in (item for items in lists for item in items):
        if isinstance(item, list):
            raise PatchRejected("lists of lists are not supported")
        kinds.add("map" if isinstance(item, dict) else "scalar")
    if len(kinds) > 1:
        raise PatchFailed(f"list element types are not identical: {_go_format(list(lists))}")
    return kinds.pop() if kinds else None


def _require_key(item: Obj, key: str) -> Obj:
    if not isinstance(item, dict) or key not in item:
        raise PatchFailed(f"map: {_go_format(item)} does not contain declared merge key: {key}")
    return item


def _position(items: list[Any], item: Any, key: str | None) -> int:
    """Index of the first of `items` with `item`'s merge key value (or value), else -1."""
    def value(of: Any) -> Any:
        if key is None:
            return of
        return of.get(key) if isinstance(of, dict) else None

    wanted = value(item)
    return next((i for i, other in enumerate(items) if _json_equal(value(other), wanted)), -1)


def _unique(values: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for value in values:
        if not any(_json_equal(value, seen) for seen in unique):
            unique.append(value)
    return unique


def _go_format(value: Any) -> str:
    """A value as Go's `%v` prints decoded JSON: `map[name:web port:80]`, `[a b]`, `<nil>`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_format(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
