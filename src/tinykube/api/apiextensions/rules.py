"""CEL validation rules of a CRD schema (`x-kubernetes-validations`), as
apiextensions-apiserver's `schema/cel` package runs them.

`validate(schema, obj, old)` walks the object and its schema together (and the stored object,
on an update, correlated the same way: by property, by map key, and by the keys of an
`x-kubernetes-list-type: map` list; items of other lists have no old value). At every schema
node with rules, each rule is evaluated with `self` bound to the node's value as CEL sees it:

- objects with `properties` keep only those (unknown preserved fields are not visible), null
  fields are absent (`has()` is false), property names are escaped (`x-prop` is
  `x__dash__prop`, `namespace` is `__namespace__`); at the root and in embedded resources
  `apiVersion`, `kind`, `metadata.name` and `metadata.generateName` are visible;
- `number` fields are doubles, `integer` ints, `date` and `date-time` strings timestamps,
  `duration` strings durations, `byte` strings bytes.

On an update, a failing rule that is not a transition rule is dropped when the value it
judges (or, where a value has no correlated old one, its nearest correlated ancestor) is
unchanged: kube's validation ratcheting, which sends a warning instead (tinykube sends none).

A rule that uses `oldSelf` is a transition rule: it runs only when there is an old value
(with `optionalOldSelf: true`, also without one, `oldSelf` then being an empty optional).
A rule that is false fails with its `message` (or `messageExpression`'s result, or
`failed rule: <rule>`) at the node's path plus its `fieldPath`, as `reason` says (Invalid by
default, with the schema type as the value: `spec: Invalid value: "object": ...`). Runtime
errors are reported as kube words them (`no such key: x evaluating rule: self.x > 0`). All
rules of a request share kube's runtime budget; each one is bounded by `engine`'s cost bound.

`crd_errors(schema, path)` is what a CRD write is refused for: rules that do not compile, a
bad `reason`, `fieldPath`, or message.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
from typing import Any

from tinykube.api.cel import celtypes, checker, engine
from tinykube.api.cel.native import cel
from tinykube.api.errors import FieldError, Rendered

Obj = dict[str, Any]
RULE_VARIABLES = frozenset({"self", "oldSelf"})
REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid",
           "FieldValueRequired")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
BUDGET_TEXT = ("validation failed due to running out of cost budget, no further validation "
               "rules will be run")


@functools.lru_cache(maxsize=4096)
def compiled(source: str) -> engine.Program | engine.CompileError:
    try:
        return engine.compile_expression(source, RULE_VARIABLES)
    except engine.CompileError as exc:
        return exc


# --- values as CEL sees them ---------------------------------------------------------------

escape = celtypes.escape  # a property name as a CEL field name (None: unreachable)


def to_cel(s: Obj, value: Any, *, root: bool = False,
           only: frozenset[str] | None = None) -> Any:
    """`value` (under schema `s`) as the rule's `self` sees it (of an object, only the
    fields named in `only`, when given)."""
    if value is None:
        return None
    kind = s.get("type")
    if isinstance(value, dict):
        return _object(s, value, root=root, only=only)
    if isinstance(value, list):
        items = s.get("items")
        return [to_cel(items if isinstance(items, dict) else {}, v) for v in value]
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "string" and isinstance(value, str):
        return _formatted(s.get("format", ""), value)
    return value


def _object(s: Obj, value: Obj, *, root: bool, only: frozenset[str] | None) -> Obj:
    props = s.get("properties")
    additional = s.get("additionalProperties")
    out: Obj = {}
    if (isinstance(props, dict) and props) or not isinstance(additional, dict):
        for name, sub in (props or {}).items():
            key = escape(name)
            if key is not None and value.get(name) is not None and isinstance(sub, dict) \
                    and (only is None or key in only):
                out[key] = to_cel(sub, value[name])
        if not props and s.get("x-kubernetes-preserve-unknown-fields"):
            out = dict(value)
    else:
        out = {k: to_cel(additional, v) for k, v in value.items() if v is not None}
    if root or s.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if isinstance(value.get(key), str):
                out[key] = value[key]
        meta = value.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        out["metadata"] = {k: meta[k] for k in ("name", "generateName") if meta.get(k)}
    return out


def _formatted(fmt: str, value: str) -> Any:
    try:
        if fmt == "date-time":
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if fmt == "date":
            return datetime.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
        if fmt == "duration":
            return _duration(value)
        if fmt == "byte":
            return base64.b64decode(value, validate=True)
    except ValueError:
        return value
    return value


def _duration(text: str) -> datetime.timedelta:
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(text)
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    return datetime.timedelta(seconds=sign * seconds)


# --- evaluation ----------------------------------------------------------------------------

_HAS_RULES: dict[int, tuple[Obj, bool]] = {}


def has_rules(schema: Obj) -> bool:
    """Whether any node of `schema` has rules (remembered per schema object: a CRD's schema
    is not changed in place once it is served)."""
    known = _HAS_RULES.get(id(schema))
    if known is None or known[0] is not schema:
        known = (schema, "x-kubernetes-validations" in json.dumps(schema))
        if len(_HAS_RULES) > 1024:
            _HAS_RULES.clear()
        _HAS_RULES[id(schema)] = known
    return known[1]


class _Run:
    """One request's walk: its errors and what is left of its budget."""

    def __init__(self, budget: int) -> None:
        self.errors: list[FieldError] = []
        self.budget = budget
        self.stopped = False


