"""Compile and evaluate CEL expressions, with kube's error texts and a cost bound.

`compile_expression(source, variables)` parses the expression (cel-rust's parser shares
cel-go's grammar, so its syntax errors read `ERROR: <input>:1:10: Syntax error: ...` as
kube's do) and refuses names the environment does not declare: a variable that is neither
declared nor bound by a macro (`undeclared reference to 'x' (in container '')`), a function
that is neither CEL's nor one of `library.FUNCTIONS`. cel-rust has no type checker: cel-go's
check against the declared types (`self.name > 1`: `found no matching overload for '_>_'
applied to '(string, int)'`) is `checker.check`'s, which callers run on what compiled here
(CRD rules against their schema, policies with dyn variables); a type mismatch it lets pass
surfaces when the expression is evaluated, as a runtime error.

`evaluate(program, activation, limit)` runs it. kube meters every evaluation (a cost unit per
step, `PerCallLimit` of 1,000,000 per expression); cel-rust does not meter, so before running
a program the engine bounds its cost from the data: the expression's size times
(largest list, map or string in the activation + 1) to the power of its comprehension
nesting. An expression whose bound passes the limit is not run and fails as kube's does when
its meter runs out (`operation cancelled: actual cost limit exceeded`). The bound is an
overestimate: a rule kube would finish may be refused, none can run away.

Handing a value to cel-rust converts it whole (~25 us per string field), so `prepare` gives
an expression only the fields it selects (`object.spec.replicas` gets `{spec: {replicas}}`;
a bare use, an index or a method call gets the whole value at that point), as kube's lazy
value adapters convert only what is read; the cost bound is taken on that part too.

The authorizer library's `check` needs the API server's authorizer, which the shared context
cannot hold: `evaluate` takes it as a parameter (`authorizer`, a callable) and binds it for
the run only (`authz.bind`, a context variable, as the functions run synchronously inside).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from tinykube.api.cel import authz, library
from tinykube.api.cel.native import cel

PER_CALL_LIMIT = 1_000_000  # celconfig.PerCallLimit
RUNTIME_BUDGET = 10_000_000  # celconfig.RuntimeCELCostBudget: one request's rules together
COST_EXCEEDED = "operation cancelled: actual cost limit exceeded"

_MACROS = ("all", "exists", "exists_one", "map", "filter")
_BINDER = re.compile(r"\.\s*(?:" + "|".join(_MACROS) + r")\s*\(\s*([A-Za-z_]\w*)\s*,"
                     r"(?:\s*([A-Za-z_]\w*)\s*,)?")
_BUILTINS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double",
    "string", "bytes", "bool", "timestamp", "duration", "type", "dyn", "has",
    "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours",
    "getMilliseconds", "getMinutes", "getMonth", "getSeconds", "math.greatest", "math.least",
    "hasValue", "value", "orValue", "optional.of", "optional.none", "optional.ofNonZeroValue",
})
_KNOWN_FUNCTIONS = _BUILTINS | frozenset(library.FUNCTIONS)
# Names that read as variables to the parser: type names, and the namespaces of dotted
# functions (`sets.contains(...)`, `ip.isCanonical(...)`).
_TYPE_NAMES = frozenset({"int", "uint", "double", "string", "bytes", "bool", "list", "map",
                         "null_type", "type", "google"})
_NAMESPACES = frozenset(name.partition(".")[0] for name in _KNOWN_FUNCTIONS if "." in name)
_KNOWN_FUNCTIONS |= frozenset(name.partition(".")[2] for name in _KNOWN_FUNCTIONS if "." in name)
# The authorizer library's functions are declared only where `authorizer` is (admission), as
# in kube: a CRD rule calling `check` is an undeclared reference there.
# (No other library has these names: `library.FUNCTIONS` would lose one of the two.)
_AUTHZ_ONLY = frozenset(authz.FUNCTIONS) - _BUILTINS


class CompileError(ValueError):
    """The expression does not compile; `str()` is the detail kube prints."""


class EvalError(ValueError):
    """The expression failed at runtime; `cost` is True when its cost bound was passed."""

    def __init__(self, text: str, *, cost: bool = False) -> None:
        super().__init__(text)
        self.cost = cost


Tree = dict[str, Any]  # a projection: field -> sub-projection, None for the whole value


@dataclasses.dataclass(frozen=True)
class Program:
    """A compiled expression and what its cost bound needs."""

    source: str
    compiled: Any  # cel.Program
    variables: frozenset[str]  # the declared variables it uses
    nodes: int
    depth: int  # comprehension nesting
    # What it reads of each variable (None: all of it): handing cel-rust only that saves
    # converting the rest, which costs ~25 us per string field.
    reads: dict[str, Tree | None] = dataclasses.field(default_factory=dict, compare=False)


def compile_expression(source: str, variables: frozenset[str]) -> Program:
    """Parse `source` and check its names against `variables` and the known functions."""
    try:
        compiled = cel.compile(source)
    except ValueError as exc:
        raise CompileError(_parse_error(str(exc))) from None
    refs = compiled.references()
    bound = {name for match in _BINDER.finditer(source) for name in match.groups() if name}
    for name in refs["variables"]:
        if name not in variables and name not in bound and name not in _TYPE_NAMES and \
                name not in _NAMESPACES:
            raise CompileError(f"ERROR: <input>:1:{_column(source, name)}: undeclared reference "
                               f"to '{name}' (in container '')")
    known = _KNOWN_FUNCTIONS if "authorizer" in variables else _KNOWN_FUNCTIONS - _AUTHZ_ONLY
    for name in refs["functions"]:
        if name[0] not in "_@!-" and name not in known:
            raise CompileError(f"ERROR: <input>:1:{_column(source, name)}: undeclared reference "
                               f"to '{name}' (in container '')")
    nodes = max(1, len(re.findall(r"[A-Za-z_]\w*|\d+|[^\s\w]", source)))
    used = frozenset(refs["variables"]) & variables
    return Program(source, compiled, used, nodes, _nesting(source), _reads(source, used))


_LITERAL = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"",
                      re.S)
_CHAIN = re.compile(r"((?:\s*\.\s*[A-Za-z_]\w*)*)(\s*[(\[])?")


def _reads(source: str, names: frozenset[str]) -> dict[str, Tree | None]:
    """For each variable, the field paths the expression selects from it (`object.spec.x`);
    a bare use, an index or a method call on it (or on a field) needs that value whole."""
    text = _LITERAL.sub(lambda m: " " * len(m.group(0)), source)
    out: dict[str, Tree | None] = {}
    for name in names:
        tree: Tree | None = {}
        for use in re.finditer(r"(?<![.\w])" + name + r"\b", text):
            chain = _CHAIN.match(text, use.end())
            path = [p.strip() for p in chain.group(1).split(".")[1:]] if chain else []
            if chain and (chain.group(2) or "").strip() == "(":
                path = path[:-1]  # a method: the value it is called on is needed whole
            tree = _merge(tree, path)
        out[name] = tree
    return out


def _merge(tree: Tree | None, path: list[str]) -> Tree | None:
    """`tree` also reading `path` (a path ending where a whole value is read)."""
    if tree is None or not path:
        return None
    head, rest = path[0], path[1:]
    if head in tree and tree[head] is None:
        return tree
    tree[head] = _merge(tree.get(head, {}), rest) if rest else None
    return tree


def project(value: Any, tree: Tree | None) -> Any:
    """Only what `tree` names of `value` (maps keep only the named keys)."""
    if tree is None or not isinstance(value, dict):
        return value
    return {k: project(value[k], sub) for k, sub in tree.items() if k in value}


def _parse_error(text: str) -> str:
    """cel-rust's `Failed to parse expression '...': ERROR: ...` as cel-go's `ERROR: ...`."""
    at = text.find("ERROR:")
    return (text[at:] if at >= 0 else text).replace("\n| ", "\n | ")


def _column(source: str, name: str) -> int:
    at = re.search(r"\b" + re.escape(name.rpartition(".")[2]) + r"\b", source)
    return (at.start() if at else 0) + 1


def _nesting(source: str) -> int:
    """How deeply comprehension macros nest (by the parentheses each one opens)."""
    depth = deepest = 0
    stack: list[bool] = []
    for match in re.finditer(r"\.\s*(" + "|".join(_MACROS) + r")\s*\(|\(|\)", source):
        if match.group(0) == ")":
            if stack and stack.pop():
                depth -= 1
        else:
            macro = match.group(1) is not None
            stack.append(macro)
            if macro:
                depth += 1
                deepest = max(deepest, depth)
    return deepest


def largest(value: Any) -> int:
    """The largest list, map or string length in `value` (for the cost bound)."""
    best = 0
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            best = max(best, len(item))
            todo.extend(item.values())
        elif isinstance(item, list):
            best = max(best, len(item))
            todo.extend(item)
        elif isinstance(item, str | bytes):
            best = max(best, len(item))
    return best


def cost_bound(program: Program, size: int) -> int:
    """An upper bound of the steps `program` takes on data whose largest part is `size`."""
    return int(program.nodes * (size + 1) ** program.depth)


def prepare(program: Program, activation: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The part of `activation` that `program` reads, and the cost bound on it."""
    projected = {name: project(value, program.reads.get(name))
                 for name, value in activation.items() if name in program.variables}
    return projected, cost_bound(program, largest(projected))


