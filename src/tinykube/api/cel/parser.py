"""A CEL parser to a small AST with source offsets, for the type checker (`checker`).

cel-rust parses every expression first (its syntax errors are the ones shown); this parser
only has to build a tree of what cel-rust accepted, in cel-go's grammar:

    expr     = or ['?' or ':' expr]
    or       = and {'||' and}          and = relation {'&&' relation}
    relation = calc {('<'|'<='|'>='|'>'|'=='|'!='|'in') calc}
    calc     = additive of multiplicative ('*' '/' '%') of unary
    unary    = member | '!'+ member | '-'+ member
    member   = primary {'.' id ['(' args ')'] | '.?' id | '[' expr ']' | '[?' expr ']'}
    primary  = ['.'] id ['(' args ')'] | '(' expr ')' | '[' list ']' | '{' map '}'
             | ['.'] id {'.' id} '{' fields '}' | literal

Every node keeps the offset cel-go reports its errors at: an operator's token, a call's `(`,
a selection's `.`, an index's `[`, an identifier's or a literal's first character. Macros
(`has`, `all`, `exists`, `exists_one`, `map`, `filter`) become `Macro` nodes, located at
their `(` as cel-go locates the nodes it expands them to. Anything this parser cannot read
raises `ParseError`, and the checker then judges nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


class ParseError(ValueError):
    """The parser could not read the expression (cel-rust's parser is the judge of syntax)."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One expression. `kind` is one of:

    - `int`, `uint`, `double`, `string`, `bytes`, `bool`, `null`: a literal;
    - `ident` (`name`), `select` (`target`, `name`; `optional` for `.?`);
    - `call` (`name`, `target` for a member call or None, `args`): operators too, named as
      cel-go names them (`_+_`, `!_`, `-_`, `_?_:_`, `_[_]`, `@in`, ...);
    - `list` (`args`), `map` (`args`: key, value, key, value ...), `struct` (`name`, qualified
      for `Object.spec{...}`; `args`: the field values);
    - `macro` (`name`, `target`, `args`: for `has` the selection, else the variable's
      `ident` node followed by the macro's expressions).
    """

    kind: str
    pos: int
    name: str = ""
    target: Node | None = None
    args: tuple[Node, ...] = ()
    optional: bool = False


_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
                |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d+|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\?|\[\?|==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,\[\](){}])
""", re.X | re.S)


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # string, number, ident, op, end
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            raise ParseError(f"unexpected character at {at}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(0), at))
        at = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def _number(text: str) -> str:
    """The literal kind of a number token."""
    if text[-1] in "uU":
        return "uint"
    if text[:2].lower() == "0x":
        return "int"
    return "double" if any(c in text for c in ".eE") else "int"


def _string(text: str) -> str:
    prefix = re.match(r"[rRbB]*", text)
    return "bytes" if prefix and "b" in prefix.group(0).lower() else "string"


_RELATIONS = {"<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_", "==": "_==_",
              "!=": "_!=_", "in": "@in"}
_ADDITIVE = {"+": "_+_", "-": "_-_"}
_MULTIPLICATIVE = {"*": "_*_", "/": "_/_", "%": "_%_"}


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.at = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.at]

    def next(self) -> Token:
        tok = self.tokens[self.at]
        self.at += 1
        return tok

    def is_op(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "ident") and self.tok.text in texts

    def expect(self, text: str) -> Token:
        if not self.is_op(text):
            raise ParseError(f"expected {text!r} at {self.tok.pos}")
        return self.next()

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise ParseError(f"unexpected {self.tok.text!r} at {self.tok.pos}")
        return node

    def expr(self) -> Node:
        cond = self.logical("||", "_||_", self.conjunction)
        if not self.is_op("?"):
            return cond
        op = self.next()
        then = self.logical("||", "_||_", self.conjunction)
        self.expect(":")
        other = self.expr()
        return Node("call", op.pos, "_?_:_", None, (cond, then, other))

    def conjunction(self) -> Node:
        return self.logical("&&", "_&&_", self.relation)

    def logical(self, text: str, name: str, operand: Callable[[], Node]) -> Node:
        """A chain of `&&` (or `||`) as cel-go builds it: a balanced tree, each call at its
        operator."""
        terms, ops = [operand()], []
        while self.tok.kind == "op" and self.tok.text == text:
            ops.append(self.next().pos)
            terms.append(operand())

        def tree(lo: int, hi: int) -> Node:
            mid = (lo + hi + 1) // 2
            left = terms[mid] if mid == lo else tree(lo, mid - 1)
            right = terms[mid + 1] if mid == hi else tree(mid + 1, hi)
            return Node("call", ops[mid], name, None, (left, right))

        return tree(0, len(ops) - 1) if ops else terms[0]

    def relation(self) -> Node:
        node = self.additive()
        while self.tok.kind in ("op", "ident") and self.tok.text in _RELATIONS:
            op = self.next()
            node = Node("call", op.pos, _RELATIONS[op.text], None, (node, self.additive()))
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in _ADDITIVE:
            op = self.next()
            node = Node("call", op.pos, _ADDITIVE[op.text], None, (node, self.multiplicative()))
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in _MULTIPLICATIVE:
            op = self.next()
            node = Node("call", op.pos, _MULTIPLICATIVE[op.text], None, (node, self.unary()))
        return node

    def unary(self) -> Node:
        if self.is_op("!"):
            op = self.next()
            return Node("call", op.pos, "!_", None, (self.unary(),))
        if self.is_op("-"):
            op = self.next()
            if self.tok.kind == "number" and not self._postfix_follows():
                lit = self.next()
                return Node(_number(lit.text), op.pos)  # cel-go's negative literal
            return Node("call", op.pos, "-_", None, (self.unary(),))
        return self.member()

    def _postfix_follows(self) -> bool:
        after = self.tokens[self.at + 1]
        return after.kind == "op" and after.text in (".", "[", ".?", "[?")

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.is_op(".", ".?"):
                dot = self.next()
                name = self.next()
                if name.kind != "ident":
                    raise ParseError(f"expected a field name at {name.pos}")
                if dot.text == "." and self.is_op("("):
                    paren = self.next()
                    args = self.arguments(")")
                    node = self.member_call(paren.pos, name.text, node, args)
                else:
                    node = Node("select", dot.pos, name.text, node, optional=dot.text == ".?")
                    qualified = _qualified_name(node)
                    if qualified and self.is_op("{") and self._struct_follows():
                        brace = self.next()  # `Object.spec{...}`: a qualified message name
                        node = Node("struct", brace.pos, qualified, args=self.fields())
            elif self.is_op("[", "[?"):
                bracket = self.next()
                index = self.expr()
                self.expect("]")
                op = "_[?_]" if bracket.text == "[?" else "_[_]"
                node = Node("call", bracket.pos, op, None, (node, index))
            else:
                return node

    def member_call(self, pos: int, name: str, target: Node, args: tuple[Node, ...]) -> Node:
        if name in MACROS and len(args) in (2, 3) and args[0].kind == "ident":
            return Node("macro", pos, name, target, args)
        return Node("call", pos, name, target, args)

    def arguments(self, close: str) -> tuple[Node, ...]:
        args: list[Node] = []
        while not self.is_op(close):
            args.append(self.expr())
            if not self.is_op(","):
                break
            self.next()
        self.expect(close)
        return tuple(args)

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.next()
            return Node(_number(tok.text), tok.pos)
        if tok.kind == "string":
            self.next()
            return Node(_string(tok.text), tok.pos)
        if tok.kind == "ident":
            return self.identifier()
        if self.is_op("."):  # a name in the root container: `.self`
            self.next()
            return self.identifier()
        if self.is_op("("):
            self.next()
            inner = self.expr()
            self.expect(")")
            return inner
        if self.is_op("["):
            self.next()
            return Node("list", tok.pos, args=self.elements("]"))
        if self.is_op("{"):
            self.next()
            return Node("map", tok.pos, args=self.entries())
        raise ParseError(f"unexpected {tok.text!r} at {tok.pos}")

    def elements(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.is_op(close):
            if self.is_op("?"):
                self.next()  # an optional element: `[?x]`
            items.append(self.expr())
            if not self.is_op(","):
                break
            self.next()
        self.expect(close)
        return tuple(items)

    def entries(self) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.is_op("}"):
            if self.is_op("?"):
                self.next()
            items.append(self.expr())
            self.expect(":")
            items.append(self.expr())
            if not self.is_op(","):
                break
            self.next()
        self.expect("}")
        return tuple(items)

    def identifier(self) -> Node:
        tok = self.next()
        if tok.text in ("true", "false"):
            return Node("bool", tok.pos)
        if tok.text == "null":
            return Node("null", tok.pos)
        if self.is_op("("):
            paren = self.next()
            args = self.arguments(")")
            if tok.text == "has" and len(args) == 1 and args[0].kind == "select":
                return Node("macro", paren.pos, "has", None, args)
            return Node("call", paren.pos, tok.text, None, args)
        node = Node("ident", tok.pos, tok.text)
        if self.is_op("{") and self._struct_follows():
            brace = self.next()
            return Node("struct", brace.pos, tok.text, args=self.fields())
        return node

    def _struct_follows(self) -> bool:
        after = self.tokens[self.at + 1]
        return (after.kind == "op" and after.text == "}") or (
            after.kind == "ident" and self.tokens[self.at + 2].text == ":")

    def fields(self) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.is_op("}"):
            self.next()  # the field's name
            self.expect(":")
            items.append(self.expr())
            if not self.is_op(","):
                break
            self.next()
        self.expect("}")
        return tuple(items)


def _qualified_name(node: Node) -> str | None:
    """`a.b.c` when `node` is a chain of plain selects on an identifier, else None."""
    if node.kind == "ident":
        return node.name
    if node.kind != "select" or node.optional or node.target is None:
        return None
    head = _qualified_name(node.target)
    return f"{head}.{node.name}" if head else None


def parse(source: str) -> Node:
    """The AST of `source`; ParseError when it is not an expression this parser reads."""
    try:
        return _Parser(source).parse()
    except (IndexError, RecursionError):
        raise ParseError("cannot parse") from None
