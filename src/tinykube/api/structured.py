"""Objects as structured-merge-diff sees them: field paths, field sets, the apply merge.

Server-side apply tracks ownership per *field*, so it needs a name for every field of an object
and to know, for each list and map, whether it is one value or many. This module is that view,
pure and schema-driven; `managedfields` builds the ownership rules on it.

**Paths.** A path is a tuple of elements, each already in the `fieldsV1` spelling kube stores:
`f:spec` (a struct or map field), `k:{"name":"nginx"}` (an item of an associative list, by its
keys, sorted, compact JSON), `v:"x"` (an item of a set), `i:0` (an item of an atomic list; never
produced here, since an atomic list is one field). `path_text` prints a path as kube's conflict
messages do: `.spec.template.spec.containers[name="nginx"].image`.

**Field sets.** `field_set(obj, shape)` is the set of paths an object *sets*: every scalar, every
atomic list or map and every empty map or list as a leaf; every associative-list or set item as
a member of its own (`".": {}` in fieldsV1) with its fields below it. Struct fields that hold
other fields are not members themselves (kube's `f:spec` is only a prefix). `encode`/`decode`
turn a set into kube's nested `fieldsV1` JSON and back.

**Shapes.** `Shape` answers, at each point of an object, how a list merges: `atomic` (replaced
whole), `set` (items by value) or by its key fields, and whether a map is `atomic`. Built-in kinds
use `builtin_shape(kind)`, from strategic merge patch's field table (`patch.strategic_meta`) with
the few places where server-side apply's keys differ from SMP's merge key (container ports are
keyed by `containerPort` *and* `protocol`, Service ports by `port` and `protocol`, ...). A custom
resource's shape comes from its schema's `x-kubernetes-list-type`, `-list-map-keys` and
`-map-type` (`CustomShape`; `shape_of` picks). Kinds nobody describes are structs of
atomic lists, as JSON merge patch treats them.

**Merge** (`merge(live, applied, shape)`): what an apply does to the live object before ownership
is considered: maps merge key by key, associative lists by their keys (live order kept, new items
appended in the applied order), sets by value, everything else is replaced by the applied value.
`remove(obj, paths)` takes fields (and whole list items) out, dropping maps and lists left empty
only where the applied config never had them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from tinykube.api.patch.strategic_meta import FIELDS, KIND_PATHS, Where

Obj = dict[str, Any]
Path = tuple[str, ...]
FieldSet = set[Path]

ATOMIC, SET = "atomic", "set"
ListShape = str | tuple[str, ...]  # ATOMIC, SET, or the key fields of an associative list

# Keys an associative-list item may leave out because the schema defaults them.
KEY_DEFAULTS = {"protocol": "TCP"}


class Shape(Protocol):
    """How the lists and maps at one point of an object merge."""

    def child(self, key: str) -> Shape: ...

    def list_shape(self) -> ListShape: ...

    def atomic_map(self) -> bool: ...


# Server-side apply keys that differ from strategic merge patch's single merge key
# (k8s.io/api's `+listMapKey` markers).
_SSA_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Container", "ports"): ("containerPort", "protocol"),
    ("ServiceSpec", "ports"): ("port", "protocol"),
    ("PodSpec", "topologySpreadConstraints"): ("topologyKey", "whenUnsatisfiable"),
}
_ATOMIC_FIELDS = {("PodSpec", "tolerations")}


class BuiltinShape:
    """The shape of a built-in kind at one point, from SMP's field table (see above)."""

    __slots__ = ("list_", "where")

    def __init__(self, where: Where, list_: ListShape = ATOMIC) -> None:
        self.where, self.list_ = where, list_

    def child(self, key: str) -> Shape:
        return _builtin_child(self.where, key)

    def list_shape(self) -> ListShape:
        return self.list_

    def atomic_map(self) -> bool:
        return False


@functools.lru_cache(maxsize=8192)  # bounded: map keys (labels, say) are user data
def _builtin_child(where: Where, key: str) -> BuiltinShape:
    """The shape below `key` at `where` (memoized: every write walks these)."""
    owner = where.type or ""
    meta = FIELDS.get(owner, {}).get(key)
    shape: ListShape = ATOMIC
    if (owner, key) in _SSA_KEYS:
        shape = _SSA_KEYS[(owner, key)]
    elif meta is not None and meta.merge and (owner, key) not in _ATOMIC_FIELDS:
        shape = (meta.merge_key,) if meta.merge_key else SET
    return BuiltinShape(where.child(key), shape)


def builtin_shape(kind: str) -> Shape:
    return BuiltinShape(Where(kind, "", KIND_PATHS.get(kind, {}).get("")))


_EMPTY_SCHEMA: Mapping[str, Any] = {}