def evaluate(program: Program, activation: dict[str, Any], *,
             limit: int = PER_CALL_LIMIT, authorizer: authz.Authorize | None = None) -> Any:
    """Run `program`; raise EvalError with cel-go's wording of what went wrong.
    `authorizer` is what the authorizer library's `check` asks (none: `check` fails)."""
    projected, cost = prepare(program, activation)
    return run(program, projected, cost, limit=limit, authorizer=authorizer)


def run(program: Program, projected: dict[str, Any], cost: int, *,
        limit: int = PER_CALL_LIMIT, authorizer: authz.Authorize | None = None) -> Any:
    """Run `program` on what `prepare` gave."""
    if cost > limit:
        raise EvalError(COST_EXCEEDED, cost=True)
    context = _context()
    for name, value in projected.items():
        context.add_variable(name, value)
    try:
        with authz.bind(authorizer):
            return program.compiled.execute(context)
    except KeyError as exc:
        raise EvalError(f"no such key: {exc.args[0] if exc.args else ''}") from None
    except IndexError as exc:
        raise EvalError(str(exc)) from None
    except ZeroDivisionError:
        raise EvalError("division by zero") from None
    except OverflowError:
        raise EvalError("integer overflow") from None
    except TypeError:
        raise EvalError("no such overload") from None
    except (RuntimeError, ValueError) as exc:
        raise EvalError(_runtime_text(str(exc))) from None


@functools.cache
def _context() -> Any:
    """One context with the library's functions, reused (registering them costs more than most
    evaluations); every evaluation sets all the variables its environment declares."""
    return cel.Context({}, library.FUNCTIONS)


def _first_line(text: str) -> str:
    return text.split(". ", 1)[0].splitlines()[0] if text else text


_FUNCTION_ERROR = re.compile(r"^Function '([^']*)' error: (?:Python function call failed: )?"
                             r"(?:\w+Error: )?(.*?)(?:\. Check function arguments.*)?$", re.S)


def _runtime_text(text: str) -> str:
    match = _FUNCTION_ERROR.match(text)
    if match is None:
        return _first_line(text)
    detail = match.group(2).strip()
    if detail == "no such overload":
        return f"no such overload: {match.group(1)}"
    return detail.splitlines()[0] if detail else text
