"""Kubernetes' strategic merge patch (`application/strategic-merge-patch+json`): the walker.

`strategic_merge_patch` walks the patch and a private copy of the live object together, asking
`strategic_meta.Where` for each field's strategy. The server side of SMP follows apimachinery's
`strategicpatch` (v0.32):
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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinykube.api import errors
from tinykube.api.clone import clone
from tinykube.api.patch.failures import PatchFailed, PatchRejected, go_format
from tinykube.api.patch.jsonpatch import json_equal
from tinykube.api.patch.strategic_meta import KIND_PATHS, FieldMeta, Where

Obj = dict[str, Any]


_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_FROM = "$deleteFromPrimitiveList"


def strategic_merge_patch(kind: str, original: Obj, patch: Obj) -> Obj:
    """Apply a strategic merge `patch` to a `kind` object; returns a new object."""
    root = Where(kind, "", KIND_PATHS.get(kind, {}).get(""))
    return _merge_map(clone(original), patch, root)


def _merge_map(target: Obj, patch: Mapping[str, Any], where: Where) -> Obj:
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


def _map_directive(patch: Mapping[str, Any], where: Where) -> Obj:
    directive = patch[_DIRECTIVE]
    if directive == "replace":
        return _merge_map({}, {k: v for k, v in patch.items() if k != _DIRECTIVE}, where)
    if directive == "delete":
        return {}
    raise PatchFailed(f"unknown patch type: {go_format(directive)} in map: "
                      f"{go_format(dict(patch))}")


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


def _merge_field(target: Obj, key: str, value: Any, where: Where) -> None:
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
                         if not any(json_equal(v, gone) for gone in values)]


def _merge_list(live: list[Any], patch: list[Any], meta: FieldMeta, where: Where) -> list[Any]:
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


def _merge_map_list(live: list[Any], patch: list[Any], key: str, where: Where) -> list[Any]:
    """Merge items by `key`: 1. apply `$patch` items, 2. merge or append, 3. restore order."""
    plain, replace = [], False
    for item in patch:
        directive = item.get(_DIRECTIVE, None)
        if directive is None:
            plain.append(_require_key(item, key))
        elif directive == "delete":
            value = _require_key(item, key)[key]
            live = [old for old in live if not json_equal(old.get(key), value)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchFailed("merging lists cannot yet be specified in the patch")
        else:
            raise PatchFailed(f"unknown patch type: {go_format(directive)} in map: "
                              f"{go_format(item)}")
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


def _merge_ordered(target: Obj, field: str, patch: Mapping[str, Any], where: Where) -> None:
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
        raise PatchFailed(f"the order in patch list:\n{go_format(patch)}\n doesn't match "
                          f"{_SET_ORDER} list:\n{go_format(order)}")


def _order(items: list[Any], order: list[Any], live: list[Any], key: str | None) -> list[Any]:
    """Upstream's normalizeElementOrder: items named in `order` sorted by it, the others by
    `live`; then interleaved so a server-only item goes before a patch item it preceded."""
    in_order, in_live = _Positions(order, key), _Positions(live, key)
    named = sorted((i for i in items if in_order(i) >= 0), key=in_order)
    others = sorted((i for i in items if in_order(i) < 0),
                    key=lambda item: in_live(item) % (len(live) + 1))  # absent: last
    result: list[Any] = []
    while named and others:
        left, right = in_live(others[0]), in_live(named[0])
        source = others if 0 <= left < right else named
        result.append(source.pop(0))
    return result + others + named


class _Positions:
    """`_position` in one list, asked many times (`_order` sorts by it): merge keys that are
    strings, nearly all of them, are looked up in a dict made once; other values are compared
    with `json_equal` one by one, as `_position` does (1, 1.0 and True are not one JSON value,
    though they are one dict key)."""

    def __init__(self, items: list[Any], key: str | None) -> None:
        self.items, self.key = items, key
        self.strings: dict[str, int] = {}
        for index, item in enumerate(items):
            value = _merge_value(item, key)
            if isinstance(value, str):
                self.strings.setdefault(value, index)

    def __call__(self, item: Any) -> int:
        wanted = _merge_value(item, self.key)
        if isinstance(wanted, str):
            return self.strings.get(wanted, -1)
        return _position(self.items, item, self.key)


def _merge_value(item: Any, key: str | None) -> Any:
    if key is None:
        return item
    return item.get(key) if isinstance(item, dict) else None


def _element_kind(*lists: list[Any]) -> str | None:
    """"map" or "scalar" for the items of `lists`; errors as upstream's sliceElementType."""
    kinds = set()
    for item in (item for items in lists for item in items):
        if isinstance(item, list):
            raise PatchRejected("lists of lists are not supported")
        kinds.add("map" if isinstance(item, dict) else "scalar")
    if len(kinds) > 1:
        raise PatchFailed(f"list element types are not identical: {go_format(list(lists))}")
    return kinds.pop() if kinds else None


def _require_key(item: Obj, key: str) -> Obj:
    if not isinstance(item, dict) or key not in item:
        raise PatchFailed(f"map: {go_format(item)} does not contain declared merge key: {key}")
    return item


def _position(items: list[Any], item: Any, key: str | None) -> int:
    """Index of the first of `items` with `item`'s merge key value (or value), else -1."""
    wanted = _merge_value(item, key)
    return next((i for i, other in enumerate(items)
                 if json_equal(_merge_value(other, key), wanted)), -1)


def _unique(values: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for value in values:
        if not any(json_equal(value, seen) for seen in unique):
            unique.append(value)
    return unique
