"""Reviews answered from RBAC: kubectl auth whoami, can-i [--list], SubjectAccessReviews and
TokenReviews, with the default policy and one RoleBinding in a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import errors, resources
from tinykube.apiserver import access, rbac, rbac_bootstrap, reviews
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.rbac import User
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

ACCESS = "authorization.k8s.io/v1"
G = "rbac.authorization.k8s.io"
APP = User("system:serviceaccount:default:app",
           ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"))


@pytest.fixture
def authorizer(tmp_path: Path) -> Iterator[rbac.RBACAuthorizer]:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    rbac_bootstrap.reconcile(registry)
    registry.create(resources.must("", "v1", "namespaces"), {"metadata": {"name": "default"}})
    registry.create(resources.must(G, "v1", "rolebindings"), {
        "metadata": {"name": "app-view", "namespace": "default"},
        "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}]})
    yield rbac.RBACAuthorizer(store)
    store.close()


def _tokens(token: str) -> User | None:
    return APP if token == "app-token" else None


def can_i(verb: str, resource: str, ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": ACCESS, "spec": {"resourceAttributes": {
        "namespace": ns, "verb": verb, "resource": resource}}}


def sar(user: str, verb: str, resource: str, groups: list[str] | None = None) -> dict[str, Any]:
    return {"apiVersion": ACCESS, "spec": {"user": user, "groups": groups or [],
                                           "resourceAttributes": {"namespace": "default",
                                                                  "verb": verb,
                                                                  "resource": resource}}}


CASES: dict[str, tuple[str, User, dict[str, Any], dict[str, Any]]] = {
    "admin can-i": ("SelfSubjectAccessReview", access.ADMIN, can_i("delete", "nodes", ""),
                    {"allowed": True}),
    "app can list pods": ("SelfSubjectAccessReview", APP, can_i("list", "pods"),
                          {"allowed": True}),
    "app cannot delete pods": ("SelfSubjectAccessReview", APP, can_i("delete", "pods"),
                               {"allowed": False}),
    "app cannot read secrets": ("SelfSubjectAccessReview", APP, can_i("get", "secrets"),
                                {"allowed": False}),
    "app not elsewhere": ("SelfSubjectAccessReview", APP, can_i("list", "pods", "dev"),
                          {"allowed": False}),
    "anyone authenticated reads /version": (
        "SelfSubjectAccessReview", APP,
        {"apiVersion": ACCESS, "spec": {"nonResourceAttributes": {"path": "/version",
                                                                  "verb": "get"}}},
        {"allowed": True}),
    "sar about the app": ("SubjectAccessReview", access.ADMIN,
                          sar("system:serviceaccount:default:app", "watch", "pods"),
                          {"allowed": True}),
    "sar about a user without bindings": ("SubjectAccessReview", access.ADMIN,
                                          sar("nobody", "get", "pods"), {"allowed": False}),
    "sar by group": ("SubjectAccessReview", access.ADMIN,
                     sar("x", "get", "pods", ["system:masters"]), {"allowed": True}),
    "whoami": ("SelfSubjectReview", APP,
               {"apiVersion": "authentication.k8s.io/v1", "metadata": {}},
               {"userInfo": {"username": APP.name, "groups": list(APP.groups)}}),
    "token review": ("TokenReview", access.ADMIN,
                     {"apiVersion": "authentication.k8s.io/v1", "spec": {"token": "app-token"}},
                     {"authenticated": True, "audiences": [],
                      "user": {"username": APP.name, "groups": list(APP.groups)}}),
    "token review of a stranger": (
        "TokenReview", access.ADMIN,
        {"apiVersion": "authentication.k8s.io/v1", "spec": {"token": "other"}},
        {"authenticated": False, "error": "invalid bearer token"}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_answer(authorizer: rbac.RBACAuthorizer, case: str) -> None:
    kind, user, body, status = CASES[case]
    answered = reviews.answer(kind, body, reviews.Context(user, authorizer, _tokens))
    assert answered["status"] == status
    assert answered["kind"] == kind and answered["apiVersion"] == body["apiVersion"]
    assert answered.get("spec") == body.get("spec")


def test_rules_review_lists_the_apps_rules(authorizer: rbac.RBACAuthorizer) -> None:
    body = {"apiVersion": ACCESS, "spec": {"namespace": "default"}}
    status = reviews.answer("SelfSubjectRulesReview", body,
                            reviews.Context(APP, authorizer, _tokens))["status"]
    assert {"verbs": ["get", "list", "watch"], "apiGroups": [""],
            "resources": ["configmaps", "endpoints", "persistentvolumeclaims",
                          "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                          "replicationcontrollers/scale", "serviceaccounts", "services",
                          "services/status"]} in status["resourceRules"]
    assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]} \
        in status["resourceRules"]
    assert not any("secrets" in r["resources"] for r in status["resourceRules"])
    assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                                                  "/version/"]} in status["nonResourceRules"]
    assert status["incomplete"] is False


def test_local_review_namespace_must_match(authorizer: rbac.RBACAuthorizer) -> None:
    with pytest.raises(errors.Invalid, match=r"must match metadata\.namespace"):
        reviews.answer("LocalSubjectAccessReview", sar("x", "get", "pods"),
                       reviews.Context(access.ADMIN, authorizer, _tokens, namespace="other"))


@pytest.mark.parametrize("body", [{"spec": {}}, {}, {"spec": "x"}], ids=["empty", "none", "str"])
def test_access_review_needs_attributes(authorizer: rbac.RBACAuthorizer,
                                        body: dict[str, Any]) -> None:
    with pytest.raises(errors.Invalid, match="exactly one of nonResourceAttributes or "
                                             "resourceAttributes must be specified"):
        reviews.answer("SelfSubjectAccessReview", body,
                       reviews.Context(APP, authorizer, _tokens))


def test_a_body_that_is_not_an_object_is_a_bad_request(authorizer: rbac.RBACAuthorizer) -> None:
    with pytest.raises(errors.BadRequest):
        reviews.answer("SelfSubjectReview", ["x"], reviews.Context(APP, authorizer, _tokens))
