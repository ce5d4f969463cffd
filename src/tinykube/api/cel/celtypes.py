"""CEL types for the checker, and an OpenAPI schema as the CEL type kube declares for it.

A `Type` is a kind (`int`, `uint`, `double`, `string`, `bytes`, `bool`, `null_type`,
`timestamp`, `duration`, `list`, `map`, `type`, `object`, `opaque`, `dyn`, `error`), its
parameters (a list's element, a map's key and value, an opaque type's, as
`optional_type(int)`), and for objects a name and fields. `str()` is cel-go's spelling
(`null`, `list(int)`, `map(string, int)`, `google.protobuf.Timestamp`, `selfType123.spec`).

`schema_type(schema, root=...)` follows kube's `SchemaDeclType` (apiserver `cel/common`):

- `integer` is int, `number` double, `boolean` bool, `string` string, or with format
  `byte` bytes, `duration` duration, `date`/`date-time` timestamp;
- `array` is a list of its items' type; `object` with `additionalProperties` is
  map(string, V); `object` with `properties` an object type with those fields (names
  escaped as rules see them), named as kube names them (`selfType<n>`, `selfType<n>.spec`,
  `.@idx` for list items, `.@elem` for map values);
- `x-kubernetes-int-or-string` is dyn;
- at the root and in embedded resources (`x-kubernetes-embedded-resource`), `apiVersion`,
  `kind` and `metadata` (with only `name` and `generateName`) are fields too.

Where tinykube is looser than kube (so that the checker never refuses what kube accepts):
an object with `x-kubernetes-preserve-unknown-fields` and no properties, and a schema with no
type, are dyn (kube declares the first an object without fields, and drops the second).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from typing import Any

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Type:
    kind: str
    params: tuple[Type, ...] = ()
    name: str = ""  # an object's or an opaque type's name
    fields: tuple[tuple[str, Type], ...] = dataclasses.field(default=(), compare=False)

    def __str__(self) -> str:
        if self.kind in ("list", "map", "type"):
            return f"{self.kind}({', '.join(str(p) for p in self.params)})"
        if self.kind == "opaque":
            inner = f"({', '.join(str(p) for p in self.params)})" if self.params else ""
            return self.name + inner
        if self.kind == "object":
            return self.name
        return _NAMES.get(self.kind, self.kind)

    def field(self, name: str) -> Type | None:
        return dict(self.fields).get(name)

    @property
    def loose(self) -> bool:
        """dyn or an earlier error: anything goes."""
        return self.kind in ("dyn", "error")


_NAMES = {"timestamp": "google.protobuf.Timestamp", "duration": "google.protobuf.Duration",
          "null_type": "null"}

INT, UINT, DOUBLE = Type("int"), Type("uint"), Type("double")
STRING, BYTES, BOOL, NULL = Type("string"), Type("bytes"), Type("bool"), Type("null_type")
TIMESTAMP, DURATION = Type("timestamp"), Type("duration")
DYN, ERROR = Type("dyn"), Type("error")
QUANTITY = Type("opaque", name="kubernetes.Quantity")
URL = Type("opaque", name="kubernetes.URL")
IP = Type("opaque", name="net.IP")
CIDR = Type("opaque", name="net.CIDR")


def list_of(elem: Type) -> Type:
    return Type("list", (elem,))


def map_of(key: Type, value: Type) -> Type:
    return Type("map", (key, value))


def optional_of(inner: Type) -> Type:
    return Type("opaque", (inner,), "optional_type")


def type_of(inner: Type) -> Type:
    return Type("type", (inner,))


def is_optional(t: Type) -> bool:
    return t.kind == "opaque" and t.name == "optional_type"


# --- kube's property names as CEL field names -----------------------------------------------

_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue",
                       "else", "for", "function", "if", "import", "let", "loop", "package",
                       "namespace", "return"})
_ACCESSIBLE = re.compile(r"^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$")


@functools.lru_cache(maxsize=8192)
def escape(name: str) -> str | None:
    """A property name as a CEL field name, or None when CEL cannot reach it."""
    if name in _RESERVED:
        return f"__{name}__"
    if not _ACCESSIBLE.match(name):
        return None
    return (name.replace("__", "__underscores__").replace(".", "__dot__")
            .replace("-", "__dash__").replace("/", "__slash__"))


# --- schemas --------------------------------------------------------------------------------

_FORMATS = {"byte": BYTES, "duration": DURATION, "date": TIMESTAMP, "date-time": TIMESTAMP}
_SCALARS = {"integer": INT, "number": DOUBLE, "boolean": BOOL}
# What rules see of the type and object meta (at the root and in embedded resources).
META: Obj = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
             "metadata": {"type": "object", "properties": {
                 "name": {"type": "string"}, "generateName": {"type": "string"}}}}


def self_type_name() -> str:
    """kube's `generateUniqueSelfTypeName`: a name rules cannot come to depend on."""
    return f"selfType{time.time_ns() % 1_000_000_000}"


def schema_type(s: Any, *, root: bool = False, name: str | None = None) -> Type:
    """The CEL type of values under schema `s` (`root`: the resource's root)."""
    return _schema_type(s, name or self_type_name(), root)


def _schema_type(s: Any, name: str, root: bool) -> Type:
    if not isinstance(s, dict) or s.get("x-kubernetes-int-or-string"):
        return DYN
    kind = s.get("type")
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "string":
        return _FORMATS.get(str(s.get("format") or ""), STRING)
    if kind == "array":
        items = s.get("items")
        return list_of(_schema_type(items, f"{name}.@idx", False)) if isinstance(
            items, dict) else DYN
    if kind == "object":
        return _object_type(s, name, root or bool(s.get("x-kubernetes-embedded-resource")))
    return DYN


def _object_type(s: Obj, name: str, resource: bool) -> Type:
    additional = s.get("additionalProperties")
    props = s.get("properties")
    props = props if isinstance(props, dict) else {}
    if isinstance(additional, dict) and not props:
        return map_of(STRING, _schema_type(additional, f"{name}.@elem", False))
    if not props and s.get("x-kubernetes-preserve-unknown-fields"):
        return DYN  # kube: an object without fields (tinykube's rules see every field)
    return _fields({**props, **META} if resource else props, name)


def _fields(props: Obj, name: str) -> Type:
    fields: list[tuple[str, Type]] = []
    for prop, sub in props.items():
        key = escape(prop)
        if key is not None:
            fields.append((key, _schema_type(sub, f"{name}.{key}", False)))
    return Type("object", name=name, fields=tuple(sorted(fields, key=lambda f: f[0])))

