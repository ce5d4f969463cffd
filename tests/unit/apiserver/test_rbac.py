"""The RBAC authorizer as a table: bindings and roles in a store, requests, decisions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import resources
from tinykube.apiserver import rbac
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.rbac import User
from tinykube.apiserver.registry import Registry
from tinykube.apiserver.request_info import Attributes
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

G = "rbac.authorization.k8s.io"
APP = User("system:serviceaccount:default:app",
           ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"))
ALICE = User("alice", ("devs", "system:authenticated"))
BOB = User("bob", ("system:authenticated",))
ROOT = User("root", ("system:masters",))


def role(kind: str, name: str, rules: list[dict[str, Any]], ns: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, ref_kind: str, ref: str, subjects: list[dict[str, Any]],
            ns: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": G, "kind": ref_kind, "name": ref}}


OBJECTS = [
    role("Role", "pod-reader", [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                                 "verbs": ["get", "list", "watch"]}], ns="default"),
    role("Role", "one-config", [{"apiGroups": [""], "resources": ["configmaps"],
                                 "resourceNames": ["settings"], "verbs": ["get", "update"]}],
         ns="default"),
    role("ClusterRole", "deploy-admin", [{"apiGroups": ["apps"], "resources": ["*"],
                                          "verbs": ["*"]}]),
    role("ClusterRole", "scaler", [{"apiGroups": ["apps"], "resources": ["*/scale"],
                                    "verbs": ["update"]}]),
    role("ClusterRole", "metrics", [{"nonResourceURLs": ["/metrics", "/logs/*"],
                                     "verbs": ["get"]}]),
    binding("RoleBinding", "app-reads", "Role", "pod-reader",
            [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}], ns="default"),
    binding("RoleBinding", "alice-config", "Role", "one-config",
            [{"kind": "User", "apiGroup": G, "name": "alice"}], ns="default"),
    binding("RoleBinding", "devs-deploy", "ClusterRole", "deploy-admin",
            [{"kind": "Group", "apiGroup": G, "name": "devs"}], ns="dev"),
    binding("ClusterRoleBinding", "bob-scales", "ClusterRole", "scaler",
            [{"kind": "User", "apiGroup": G, "name": "bob"}]),
    binding("ClusterRoleBinding", "bob-metrics", "ClusterRole", "metrics",
            [{"kind": "User", "apiGroup": G, "name": "bob"}]),
]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    reg = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    for ns in ("default", "dev"):
        reg.create(resources.must("", "v1", "namespaces"), {"metadata": {"name": ns}})
    for obj in OBJECTS:
        plural = obj["kind"].lower() + "s"
        reg.create(resources.must(G, "v1", plural), obj)
    yield reg
    store.close()


def req(verb: str, resource: str, *, ns: str = "", name: str = "", sub: str = "",
        group: str = "") -> Attributes:
    return Attributes(verb=verb, resource_request=True, api_group=group, namespace=ns,
                      resource=resource, subresource=sub, name=name)


CASES: dict[str, tuple[User, Attributes, bool]] = {
    "sa reads pods in its namespace": (APP, req("list", "pods", ns="default"), True),
    "sa reads pod logs": (APP, req("get", "pods", ns="default", name="p", sub="log"), True),
    "sa cannot exec": (APP, req("create", "pods", ns="default", name="p", sub="exec"), False),
    "sa cannot read pods elsewhere": (APP, req("list", "pods", ns="dev"), False),
    "sa cannot list pods cluster-wide": (APP, req("list", "pods"), False),
    "sa cannot delete pods": (APP, req("delete", "pods", ns="default", name="p"), False),
    "sa cannot read secrets": (APP, req("get", "secrets", ns="default", name="s"), False),
    "named config": (ALICE, req("get", "configmaps", ns="default", name="settings"), True),
    "other config": (ALICE, req("get", "configmaps", ns="default", name="other"), False),
    "list is not a name": (ALICE, req("list", "configmaps", ns="default"), False),
    "group binding of a cluster role in one namespace": (
        ALICE, req("delete", "deployments", ns="dev", name="d", group="apps"), True),
    "wildcard resource covers subresources": (
        ALICE, req("update", "deployments", ns="dev", name="d", sub="scale", group="apps"),
        True),
    "not in another namespace": (ALICE, req("get", "deployments", ns="default", group="apps"),
                                 False),
    "not in another group": (ALICE, req("get", "pods", ns="dev"), False),
    "*/scale everywhere": (BOB, req("update", "statefulsets", ns="x", name="s", sub="scale",
                                    group="apps"), True),
    "*/scale is not the object": (BOB, req("update", "statefulsets", ns="x", name="s",
                                           group="apps"), False),
    "url exact": (BOB, Attributes(verb="get", path="/metrics"), True),
    "url prefix": (BOB, Attributes(verb="get", path="/logs/kube.log"), True),
    "url other verb": (BOB, Attributes(verb="post", path="/metrics"), False),
    "url other path": (BOB, Attributes(verb="get", path="/metricsz"), False),
    "masters may do anything": (ROOT, req("delete", "nodes", name="n"), True),
    "anonymous nothing": (rbac.ANONYMOUS, req("get", "pods", ns="default", name="p"), False),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_decision(registry: Registry, case: str) -> None:
    user, attrs, allowed = CASES[case]
    authorizer = rbac.RBACAuthorizer(registry.store)
    assert authorizer.allowed(user, attrs) is allowed
    assert authorizer.allowed(user, attrs) is allowed  # from the cache: the same


def test_changes_invalidate_the_cache(registry: Registry) -> None:
    authorizer = rbac.RBACAuthorizer(registry.store)
    attrs = req("get", "secrets", ns="default", name="s")
    assert not authorizer.allowed(APP, attrs)
    bindings = resources.must(G, "v1", "rolebindings")
    roles = resources.must(G, "v1", "roles")
    registry.create(roles, role("Role", "secrets", [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], ns="default"))
    registry.create(bindings, binding("RoleBinding", "app-secrets", "Role", "secrets", [
        {"kind": "ServiceAccount", "name": "app", "namespace": "default"}], ns="default"))
    registry.store.commit()
    assert authorizer.allowed(APP, attrs)
    registry.delete(roles, "default", "secrets", {})
    registry.store.commit()
    assert not authorizer.allowed(APP, attrs)


FORBIDDEN: dict[str, tuple[User, Attributes, str]] = {
    "namespaced list": (
        APP, req("list", "pods", ns="default"),
        'pods is forbidden: User "system:serviceaccount:default:app" cannot list resource '
        '"pods" in API group "" in the namespace "default"'),
    "named, grouped, cluster scope": (
        BOB, req("get", "clusterroles", name="admin", group=G),
        'clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "bob" cannot get '
        'resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope'),
    "subresource": (
        APP, req("create", "pods", ns="default", name="p", sub="exec"),
        'pods "p" is forbidden: User "system:serviceaccount:default:app" cannot create '
        'resource "pods/exec" in API group "" in the namespace "default"'),
    "path": (rbac.ANONYMOUS, Attributes(verb="get", path="/api"),
             'forbidden: User "system:anonymous" cannot get path "/api"'),
}


@pytest.mark.parametrize("case", FORBIDDEN, ids=list(FORBIDDEN))
def test_forbidden_message(case: str) -> None:
    user, attrs, message = FORBIDDEN[case]
    error = rbac.forbidden(user, attrs)
    assert error.code == 403 and error.message == message


R = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
COVERS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]], bool]] = {
    "same": ([R], [R], True),
    "fewer verbs": ([R], [{**R, "verbs": ["get"]}], True),
    "more verbs": ([R], [{**R, "verbs": ["get", "delete"]}], False),
    "star owner": ([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], [R], True),
    "star servant needs star": ([R], [{**R, "verbs": ["*"]}], False),
    "names within all": ([R], [{**R, "resourceNames": ["a"]}], True),
    "all beyond names": ([{**R, "resourceNames": ["a"]}], [R], False),
    "subresource via */sub": ([{"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}],
                              [{"apiGroups": [""], "resources": ["pods/log"],
                                "verbs": ["get"]}], True),
    "url prefix": ([{"nonResourceURLs": ["/logs/*"], "verbs": ["get"]}],
                   [{"nonResourceURLs": ["/logs/a"], "verbs": ["get"]}], True),
    "url beyond": ([{"nonResourceURLs": ["/logs"], "verbs": ["get"]}],
                   [{"nonResourceURLs": ["/logs/*"], "verbs": ["get"]}], False),
}


@pytest.mark.parametrize("case", COVERS, ids=list(COVERS))
def test_covers(case: str) -> None:
    owner, servant, covered = COVERS[case]
    assert (rbac.covers(owner, servant) == []) is covered
