"""MutatingAdmissionPolicy's pure parts as tables: the construction rewrite, JSONPatch and
ApplyConfiguration mutations, matchConditions/variables/params, the write's validation, and
the feature-gate flags."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tinykube.api import admission_policy as vap
from tinykube.api import mutating_policy as mp
from tinykube.api import structured
from tinykube.api.cel import construction
from tinykube.apiserver import features

Obj = dict[str, Any]
RULES = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
          "resources": ["deployments"]}]
DEPLOYMENT = mp.Target("apps/v1", "Deployment", structured.builtin_shape("Deployment"))
CONFIGMAP = mp.Target("v1", "ConfigMap", structured.builtin_shape("ConfigMap"))


def _deployment(**meta: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", **meta},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "app", "image": "nginx",
                                         "args": ["a"]}]}}}}


def _attrs(obj: Obj) -> vap.Attributes:
    return vap.Attributes("CREATE", "apps", "v1", "deployments", "Deployment", True,
                          "default", obj["metadata"]["name"], obj, None,
                          {"username": "alice", "uid": "", "groups": ["devs"]})


def _policy(*mutations: Obj, **spec: Any) -> Obj:
    return {"metadata": {"name": "p"}, "spec": {
        "matchConstraints": {"resourceRules": RULES}, "reinvocationPolicy": "Never",
        "mutations": list(mutations), **spec}}


def _apply(expression: str) -> Obj:
    return {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}}


def _patch(expression: str) -> Obj:
    return {"patchType": "JSONPatch", "jsonPatch": {"expression": expression}}


@pytest.mark.parametrize(("source", "rewritten"), [
    ("Object{spec: Object.spec{replicas: 3}}", '{"spec": {"replicas": 3}}'),
    ('[JSONPatch{op: "add", path: "/a", value: "x{y: 1}, z"}]',
     '[{"op": "add", "path": "/a", "value": "x{y: 1}, z"}]'),
    ("Object{metadata: Object.metadata{labels: {'k': f(a, b)}}}",
     "{\"metadata\": {\"labels\": {'k': f(a, b)}}}"),
    ("x ? Object{} : Object{spec: Object.spec{}}", 'x ? {} : {"spec": {}}'),
    ("params.Object{a: 1}", "params.Object{a: 1}"),  # a field named Object: no construction
    *((text, text) for text in ("r'Object{a: 1}' + \"\"\"JSONPatch{op: 1}\"\"\"",)),
    ("Object{spec: Object.spec{c: [Object.spec.c{n: 'a,b'}]}} // Object{x: 1}",
     "{\"spec\": {\"c\": [{\"n\": 'a,b'}]}} // Object{x: 1}"),
])
def test_rewrite(source: str, rewritten: str) -> None:
    assert construction.rewrite(source).source == rewritten


@pytest.mark.parametrize(("source", "mismatches"), [
    ("Object{spec: Object.spec{replicas: 1}}", ()),
    ("Object{spec: Object.specx{replicas: 1}}", (
        'unexpected type name "Object.specx", expected "Object.spec", which matches field '
        "name path from root Object type",)),
    ("Object{spec: Object.spec{c: [Object.spec.d{}]}}", (
        'unexpected type name "Object.spec.d", expected "Object.spec.c", which matches field '
        "name path from root Object type",)),
    ('JSONPatch{op: "add", value: Object.spec{x: Object.spec.x{}}}', ()),
])
def test_type_names(source: str, mismatches: tuple[str, ...]) -> None:
    assert construction.rewrite(source).mismatches == mismatches


def _mutated(*mutations: Obj, obj: Obj | None = None, target: mp.Target = DEPLOYMENT,
             **spec: Any) -> mp.Outcome:
    obj = obj if obj is not None else _deployment()
    return mp.mutate(_policy(*mutations, **spec), _attrs(obj), None, None, target)


def test_apply_configuration_merges_as_server_side_apply() -> None:
    out = _mutated(_apply(
        "Object{metadata: Object.metadata{labels: {'team': 'blue'}}, spec: Object.spec{"
        "replicas: object.spec.replicas + 2, template: Object.spec.template{spec: "
        "Object.spec.template.spec{containers: [Object.spec.template.spec.containers{"
        "name: 'app', image: 'nginx:1.27'}, Object.spec.template.spec.containers{"
        "name: 'sidecar', image: 'busybox'}]}}}}"))
    assert out.errors == []
    assert out.obj is not None
    assert out.obj["metadata"]["labels"] == {"team": "blue"}
    assert out.obj["spec"]["replicas"] == 3
    assert out.obj["spec"]["template"]["spec"]["containers"] == [  # merged by name
        {"name": "app", "image": "nginx:1.27", "args": ["a"]},
        {"name": "sidecar", "image": "busybox"}]


@pytest.mark.parametrize(("expression", "error"), [
    ("Object{spec: Object.specx{replicas: 1}}",
     'type mismatch: unexpected type name "Object.specx", expected "Object.spec", which '
     "matches field name path from root Object type"),
    ("Object{spec: Object.spec{replicasx: 1}}",
     "error applying patch: failed to convert patch object to typed object: "
     ".spec.replicasx: field not declared in schema"),
    ("Object{spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{"
     "containers: [Object.spec.template.spec.containers{name: 'app', args: ['b']}]}}}}",
     "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, maps or "
     "structs: .spec.template.spec.containers[0].args"),
    ("Object{spec: Object.spec{selector: Object.spec.selector{matchLabels: {'a': 'b'}}}}",
     "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, maps or "
     "structs: .spec.selector"),
    ("[1]", "unsupported return type from ApplyConfiguration expression: list"),
    ("Object{spec: Object.spec{replicas: object.spec.nope}}",
     "expression 'Object{spec: Object.spec{replicas: object.spec.nope}}' resulted in error: "
     "no such key: nope"),
])
def test_apply_configuration_errors(expression: str, error: str) -> None:
    out = _mutated(_apply(expression))
    assert out.errors == [error]
    assert out.obj == _deployment()  # a failed mutation leaves the object as it was


@pytest.mark.parametrize(("expression", "annotations", "error"), [
    ('[JSONPatch{op: "add", path: "/metadata/annotations", value: {}}, JSONPatch{op: "add", '
     'path: "/metadata/annotations/" + jsonpatch.escapeKey("example.com/by"), value: "mp"}]',
     {"example.com/by": "mp"}, None),
    ('[JSONPatch{op: "test", path: "/spec/replicas", value: 2}, JSONPatch{op: "add", path: '
     '"/metadata/annotations", value: {"x": "y"}}]', None, None),  # failed test: no change
    ('[JSONPatch{op: "replace", path: "/metadata/annotations/x", value: "y"}]', None,
     "JSONPath: replace operation does not apply: doc is missing key: "
     "/metadata/annotations/x: missing value"),
    ('JSONPatch{op: "add", path: "/a", value: 1}', None,
     "type mismatch: JSONPatchType.expression should evaluate to array"),
])
def test_json_patch(expression: str, annotations: Obj | None, error: str | None) -> None:
    out = _mutated(_patch(expression))
    assert out.errors == ([error] if error else [])
    assert out.obj is not None
    assert out.obj["metadata"].get("annotations") == annotations


def test_mutations_run_in_order_and_a_failure_does_not_stop_the_next() -> None:
    out = _mutated(
        _patch('[JSONPatch{op: "remove", path: "/metadata/nothing"}]'),
        _apply("Object{spec: Object.spec{replicas: object.spec.replicas * 10}}"),
        _patch('[JSONPatch{op: "replace", path: "/spec/replicas", '
               'value: object.spec.replicas + 1}]'))
    assert out.errors == ["JSONPath: error in remove for path: '/metadata/nothing': Unable to "
                          "remove nonexistent key: nothing: missing value"]
    assert out.obj is not None and out.obj["spec"]["replicas"] == 11


@pytest.mark.parametrize(("spec", "param", "replicas"), [
    ({"matchConditions": [{"name": "big", "expression": "object.spec.replicas > 5"}]}, None,
     None),  # a false condition: the policy does not apply
    ({"matchConditions": [{"name": "small", "expression": "object.spec.replicas < 5"}]}, None,
     7),
    ({"variables": [{"name": "base", "expression": "object.spec.replicas + 1"},
                    {"name": "twice", "expression": "variables.base * 2"}]}, None, 4),
    ({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}},
     {"metadata": {"name": "c"}, "data": {"replicas": "9"}}, 9),
])
def test_conditions_variables_and_params(spec: Obj, param: Obj | None,
                                         replicas: int | None) -> None:
    expression = "int(params.data.replicas)" if param else \
        "variables.twice" if "variables" in spec else "7"
    policy = _policy(_apply(f"Object{{spec: Object.spec{{replicas: {expression}}}}}"), **spec)
    out = mp.mutate(policy, _attrs(_deployment()), param, None, DEPLOYMENT)
    assert (out.obj["spec"]["replicas"] if out.obj is not None else None) == replicas


@pytest.mark.parametrize(("user", "replicas"), [("alice", 7), ("bob", None)])
def test_the_authorizer_in_conditions_and_mutations(user: str, replicas: int | None) -> None:
    """`authorizer` asks the callable the attributes carry, for the request's user."""
    def authorize(attrs: Obj) -> tuple[str, str]:
        allowed = (attrs["user"], attrs["verb"], attrs["resource"]) == ("alice", "scale",
                                                                        "deployments")
        return ("Allow" if allowed else "NoOpinion"), "by table"
    policy = _policy(_apply("Object{metadata: Object.metadata{annotations: "
                            "{'why': authorizer.requestResource.check('scale').reason()}}, "
                            "spec: Object.spec{replicas: 7}}"), matchConditions=[
        {"name": "may-scale", "expression": "authorizer.group('apps').resource('deployments')"
                                            ".namespace('default').check('scale').allowed()"}])
    attrs = dataclasses.replace(_attrs(_deployment()), user={"username": user, "groups": []},
                                authorize=authorize)
    out = mp.mutate(policy, attrs, None, None, DEPLOYMENT)
    assert (out.obj["spec"]["replicas"] if out.obj is not None else None) == replicas
    if out.obj is not None:
        assert out.obj["metadata"]["annotations"] == {"why": "by table"}


