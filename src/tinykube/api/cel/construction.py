"""CEL object construction (`Object{spec: Object.spec{replicas: 3}}`, `JSONPatch{...}`) for
cel-rust, which parses message construction but cannot evaluate it ("Found struct Object,
feature not enabled").

kube's mutating policies build their results with CEL's message construction: an
ApplyConfiguration expression returns `Object{...}` whose nested values are `Object.<field
path>{...}`, a JSONPatch expression returns a list of `JSONPatch{op, path, from, value}`. In
kube these are dynamic object types, which at runtime are plain maps of field to value. So
before compiling, `rewrite` turns every construction into a map literal with the field names
quoted (`{"spec": {"replicas": 3}}`); the rest of the expression is kept as written.

The rewrite works on tokens, not on text: string literals (quoted, triple-quoted, raw and byte
forms) and `//` comments are single tokens, so a brace or a colon inside a string is never
touched. A construction is a type name (`Object`, `Object.a.b`, `JSONPatch`) not preceded by
a `.` (so `x.Object{` is not one), followed by `{`. Inside it, at its own nesting level, the
token after `{` or `,` is a field name if a `:` follows it. Parentheses, brackets and map
literals open levels of their own, so a `,` inside a call or a list does not end a field.

kube checks (at runtime) that a nested construction's type name is the field path it sits at
(`Object.spec{selector: Object.spec.wrong{}}` is a mismatch: `unexpected type name
"Object.spec.wrong", expected "Object.spec.selector", which matches field name path from root
Object type`). The rewrite sees every construction that is directly a field's value (or an
item of a list that is), and reports those mismatches in `Rewritten.mismatches`; the caller
fails the evaluation with them, as kube does. cel-rust does parse constructions, so callers
report compile errors on the expression as written (its columns), and run the rewritten one.
"""

from __future__ import annotations

import dataclasses
import re

_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'
                                       |"(?:[^"\\\n]|\\.)*"))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<space>\s+)
  | (?P<other>.)
""", re.S | re.X)
TYPE_ROOTS = ("Object", "JSONPatch")
_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclasses.dataclass(frozen=True)
class Rewritten:
    source: str
    mismatches: tuple[str, ...] = ()


@dataclasses.dataclass
class _Frame:
    closer: str
    type_name: str | None = None  # a construction's type; None for (), [], map literals
    expected: str | None = None  # a list's: the type name its constructions must have
    field: str | None = None  # the field whose value is being read (constructions only)
    expect_field: bool = False


def tokens(source: str) -> list[tuple[str, str]]:
    """(kind, text) pairs covering `source` exactly."""
    return [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(source)]


def _significant(toks: list[tuple[str, str]], start: int, step: int) -> int:
    """Index of the next token from `start` (in direction `step`) that is not space or a
    comment, or -1."""
    index = start
    while 0 <= index < len(toks):
        if toks[index][0] not in ("space", "comment"):
            return index
        index += step
    return -1


def _type_name_at(toks: list[tuple[str, str]], index: int) -> tuple[str, int] | None:
    """If a construction starts at `index`: its type name and the index of its `{`."""
    if toks[index][0] != "ident" or toks[index][1] not in TYPE_ROOTS:
        return None
    before = _significant(toks, index - 1, -1)
    if before >= 0 and toks[before][1] == ".":
        return None
    parts, at = [toks[index][1]], index
    while True:
        nxt = _significant(toks, at + 1, 1)
        if nxt < 0:
            return None
        if toks[nxt][1] == "{":
            return ".".join(parts), nxt
        if toks[nxt][1] != "." or parts[0] != "Object":
            return None
        name = _significant(toks, nxt + 1, 1)
        if name < 0 or toks[name][0] != "ident":
            return None
        parts.append(toks[name][1])
        at = name


def _expected_here(stack: list[_Frame]) -> str | None:
    if not stack:
        return None
    top = stack[-1]
    if top.type_name is not None and top.field is not None:
        return f"{top.type_name}.{top.field}" if top.type_name.startswith("Object") else None
    return top.expected


def rewrite(source: str) -> Rewritten:
    """`source` with its constructions as map literals (see the module docstring)."""
    toks = tokens(source)
    if not any(kind == "ident" and text in TYPE_ROOTS for kind, text in toks):
        return Rewritten(source)
    out: list[str] = []
    stack: list[_Frame] = []
    mismatches: list[str] = []
    index = 0
    while index < len(toks):
        kind, text = toks[index]
        top = stack[-1] if stack else None
        if kind in ("space", "comment"):
            out.append(text)
            index += 1
            continue
        started = _type_name_at(toks, index)
        if started is not None:
            name, brace = started
            expected = _expected_here(stack)
            if expected is not None and name != expected:
                mismatches.append(f'unexpected type name "{name}", expected "{expected}", '
                                  "which matches field name path from root Object type")
            if top is not None:
                top.expect_field = False
            stack.append(_Frame("}", type_name=name, expect_field=True))
            out.append("{")
            index = brace + 1
            continue
        if top is not None and top.type_name is not None and top.expect_field and \
                kind == "ident":
            colon = _significant(toks, index + 1, 1)
            if colon >= 0 and toks[colon][1] == ":":
                top.field, top.expect_field = text, False
                out.append(f'"{text}"')
                index += 1
                continue
        if top is not None:
            top.expect_field = False
        if text in _OPEN:
            expected = _expected_here(stack) if text == "[" else None
            stack.append(_Frame(_OPEN[text], expected=expected))
        elif stack and text == stack[-1].closer:
            stack.pop()
        elif text == "," and top is not None and top.type_name is not None:
            top.field, top.expect_field = None, True
        out.append(text)
        index += 1
    return Rewritten("".join(out), tuple(mismatches))
