"""A CEL type checker: what cel-go's checker refuses when kube compiles an expression.

`check(source, variables)` parses `source` (`parser`) and types every node against the
declared variables' types (`celtypes`), returning the expression's type and its errors worded
and located as cel-go words them (`format_errors` prints them as cel-go's `issues.String()`):

- `found no matching overload for '_+_' applied to '(int, string)'` (a member call:
  `'string.(int)'`), at the operator, or the call's `(`;
- `undefined field 'x'` (at the `.`), `type 'int' does not support field selection`;
- `expected type 'int' but found 'string'` for a list or map literal of mixed types (kube
  declares aggregate literals homogeneous), and `expected type 'bool' but found 'int'` for
  an operand of `&&` or `||` (an `all` or `exists` body included), at the operand;
- `expression of type 'int' cannot be range of a comprehension (must be list, map, or
  dynamic)`.

The overloads are CEL's standard library and those of kube's libraries the engine has
(`library`: lists, strings, regex, URLs, quantities, IPs and CIDRs, sets) and optionals.
The checker must never refuse what kube accepts, so it is looser than cel-go wherever this
one cannot be sure: dyn (an int-or-string, an unknown function's result, an earlier error)
matches everything; null matches every type; objects are not told apart by name and pass
for maps; an expression the parser cannot read is not judged at all.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from tinykube.api.cel import celtypes as t
from tinykube.api.cel import parser
from tinykube.api.cel.celtypes import Type
from tinykube.api.cel.parser import Node


@dataclasses.dataclass(frozen=True)
class Issue:
    pos: int  # offset in the source
    message: str


@dataclasses.dataclass(frozen=True)
class Result:
    type: Type
    issues: tuple[Issue, ...]


# --- overloads ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Overload:
    member: bool
    params: tuple[Type, ...]  # the receiver first, for a member overload
    result: Type


_NAMED = {"int": t.INT, "uint": t.UINT, "double": t.DOUBLE, "string": t.STRING,
          "bytes": t.BYTES, "bool": t.BOOL, "null_type": t.NULL, "timestamp": t.TIMESTAMP,
          "duration": t.DURATION, "dyn": t.DYN, "Quantity": t.QUANTITY, "URL": t.URL,
          "IP": t.IP, "CIDR": t.CIDR}
_TYPE_TOKEN = re.compile(r"\s*([A-Za-z_]\w*|[(),])")


def _parse_type(text: str) -> Type:
    tokens = _TYPE_TOKEN.findall(text)
    value, rest = _type_at(tokens)
    if rest:
        raise ValueError(text)
    return value


def _type_at(tokens: list[str]) -> tuple[Type, list[str]]:
    head, rest = tokens[0], tokens[1:]
    if rest and rest[0] == "(":
        params: list[Type] = []
        rest = rest[1:]
        while rest[0] != ")":
            param, rest = _type_at(rest)
            params.append(param)
            if rest[0] == ",":
                rest = rest[1:]
        rest = rest[1:]
        if head == "optional":
            return t.optional_of(params[0]), rest
        return Type(head, tuple(params)), rest
    if len(head) == 1 and head.isupper():
        return Type("var", name=head), rest
    return _NAMED[head], rest


def _overload(sig: str) -> Overload:
    """`(int, int) -> int`, or a member's `string.(string) -> bool`."""
    args, _, result = sig.partition("->")
    receiver, _, params = args.strip().rpartition(".(")
    member = bool(receiver)
    inner = (params if member else args.strip()[1:]).rstrip()[:-1]
    types = [_parse_type(p) for p in _split(inner)]
    if member:
        types.insert(0, _parse_type(receiver))
    return Overload(member, tuple(types), _parse_type(result.strip()))


