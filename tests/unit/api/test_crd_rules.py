"""CRD `x-kubernetes-validations` (api/apiextensions/rules.py): kube's error texts, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api.apiextensions import rules
from tinykube.api.cel import celtypes

Obj = dict[str, Any]


def _schema(*validations: Obj, spec_rules: tuple[Obj, ...] = ()) -> Obj:
    spec = {"type": "object", "properties": {
        "replicas": {"type": "integer"}, "min": {"type": "integer"},
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string",
                                            "x-kubernetes-validations": list(validations)}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {
                      "name": {"type": "string"}, "port": {"type": "integer"}},
                      "x-kubernetes-validations": [{"rule": "self.port >= oldSelf.port",
                                                    "message": "port may not go down"}]}},
    }, "x-kubernetes-validations": list(spec_rules)}
    return {"type": "object", "properties": {"spec": spec}}


def _obj(**spec: Any) -> Obj:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": spec}


@pytest.mark.parametrize(("rule", "spec", "expected"), [
    ({"rule": "self.min <= self.replicas"}, {"min": 1, "replicas": 2}, []),
    ({"rule": "self.min <= self.replicas"}, {"min": 3, "replicas": 2},
     ['spec: Invalid value: "object": failed rule: self.min <= self.replicas']),
    ({"rule": "self.min <= self.replicas", "message": " min above replicas "},
     {"min": 3, "replicas": 2}, ['spec: Invalid value: "object": min above replicas']),
    ({"rule": "self.min <= self.replicas",
      "messageExpression": "'min ' + string(self.min) + ' > ' + string(self.replicas)"},
     {"min": 3, "replicas": 2}, ['spec: Invalid value: "object": min 3 > 2']),
    ({"rule": "self.min <= self.replicas", "messageExpression": "self.nope", "message": "m"},
     {"min": 3, "replicas": 2}, ['spec: Invalid value: "object": m']),
    ({"rule": "self.min <= self.replicas", "reason": "FieldValueForbidden", "message": "no"},
     {"min": 3, "replicas": 2}, ["spec: Forbidden: no"]),
    ({"rule": "self.min <= self.replicas", "reason": "FieldValueRequired", "message": "no"},
     {"min": 3, "replicas": 2}, ["spec: Required value: no"]),
    ({"rule": "self.min <= self.replicas", "reason": "FieldValueDuplicate"},
     {"min": 3, "replicas": 2}, ['spec: Duplicate value: "object"']),
    ({"rule": "self.min <= self.replicas", "fieldPath": ".min", "message": "too big"},
     {"min": 3, "replicas": 2}, ['spec.min: Invalid value: "object": too big']),
    ({"rule": "self.min <= self.replicas"}, {"replicas": 2},
     ['spec: Invalid value: "object": no such key: min evaluating rule: '
      'self.min <= self.replicas']),
    ({"rule": "!has(self.min) || self.min <= self.replicas"}, {"replicas": 2}, []),
    ({"rule": "self.name > 1"}, {"name": "x"},
     ['spec: Invalid value: "object": \'no such overload\''
      ': call arguments did not match a supported operator, function or macro signature '
      'for rule: self.name > 1']),
    ({"rule": "self.replicas"}, {"replicas": 1},
     ["spec: Invalid value: \"object\": 'no such overload: rule must evaluate to a bool' "
      "evaluating rule: self.replicas"]),
])
def test_rule_failures(rule: Obj, spec: Obj, expected: list[str]) -> None:
    errs = rules.validate(_schema(spec_rules=(rule,)), _obj(**spec), None)
    assert [str(e) for e in errs] == expected


def test_item_rules_have_item_paths() -> None:
    schema = _schema({"rule": "self.size() <= 3", "message": "tag too long"})
    errs = rules.validate(schema, _obj(tags=["ok", "toolong"]), None)
    assert [str(e) for e in errs] == ['spec.tags[1]: Invalid value: "string": tag too long']


def test_root_rules_see_metadata_name() -> None:
    schema = {**_schema(), "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('x-')"}]}
    errs = rules.validate(schema, _obj(), None)
    assert [str(e) for e in errs] == [
        "<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('x-')"]


TRANSITION = {"rule": "self.replicas >= oldSelf.replicas", "message": "no scaling down"}


@pytest.mark.parametrize(("rule", "old", "expected"), [
    (TRANSITION, None, []),  # a create: transition rules do not run
    (TRANSITION, {"replicas": 1}, []),
    (TRANSITION, {"replicas": 5}, ['spec: Invalid value: "object": no scaling down']),
    ({**TRANSITION, "rule": "!oldSelf.hasValue() || self.replicas >= oldSelf.value().replicas",
      "optionalOldSelf": True}, None, []),
    ({**TRANSITION, "rule": "oldSelf.hasValue()", "optionalOldSelf": True}, None,
     ['spec: Invalid value: "object": no scaling down']),
])
def test_transition_rules(rule: Obj, old: Obj | None, expected: list[str]) -> None:
    schema = _schema(spec_rules=(rule,))
    errs = rules.validate(schema, _obj(replicas=2), _obj(**old) if old is not None else None)
    assert [str(e) for e in errs] == expected


def test_list_map_items_correlate_by_key() -> None:
    old = _obj(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 90}])
    new = _obj(ports=[{"name": "b", "port": 91}, {"name": "a", "port": 70},
                      {"name": "c", "port": 1}])
    errs = rules.validate(_schema(), new, old)
    assert [str(e) for e in errs] == ['spec.ports[1]: Invalid value: "object": '
                                      'port may not go down']


def test_cost_limit_stops_the_rules() -> None:
    rule = {"rule": "self.tags.all(x, self.tags.all(y, self.tags.all(z, x != y || y == z)))"}
    schema = _schema(spec_rules=(rule, {"rule": "false"}))
    errs = rules.validate(schema, _obj(tags=[str(i) for i in range(200)]), None)
    assert [str(e) for e in errs] == [
        "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': "
        "no further validation rules will be run due to call cost exceeds limit for rule: "
        f"{rule['rule']}"]


def test_budget_is_shared_by_the_request() -> None:
    schema = _schema({"rule": "self.size() < 100"})
    errs = rules.validate(schema, _obj(tags=["a"] * 5), None, budget=30)
    assert [str(e) for e in errs][-1] == ('spec.tags[4]: Invalid value: "string": '
                                          f'{rules.BUDGET_TEXT}')


PATH = "spec.versions[0].schema.openAPIV3Schema"


@pytest.mark.parametrize(("rule", "expected"), [
    ({"rule": "self.replicas > 0"}, []),
    ({"rule": "self.replicas >"},
     [f"{PATH}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
      'apiextensions.ValidationRule{Rule:"self.replicas >", Message:"", MessageExpression:"", '
      "Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", "
      "OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:16: Syntax error: "]),
    ({"rule": "object.replicas > 0"},
     [f"{PATH}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
      'apiextensions.ValidationRule{Rule:"object.replicas > 0", Message:"", '
      'MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), '
      'FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:1: '
      "undeclared reference to 'object' (in container '')"]),
    ({"rule": ""}, [f"{PATH}.properties[spec].x-kubernetes-validations[0].rule: Required value: "
                    "rule is not specified"]),
    ({"rule": "self.replicas > 0", "reason": "Nope"},
     [f'{PATH}.properties[spec].x-kubernetes-validations[0].reason: Unsupported value: "Nope": '
      'supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", '
      '"FieldValueRequired"']),
    ({"rule": "self.replicas > 0", "fieldPath": ".nope"},
     [f'{PATH}.properties[spec].x-kubernetes-validations[0].fieldPath: Invalid value: ".nope": '
      "fieldPath must be a valid path: does not refer to a valid field"]),
    ({"rule": "self.replicas > 0", "message": "a\nb"},
     [f'{PATH}.properties[spec].x-kubernetes-validations[0].message: Invalid value: "a\\nb": '
      "message must not contain line breaks"]),
    ({"rule": "self.replicas > 0", "optionalOldSelf": True},
     [f"{PATH}.properties[spec].x-kubernetes-validations[0].optionalOldSelf: Invalid value: "
      "true: may not be set if oldSelf is not used in rule"]),
])
def test_crd_write_errors(rule: Obj, expected: list[str]) -> None:
    errs = [str(e) for e in rules.crd_errors(_schema(spec_rules=(rule,)), PATH)]
    assert len(errs) == len(expected), errs
    for got, want in zip(errs, expected, strict=True):
        assert got.startswith(want), got


@pytest.mark.parametrize(("rule", "root", "expected"), [
    ("self.replicas > 0 && self.name.startsWith('a')", False, None),
    ("self.nope > 0", False, "ERROR: <input>:1:5: undefined field 'nope'"),
    ("has(self.min) && self.tags.all(t, t.size() > 0)", False, None),
    ("self.ports.exists(p, p.port == 80) || has(self.minimum)", False,
     "ERROR: <input>:1:42: undefined field 'minimum'"),  # at has's `(`, as cel-go's
    ("self.name == 'self.nope'", False, None),
    ("self.replicas.nope == 1", False,
     "ERROR: <input>:1:14: type 'int' does not support field selection"),
    ("self.metadata.name == self.spec.name && self.kind == 'Widget'", True, None),
    ("self.metadata.labels.size() > 0", True, "ERROR: <input>:1:14: undefined field 'labels'"),
    ("self.oldSelf == 1", False, "ERROR: <input>:1:5: undefined field 'oldSelf'"),
])
def test_undefined_fields(rule: str, root: bool, expected: str | None) -> None:
    """cel-go's type check names the fields the schema does not declare (at the `.`)."""
    schema = _schema()
    target = schema if root else schema["properties"]["spec"]
    self_type = celtypes.schema_type(target, root=root)
    detail = rules.compile_error(rule, {"self": self_type, "oldSelf": self_type}, "bool")
    if expected is None:
        assert detail is None
    else:
        assert detail is not None and detail.splitlines()[0] == f"compilation failed: {expected}"