def validate(schema: Obj | None, obj: Obj, old: Obj | None, *,
             budget: int = engine.RUNTIME_BUDGET) -> list[FieldError]:
    """The rule failures of `obj` (an update's stored object is `old`)."""
    if schema is None or not has_rules(schema):
        return []
    run = _Run(budget)
    _walk(schema, obj, old, "", run, root=True)
    return run.errors


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(s: Obj, value: Any, old: Any, path: str, run: _Run, *, root: bool = False,
          ratchet: bool = False) -> None:
    """`ratchet`: whether the nearest value with an old one is unchanged (then failures of
    rules that are not transition rules are dropped: kube's validation ratcheting)."""
    if value is None or run.stopped:
        return
    ratchet = value == old if old is not None else ratchet
    if s.get("x-kubernetes-validations"):
        _rules(s, value, old, path, run, root=root, ratchet=ratchet)
    for sub in s.get("allOf") or []:
        if isinstance(sub, dict) and sub.get("x-kubernetes-validations"):
            _rules(sub, value, old, path, run, root=root, ratchet=ratchet)
    if isinstance(value, dict):
        _walk_object(s, value, old if isinstance(old, dict) else None, path, run, root=root,
                     ratchet=ratchet)
    elif isinstance(value, list) and isinstance(s.get("items"), dict) and has_rules(s["items"]):
        olds = _correlated_items(s, value, old if isinstance(old, list) else None)
        for index, item in enumerate(value):
            _walk(s["items"], item, olds[index], f"{path}[{index}]", run, ratchet=ratchet)


def _walk_object(s: Obj, value: Obj, old: Obj | None, path: str, run: _Run, *,
                 root: bool, ratchet: bool) -> None:
    props = s.get("properties") or {}
    additional = s.get("additionalProperties")
    for key, item in value.items():
        if root and key == "metadata":
            continue
        sub = props.get(key)
        child = _child(path, key)
        if sub is None and isinstance(additional, dict):
            sub, child = additional, f"{path}[{key}]"
        if isinstance(sub, dict) and has_rules(sub):
            _walk(sub, item, old.get(key) if old is not None else None, child, run,
                  ratchet=ratchet)


def _correlated_items(s: Obj, value: list[Any], old: list[Any] | None) -> list[Any]:
    """Each item's old value: by key in a `map` list, none in other lists."""
    keys = s.get("x-kubernetes-list-map-keys") or []
    if old is None or s.get("x-kubernetes-list-type") != "map" or not keys:
        return [None] * len(value)
    by_key = {_map_key(item, keys): item for item in old if isinstance(item, dict)}
    return [by_key.get(_map_key(item, keys)) if isinstance(item, dict) else None
            for item in value]


def _map_key(item: Obj, keys: list[str]) -> tuple[Any, ...]:
    return tuple(repr(item.get(k)) for k in keys)


def _rules(s: Obj, value: Any, old: Any, path: str, run: _Run, *, root: bool,
           ratchet: bool) -> None:
    only = _read_fields(s)
    current = to_cel(s, value, root=root, only=only)
    previous = to_cel(s, old, root=root, only=only)
    shown = path or "<nil>"
    for rule in s.get("x-kubernetes-validations") or []:
        if run.stopped or not isinstance(rule, dict) or not rule.get("rule"):
            continue
        program = compiled(str(rule["rule"]))
        if isinstance(program, engine.CompileError):
            run.errors.append(FieldError.invalid(shown, s.get("type", ""),
                                                 f"rule compile error: {program}"))
            continue
        activation = _activation(program, rule, current, previous)
        if activation is None:
            continue  # a transition rule without an old value
        _one(s, rule, program, activation, shown, run,
             ratchet=ratchet and "oldSelf" not in program.variables)


