"""Authentication and impersonation: bearer tokens, anonymous requests and Impersonate-*
headers authorized by the `impersonate` verb."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from tinykube.api import errors, resources
from tinykube.apiserver import access, rbac, rbac_bootstrap
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.rbac import User
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

G = "rbac.authorization.k8s.io"
APP_INFO = {"username": "system:serviceaccount:default:app", "uid": "u1",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                       "system:authenticated"]}


@pytest.fixture
def control(tmp_path: Path) -> Iterator[access.AccessControl]:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    rbac_bootstrap.reconcile(registry)
    registry.create(resources.must(G, "v1", "clusterroles"), {
        "metadata": {"name": "impersonate-bob"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"],
                   "verbs": ["impersonate"]},
                  {"apiGroups": [""], "resources": ["groups"], "resourceNames": ["devs"],
                   "verbs": ["impersonate"]}]})
    registry.create(resources.must(G, "v1", "clusterrolebindings"), {
        "metadata": {"name": "alice-impersonates"},
        "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "impersonate-bob"},
        "subjects": [{"apiGroup": G, "kind": "User", "name": "alice"}]})
    yield access.AccessControl("admin-token",
                               lambda t: APP_INFO if t == "app-token" else None,
                               rbac.RBACAuthorizer(store))
    store.close()


AUTHN: dict[str, tuple[dict[str, str], User | None]] = {
    "admin": ({"Authorization": "Bearer admin-token"}, access.ADMIN),
    "scheme any case": ({"Authorization": "bearer admin-token"}, access.ADMIN),
    "service account": ({"Authorization": "Bearer app-token"}, access.user_from_info(APP_INFO)),
    "no credential": ({}, rbac.ANONYMOUS),
    "basic is not a credential here": ({"Authorization": "Basic YTpi"}, rbac.ANONYMOUS),
    "a wrong token": ({"Authorization": "Bearer nope"}, None),
}


@pytest.mark.parametrize("case", AUTHN, ids=list(AUTHN))
def test_authenticate(control: access.AccessControl, case: str) -> None:
    headers, user = AUTHN[case]
    if user is None:
        with pytest.raises(errors.Unauthorized):
            control.authenticate(headers)
    else:
        assert control.authenticate(headers) == user


ALICE = User("alice", ("system:authenticated",))
IMPERSONATE: dict[str, tuple[User, list[tuple[str, str]], Any]] = {
    "no headers": (ALICE, [], ALICE),
    "allowed user": (ALICE, [("Impersonate-User", "bob")],
                     User("bob", ("system:authenticated",))),
    "allowed user and group": (ALICE, [("Impersonate-User", "bob"),
                                       ("Impersonate-Group", "devs")],
                               User("bob", ("devs", "system:authenticated"))),
    "another user": (ALICE, [("Impersonate-User", "carol")],
                     'users "carol" is forbidden: User "alice" cannot impersonate resource '
                     '"users" in API group "" at the cluster scope'),
    "another group": (ALICE, [("Impersonate-User", "bob"), ("Impersonate-Group", "ops")],
                      'groups "ops" is forbidden: User "alice" cannot impersonate resource '
                      '"groups" in API group "" at the cluster scope'),
    "a service account, by the admin": (
        access.ADMIN, [("Impersonate-User", "system:serviceaccount:default:app")],
        User("system:serviceaccount:default:app",
             ("system:serviceaccounts", "system:serviceaccounts:default",
              "system:authenticated"))),
    "a service account, by alice": (
        ALICE, [("Impersonate-User", "system:serviceaccount:default:app")],
        'serviceaccounts "app" is forbidden: User "alice" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "default"'),
    "extras": (access.ADMIN, [("Impersonate-User", "x"), ("Impersonate-Extra-Scopes", "a"),
                              ("Impersonate-Extra-Scopes", "b")],
               User("x", ("system:authenticated",), extra=(("scopes", ("a", "b")),))),
    "a group without a user": (access.ADMIN, [("Impersonate-Group", "devs")], errors.BadRequest),
}


@pytest.mark.parametrize("case", IMPERSONATE, ids=list(IMPERSONATE))
def test_impersonate(control: access.AccessControl, case: str) -> None:
    user, headers, expected = IMPERSONATE[case]
    multi = CIMultiDict(headers)
    if isinstance(expected, str):
        with pytest.raises(errors.Forbidden) as refused:
            control.impersonate(user, multi)
        assert refused.value.message == expected
    elif isinstance(expected, type):
        with pytest.raises(expected):
            control.impersonate(user, multi)
    else:
        assert control.impersonate(user, multi) == expected


def _peer(*rdns: tuple[str, str]) -> dict[str, Any]:
    """A verified peer certificate as `ssl.SSLSocket.getpeercert()` gives it."""
    return {"subject": tuple(((key, value),) for key, value in rdns)}


KUBEADM_ADMIN = _peer(("organizationName", "system:masters"), ("commonName", "kubernetes-admin"))
X509: dict[str, tuple[dict[str, str], dict[str, Any] | None, User | None]] = {
    "CN is the user, O the groups": (
        {}, KUBEADM_ADMIN, User("kubernetes-admin", ("system:masters", "system:authenticated"))),
    "several O": ({}, _peer(("commonName", "system:node:n1"), ("organizationName", "system:nodes"),
                            ("organizationName", "extra")),
                  User("system:node:n1", ("system:nodes", "extra", "system:authenticated"))),
    "a certificate wins over a bearer token (kube's order)": (
        {"Authorization": "Bearer app-token"}, _peer(("commonName", "bob")),
        User("bob", ("system:authenticated",))),
    "no CN: the token decides": ({"Authorization": "Bearer app-token"},
                                 _peer(("organizationName", "devs")),
                                 access.user_from_info(APP_INFO)),
    "no CN, no token: anonymous": ({}, _peer(("organizationName", "devs")), rbac.ANONYMOUS),
    "no certificate (getpeercert gives None)": ({}, None, rbac.ANONYMOUS),
    "a certificate does not save a bad token": ({"Authorization": "Bearer nope"},
                                                _peer(("organizationName", "x")), None),
}


@pytest.mark.parametrize("case", X509, ids=list(X509))
def test_authenticate_client_certificates(control: access.AccessControl, case: str) -> None:
    headers, peer, user = X509[case]
    if user is None:
        with pytest.raises(errors.Unauthorized):
            control.authenticate(headers, peer)
    else:
        assert control.authenticate(headers, peer) == user
