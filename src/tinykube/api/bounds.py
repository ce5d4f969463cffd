"""Bounds on decoded documents: nesting depth everywhere, alias expansion in YAML.

A request body is hostile input, and two of its shapes cost far more than their size:

- **Nesting.** orjson, which encodes every stored object and every response, refuses more than
  254 nested arrays and objects; the patch algorithms recurse once or twice per level within
  Python's 1,000 frames; PyYAML's C composer recurses in C and crashes the process (SIGSEGV)
  somewhere past 10,000 levels. kube-apiserver's decoders stop at 10,000 levels (Go's
  encoding/json and goyaml); tinykube stops at `MAX_DEPTH` = 200, below what it can store and
  patch (a Table row adds 3 levels to an object), far above any real object (managedFields, the
  deepest, nest about twice as deep as the object they describe).
- **YAML aliases.** An alias is a reference, so PyYAML builds a "billion laughs" document (a
  few anchors, each a list of aliases to the previous one) as a small graph of shared objects;
  it explodes only when encoded, into a row of tens of MB and hundreds of MB of memory. goyaml,
  which kube-apiserver uses, counts the nodes it decodes and how many of them come from alias
  expansion, and refuses a document whose ratio is too high ("yaml: document contains excessive
  aliasing"). `load_yaml` applies the same rule (`_ALIAS_*` constants from goyaml v2's decode.go)
  to the composed graph before constructing anything: the expanded size of every node is summed
  once per distinct node, so the check costs the size of the text, not of the expansion.

The checks stay off the common path: `depth_bound` is an upper bound on the nesting of a body's
text (every array or object needs its own `[`/`{`, in YAML its own `-`, `:` or `?`), so a body
with fewer such bytes than the limit is not walked at all, and a YAML body without `*` has no
alias. A YAML body whose bound passes `_C_COMPOSER_SAFE_DEPTH` is first read as a stream of
events (flat, no recursion) to check its nesting before the C composer sees it.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 200
_C_COMPOSER_SAFE_DEPTH = 10_000  # PyYAML's C composer recursion, measured safe to 10,000 levels
# goyaml v2 (decode.go): at most 99% of the decoded nodes may come from aliases up to 400,000
# nodes, 10% from 4,000,000 on, a straight line between; below 1,000 nodes or 100 alias nodes
# anything goes.
_ALIAS_RANGE_LOW, _ALIAS_RANGE_HIGH = 400_000, 4_000_000
_ALIAS_MIN_NODES, _ALIAS_MIN_ALIASES = 1000, 100

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENERS_JSON = (b"[", b"{")
_OPENERS_YAML = (b"[", b"{", b"-", b":", b"?")


class TooDeep(ValueError):
    """A document nests deeper than MAX_DEPTH."""

    def __init__(self) -> None:
        super().__init__(f"exceeded max depth of {MAX_DEPTH}")


class ExcessiveAliasing(yaml.YAMLError):
    """A YAML document expands its aliases too much (goyaml's wording)."""

    def __init__(self, problem: str = "document contains excessive aliasing") -> None:
        super().__init__(f"yaml: {problem}")


def depth_bound(body: bytes, openers: tuple[bytes, ...] = _OPENERS_JSON) -> int:
    """An upper bound on how deep `body` can nest: the count of bytes that open a level."""
    return sum(body.count(b) for b in openers)


def check_depth(value: Any) -> None:
    """Raise TooDeep if `value` (parsed JSON) nests arrays and objects deeper than MAX_DEPTH.

    Level by level, so the loop runs in C (`extend`) for all but one step per container."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_DEPTH):
        if not level:
            return
        children: list[Any] = []
        for item in level:
            children.extend(item.values() if isinstance(item, dict) else item)
        level = [c for c in children if isinstance(c, dict | list)]
    if level:
        raise TooDeep


def check_json(body: bytes, value: Any) -> None:
    """check_depth, skipped when the text of `body` cannot nest that deep."""
    if depth_bound(body) > MAX_DEPTH:
        check_depth(value)


def load_yaml(body: bytes | str) -> Any:
    """yaml.safe_load with the C loader, refusing excessive aliasing and nesting (see above)."""
    data = body.encode() if isinstance(body, str) else body
    bound = depth_bound(data, _OPENERS_YAML)
    if b"*" not in data and bound <= MAX_DEPTH:
        return yaml.load(data, Loader=_Loader)
    if bound > _C_COMPOSER_SAFE_DEPTH or _Loader is yaml.SafeLoader:
        _check_event_depth(data)
    loader = _Loader(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_event_depth(data: bytes) -> None:
    depth = 0
    for event in yaml.parse(data, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise TooDeep
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_graph(root: yaml.Node) -> None:
    """Depth and alias expansion of a composed document, visiting each distinct node once.

    size[n] is how many nodes decoding n yields with its aliases expanded, depth[n] how deep
    it nests; an alias is a second reference to the same node, so the distinct nodes are what
    the text defines and the rest of the expanded size comes from aliases."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            level = 1 + max((depth[id(c)] for c in children), default=0) \
                if isinstance(node, yaml.CollectionNode) else 0
            if level > MAX_DEPTH:
                raise TooDeep
            depth[key] = level
            continue
        if key in size:
            continue
        if key in open_:
            raise ExcessiveAliasing("anchor value contains itself")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    _check_aliasing(decoded=size[id(root)], distinct=len(size))


def _check_aliasing(*, decoded: int, distinct: int) -> None:
    aliased = decoded - distinct
    if aliased <= _ALIAS_MIN_ALIASES or decoded <= _ALIAS_MIN_NODES:
        return
    if aliased / decoded > _allowed_alias_ratio(decoded):
        raise ExcessiveAliasing


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_RANGE_LOW:
        return 0.99
    if decoded >= _ALIAS_RANGE_HIGH:
        return 0.10
    span = _ALIAS_RANGE_HIGH - _ALIAS_RANGE_LOW
    return 0.99 - 0.89 * (decoded - _ALIAS_RANGE_LOW) / span