def _read_fields(s: Obj) -> frozenset[str] | None:
    """The fields of `self`/`oldSelf` the node's rules (and messages) read; None: all."""
    fields: set[str] = set()
    for rule in s.get("x-kubernetes-validations") or []:
        for key in ("rule", "messageExpression"):
            program = compiled(str(rule.get(key) or "")) if isinstance(rule, dict) else None
            if not isinstance(program, engine.Program):
                continue
            for name in ("self", "oldSelf"):
                tree = program.reads.get(name, {})
                if tree is None:
                    return None
                fields.update(tree)
    return frozenset(fields)


def _activation(program: engine.Program, rule: Obj, current: Any,
                previous: Any) -> dict[str, Any] | None:
    activation: dict[str, Any] = {"self": current}
    if "oldSelf" in program.variables:
        if rule.get("optionalOldSelf"):
            activation["oldSelf"] = (cel.OptionalValue.none() if previous is None
                                     else cel.OptionalValue.of(previous))
        elif previous is None:
            return None
        else:
            activation["oldSelf"] = previous
    return activation


def _one(s: Obj, rule: Obj, program: engine.Program, activation: dict[str, Any],
         path: str, run: _Run, *, ratchet: bool) -> None:
    kind, source = s.get("type", ""), str(rule["rule"]).strip()
    projected, cost = engine.prepare(program, activation)
    if cost > run.budget and cost <= engine.PER_CALL_LIMIT:
        run.errors.append(FieldError.invalid(path, kind, BUDGET_TEXT))
        run.stopped = True
        return
    try:
        result = engine.run(program, projected, cost)
    except engine.EvalError as exc:
        if exc.cost:
            run.errors.append(FieldError.invalid(path, kind, (
                f"'{exc}': no further validation rules will be run due to call cost exceeds "
                f"limit for rule: {source}")))
            run.stopped = True
        elif str(exc).startswith("no such overload"):
            run.errors.append(FieldError.invalid(path, kind, (
                f"'{exc}': call arguments did not match a supported operator, function or "
                f"macro signature for rule: {source}")))
        else:
            run.errors.append(FieldError.invalid(path, kind, f"{exc} evaluating rule: {source}"))
        return
    run.budget -= cost
    if result is True:
        return
    if not isinstance(result, bool):
        run.errors.append(FieldError.invalid(path, kind, (
            f"'no such overload: rule must evaluate to a bool' evaluating rule: {source}")))
        return
    if ratchet:
        return  # the value did not change: kube turns the failure into a warning
    target = path if not rule.get("fieldPath") else _field_path(path, str(rule["fieldPath"]))
    run.errors.append(_failure(target, kind, _message(rule, activation),
                               rule.get("reason")))


def _message(rule: Obj, activation: dict[str, Any]) -> str:
    expression = rule.get("messageExpression")
    if expression:
        program = compiled(str(expression))
        if isinstance(program, engine.Program):
            try:
                text = engine.evaluate(program, activation)
            except engine.EvalError:
                text = None
            if isinstance(text, str) and text.strip() and "\n" not in text:
                return text
    if rule.get("message"):
        return str(rule["message"]).strip()
    return f"failed rule: {str(rule['rule']).strip()}"


def _failure(path: str, kind: str, detail: str, reason: Any) -> FieldError:
    if reason == "FieldValueForbidden":
        return FieldError.forbidden(path, detail)
    if reason == "FieldValueRequired":
        return FieldError.required(path, detail)
    if reason == "FieldValueDuplicate":
        return FieldError.duplicate(path, kind)
    return FieldError.invalid(path, kind, detail)


def _field_path(path: str, json_path: str) -> str:
    """`.foo['a.b']` under `spec` as kube's field path `spec.foo[a.b]`."""
    out = "" if path == "<nil>" else path
    for name, quoted in re.findall(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]", json_path):
        out = _child(out, name) if name else f"{out}[{quoted}]"
    return out


# --- the CRD write ------------------------------------------------------------------------

def _go_rule(rule: Obj) -> Rendered:
    """A ValidationRule as Go's %#v prints apiextensions' internal struct."""
    reason = "(*apiextensions.FieldValueErrorReason)(nil)" if rule.get("reason") is None else \
        "(*apiextensions.FieldValueErrorReason)(0xc000000000)"
    optional = "(*bool)(nil)" if rule.get("optionalOldSelf") is None else \
        "(*bool)(0xc000000000)"
    return Rendered(
        f'apiextensions.ValidationRule{{Rule:{_quote(rule.get("rule", ""))}, '
        f'Message:{_quote(rule.get("message", ""))}, '
        f'MessageExpression:{_quote(rule.get("messageExpression", ""))}, Reason:{reason}, '
        f'FieldPath:{_quote(rule.get("fieldPath", ""))}, OptionalOldSelf:{optional}}}')


