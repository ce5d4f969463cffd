"""Admission webhook decisions as tables: rule matching (upstream's rules.Matcher cases),
selectors, configuration defaults, the answers' checks and the refusal's Status."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tinykube.api import defaults, validation
from tinykube.api import webhooks as wh

POD = wh.Attributes("CREATE", "", "v1", "pods", "", "Pod", "default", "p", {}, None)
POD_STATUS = wh.Attributes("UPDATE", "", "v1", "pods", "status", "Pod", "default", "p", {}, {})
DEPLOY = wh.Attributes("CREATE", "apps", "v1", "deployments", "", "Deployment", "ns", "d", {},
                       None)
NODE = wh.Attributes("CREATE", "", "v1", "nodes", "", "Node", "", "n", {}, None)
NAMESPACE = wh.Attributes("CREATE", "", "v1", "namespaces", "", "Namespace", "ns1", "ns1", {},
                          None)


def rule(ops: Any = ("*",), groups: Any = ("*",), versions: Any = ("*",),
         res: Any = ("*",), scope: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"operations": list(ops), "apiGroups": list(groups),
                           "apiVersions": list(versions), "resources": list(res)}
    if scope is not None:
        out["scope"] = scope
    return out


RULES = [
    # (rule, request, matches)
    (rule(), POD, True),
    (rule(ops=["UPDATE"]), POD, False),
    (rule(ops=["CREATE", "UPDATE"]), POD, True),
    (rule(groups=["apps"]), POD, False),
    (rule(groups=[""]), POD, True),
    (rule(groups=["apps"], versions=["v1beta1"]), DEPLOY, False),
    (rule(groups=["apps"], versions=["v1"], res=["deployments"]), DEPLOY, True),
    (rule(res=["pods"]), POD, True),
    (rule(res=["pods"]), POD_STATUS, False),  # a subresource must be named
    (rule(res=["*"]), POD_STATUS, False),  # `*` is every resource, no subresource
    (rule(res=["*/*"]), POD_STATUS, True),
    (rule(res=["pods/*"]), POD_STATUS, True),
    (rule(res=["*/status"]), POD_STATUS, True),
    (rule(res=["pods/status"]), POD_STATUS, True),
    (rule(res=["pods/status"]), POD, False),
    (rule(res=["pods/log"]), POD_STATUS, False),
    (rule(res=["services"]), POD, False),
    (rule(scope="*"), NODE, True),
    (rule(scope="Cluster"), NODE, True),
    (rule(scope="Namespaced"), NODE, False),
    (rule(scope="Namespaced"), POD, True),
    (rule(scope="Cluster"), POD, False),
    (rule(scope="Cluster"), NAMESPACE, True),  # a Namespace is cluster-scoped
    (rule(scope="Namespaced"), NAMESPACE, False),
    (rule(ops=[]), POD, False),
]


@pytest.mark.parametrize(("rule_", "attrs", "expected"), RULES)
def test_rule_matches(rule_: dict[str, Any], attrs: wh.Attributes, expected: bool) -> None:
    assert wh.rule_matches(rule_, attrs) is expected


SELECTORS = [
    ({}, {}, True),
    ({"matchLabels": {}}, {"a": "1"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": "x"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
     {"env": "dev"}, False),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SELECTORS)
def test_selector_matches(selector: dict[str, Any], labels: dict[str, str],
                          expected: bool) -> None:
    assert wh.selector_matches(selector, labels) is expected


def _hook(**webhook: Any) -> wh.Hook:
    config = {"metadata": {"name": "c"}, "webhooks": [{"name": "h.example.com", **webhook}]}
    return wh.hooks_of(config, mutating=True)[0]


def _labelled(labels: dict[str, str] | None) -> dict[str, Any] | None:
    return None if labels is None else {"metadata": {"labels": labels}}


OBJECT_SELECTION = [
    # (objectSelector, new labels, old labels, selected)
    ({}, {}, None, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1"}, None, True),
    ({"matchLabels": {"a": "1"}}, {}, None, False),
    ({"matchLabels": {"a": "1"}}, {}, {"a": "1"}, True),  # the old object's labels count
    ({"matchLabels": {"a": "1"}}, None, {"a": "1"}, True),  # a DELETE
    ({"matchLabels": {"a": "1"}}, None, {"a": "2"}, False),
]


@pytest.mark.parametrize(("selector", "new", "old", "expected"), OBJECT_SELECTION)
def test_object_selector(selector: dict[str, Any], new: dict[str, str] | None,
                         old: dict[str, str] | None, expected: bool) -> None:
    attrs = wh.Attributes("UPDATE", "", "v1", "configmaps", "", "ConfigMap", "ns", "x",
                          _labelled(new), _labelled(old))
    assert wh.object_selected(_hook(objectSelector=selector), attrs) is expected


NAMESPACE_SELECTION = [
    # (namespaceSelector, request, namespace labels, selected)
    ({"matchLabels": {"team": "a"}}, POD, {"team": "a"}, True),
    ({"matchLabels": {"team": "a"}}, POD, {"team": "b"}, False),
    ({"matchLabels": {"team": "a"}}, NODE, {}, True),  # cluster-scoped: always
    ({"matchLabels": {"team": "a"}},  # a Namespace: by its own labels
     wh.Attributes("CREATE", "", "v1", "namespaces", "", "Namespace", "ns1", "ns1",
                   {"metadata": {"labels": {"team": "a"}}}, None), {}, True),
    ({"matchLabels": {"team": "a"}}, NAMESPACE, {"team": "a"}, False),
]


@pytest.mark.parametrize(("selector", "attrs", "labels", "expected"), NAMESPACE_SELECTION)
def test_namespace_selector(selector: dict[str, Any], attrs: wh.Attributes,
                            labels: dict[str, str], expected: bool) -> None:
    assert wh.namespace_selected(_hook(namespaceSelector=selector), attrs, labels) is expected


def test_hooks_defaults_and_bounded_timeout() -> None:
    hook = _hook(timeoutSeconds=300, admissionReviewVersions=["v1beta1", "v1"])
    assert (hook.failure_policy, hook.match_policy, hook.timeout, hook.reinvocation,
            hook.review_version) == ("Fail", "Equivalent", 30, "Never", "v1beta1")
    assert _hook().timeout == 10
    assert _hook(admissionReviewVersions=["v2"]).review_version is None


def test_configuration_defaults_as_kube_stores_them() -> None:
    config = {"webhooks": [{"name": "a.b.c", "clientConfig": {"service": {"name": "s",
                                                                          "namespace": "n"}},
                            "rules": [{"operations": ["CREATE"]}]}]}
    out = defaults.apply_defaults("MutatingWebhookConfiguration", config)["webhooks"][0]
    assert out == {
        "name": "a.b.c", "clientConfig": {"service": {"name": "s", "namespace": "n",
                                                      "port": 443}},
        "rules": [{"operations": ["CREATE"], "scope": "*"}], "failurePolicy": "Fail",
        "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
        "timeoutSeconds": 10, "reinvocationPolicy": "Never"}
    validating = defaults.apply_defaults("ValidatingWebhookConfiguration", config)
    assert "reinvocationPolicy" not in validating["webhooks"][0]


def _answer(uid: str = "u1", **response: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": uid, **response}}


PATCH = base64.b64encode(json.dumps([{"op": "add", "path": "/x", "value": 1}]).encode()).decode()
BAD_ANSWERS = [
    ([], "webhook response was absent"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
     "webhook response was absent"),
    (_answer("other", allowed=True), 'expected response.uid="u1", got "other"'),
    ({**_answer(allowed=True), "apiVersion": "admission.k8s.io/v1beta1"},
     "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got "
     "admission.k8s.io/v1beta1, Kind=AdmissionReview"),
    (_answer(allowed=True, patchType="JSONPatch"),
     "webhook returned response.patchType but not response.patch"),
    (_answer(allowed=True, patch=PATCH), "webhook returned response.patch but not "
                                         "response.patchType"),
    (_answer(allowed=True, patch=PATCH, patchType="Merge"), 'unsupported patch type "Merge"'),
]


@pytest.mark.parametrize(("answer", "message"), BAD_ANSWERS)
def test_read_response_refuses(answer: Any, message: str) -> None:
    hook = _hook(admissionReviewVersions=["v1"])
    with pytest.raises(wh.InvalidResponse) as caught:
        wh.read_response(hook, "u1", answer)
    assert str(caught.value) == message


def test_read_response_patch_and_warnings() -> None:
    hook = _hook(admissionReviewVersions=["v1"])
    got = wh.read_response(hook, "u1", _answer(allowed=True, patch=PATCH, patchType="JSONPatch",
                                               warnings=["careful"]))
    assert (got.allowed, got.patch, got.warnings) == (
        True, [{"op": "add", "path": "/x", "value": 1}], ("careful",))
    validating = wh.hooks_of({"metadata": {"name": "c"}, "webhooks": [
        {"name": "v.example.com", "admissionReviewVersions": ["v1"]}]}, mutating=False)[0]
    with pytest.raises(wh.InvalidResponse, match="validating webhook may not return"):
        wh.read_response(validating, "u1", _answer(allowed=True, patch=PATCH,
                                                   patchType="JSONPatch"))


DENIALS = [
    (None, {"code": 400, "status": "Failure",
            "message": 'admission webhook "h" denied the request without explanation'}),
    ({"message": "no pods here", "code": 403},
     {"code": 403, "status": "Failure",
      "message": 'admission webhook "h" denied the request: no pods here'}),
    ({"reason": "Forbidden", "code": 200, "status": "Success"},
     {"code": 400, "status": "Failure", "reason": "Forbidden",
      "message": 'admission webhook "h" denied the request: Forbidden'}),
]


@pytest.mark.parametrize(("status", "expected"), DENIALS)
def test_denial(status: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert wh.denial("h", status) == expected


def _config(**webhook: Any) -> dict[str, Any]:
    base = {"name": "a.example.com", "clientConfig": {"url": "https://127.0.0.1/x"},
            "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}]}
    return defaults.apply_defaults("ValidatingWebhookConfiguration", {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "c"},
        "webhooks": [{**base, **webhook}]})


INVALID = [
    ({}, []),
    ({"name": "short.name"}, ['webhooks[0].name: Invalid value: "short.name": should be a '
                              "domain with at least three segments separated by dots"]),
    ({"clientConfig": {}}, ["webhooks[0].clientConfig: Required value: exactly one of url or "
                            "service is required"]),
    ({"clientConfig": {"url": "http://x.example.com/"}},
     ['webhooks[0].clientConfig.url: Invalid value: "http://x.example.com/": \'https\' is the '
      "only allowed URL scheme"]),
    ({"clientConfig": {"service": {"name": "s", "namespace": "n", "path": "v"}}},
     ["webhooks[0].clientConfig.service.path: Invalid value: \"v\": must start with a '/'"]),
    ({"admissionReviewVersions": []}, ["webhooks[0].admissionReviewVersions: Required value: "
                                       "must specify one of v1, v1beta1"]),
    ({"sideEffects": "Some"}, ['webhooks[0].sideEffects: Unsupported value: "Some": supported '
                               'values: "None", "NoneOnDryRun"']),
    ({"sideEffects": None}, ["webhooks[0].sideEffects: Required value: must specify one of "
                             "None, NoneOnDryRun"]),
    ({"timeoutSeconds": 31}, ["webhooks[0].timeoutSeconds: Invalid value: 31: the timeout "
                              "value must be between 1 and 30 seconds"]),
    ({"failurePolicy": "Maybe"}, ['webhooks[0].failurePolicy: Unsupported value: "Maybe": '
                                  'supported values: "Fail", "Ignore"']),
    ({"rules": [{"operations": ["PATCH"], "apiGroups": [""], "apiVersions": ["v1"],
                 "resources": ["pods"], "scope": "All"}]},
     ['webhooks[0].rules[0].operations[0]: Unsupported value: "PATCH": supported values: '
      '"*", "CONNECT", "CREATE", "DELETE", "UPDATE"',
      'webhooks[0].rules[0].scope: Unsupported value: "All": supported values: "*", '
      '"Cluster", "Namespaced"']),
    # matchConditions: compiled with kube's variables, type-checked with every variable dyn
    ({"matchConditions": [
        {"name": "a", "expression": "!(request.resource.group == 'coordination.k8s.io')"},
        {"name": "b", "expression": "object.metadata.name.startsWith('x')"},
        {"name": "c", "expression": "authorizer.group('').resource('pods').check('get')"
                                    ".allowed()"}]}, []),
    ({"matchConditions": [{"name": "a", "expression": "object.metadata.name.startsWith(1)"},
                          {"name": "b", "expression": " "},
                          {"name": "c", "expression": "params.x == 1"},
                          {"name": "d", "expression": "[1, 'a'].size() > 0"}]},
     ['webhooks[0].matchConditions[0].expression: Invalid value: '
      '"object.metadata.name.startsWith(1)": compilation failed: ERROR: <input>:1:32: found no '
      "matching overload for 'startsWith' applied to 'dyn.(int)'\n"
      " | object.metadata.name.startsWith(1)\n"
      " | ...............................^",
      "webhooks[0].matchConditions[1].expression: Required value: expression is not specified",
      'webhooks[0].matchConditions[2].expression: Invalid value: "params.x == 1": compilation '
      "failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')",
      "webhooks[0].matchConditions[3].expression: Invalid value: \"[1, 'a'].size() > 0\": "
      "compilation failed: ERROR: <input>:1:5: expected type 'int' but found 'string'\n"
      " | [1, 'a'].size() > 0\n"
      " | ....^"]),
]


@pytest.mark.parametrize(("webhook", "messages"), INVALID)
def test_configuration_validation(webhook: dict[str, Any], messages: list[str]) -> None:
    config = _config(**webhook)
    if webhook.get("sideEffects", "") is None:
        del config["webhooks"][0]["sideEffects"]
    errors = validation.validate("ValidatingWebhookConfiguration", config, None)
    assert [str(e) for e in errors] == messages


def test_mutating_configuration_type_checks_match_conditions() -> None:
    config = _config(matchConditions=[{"name": "a", "expression": "1 + 'a' == 2"}])
    config["kind"] = "MutatingWebhookConfiguration"
    errors = validation.validate("MutatingWebhookConfiguration", config, None)
    assert [str(e) for e in errors] == [
        "webhooks[0].matchConditions[0].expression: Invalid value: \"1 + 'a' == 2\": "
        "compilation failed: ERROR: <input>:1:3: found no matching overload for '_+_' applied "
        "to '(int, string)'\n | 1 + 'a' == 2\n | ..^"]