def test_schema_errors_block_the_rules_only_when_there_are_rules() -> None:
    """kube runs no rule once the schema found a type, required, enum or length error, and
    says so; a schema without rules adds nothing."""
    from tinykube.api.apiextensions import model, objects

    def row(schema: Obj) -> Any:
        return model.rows({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced", "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": schema}}]},
            "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"}}})[0]
    bad = {**_obj(), "metadata": {"name": "w", "namespace": "default"},
           "spec": {"replicas": "many"}}
    with_rules = [str(e) for e in objects.validate(row(_schema(spec_rules=(
        {"rule": "self.replicas > 0"},))), bad, None)]
    plain = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "replicas": {"type": "integer"}}}}}
    without = [str(e) for e in objects.validate(row(plain), bad, None)]
    assert with_rules == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: '
        '"string"', '<nil>: Invalid value: "null": some validation rules were not checked '
        "because the object was invalid; correct the existing errors to complete validation"]
    assert without == with_rules[:1]


@pytest.mark.parametrize(("old", "new", "expected"), [
    (None, {"min": 3, "replicas": 2, "tags": ["toolong"]},
     ['spec: Invalid value: "object": min above replicas',
      'spec.tags[0]: Invalid value: "string": tag too long']),
    ({"min": 3, "replicas": 2, "tags": ["toolong"]},  # unchanged: both ratcheted
     {"min": 3, "replicas": 2, "tags": ["toolong"]}, []),
    ({"min": 3, "replicas": 2, "tags": ["toolong"]},  # spec changed; tags did not
     {"min": 3, "replicas": 1, "tags": ["toolong"]},
     ['spec: Invalid value: "object": min above replicas']),
    ({"min": 1, "replicas": 2, "tags": ["ok"]},  # the list changed: its items are judged
     {"min": 1, "replicas": 2, "tags": ["toolong", "ok"]},
     ['spec.tags[0]: Invalid value: "string": tag too long']),
])
def test_ratcheting(old: Obj | None, new: Obj, expected: list[str]) -> None:
    """Failures on values an update leaves unchanged are dropped (transition rules aside)."""
    schema = _schema({"rule": "self.size() <= 3", "message": "tag too long"}, spec_rules=(
        {"rule": "self.min <= self.replicas", "message": "min above replicas"},))
    errs = rules.validate(schema, _obj(**new), _obj(**old) if old is not None else None)
    assert [str(e) for e in errs] == expected