def _quote(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def crd_errors(s: Obj, path: str) -> list[FieldError]:
    """Errors of every rule in the schema `s` (found at `path`), as a CRD write reports them."""
    errs: list[FieldError] = []
    _check(s, path, errs, root=True)
    return errs


def _check(s: Obj, path: str, errs: list[FieldError], *, root: bool = False,
           typed: Obj | None = None) -> None:
    """`typed`: the schema whose values the rules judge (an `allOf` item's is its parent's)."""
    if not isinstance(s, dict):
        return
    if s.get("x-kubernetes-validations"):
        self_type = celtypes.schema_type(typed or s, root=root)
        for index, rule in enumerate(s["x-kubernetes-validations"]):
            if isinstance(rule, dict):
                errs.extend(_check_rule(s, rule, f"{path}.x-kubernetes-validations[{index}]",
                                        self_type))
    for name, prop in (s.get("properties") or {}).items():
        _check(prop, f"{path}.properties[{name}]", errs)
    if isinstance(s.get("additionalProperties"), dict):
        _check(s["additionalProperties"], f"{path}.additionalProperties", errs)
    if isinstance(s.get("items"), dict):
        _check(s["items"], f"{path}.items", errs)
    for index, sub in enumerate(s.get("allOf") or []):
        _check(sub, f"{path}.allOf[{index}]", errs, root=root, typed=typed or s)


def _check_rule(s: Obj, rule: Obj, path: str, self_type: celtypes.Type) -> list[FieldError]:
    errs: list[FieldError] = []
    source = str(rule.get("rule") or "")
    if not source.strip():
        return [FieldError.required(f"{path}.rule", "rule is not specified")]
    variables = {"self": self_type, "oldSelf": celtypes.optional_of(self_type)
                 if rule.get("optionalOldSelf") else self_type}
    detail = compile_error(source, variables, "bool")
    if detail is not None:
        errs.append(FieldError.invalid(f"{path}.rule", _go_rule(rule), detail))
    elif rule.get("optionalOldSelf") and "oldSelf" not in _program(source).variables:
        errs.append(FieldError.invalid(f"{path}.optionalOldSelf", True,
                                       "may not be set if oldSelf is not used in rule"))
    message = rule.get("message")
    if message is not None and "\n" in str(message):
        errs.append(FieldError.invalid(f"{path}.message", message,
                                       "message must not contain line breaks"))
    elif not message and "\n" in source.strip():
        errs.append(FieldError.required(f"{path}.message",
                                        "message must be specified if rule contains line "
                                        "breaks"))
    if rule.get("messageExpression") and detail is None:
        text = compile_error(str(rule["messageExpression"]), variables, "string")
        if text is not None:
            errs.append(FieldError.invalid(f"{path}.messageExpression", _go_rule(rule),
                                           text if text.startswith("messageExpression") else
                                           f"messageExpression {text}"))
    reason = rule.get("reason")
    if reason is not None and reason not in REASONS:
        errs.append(FieldError.not_supported(f"{path}.reason", reason, list(REASONS)))
    if rule.get("fieldPath"):
        errs.extend(_check_field_path(s, str(rule["fieldPath"]), f"{path}.fieldPath"))
    return errs


def _program(source: str) -> engine.Program:
    program = compiled(source)
    assert isinstance(program, engine.Program)
    return program


_MUST = {"bool": "cel expression must evaluate to a bool",
         "string": "messageExpression must evaluate to a string"}


def compile_error(source: str, variables: dict[str, celtypes.Type], result: str) -> str | None:
    """What kube refuses `source` for, compiled with `variables` (the engine's syntax and
    name errors, then the checker's type errors: `compilation failed: ERROR: ...`), or that
    its type is not `result` (`bool` for a rule, `string` for a message); None when it
    compiles."""
    program = compiled(source)
    if isinstance(program, engine.CompileError):
        return f"compilation failed: {program}"
    typed = checker.check(source, variables)
    if typed.issues:
        return f"compilation failed: {checker.format_errors(source, typed.issues)}"
    if typed.type.kind != result and not typed.type.loose:
        return _MUST[result]
    return None


def _check_field_path(s: Obj, json_path: str, path: str) -> list[FieldError]:
    parts = re.findall(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]", json_path)
    joined = "".join(f".{n}" if n else f"['{q}']" for n, q in parts)
    if not parts or joined != json_path:
        return [FieldError.invalid(path, json_path, "fieldPath must be a valid path: "
                                                    "expected [ or . at position 0")]
    node: Any = s
    for name, quoted in parts:
        key = name or quoted
        props = node.get("properties") or {} if isinstance(node, dict) else {}
        if key in props:
            node = props[key]
        elif isinstance(node, dict) and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return [FieldError.invalid(path, json_path, "fieldPath must be a valid path: "
                                                        "does not refer to a valid field")]
    return []