def test_a_condition_that_fails_is_a_policy_error() -> None:
    with pytest.raises(mp.PolicyError, match="resulted in error"):
        _mutated(_apply("Object{}"), matchConditions=[
            {"name": "x", "expression": "object.spec.nope == 1"}])


VALID = {"metadata": {"name": "p"}, "spec": {
    "failurePolicy": "Fail", "reinvocationPolicy": "Never",
    "matchConstraints": {"resourceRules": RULES},
    "mutations": [_apply("Object{spec: Object.spec{replicas: 1}}")]}}


def _with(**spec: Any) -> Obj:
    return {**VALID, "spec": {**VALID["spec"], **spec}}


@pytest.mark.parametrize(("policy", "expected"), [
    (VALID, []),
    (_with(failurePolicy="Sometimes"),
     ['spec.failurePolicy: Unsupported value: "Sometimes": supported values: "Fail", '
      '"Ignore"']),
    (_with(reinvocationPolicy=None), ["spec.reinvocationPolicy: Required value"]),
    (_with(reinvocationPolicy="Always"),
     ['spec.reinvocationPolicy: Unsupported value: "Always": supported values: "IfNeeded", '
      '"Never"']),
    (_with(mutations=[]), ["spec.mutations: Required value: mutations must contain at least "
                           "one item"]),
    (_with(mutations=[{"patchType": "Merge"}]),
     ['spec.mutations[0].patchType: Unsupported value: "Merge": supported values: '
      '"ApplyConfiguration", "JSONPatch"']),
    (_with(mutations=[{"patchType": "JSONPatch"}]),
     ["spec.mutations[0].jsonPatch: Required value: must be specified when patchType is "
      "JSONPatch"]),
    (_with(mutations=[{**_apply("Object{}"), "jsonPatch": {"expression": "[]"}}]),
     ['spec.mutations[0].jsonPatch: Invalid value: "{jsonPatch}": must not be specified when '
      "patchType is ApplyConfiguration"]),
    (_with(mutations=[_patch("[JSONPatch{op: 'add', path: nope}]")]),
     ["spec.mutations[0].jsonPatch.expression: Invalid value: \"[JSONPatch{op: 'add', path: "
      "nope}]\": compilation failed: ERROR: <input>:1:29: undeclared reference to 'nope' (in "
      "container '')"]),
    # type errors with every variable dyn, located in the expression as written
    (_with(mutations=[_apply("Object{spec: Object.spec{replicas: object.spec.replicas + 1}}"),
                      _patch("[JSONPatch{op: 'add', path: '/metadata/labels/' + "
                             "jsonpatch.escapeKey('a/b'), value: 'x'}]")],
           matchConditions=[{"name": "a", "expression": "object.metadata.name != ''"}],
           variables=[{"name": "v", "expression": "object.spec.replicas"}]), []),
    (_with(mutations=[_apply("Object{spec: Object.spec{replicas: 1 + 'a'}}")]),
     ["spec.mutations[0].applyConfiguration.expression: Invalid value: \"Object{spec: "
      "Object.spec{replicas: 1 + 'a'}}\": compilation failed: ERROR: <input>:1:38: found no "
      "matching overload for '_+_' applied to '(int, string)'\n"
      " | Object{spec: Object.spec{replicas: 1 + 'a'}}\n"
      " | .....................................^"]),
    (_with(mutations=[_patch("[JSONPatch{op: 'add', path: '/spec/x', value: 'a'.size(1)}]")]),
     ["spec.mutations[0].jsonPatch.expression: Invalid value: \"[JSONPatch{op: 'add', path: "
      "'/spec/x', value: 'a'.size(1)}]\": compilation failed: ERROR: <input>:1:55: found no "
      "matching overload for 'size' applied to 'string.(int)'\n"
      " | [JSONPatch{op: 'add', path: '/spec/x', value: 'a'.size(1)}]\n"
      " | " + "." * 54 + "^"]),
    (_with(matchConditions=[{"name": "a", "expression": "object.metadata.name.startsWith(1)"}],
           variables=[{"name": "v", "expression": "[1, 'a']"}]),
     ['spec.matchConditions[0].expression: Invalid value: "object.metadata.name.startsWith(1)'
      "\": compilation failed: ERROR: <input>:1:32: found no matching overload for "
      "'startsWith' applied to 'dyn.(int)'\n"
      " | object.metadata.name.startsWith(1)\n"
      " | ...............................^",
      "spec.variables[0].expression: Invalid value: \"[1, 'a']\": compilation failed: ERROR: "
      "<input>:1:5: expected type 'int' but found 'string'\n"
      " | [1, 'a']\n"
      " | ....^"]),
    (_with(matchConstraints={"resourceRules": [{**RULES[0], "operations": ["DELETE"]}]}),
     ['spec.matchConstraints.resourceRules.operations: Unsupported value: "DELETE": supported '
      'values: "*", "CONNECT", "CREATE", "UPDATE"']),
    (_with(matchConstraints=None), ["spec.matchConstraints: Required value"]),
])
def test_spec_errors(policy: Obj, expected: list[str]) -> None:
    assert [str(e) for e in mp.spec_errors(policy)] == expected


