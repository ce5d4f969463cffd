"""The CEL engine on kube's cases (tests/testdata/cel_cases.yaml) and on its cost bound."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tinykube.api.apiextensions import rules
from tinykube.api.cel import engine

CASES = yaml.safe_load((pathlib.Path(__file__).parents[2] / "testdata" /
                        "cel_cases.yaml").read_text())
VALID = [(c["name"], c, e) for c in CASES for e in c.get("valid") or []]
DIFFERS = [(c["name"], c, e) for c in CASES for e in c.get("differs") or {}]
ERRORS = [(c["name"], c, e, text) for c in CASES for e, text in (c.get("errors") or {}).items()]


def _run(case: dict, expression: str) -> object:
    program = engine.compile_expression(expression, rules.RULE_VARIABLES)
    return engine.evaluate(program, {"self": rules.to_cel(case["schema"], case["value"])})


@pytest.mark.parametrize(("group", "case", "expression"), VALID,
                         ids=[f"{g}: {e}" for g, _, e in VALID])
def test_valid(group: str, case: dict, expression: str) -> None:
    assert _run(case, expression) is True


@pytest.mark.xfail(strict=True, reason="a known difference from kube (see the case file)")
@pytest.mark.parametrize(("group", "case", "expression"), DIFFERS,
                         ids=[f"{g}: {e}" for g, _, e in DIFFERS])
def test_differs(group: str, case: dict, expression: str) -> None:
    assert _run(case, expression) is True


@pytest.mark.parametrize(("group", "case", "expression", "text"), ERRORS,
                         ids=[f"{g}: {e}" for g, _, e, _ in ERRORS])
def test_errors(group: str, case: dict, expression: str, text: str) -> None:
    with pytest.raises((engine.CompileError, engine.EvalError)) as caught:
        _run(case, expression)
    assert text in str(caught.value)


@pytest.mark.parametrize(("expression", "size", "refused"), [
    ("self.l.all(x, x > 0)", 10_000, False),
    ("self.l.all(x, self.l.all(y, x >= y))", 100, False),
    ("self.l.all(x, self.l.all(y, x >= y))", 3_000, True),
    ("self.l.all(x, self.l.all(y, self.l.all(z, x + y > z)))", 200, True),
])
def test_cost_bound(expression: str, size: int, refused: bool) -> None:
    """A rule whose bound passes kube's per-call limit is not run at all."""
    program = engine.compile_expression(expression, frozenset({"self"}))
    activation = {"self": {"l": list(range(size))}}
    if refused:
        with pytest.raises(engine.EvalError) as caught:
            engine.evaluate(program, activation)
        assert caught.value.cost and str(caught.value) == engine.COST_EXCEEDED
    else:
        assert engine.evaluate(program, activation) in (True, False)


def test_macro_variables_are_declared() -> None:
    program = engine.compile_expression("self.all(k, self[k].exists(v, v > k))",
                                        frozenset({"self"}))
    assert program.depth == 2 and program.variables == frozenset({"self"})


@pytest.mark.parametrize(("expression", "reads"), [
    ("self.min <= self.replicas", {"self": {"min": None, "replicas": None}}),
    ("self.tags.all(t, t.size() < 64)", {"self": {"tags": None}}),
    ("size(self) > 1", {"self": None}),
    ("has(self.a.b) && self.a.c[0] == 1", {"self": {"a": {"b": None, "c": None}}}),
    ("self.x == 'self.y'", {"self": {"x": None}}),
    ("self.a.b == 1 && self.a == {}", {"self": {"a": None}}),
    ("object.spec.replicas <= 5 && oldObject == null",
     {"object": {"spec": {"replicas": None}}, "oldObject": None}),
])
def test_reads(expression: str, reads: dict) -> None:
    """Only what an expression selects is handed to cel-rust (converting costs per field)."""
    variables = frozenset({"self", "object", "oldObject"})
    program = engine.compile_expression(expression, variables)
    assert program.reads == reads
    value = {"a": {"b": 1, "c": [1], "d": 2}, "min": 1, "replicas": 2, "x": "q", "other": "z"}
    projected, _ = engine.prepare(program, {"self": value})
    if "self" in reads:
        assert "other" not in (projected["self"] if reads["self"] is not None else {})
