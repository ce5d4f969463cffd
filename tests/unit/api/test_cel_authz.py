"""kube's authorizer library (`api.cel.authz`) through the engine, with a fake authorizer
callable that records the attributes each `check` asks about: the function chain, the
Decision's methods, an authorizer's error, and what policies accept at write."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import admission_policy as vap
from tinykube.api.cel import authz, engine

Obj = dict[str, Any]
ALICE = {"username": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"]}
OWN = {"apiGroup": "apps", "resource": "deployments", "subresource": "scale",
       "namespace": "prod", "name": "web"}
ALICE_ID = {"user": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"]}
RESOURCE = {"resourceRequest": True, "apiVersion": "*", "apiGroup": "", "resource": "",
            "subresource": "", "namespace": "", "name": "", "fieldSelector": "",
            "labelSelector": ""}


class Recorder:
    """Allows what `allow` lists (as (user, verb, resource or path)), records every ask."""

    def __init__(self, *allow: tuple[str, str, str], error: str = "") -> None:
        self.allow, self.error, self.asked = set(allow), error, list[Obj]()

    def __call__(self, attrs: Obj) -> tuple[str, str]:
        self.asked.append(attrs)
        if self.error:
            raise RuntimeError(self.error)
        what = attrs.get("resource") or attrs.get("path", "")
        if (attrs["user"], attrs["verb"], what) in self.allow:
            return "Allow", f"allowed {what}"
        return "NoOpinion", "no rule"


def run(expression: str, authorize: authz.Authorize | None) -> Any:
    program = engine.compile_expression(expression, vap.VARIABLES)
    return engine.evaluate(program, {"authorizer": authz.variable(ALICE, OWN)},
                           authorizer=authorize)


SA = {"user": "system:serviceaccount:ns:bot", "uid": "",
      "groups": ["system:serviceaccounts", "system:serviceaccounts:ns"]}
CHAINS: list[tuple[str, Any, Obj]] = [
    ("authorizer.group('').resource('secrets').namespace('ns').check('list').allowed()", True,
     {**ALICE_ID, **RESOURCE, "verb": "list", "resource": "secrets", "namespace": "ns"}),
    ("authorizer.group('apps').resource('deployments').subresource('scale').namespace('ns')"
     ".name('web').check('update').allowed()", False,
     {**ALICE_ID, **RESOURCE, "verb": "update", "apiGroup": "apps",
      "resource": "deployments", "subresource": "scale", "namespace": "ns", "name": "web"}),
    ("authorizer.group('').resource('secrets').check('list').reason()", "allowed secrets",
     {**ALICE_ID, **RESOURCE, "verb": "list", "resource": "secrets"}),
    ("authorizer.group('').resource('pods').check('get').reason()", "no rule",
     {**ALICE_ID, **RESOURCE, "verb": "get", "resource": "pods"}),
    ("authorizer.path('/healthz').check('get').allowed()", True,
     {**ALICE_ID, "path": "/healthz", "verb": "get", "resourceRequest": False}),
    ("authorizer.serviceAccount('ns', 'bot').group('').resource('secrets').check('list')"
     ".allowed()", False,
     {**SA, **RESOURCE, "verb": "list", "resource": "secrets"}),
    ("authorizer.requestResource.check('update').allowed()", False,
     {**ALICE_ID, **RESOURCE, "verb": "update", **OWN}),
    ("authorizer.group('').resource('secrets').check('list').errored()", False,
     {**ALICE_ID, **RESOURCE, "verb": "list", "resource": "secrets"}),
    ("authorizer.group('').resource('secrets').check('list').error()", "",
     {**ALICE_ID, **RESOURCE, "verb": "list", "resource": "secrets"}),
]


@pytest.mark.parametrize(("expression", "result", "asked"), CHAINS,
                         ids=[c[0] for c in CHAINS])
def test_chain_asks_the_bound_authorizer(expression: str, result: Any, asked: Obj) -> None:
    recorder = Recorder(("alice", "list", "secrets"), ("alice", "get", "/healthz"))
    assert run(expression, recorder) == result
    assert recorder.asked == [asked]


@pytest.mark.parametrize(("method", "result"), [
    ("allowed()", False), ("errored()", True), ("error()", "webhook authorizer down"),
    ("reason()", ""),
])
def test_an_authorizers_error_is_the_decisions(method: str, result: Any) -> None:
    recorder = Recorder(("alice", "list", "secrets"), error="webhook authorizer down")
    assert run(f"authorizer.group('').resource('secrets').check('list').{method}",
               recorder) == result


@pytest.mark.parametrize(("decision", "allowed"), [("Allow", True), ("Deny", False),
                                                   ("NoOpinion", False)])
def test_allowed_only_for_allow(decision: str, allowed: bool) -> None:
    assert run("authorizer.path('/x').check('get').allowed()",
               lambda _attrs: (decision, "")) is allowed


@pytest.mark.parametrize(("expression", "text"), [
    ("authorizer.path('/x').check('get').allowed()",
     "no authorizer is available to this evaluation"),
    ("authorizer.resource('pods')", "no such overload: resource"),
    ("authorizer.group('').check('get')", "no such overload: check"),
    ("authorizer.group('').resource('pods').allowed()", "no such overload: allowed"),
])
def test_refusals(expression: str, text: str) -> None:
    with pytest.raises(engine.EvalError) as caught:
        run(expression, None)
    assert text in str(caught.value)


def test_a_policy_using_the_authorizer_is_accepted_and_evaluated() -> None:
    spec = {"validations": [{"expression": "authorizer.group('').resource('secrets')"
                                           ".namespace(object.metadata.namespace)"
                                           ".check('list').allowed()"}],
            "matchConditions": [{"name": "own",
                                 "expression": "authorizer.requestResource.check('create')"
                                               ".allowed()"}]}
    assert vap.spec_errors({"spec": spec}) == []
    policy = {"metadata": {"name": "p"}, "spec": spec}
    binding = {"metadata": {"name": "b"}, "spec": {"validationActions": ["Deny"]}}
    obj = {"metadata": {"name": "c", "namespace": "ns"}}

    def attrs(user: str) -> vap.Attributes:
        return vap.Attributes("CREATE", "", "v1", "configmaps", "ConfigMap", True, "ns", "c",
                              obj, None, {"username": user, "groups": []},
                              authorize=Recorder(("admin", "list", "secrets"),
                                                 ("admin", "create", "configmaps"),
                                                 ("app", "create", "configmaps")))
    assert vap.evaluate(policy, binding, attrs("admin"), [None], None).decisions == []
    denied = vap.evaluate(policy, binding, attrs("app"), [None], None).decisions
    assert [d.message for d in denied] == [
        "failed expression: authorizer.group('').resource('secrets')"
        ".namespace(object.metadata.namespace).check('list').allowed()"]


def test_the_functions_are_declared_only_with_the_authorizer() -> None:
    """A CRD rule (no `authorizer` variable) calling `check` is refused at compile, as kube's
    CRD environment, which lacks the library, refuses it."""
    with pytest.raises(engine.CompileError) as caught:
        engine.compile_expression("self.check('get')", frozenset({"self"}))
    assert "undeclared reference to 'check'" in str(caught.value)
