"""The CEL type checker (api/cel/checker.py) and the CEL types of schemas (celtypes.py):
kube's compilation cases (tests/testdata/cel_compilation_cases.yaml), kube's runtime cases
(cel_cases.yaml: every expression kube finds true must type-check), and cel-go's texts."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
import yaml

from tinykube.api.apiextensions import rules
from tinykube.api.cel import celtypes, checker

Obj = dict[str, Any]
DATA = pathlib.Path(__file__).parents[2] / "testdata"
COMPILATION = yaml.safe_load((DATA / "cel_compilation_cases.yaml").read_text())
RUNTIME = yaml.safe_load((DATA / "cel_cases.yaml").read_text())
_EXPECT = ("error", "messageError", "transition")


def _errors_by_rule(schema: Obj, rule_list: list[Obj]) -> dict[int, list[str]]:
    node = {**schema, "x-kubernetes-validations": [
        {k: v for k, v in r.items() if k not in _EXPECT} for r in rule_list]}
    found: dict[int, list[str]] = {}
    for err in rules.crd_errors(node, "openAPIV3Schema"):
        index = int(re.search(r"x-kubernetes-validations\[(\d+)\]", str(err)).group(1))  # type: ignore[union-attr]
        found.setdefault(index, []).append(str(err))
    return found


@pytest.mark.parametrize("case", COMPILATION, ids=[c["name"] for c in COMPILATION])
def test_kube_compilation_cases(case: Obj) -> None:
    found = _errors_by_rule(case["schema"], case["rules"])
    for index, rule in enumerate(case["rules"]):
        errs = found.get(index, [])
        if "error" in rule:
            assert any(".rule: " in e and rule["error"] in e for e in errs), (rule, errs)
        elif "messageError" in rule:
            assert len(errs) == 1 and ".messageExpression: " in errs[0] and \
                rule["messageError"] in errs[0], (rule, errs)
        else:
            assert errs == [], (rule, errs)
        if "transition" in rule:
            program = rules.compiled(rule["rule"])
            assert not isinstance(program, Exception)
            assert ("oldSelf" in program.variables) is rule["transition"]


RUNTIME_TRUE = [(c["name"], c["schema"], e) for c in RUNTIME
                for e in [*(c.get("valid") or []), *(c.get("differs") or {})]]


@pytest.mark.parametrize(("group", "schema", "expression"), RUNTIME_TRUE,
                         ids=[f"{g}: {e}" for g, _, e in RUNTIME_TRUE])
def test_what_kube_finds_true_type_checks(group: str, schema: Obj, expression: str) -> None:
    self_type = celtypes.schema_type(schema)
    assert rules.compile_error(expression, {"self": self_type, "oldSelf": self_type},
                               "bool") is None


SPEC: Obj = {"type": "object", "properties": {
    "replicas": {"type": "integer"}, "name": {"type": "string"},
    "ratio": {"type": "number"}, "when": {"type": "string", "format": "date-time"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "port": {"x-kubernetes-int-or-string": True},
    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "template": {"type": "object", "properties": {"size": {"type": "integer"}}},
}}


@pytest.mark.parametrize(("rule", "expected"), [
    ("self.replicas + 'a' > 1",
     "ERROR: <input>:1:15: found no matching overload for '_+_' applied to '(int, string)'\n"
     " | self.replicas + 'a' > 1\n"
     " | ..............^"),
    ("self.nope == 1",
     "ERROR: <input>:1:5: undefined field 'nope'\n | self.nope == 1\n | ....^"),
    ("self.template.nope == 1", "ERROR: <input>:1:14: undefined field 'nope'"),
    ("has(self.nope)", "ERROR: <input>:1:4: undefined field 'nope'"),
    ("self.name.startsWith(1)",
     "ERROR: <input>:1:21: found no matching overload for 'startsWith' applied to "
     "'string.(int)'"),
    ("self.replicas == 1.0",
     "ERROR: <input>:1:15: found no matching overload for '_==_' applied to '(int, double)'"),
    ("size(self.replicas) > 0",
     "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'"),
    ("self.name.size",
     "ERROR: <input>:1:10: type 'string' does not support field selection"),
    ("self.tags.all(t, t.size())",  # cel-go points at the operand of the step's `&&`
     "ERROR: <input>:1:24: expected type 'bool' but found 'int'"),
    ("self.replicas && true", "ERROR: <input>:1:5: expected type 'bool' but found 'int'"),
    ("self.tags[0u] == ''",
     "ERROR: <input>:1:10: found no matching overload for '_[_]' applied to "
     "'(list(string), uint)'"),
    ("self.tags.filter(t, t).size() > 0",
     "ERROR: <input>:1:17: found no matching overload for '_?_:_' applied to "
     "'(string, list(string), list(string))'"),
    ("self.replicas.all(x, true)",
     "ERROR: <input>:1:5: expression of type 'int' cannot be range of a comprehension "
     "(must be list, map, or dynamic)"),
    ("self.tags == [1, 'a']", "ERROR: <input>:1:18: expected type 'int' but found 'string'"),
    ("self.labels['a'] + 1 > 0",
     "ERROR: <input>:1:18: found no matching overload for '_+_' applied to '(string, int)'"),
    ("self.when > 1",
     "ERROR: <input>:1:11: found no matching overload for '_>_' applied to "
     "'(google.protobuf.Timestamp, int)'"),
    ("self.name == 1 && self.x",
     "ERROR: <input>:1:11: found no matching overload for '_==_' applied to '(string, int)'\n"
     " | self.name == 1 && self.x\n"
     " | ..........^\n"
     "ERROR: <input>:1:23: undefined field 'x'"),
    ("true &&\n  self.nope",
     "ERROR: <input>:2:7: undefined field 'nope'\n |   self.nope\n | ......^"),
    ("'👑' + self.nope == ''",
     "ERROR: <input>:1:11: undefined field 'nope'\n | '👑' + self.nope == ''\n"
     " | .\uff0e........^"),  # columns count code points; a wide one shows a wide dot
])
def test_cel_go_texts(rule: str, expected: str) -> None:
    typed = checker.check(rule, {"self": celtypes.schema_type(SPEC, name="selfType1")})
    text = checker.format_errors(rule, typed.issues)
    if "\n |" in expected:
        assert text.startswith(expected), text
    else:
        assert [line for line in text.splitlines() if line.startswith("ERROR")] == \
            expected.splitlines(), text


@pytest.mark.parametrize("rule", [
    "self.port == 80 || self.port == '80%'",  # int-or-string is dyn
    "self.extra.anything.deeper == 1",  # preserved unknown fields: dyn in tinykube
    "self.ratio > self.replicas",  # kube's cross-type numeric comparisons
    "self.when < timestamp('2030-01-01T00:00:00Z') && self.when + duration('1h') > self.when",
    "self.labels.all(k, self.labels[k].matches('^[a-z]+$')) && 'a' in self.labels",
    "self.tags.map(t, t.size()).all(n, n < 64) && self.tags.exists_one(t, t == 'x')",
    "type(self.port) == int ? self.port < 5 : self.port.endsWith('%')",
    "self.template == oldSelf.template && self == oldSelf",
    "self.replicas.nope() == 1",  # a function kube has not: the engine's to refuse
    "[self.port, 1, 'a'].size() == 3",  # a dyn element makes the literal dyn
    "(true ? 1 : self.port) + 'a' == 'b'",  # int joined with dyn is dyn, as in cel-go
    "[[1], [self.port]][0][0] + 'a' == ''",
    "self.tags[self.port] == '' && self.labels[self.name] == ''",
    "self.labels.size() == 0 || self.template.size == 1",
    "has(self.labels.x) && self.tags[0] != null",
    "quantity(self.name).add(1).isLessThan(quantity('1Gi')) && url(self.name).getScheme() == 'x'",
    "cidr(self.name).containsIP(ip(self.name)) && ip.isCanonical(self.name)",
    "sets.contains(self.tags, ['a']) && self.tags.isSorted() && self.tags.max() > ''",
    "self.name.split(',').join('-').lowerAscii().substring(1, 2).charAt(0) == ''",
    "unparsed nonsense ((",  # not this parser's to judge
])
def test_accepted(rule: str) -> None:
    self_type = celtypes.schema_type(SPEC)
    typed = checker.check(rule, {"self": self_type, "oldSelf": self_type})
    assert typed.issues == (), checker.format_errors(rule, typed.issues)


@pytest.mark.parametrize(("schema", "root", "expected"), [
    ({"type": "integer"}, False, "int"),
    ({"type": "number"}, False, "double"),
    ({"type": "boolean"}, False, "bool"),
    ({"type": "string"}, False, "string"),
    ({"type": "string", "format": "byte"}, False, "bytes"),
    ({"type": "string", "format": "duration"}, False, "google.protobuf.Duration"),
    ({"type": "string", "format": "date"}, False, "google.protobuf.Timestamp"),
    ({"type": "string", "format": "date-time"}, False, "google.protobuf.Timestamp"),
    ({"type": "array", "items": {"type": "integer"}}, False, "list(int)"),
    ({"type": "object", "additionalProperties": {"type": "string"}}, False,
     "map(string, string)"),
    ({"x-kubernetes-int-or-string": True}, False, "dyn"),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, False, "dyn"),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, False, "T{a}"),
    ({"type": "object", "properties": {"a-b": {"type": "integer"}, "if": {"type": "integer"}}},
     False, "T{__if__,a__dash__b}"),
    ({"type": "object", "properties": {"spec": {"type": "object"}}}, True,
     "T{apiVersion,kind,metadata,spec}"),
    ({"type": "object", "x-kubernetes-embedded-resource": True,
      "properties": {"spec": {"type": "object"}}}, False, "T{apiVersion,kind,metadata,spec}"),
])
def test_schema_types(schema: Obj, root: bool, expected: str) -> None:
    typed = celtypes.schema_type(schema, root=root, name="T")
    shown = f"T{{{','.join(n for n, _ in typed.fields)}}}" if typed.kind == "object" else \
        str(typed)
    assert shown == expected


def test_object_type_names_are_kubes() -> None:
    typed = celtypes.schema_type({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {"x": {"type": "integer"}}}}}}}}, name="selfType7")
    spec = typed.field("spec")
    assert spec is not None and str(spec) == "selfType7.spec"
    items = spec.field("items")
    assert items is not None and str(items) == "list(selfType7.spec.items.@idx)"
    meta = celtypes.schema_type({"type": "object"}, root=True).field("metadata")
    assert meta is not None and [n for n, _ in meta.fields] == ["generateName", "name"]
    assert re.fullmatch(r"selfType\d+", celtypes.self_type_name())
