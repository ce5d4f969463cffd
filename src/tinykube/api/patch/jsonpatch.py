"""RFC 6902 JSON patch (`application/json-patch+json`) on RFC 6901 pointers.

The operations add, remove, replace, move, copy and test are applied in order to a private copy
of the object. The leniencies of evanphx/json-patch v4 (what kube-apiserver uses) are kept:
negative array indices count from the end, a `test` for `null` passes on a missing member, and
a missing `value` is `null`. An operation that does not apply raises `PatchRejected` (422) with
upstream's reason in `cause`.

`json_equal` (JSON equality: numbers by value, booleans are not numbers) is shared with the
strategic merge patch.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from tinykube.api import errors
from tinykube.api.patch.failures import PatchRejected

Obj = dict[str, Any]


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
    if actual is _MISSING or not json_equal(actual, expected):
        raise PatchRejected(f"testing value {path} failed: test failed")
    return document


_OPERATIONS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "add": _op_add, "remove": _op_remove, "replace": _op_replace,
    "move": _op_move, "copy": _op_copy, "test": _op_test,
}


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, but booleans are not numbers."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(v, right[k])
                                                   for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    return isinstance(left, bool) == isinstance(right, bool) and bool(left == right)