class SchemaShape:
    """The shape of a custom resource at one point, from its CRD's structural schema:
    `x-kubernetes-list-type` (`atomic` by default, `set`, or `map` keyed by
    `x-kubernetes-list-map-keys`) and `x-kubernetes-map-type: atomic`. `metadata` is
    ObjectMeta's, as for built-in kinds."""

    __slots__ = ("schema",)

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.schema = schema or _EMPTY_SCHEMA

    def child(self, key: str) -> Shape:
        schema = self.schema
        if schema.get("type") == "array":
            schema = schema.get("items") or _EMPTY_SCHEMA
        below = (schema.get("properties") or {}).get(key)
        if below is None and isinstance(schema.get("additionalProperties"), Mapping):
            below = schema["additionalProperties"]
        return SchemaShape(below if isinstance(below, Mapping) else None)

    def list_shape(self) -> ListShape:
        kind = self.schema.get("x-kubernetes-list-type")
        if kind == "set":
            return SET
        keys = self.schema.get("x-kubernetes-list-map-keys")
        if kind == "map" and isinstance(keys, list) and keys:
            return tuple(str(k) for k in keys)
        return ATOMIC

    def atomic_map(self) -> bool:
        return self.schema.get("x-kubernetes-map-type") == "atomic"


class CustomShape(SchemaShape):
    """A custom resource's root: its schema, with `metadata` shaped as ObjectMeta."""

    __slots__ = ()

    def child(self, key: str) -> Shape:
        if key == "metadata":
            return builtin_shape("ConfigMap").child("metadata")
        return super().child(key)


def shape_of(kind: str, schema: Mapping[str, Any] | None = None,
             custom: bool = False) -> Shape:
    """The shape of a kind: a custom resource's from its schema, a built-in kind's from SMP's
    field table."""
    return CustomShape(schema) if custom else builtin_shape(kind)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def item_element(item: Any, shape: ListShape) -> str | None:
    """The path element of one list item (None for an item of an atomic list, or a keyed
    item that is not an object)."""
    if shape == SET:
        return "v:" + _json(item)
    if shape == ATOMIC or not isinstance(item, Mapping):
        return None
    key = {name: item.get(name, KEY_DEFAULTS.get(name)) for name in shape
           if name in item or name in KEY_DEFAULTS}
    return "k:" + _json(key)


# --- field sets -------------------------------------------------------------------------------

def field_set(obj: Any, shape: Shape, prefix: Path = ()) -> FieldSet:
    """Every path `obj` sets (see the module docstring)."""
    out: FieldSet = set()
    _collect(obj, shape, prefix, out)
    return out


def _collect(value: Any, shape: Shape, path: Path, out: FieldSet) -> None:
    if isinstance(value, Mapping) and value and not shape.atomic_map():
        for key, child in value.items():
            _collect(child, shape.child(key), (*path, "f:" + key), out)
        return
    list_shape = shape.list_shape() if isinstance(value, list) else ATOMIC
    if not isinstance(value, list) or not value or list_shape == ATOMIC:
        if path:
            out.add(path)
        return
    for item in value:
        element = item_element(item, list_shape)
        if element is None:
            continue
        out.add((*path, element))
        if list_shape != SET and isinstance(item, Mapping):
            for key, child in item.items():
                _collect(child, shape.child(key), (*path, element, "f:" + key), out)


def encode(paths: Iterable[Path]) -> Obj:
    """A field set as kube's `fieldsV1` tree."""
    tree: Obj = {}
    members = set(paths)
    for path in sorted(members):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = tree
        for element in path:
            node = node[element]
        if node:
            node["."] = {}
    return tree


def decode(tree: Mapping[str, Any], prefix: Path = ()) -> FieldSet:
    """The field set of a `fieldsV1` tree (malformed parts are ignored)."""
    out: FieldSet = set()
    for element, below in tree.items():
        if element == ".":
            if prefix:
                out.add(prefix)
            continue
        path = (*prefix, element)
        if isinstance(below, Mapping) and below:
            out |= decode(below, path)
        else:
            out.add(path)
    return out


def path_text(path: Path) -> str:
    """A path as kube prints it in conflicts: `.spec.containers[name="c"].image`."""
    parts = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            key = json.loads(rest)
            parts.append("[" + ",".join(f"{name}={_json(value)}"
                                        for name, value in key.items()) + "]")
        elif kind == "v":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


# --- reading and changing values by path ------------------------------------------------------

_MISSING = object()


def _step(value: Any, element: str) -> Any:
    kind, _, rest = element.partition(":")
    if kind == "f":
        return value.get(rest, _MISSING) if isinstance(value, Mapping) else _MISSING
    if not isinstance(value, list):
        return _MISSING
    if kind == "i":
        index = int(rest)
        return value[index] if 0 <= index < len(value) else _MISSING
    wanted = json.loads(rest)
    for item in value:
        if kind == "v" and item == wanted:
            return item
        if kind == "k" and isinstance(item, Mapping) and all(
                item.get(name, KEY_DEFAULTS.get(name)) == key for name, key in wanted.items()):
            return item
    return _MISSING