def _split(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    tail = text[start:].strip()
    return [p for p in (*parts, tail) if p.strip()]


_NUMERIC = ("int", "uint", "double")
_ORDERED = ("bool", "int", "uint", "double", "string", "bytes", "timestamp", "duration")
_RELATION = [f"({a}, {a}) -> bool" for a in _ORDERED] + [
    f"({a}, {b}) -> bool" for a in _NUMERIC for b in _NUMERIC if a != b]
_ARITH = [f"({a}, {a}) -> {a}" for a in _NUMERIC]
_TIME_GETTERS = ["timestamp.() -> int", "timestamp.(string) -> int"]
_SIGNATURES: dict[str, list[str]] = {
    "_+_": [*_ARITH, "(string, string) -> string", "(bytes, bytes) -> bytes",
            "(list(A), list(A)) -> list(A)", "(timestamp, duration) -> timestamp",
            "(duration, timestamp) -> timestamp", "(duration, duration) -> duration"],
    "_-_": [*_ARITH, "(timestamp, timestamp) -> duration",
            "(timestamp, duration) -> timestamp", "(duration, duration) -> duration"],
    "_*_": _ARITH, "_/_": _ARITH,
    "_%_": ["(int, int) -> int", "(uint, uint) -> uint"],
    "-_": ["(int) -> int", "(double) -> double"],
    "!_": ["(bool) -> bool"],
    "_&&_": ["(bool, bool) -> bool"], "_||_": ["(bool, bool) -> bool"],
    "_?_:_": ["(bool, A, A) -> A"],
    "_==_": ["(A, A) -> bool"], "_!=_": ["(A, A) -> bool"],
    "_<_": _RELATION, "_<=_": _RELATION, "_>_": _RELATION, "_>=_": _RELATION,
    "@in": ["(A, list(A)) -> bool", "(A, map(A, B)) -> bool"],
    "_[_]": ["(list(A), int) -> A", "(map(A, B), A) -> B"],
    "size": ["(string) -> int", "(bytes) -> int", "(list(A)) -> int", "(map(A, B)) -> int",
             "string.() -> int", "bytes.() -> int", "list(A).() -> int",
             "map(A, B).() -> int"],
    "contains": ["string.(string) -> bool"], "startsWith": ["string.(string) -> bool"],
    "endsWith": ["string.(string) -> bool"],
    "matches": ["(string, string) -> bool", "string.(string) -> bool"],
    "int": [f"({a}) -> int" for a in ("int", "uint", "double", "string", "timestamp",
                                       "duration")],
    "uint": [f"({a}) -> uint" for a in ("uint", "int", "double", "string")],
    "double": [f"({a}) -> double" for a in ("double", "int", "uint", "string")],
    "string": [f"({a}) -> string" for a in ("string", "int", "uint", "double", "bytes",
                                             "bool", "timestamp", "duration", "Quantity",
                                             "URL", "IP", "CIDR")],
    "bytes": ["(bytes) -> bytes", "(string) -> bytes"],
    "bool": ["(bool) -> bool", "(string) -> bool"],
    "timestamp": ["(timestamp) -> timestamp", "(string) -> timestamp",
                  "(int) -> timestamp"],
    "duration": ["(duration) -> duration", "(string) -> duration", "(int) -> duration"],
    "dyn": ["(A) -> dyn"],
    **{name: _TIME_GETTERS for name in ("getFullYear", "getMonth", "getDayOfYear",
                                        "getDayOfMonth", "getDate", "getDayOfWeek")},
    **{name: [*_TIME_GETTERS, "duration.() -> int"]
       for name in ("getHours", "getMinutes", "getSeconds", "getMilliseconds")},
    # optionals
    "optional.of": ["(A) -> optional(A)"], "optional.ofNonZeroValue": ["(A) -> optional(A)"],
    "optional.none": ["() -> optional(dyn)"],
    "hasValue": ["optional(A).() -> bool"], "value": ["optional(A).() -> A"],
    "orValue": ["optional(A).(A) -> A"], "or": ["optional(A).(optional(A)) -> optional(A)"],
    # kube's lists library, and the strings extension
    "isSorted": ["list(A).() -> bool"],
    "sum": [f"list({a}).() -> {a}" for a in ("int", "uint", "double", "duration")],
    "min": ["list(A).() -> A"], "max": ["list(A).() -> A"],
    "indexOf": ["list(A).(A) -> int", "string.(string) -> int",
                "string.(string, int) -> int"],
    "lastIndexOf": ["list(A).(A) -> int", "string.(string) -> int",
                    "string.(string, int) -> int"],
    "charAt": ["string.(int) -> string"],
    "lowerAscii": ["string.() -> string"], "upperAscii": ["string.() -> string"],
    "replace": ["string.(string, string) -> string",
                "string.(string, string, int) -> string"],
    "split": ["string.(string) -> list(string)", "string.(string, int) -> list(string)"],
    "substring": ["string.(int) -> string", "string.(int, int) -> string"],
    "trim": ["string.() -> string"], "reverse": ["string.() -> string"],
    "join": ["list(string).() -> string", "list(string).(string) -> string"],
    "strings.quote": ["(string) -> string"],
    # regex
    "find": ["string.(string) -> string"],
    "findAll": ["string.(string) -> list(string)", "string.(string, int) -> list(string)"],
    # URLs
    "url": ["(string) -> URL"], "isURL": ["(string) -> bool"],
    **{name: ["URL.() -> string"] for name in ("getScheme", "getHost", "getHostname",
                                                "getPort", "getEscapedPath")},
    "getQuery": ["URL.() -> map(string, list(string))"],
    # quantities
    "quantity": ["(string) -> Quantity"], "isQuantity": ["(string) -> bool"],
    "sign": ["Quantity.() -> int"], "isInteger": ["Quantity.() -> bool"],
    "asInteger": ["Quantity.() -> int"], "asApproximateFloat": ["Quantity.() -> double"],
    "add": ["Quantity.(Quantity) -> Quantity", "Quantity.(int) -> Quantity"],
    "sub": ["Quantity.(Quantity) -> Quantity", "Quantity.(int) -> Quantity"],
    "compareTo": ["Quantity.(Quantity) -> int"],
    "isGreaterThan": ["Quantity.(Quantity) -> bool"],
    "isLessThan": ["Quantity.(Quantity) -> bool"],
    # IPs and CIDRs
    "ip": ["(string) -> IP", "CIDR.() -> IP"], "isIP": ["(string) -> bool"],
    "ip.isCanonical": ["(string) -> bool"],
    "family": ["IP.() -> int", "CIDR.() -> int"],
    **{name: ["IP.() -> bool"] for name in ("isUnspecified", "isLoopback",
                                             "isLinkLocalMulticast", "isLinkLocalUnicast",
                                             "isGlobalUnicast")},
    "cidr": ["(string) -> CIDR"], "isCIDR": ["(string) -> bool"],
    "containsIP": ["CIDR.(string) -> bool", "CIDR.(IP) -> bool"],
    "containsCIDR": ["CIDR.(string) -> bool", "CIDR.(CIDR) -> bool"],
    "masked": ["CIDR.() -> CIDR"], "prefixLength": ["CIDR.() -> int"],
    # sets
    **{f"sets.{name}": ["(list(A), list(A)) -> bool"]
       for name in ("contains", "equivalent", "intersects")},
}


@functools.cache
def overloads() -> dict[str, tuple[Overload, ...]]:
    return {name: tuple(_overload(s) for s in sigs) for name, sigs in _SIGNATURES.items()}


# --- matching -------------------------------------------------------------------------------

Bindings = dict[str, Type]


def compatible(a: Type, b: Type) -> bool:
    """Whether a value of type `a` may meet one of `b` (loosely: see the module's doc)."""
    if a.loose or b.loose or a.kind == "null_type" or b.kind == "null_type":
        return True
    if a.kind in ("object", "map") and b.kind in ("object", "map"):
        return a.kind == "object" or b.kind == "object" or all(
            compatible(x, y) for x, y in zip(a.params, b.params, strict=True))
    if a.kind != b.kind or (a.name != b.name and a.kind == "opaque"):
        return False
    if a.kind == "type":
        return True
    return all(compatible(x, y) for x, y in zip(a.params, b.params, strict=True))


def general(a: Type, b: Type) -> Type:
    """The more general of two compatible types (cel-go's `mostGeneral`): dyn wherever
    either is dyn."""
    if a.loose or b.loose:
        return t.DYN
    if a.kind == "null_type":
        return b
    if a.kind == b.kind and a.params and len(a.params) == len(b.params):
        pairs = zip(a.params, b.params, strict=True)
        return dataclasses.replace(a, params=tuple(general(x, y) for x, y in pairs))
    return a


def _match(param: Type, actual: Type, bound: Bindings) -> bool:
    if param.kind == "var":
        known = bound.get(param.name)
        if known is None:
            bound[param.name] = actual
            return True
        if not compatible(known, actual):
            return False
        bound[param.name] = general(known, actual)
        return True
    if param.loose or actual.loose or actual.kind == "null_type":
        return True
    if actual.kind == "object" and param.kind == "map":
        return True  # tinykube's objects pass for maps (kube's do not)
    if param.kind != actual.kind or (param.kind == "opaque" and param.name != actual.name):
        return False
    return all(_match(p, a, bound) for p, a in zip(param.params, actual.params, strict=True))


def _substitute(result: Type, bound: Bindings) -> Type:
    if result.kind == "var":
        return bound.get(result.name, t.DYN)
    if result.params:
        return dataclasses.replace(result, params=tuple(_substitute(p, bound)
                                                        for p in result.params))
    return result


def resolve(name: str, member: bool, args: list[Type]) -> Type | None:
    """The result type of calling `name` on `args`, None when no overload matches; dyn for a
    function the checker does not know."""
    known = overloads().get(name)
    if known is None:
        return t.DYN
    results: list[Type] = []
    for overload in known:
        bound: Bindings = {}
        if overload.member == member and len(overload.params) == len(args) and all(
                _match(p, a, bound) for p, a in zip(overload.params, args, strict=True)):
            results.append(_substitute(overload.result, bound))
    if not results:
        return None
    first = results[0]
    return first if all(r == first for r in results) else t.DYN


def signature(args: list[Type], member: bool) -> str:
    """cel-go's `formatFunction`: `(int, string)`, or `string.(int)` for a member call."""
    if member:
        return f"{args[0]}.({', '.join(str(a) for a in args[1:])})"
    return f"({', '.join(str(a) for a in args)})"


# --- the checker ----------------------------------------------------------------------------

_TYPE_IDENTS = {"int": t.INT, "uint": t.UINT, "double": t.DOUBLE, "string": t.STRING,
                "bytes": t.BYTES, "bool": t.BOOL, "null_type": t.NULL, "dyn": t.DYN,
                "list": t.list_of(t.DYN), "map": t.map_of(t.DYN, t.DYN),
                "type": t.type_of(t.DYN)}
_LITERALS = {"int": t.INT, "uint": t.UINT, "double": t.DOUBLE, "string": t.STRING,
             "bytes": t.BYTES, "bool": t.BOOL, "null": t.NULL}
_NO_SELECT = frozenset({"int", "uint", "double", "string", "bytes", "bool", "list"})


class _Checker:
    def __init__(self, variables: dict[str, Type]) -> None:
        self.scope = dict(variables)
        self.issues: list[Issue] = []

    def error(self, pos: int, message: str) -> Type:
        self.issues.append(Issue(pos, message))
        return t.ERROR

    def check(self, node: Node) -> Type:
        if node.kind in _LITERALS:
            return _LITERALS[node.kind]
        method = getattr(self, f"_{node.kind}")
        result: Type = method(node)
        return result

    def _ident(self, node: Node) -> Type:
        if node.name in self.scope:
            return self.scope[node.name]
        if node.name in _TYPE_IDENTS:
            return t.type_of(_TYPE_IDENTS[node.name])
        return t.DYN  # the engine judged undeclared names

    def _select(self, node: Node) -> Type:
        assert node.target is not None
        if node.target.kind == "ident" and node.target.name not in self.scope:
            return t.DYN  # a qualified name: google.protobuf.Timestamp
        target = self.check(node.target)
        field = self.field(node.pos, target, node.name)
        if node.optional and not t.is_optional(field) and not field.loose:
            return t.optional_of(field)
        return field

    def field(self, pos: int, target: Type, name: str) -> Type:
        if t.is_optional(target):
            inner = self.field(pos, target.params[0], name)
            return inner if inner.loose else t.optional_of(inner)
        if target.kind == "object":
            found = target.field(name)
            return found if found is not None else self.error(
                pos, f"undefined field '{name}'")
        if target.kind == "map":
            return target.params[1]
        if target.kind in _NO_SELECT:
            return self.error(pos, f"type '{target}' does not support field selection")
        return t.DYN

    def _call(self, node: Node) -> Type:
        target = node.target
        name = node.name
        if target is not None and target.kind == "ident" and target.name not in self.scope \
                and f"{target.name}.{name}" in overloads():
            name, target = f"{target.name}.{name}", None  # sets.contains(...)
        elif target is not None and target.kind == "ident" and target.name not in self.scope \
                and target.name not in _TYPE_IDENTS:
            target = None  # an unknown namespace's function
            name = f"?.{name}"
        args = [self.check(a) for a in ((target,) if target else ()) + node.args]
        if name in ("_&&_", "_||_"):
            return self.logical([(a.pos, typed) for a, typed in zip(node.args, args,
                                                                     strict=True)])
        if name == "_[_]" and args and args[0].kind not in ("list", "map"):
            return self._index(node, args)
        result = resolve(name, target is not None, args)
        if result is None:
            return self.error(node.pos, f"found no matching overload for '{name}' applied to "
                                        f"'{signature(args, target is not None)}'")
        return result

    def _index(self, node: Node, args: list[Type]) -> Type:
        if args[0].kind in _NO_SELECT - {"list"} or args[0].kind in (
                "timestamp", "duration"):
            return self.error(node.pos, f"found no matching overload for '_[_]' applied to "
                                        f"'{signature(args, False)}'")
        return t.DYN

    def _list(self, node: Node) -> Type:
        return t.list_of(self.join([(a.pos, self.check(a)) for a in node.args]))

    def _map(self, node: Node) -> Type:
        typed = [(a.pos, self.check(a)) for a in node.args]
        return t.map_of(self.join(typed[0::2]), self.join(typed[1::2]))

    def join(self, typed: list[tuple[int, Type]]) -> Type:
        """The element type of a literal's elements (kube's are homogeneous)."""
        if not typed:
            return t.DYN
        joined = typed[0][1]
        for pos, each in typed[1:]:
            if not compatible(joined, each):
                self.error(pos, f"expected type '{joined}' but found '{each}'")
                return t.ERROR
            joined = general(joined, each)
        return joined

    def _struct(self, node: Node) -> Type:
        for arg in node.args:
            self.check(arg)
        return t.DYN

    def _macro(self, node: Node) -> Type:
        if node.name == "has":
            select = node.args[0]
            assert select.target is not None
            if not (select.target.kind == "ident" and select.target.name not in self.scope):
                self.field(node.pos, self.check(select.target), select.name)
            return t.BOOL
        assert node.target is not None
        iterable = self.check(node.target)
        var = self.range_var(node.target.pos, iterable)
        names = [a.name for a in node.args[:-1] if a.kind == "ident"]
        if node.name in ("all", "exists", "exists_one") and len(node.args) == 3:
            self.body(node.args[2], dict.fromkeys(names, t.DYN))  # two variables
            return t.BOOL
        outer = self.scope
        self.scope = {**outer, node.args[0].name: var}
        try:
            return self.comprehension(node, var)
        finally:
            self.scope = outer

    def body(self, node: Node, scope: dict[str, Type]) -> Type:
        outer = self.scope
        self.scope = {**outer, **scope}
        try:
            return self.check(node)
        finally:
            self.scope = outer

    def comprehension(self, node: Node, var: Type) -> Type:
        exprs = [self.check(a) for a in node.args[1:]]
        if node.name in ("all", "exists"):
            self.logical([(node.args[1].pos, exprs[0])])  # the step: `@result && body`
            return t.BOOL
        if node.name == "exists_one":
            self.step(node.pos, "_?_:_", [exprs[0], t.INT, t.INT])
            return t.BOOL
        if node.name == "filter":
            accu = t.list_of(var)
            self.step(node.pos, "_?_:_", [exprs[0], accu, accu])
            return accu
        accu = t.list_of(exprs[-1])  # map(x, [filter,] transform)
        if len(exprs) == 2:
            self.step(node.pos, "_?_:_", [exprs[0], accu, accu])
        return accu

    def logical(self, operands: list[tuple[int, Type]]) -> Type:
        """`&&` and `||`: cel-go wants each operand a bool, and says so at the operand."""
        result = t.BOOL
        for pos, typed in operands:
            if not compatible(t.BOOL, typed):
                result = self.error(pos, f"expected type 'bool' but found '{typed}'")
        return result

    def step(self, pos: int, name: str, args: list[Type]) -> Type:
        """The call a macro expands to (located at the macro's `(`, as cel-go's are)."""
        result = resolve(name, False, args)
        if result is None:
            return self.error(pos, f"found no matching overload for '{name}' applied to "
                                   f"'{signature(args, False)}'")
        return result

    def range_var(self, pos: int, iterable: Type) -> Type:
        if iterable.kind == "list":
            return iterable.params[0]
        if iterable.kind == "map":
            return iterable.params[0]
        if iterable.kind in _NO_SELECT or iterable.kind in ("timestamp", "duration",
                                                            "null_type"):
            self.error(pos, f"expression of type '{iterable}' cannot be range of a "
                            "comprehension (must be list, map, or dynamic)")
            return t.ERROR
        return t.DYN


def check(source: str, variables: dict[str, Type]) -> Result:
    """The type of `source` and its type errors; dyn and none when it cannot be parsed."""
    try:
        tree = parser.parse(source)
    except parser.ParseError:
        return Result(t.DYN, ())
    checker = _Checker(variables)
    try:
        result = checker.check(tree)
    except Exception:  # a fault of the checker must not refuse what kube accepts
        return Result(t.DYN, ())
    return Result(result, tuple(checker.issues))


def format_errors(source: str, issues: tuple[Issue, ...]) -> str:
    """cel-go's `issues.String()`: each error sorted by place, with its source line."""
    return "\n".join(_display(source, issue)
                     for issue in sorted(issues, key=lambda i: _location(source, i.pos)))


def _location(source: str, pos: int) -> tuple[int, int]:
    line = source.count("\n", 0, pos) + 1
    return line, pos - (source.rfind("\n", 0, pos) + 1)


def _display(source: str, issue: Issue) -> str:
    line, column = _location(source, issue.pos)
    text = f"ERROR: <input>:{line}:{column + 1}: {issue.message}"
    snippet = source.split("\n")[line - 1].replace("\t", " ")
    dots = "".join("\uff0e" if len(c.encode()) > 1 else "." for c in snippet[:column])
    wedge = "\uff3e" if column < len(snippet) and len(snippet[column].encode()) > 1 else "^"
    return f"{text}\n | {snippet}\n | {dots}{wedge}"