@pytest.mark.parametrize(("gates", "config", "served", "error"), [
    ("", "", False, None),
    ("MutatingAdmissionPolicy=true", "", False, None),
    ("MutatingAdmissionPolicy=true", "admissionregistration.k8s.io/v1alpha1=true", True, None),
    ("MutatingAdmissionPolicy=true", "admissionregistration.k8s.io/v1alpha1", True, None),
    ("MutatingAdmissionPolicy=True", "api/all=true", True, None),
    ("MutatingAdmissionPolicy=false", "admissionregistration.k8s.io/v1alpha1=true", False,
     None),
    ("Bogus=true", "", False, "unrecognized feature gate: Bogus"),
    ("MutatingAdmissionPolicy=yes", "", False,
     'invalid value of MutatingAdmissionPolicy=yes, err: strconv.ParseBool: parsing "yes": '
     "invalid syntax"),
    ("MutatingAdmissionPolicy", "", False, "missing bool value for MutatingAdmissionPolicy"),
    ("", "nothing.example.com/v1=true", False, "unknown api groups nothing.example.com/v1"),
])
def test_feature_flags(gates: str, config: str, served: bool, error: str | None) -> None:
    try:
        found = features.Features(features.parse_feature_gates(gates),
                                  features.parse_runtime_config(config, frozenset({"v1"})))
    except features.FlagError as exc:
        assert str(exc) == error
        return
    assert error is None and found.mutating_policies is served