def value_at(obj: Any, path: Path) -> Any:
    """The value at `path`, or `MISSING`."""
    for element in path:
        obj = _step(obj, element)
        if obj is _MISSING:
            return _MISSING
    return obj


MISSING = _MISSING


def leaf_equal(one: Any, other: Any, path: Path) -> bool:
    """Whether two objects agree at `path`. An associative-list or set item counts as equal
    when present in both (its fields are compared at their own paths)."""
    mine, theirs = value_at(one, path), value_at(other, path)
    if path and path[-1][:2] in ("k:", "v:"):
        return (mine is _MISSING) == (theirs is _MISSING)
    return bool(mine == theirs)


def remove(obj: Obj, paths: Iterable[Path]) -> None:
    """Take `paths` out of `obj`, deepest first (a list item goes with its fields)."""
    for path in sorted(paths, key=len, reverse=True):
        parent = value_at(obj, path[:-1])
        element = path[-1]
        kind, _, rest = element.partition(":")
        if kind == "f" and isinstance(parent, dict):
            parent.pop(rest, None)
        elif isinstance(parent, list):
            item = _step(parent, element)
            if item is not _MISSING:
                parent.remove(item)


# --- the apply merge --------------------------------------------------------------------------

def merge(live: Any, applied: Any, shape: Shape) -> Any:
    """`applied` merged into `live` (see the module docstring); neither is changed."""
    if isinstance(applied, Mapping) and isinstance(live, Mapping) and not shape.atomic_map():
        out = dict(live)
        for key, value in applied.items():
            out[key] = merge(live.get(key, _MISSING), value, shape.child(key)) \
                if key in live else _copy(value)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        list_shape = shape.list_shape()
        if list_shape != ATOMIC:
            return _merge_items(live, applied, list_shape, shape)
    return _copy(applied)


def _merge_items(live: list[Any], applied: list[Any], list_shape: ListShape,
                 shape: Shape) -> list[Any]:
    by_element = {item_element(item, list_shape): index for index, item in enumerate(live)}
    out = list(live)
    for item in applied:
        element = item_element(item, list_shape)
        index = by_element.get(element)
        if index is None or element is None:
            out.append(_copy(item))
        elif list_shape != SET:
            out[index] = merge(out[index], item, shape)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --- what changed between two versions --------------------------------------------------------

def diff(old: Any, new: Any, shape: Shape, path: Path = ()) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) paths from `old` to `new`. Equal subtrees are skipped
    whole (one C-level comparison), so a write that changes one field costs a walk down to it,
    not two walks of the object."""
    changed: FieldSet = set()
    removed: FieldSet = set()
    _diff(old, new, shape, path, changed, removed)
    return changed, removed


def _granular(value: Any, shape: Shape) -> bool:
    return isinstance(value, Mapping) and bool(value) and not shape.atomic_map()


def _diff(old: Any, new: Any, shape: Shape, path: Path, changed: FieldSet,
          removed: FieldSet) -> None:
    if old == new:
        return
    if _granular(old, shape) and _granular(new, shape):
        for key, value in new.items():
            child = shape.child(key)
            if key in old:
                _diff(old[key], value, child, (*path, "f:" + key), changed, removed)
            else:
                _collect(value, child, (*path, "f:" + key), changed)
        for key, value in old.items():
            if key not in new:
                _collect(value, shape.child(key), (*path, "f:" + key), removed)
        return
    list_shape = shape.list_shape()
    if isinstance(old, list) and isinstance(new, list) and old and new and list_shape != ATOMIC:
        before = {item_element(item, list_shape): item for item in old}
        after = {item_element(item, list_shape): item for item in new}
        for element, item in after.items():
            if element is None:
                continue
            where = (*path, element)
            if element not in before:
                changed.add(where)
                if list_shape != SET:
                    _collect_fields(item, shape, where, changed)
            elif list_shape != SET:
                _diff(before[element], item, shape, where, changed, removed)
        for element, item in before.items():
            if element is not None and element not in after:
                removed.add((*path, element))
                if list_shape != SET:
                    _collect_fields(item, shape, (*path, element), removed)
        return
    mine, theirs = field_set(old, shape, path), field_set(new, shape, path)
    changed |= {p for p in theirs
                if p not in mine or not leaf_equal(old, new, p[len(path):])}
    removed |= mine - theirs


def _collect_fields(item: Any, shape: Shape, path: Path, out: FieldSet) -> None:
    """The fields of an associative-list item (not the item itself)."""
    if isinstance(item, Mapping):
        for key, child in item.items():
            _collect(child, shape.child(key), (*path, "f:" + key), out)
