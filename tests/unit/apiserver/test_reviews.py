"""Self reviews: the answers behind kubectl auth whoami and kubectl auth can-i [--list]."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import errors
from tinykube.apiserver import reviews

ACCESS = "authorization.k8s.io/v1"

CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "can-i on a resource": (
        "SelfSubjectAccessReview",
        {"apiVersion": ACCESS, "spec": {"resourceAttributes": {
            "namespace": "default", "verb": "get", "resource": "pods"}}},
        {"allowed": True}),
    "can-i on a URL": (
        "SelfSubjectAccessReview",
        {"apiVersion": ACCESS, "spec": {"nonResourceAttributes": {
            "path": "/healthz", "verb": "get"}}},
        {"allowed": True}),
    "can-i --list": (
        "SelfSubjectRulesReview", {"apiVersion": ACCESS, "spec": {"namespace": "default"}},
        {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
         "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
         "incomplete": False}),
    "whoami": (
        "SelfSubjectReview", {"apiVersion": "authentication.k8s.io/v1", "metadata": {}},
        {"userInfo": {"username": "tinykube-admin",
                      "groups": ["system:masters", "system:authenticated"]}}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_answer(case: str) -> None:
    kind, body, status = CASES[case]
    answered = reviews.answer(kind, body)
    assert answered["status"] == status
    assert answered["kind"] == kind and answered["apiVersion"] == body["apiVersion"]
    assert answered.get("spec") == body.get("spec")


@pytest.mark.parametrize("body", [{"spec": {}}, {}, {"spec": "x"}], ids=["empty", "none", "str"])
def test_access_review_needs_attributes(body: dict[str, Any]) -> None:
    with pytest.raises(errors.Invalid, match="exactly one of nonResourceAttributes or "
                                             "resourceAttributes must be specified"):
        reviews.answer("SelfSubjectAccessReview", body)


def test_a_body_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest):
        reviews.answer("SelfSubjectReview", ["x"])
