"""ValidatingAdmissionPolicy decisions (api/admission_policy.py) as tables."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import admission_policy as vap

Obj = dict[str, Any]
RULES = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
          "resources": ["deployments"]}]


def _attrs(obj: Obj | None = None, *, operation: str = "CREATE", resource: str = "deployments",
           group: str = "apps", namespace: str = "default", old: Obj | None = None,
           subresource: str = "") -> vap.Attributes:
    obj = obj if obj is not None else {"metadata": {"name": "web", "labels": {"app": "web"}},
                                       "spec": {"replicas": 3}}
    return vap.Attributes(operation, group, "v1", resource, "Deployment", True, namespace,
                          obj["metadata"]["name"], obj, old,
                          {"username": "alice", "uid": "", "groups": ["devs"]},
                          subresource=subresource)


def _policy(validations: list[Obj], **spec: Any) -> Obj:
    return {"metadata": {"name": "p"}, "spec": {"matchConstraints": {"resourceRules": RULES},
                                                "validations": validations, **spec}}


BINDING = {"metadata": {"name": "b"}, "spec": {"policyName": "p",
                                               "validationActions": ["Deny"]}}


@pytest.mark.parametrize(("constraints", "attrs", "namespace", "expected"), [
    ({"resourceRules": RULES}, _attrs(), None, True),
    ({"resourceRules": RULES}, _attrs(operation="DELETE"), None, False),
    ({"resourceRules": RULES}, _attrs(resource="replicasets"), None, False),
    ({"resourceRules": RULES}, _attrs(subresource="scale"), None, False),
    ({"resourceRules": [{**RULES[0], "resources": ["deployments/*"]}]},
     _attrs(subresource="scale"), None, True),
    ({"resourceRules": [{**RULES[0], "apiGroups": ["*"], "resources": ["*"]}]},
     _attrs(resource="pods", group=""), None, True),
    ({"resourceRules": RULES, "excludeResourceRules": [{**RULES[0], "resourceNames": ["web"]}]},
     _attrs(), None, False),
    ({"resourceRules": [{**RULES[0], "scope": "Cluster"}]}, _attrs(), None, False),
    ({"resourceRules": RULES, "namespaceSelector": {"matchLabels": {"env": "prod"}}},
     _attrs(), {"metadata": {"labels": {"env": "prod"}}}, True),
    ({"resourceRules": RULES, "namespaceSelector": {"matchLabels": {"env": "prod"}}},
     _attrs(), {"metadata": {"labels": {"env": "dev"}}}, False),
    ({"resourceRules": RULES, "objectSelector": {"matchLabels": {"app": "web"}}},
     _attrs(), None, True),
    ({"resourceRules": RULES, "objectSelector": {"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["web"]}]}}, _attrs(), None, False),
])
def test_matches(constraints: Obj, attrs: vap.Attributes, namespace: Obj | None,
                 expected: bool) -> None:
    assert vap.matches(constraints, attrs, namespace) is expected


def _messages(policy: Obj, attrs: vap.Attributes, *, binding: Obj = BINDING,
              params: list[Obj | None] | None = None) -> list[tuple[str, str, str]]:
    return [(d.action, d.message, d.reason) for d in
            vap.evaluate(policy, binding, attrs, [None] if params is None else params,
                         None).decisions]


DENY5 = {"expression": "object.spec.replicas <= 5"}


@pytest.mark.parametrize(("policy", "replicas", "expected"), [
    (_policy([DENY5]), 3, []),
    (_policy([DENY5]), 7, [("Deny", "failed expression: object.spec.replicas <= 5",
                            "Invalid")]),
    (_policy([{**DENY5, "message": "too many", "reason": "Forbidden"}]), 7,
     [("Deny", "too many", "Forbidden")]),
    (_policy([{**DENY5, "messageExpression": "'replicas ' + string(object.spec.replicas)"}]),
     7, [("Deny", "replicas 7", "Invalid")]),
    (_policy([{**DENY5, "messageExpression": "''", "message": "fallback"}]), 7,
     [("Deny", "fallback", "Invalid")]),
    (_policy([{"expression": "object.spec.replicas <= variables.limit"}],
             variables=[{"name": "limit", "expression": "2 + 3"}]), 6,
     [("Deny", "failed expression: object.spec.replicas <= variables.limit", "Invalid")]),
    (_policy([DENY5], matchConditions=[{"name": "not-alice",
                                        "expression": "request.userInfo.username != 'alice'"}]),
     7, []),
    (_policy([{"expression": "object.spec.missing > 1"}]), 7,
     [("Deny", "expression 'object.spec.missing > 1' resulted in error: no such key: missing",
       "Invalid")]),
    (_policy([{"expression": "object.spec.missing > 1"}], failurePolicy="Ignore"), 7, []),
    (_policy([{"expression": "request.operation == 'CREATE' && oldObject == null"}]), 7, []),
])
def test_evaluate(policy: Obj, replicas: int, expected: list[tuple[str, str, str]]) -> None:
    obj = {"metadata": {"name": "web"}, "spec": {"replicas": replicas}}
    assert _messages(policy, _attrs(obj)) == expected


def test_params_and_actions() -> None:
    policy = _policy([{"expression": "object.spec.replicas <= params.max",
                       "messageExpression": "'at most ' + string(params.max)"}],
                     paramKind={"apiVersion": "v1", "kind": "ConfigMap"})
    binding = {"metadata": {"name": "b"}, "spec": {"policyName": "p",
                                                   "validationActions": ["Warn", "Audit"]}}
    obj = {"metadata": {"name": "web"}, "spec": {"replicas": 4}}
    got = _messages(policy, _attrs(obj), binding=binding, params=[{"max": 5}, {"max": 3}])
    assert got == [("Warn", "at most 3", "Invalid"), ("Audit", "at most 3", "Invalid")]
    missing = vap.evaluate(policy, binding, _attrs(obj), None, None).decisions
    assert [(d.action, d.message) for d in missing] == [(
        "Deny", "failed to configure binding: no params found for policy binding with `Deny` "
                "parameterNotFoundAction")]  # kube's addConfigError: Deny, not Warn or Audit
    ignored = {**policy, "spec": {**policy["spec"], "failurePolicy": "Ignore"}}
    assert vap.evaluate(ignored, binding, _attrs(obj), None, None).decisions == []
    decision = vap.Decision("Warn", "p", "b", "at most 3")
    assert decision.warning == ("Validation failed for ValidatingAdmissionPolicy 'p' with "
                                "binding 'b': at most 3")
    assert decision.text == ("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: "
                             "at most 3")


def test_each_validation_is_judged_alone_with_its_index() -> None:
    policy = _policy([DENY5, {"expression": "object.spec.missing > 1"},
                      {"expression": "object.spec.replicas < 3", "message": "under 3"}])
    obj = {"metadata": {"name": "web"}, "spec": {"replicas": 7}}
    got = vap.evaluate(policy, BINDING, _attrs(obj), [None], None).decisions
    assert [(d.index, d.message) for d in got] == [
        (0, "failed expression: object.spec.replicas <= 5"),
        (1, "expression 'object.spec.missing > 1' resulted in error: no such key: missing"),
        (2, "under 3")]
    ignored = vap.evaluate({**policy, "spec": {**policy["spec"], "failurePolicy": "Ignore"}},
                           BINDING, _attrs(obj), [None], None).decisions
    assert [(d.index, d.message) for d in ignored] == [
        (0, "failed expression: object.spec.replicas <= 5"), (2, "under 3")]


AUDIT_ANNOTATIONS: dict[str, tuple[list[Obj], str, list[tuple[str, str]], list[str]]] = {
    "a string is published, trimmed": (
        [{"key": "count", "valueExpression": "' ' + string(object.spec.replicas) + ' '"}],
        "Fail", [("count", "7")], []),
    "null and empty strings are not": (
        [{"key": "a", "valueExpression": "null"}, {"key": "b", "valueExpression": "'  '"}],
        "Fail", [], []),
    "another type is an error, a Deny whatever the actions": (
        [{"key": "n", "valueExpression": "object.spec.replicas"}], "Fail", [],
        ["valueExpression 'object.spec.replicas' resulted in unsupported return type: int. "
         "Return type must be either string or null."]),
    "a runtime error denies under Fail": (
        [{"key": "x", "valueExpression": "object.spec.missing"}], "Fail", [],
        ["expression 'object.spec.missing' resulted in error: no such key: missing"]),
    "and is left out under Ignore": (
        [{"key": "x", "valueExpression": "object.spec.missing"},
         {"key": "y", "valueExpression": "'kept'"}], "Ignore", [("y", "kept")], []),
}


@pytest.mark.parametrize("case", AUDIT_ANNOTATIONS, ids=list(AUDIT_ANNOTATIONS))
def test_audit_annotations(case: str) -> None:
    annotations, failure_policy, published, denials = AUDIT_ANNOTATIONS[case]
    policy = _policy([], auditAnnotations=annotations, failurePolicy=failure_policy)
    binding = {"metadata": {"name": "b"}, "spec": {"policyName": "p",
                                                   "validationActions": ["Audit"]}}
    obj = {"metadata": {"name": "web"}, "spec": {"replicas": 7}}
    outcome = vap.evaluate(policy, binding, _attrs(obj), [None], None)
    assert outcome.annotations == published
    assert [(d.action, d.message) for d in outcome.decisions] == [("Deny", m) for m in denials]


def test_a_long_audit_annotation_is_cut_at_10_kib() -> None:
    policy = _policy([], auditAnnotations=[{"key": "k",
                                            "valueExpression": "object.metadata.name"}])
    obj = {"metadata": {"name": "é" * 6000}, "spec": {}}
    [(key, value)] = vap.evaluate(policy, BINDING, _attrs(obj), [None], None).annotations
    assert key == "k" and value == "é" * 5120 and len(value.encode()) == 10 * 1024


@pytest.mark.parametrize(("spec", "expected"), [
    ({"validations": [DENY5]}, []),
    ({"validations": [{"expression": "object.spec.replicas <="}]},
     ["spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": "
      "compilation failed: ERROR: <input>:1:"]),
    ({"validations": [{"expression": "self.x"}]},
     ["spec.validations[0].expression: Invalid value: \"self.x\": compilation failed: "
      "ERROR: <input>:1:1: undeclared reference to 'self' (in container '')"]),
    ({"validations": [{"expression": "object.metadata.name.startsWith(1)"}]},
     ['spec.validations[0].expression: Invalid value: "object.metadata.name.startsWith(1)": '
      "compilation failed: ERROR: <input>:1:32: found no matching overload for 'startsWith' "
      "applied to 'dyn.(int)'\n | object.metadata.name.startsWith(1)\n"
      " | ...............................^"]),
    ({"validations": [{**DENY5, "messageExpression": "'at most ' + 5"}]},
     ['spec.validations[0].messageExpression: Invalid value: "\'at most \' + 5": '
      "messageExpression compilation failed: ERROR: <input>:1:12: found no matching overload "
      "for '_+_' applied to '(string, int)'"]),
    ({"validations": [{**DENY5, "reason": "Teapot"}]},
     ['spec.validations[0].reason: Unsupported value: "Teapot": supported values: '
      '"Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"']),
    ({}, ["spec.validations: Required value: validations or auditAnnotations must contain at "
          "least one item"]),
])
def test_spec_errors(spec: Obj, expected: list[str]) -> None:
    errs = [str(e) for e in vap.spec_errors({"spec": spec})]
    assert len(errs) == len(expected)
    for got, want in zip(errs, expected, strict=True):
        assert got.startswith(want), got
