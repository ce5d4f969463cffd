"""Who is asking, and may they: kube-apiserver's authentication, impersonation and
authorization filters, in that order, in front of every request.

Authentication (kube's union of authenticators, anonymous last):

- `Authorization: Bearer <admin token>` (the kubeconfig's) is `tinykube-admin` in
  `system:masters`, as a kind cluster's admin certificate is;
- a ServiceAccount token this server issued (`apiserver.sa_tokens`) is its account;
- the kubelet token (the one this server shows the kubelets) is `kube-apiserver-kubelet-client`
  in `system:masters`, as kubeadm's apiserver-kubelet-client certificate was until 1.29, so
  that a kubelet that does not know it (a node joined by token) can review it
  (`kubelet.webhookauth`);
- a bootstrap token (`apiserver.bootstrap_tokens`) is `system:bootstrap:<id>` in
  `system:bootstrappers`, as with kube's `--enable-bootstrap-token-auth`;
- a client certificate signed by the cluster CA (the TLS handshake verifies it, as kube's
  `--client-ca-file`) is its subject: CN the user, each O a group. It is tried first, as x509
  comes before tokens in kube's union; certificates come from the CSR signer
  (`controllers/csrsigning`), a node's from `tinykube node --token` (`join`);
- any other bearer token is refused with 401 (kube does not fall back to anonymous when a
  credential was offered and failed);
- no bearer credential at all (also `Basic ...`, which kube-apiserver does not accept) is
  `system:anonymous` in `system:unauthenticated`, as with kube's `--anonymous-auth=true`.

Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-<key>`): each asked-for attribute
is authorized as the verb `impersonate` on `users`, `groups`, `serviceaccounts` (in the
account's namespace), `uids` or `userextras/<key>` (group `authentication.k8s.io` for the last
two), and the request then runs as the impersonated user: `system:authenticated` is added (for
anyone but `system:anonymous`), and a service account asked for without groups gets its
account groups. Groups, uid or extras without a user are a 400, as upstream.

Authorization: the request's attributes (`request_info`) go to `rbac.RBACAuthorizer`; a denial
is kube's 403 (`rbac.forbidden`). The user is left on the request (`USER`) for the reviews and
RBAC's escalation check.
"""

from __future__ import annotations

import contextvars
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver import rbac, request_info
from tinykube.apiserver.rbac import User
from tinykube.apiserver.request_info import Attributes

Obj = dict[str, Any]
ServiceAccountCheck = Callable[[str], "Obj | None"]  # a token -> its UserInfo, or None
TokenCheck = Callable[[str], "User | None"]  # a token -> its user, or None

ADMIN = User("tinykube-admin", (rbac.MASTERS, "system:authenticated"))
# as kubeadm's apiserver-kubelet-client certificate was until 1.29 (O=system:masters)
KUBELET_CLIENT = User("kube-apiserver-kubelet-client", (rbac.MASTERS, "system:authenticated"))
AUTHENTICATED = "system:authenticated"
USER = web.RequestKey("tinykube.user", User)
# The user the current request runs as, with the authorizer: for checks deep in a write (RBAC
# escalation) that only get the object. Set per request task, so never seen by another one.
_CURRENT: contextvars.ContextVar[tuple[User, AccessControl] | None] = \
    contextvars.ContextVar("tinykube_access", default=None)


def current() -> tuple[User, AccessControl] | None:
    return _CURRENT.get()
_EXTRA = "impersonate-extra-"


def user_from_info(info: Obj) -> User:
    extra = info.get("extra") or {}
    return User(str(info.get("username", "")), tuple(info.get("groups") or ()),
                str(info.get("uid", "")),
                tuple((k, tuple(v)) for k, v in sorted(extra.items())))


class AccessControl:
    """Authenticates, impersonates and authorizes one request (see the module docstring)."""

    def __init__(self, admin_token: str, service_account: ServiceAccountCheck,
                 authorizer: rbac.RBACAuthorizer, bootstrap: TokenCheck | None = None,
                 kubelet_client_token: str = "") -> None:
        self.admin_token = admin_token
        self.kubelet_client_token = kubelet_client_token
        self.service_account = service_account
        self.authorizer = authorizer
        self.bootstrap = bootstrap

    def __repr__(self) -> str:
        return f"AccessControl({self.authorizer!r})"

    def authenticate(self, headers: Mapping[str, str], peer: Obj | None = None) -> User:
        """The user of a request: its verified client certificate (`peer`, as ssl decodes
        it), else its bearer token, else anonymous."""
        if peer:
            certified = certificate_user(peer)
            if certified is not None:
                return certified
        scheme, _, credentials = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return rbac.ANONYMOUS
        user = self.token_user(credentials.strip())
        if user is None:
            raise errors.Unauthorized("Unauthorized")
        return user

    def token_user(self, token: str) -> User | None:
        """Who a bearer token is (TokenReview asks the same), or None."""
        if self.admin_token and hmac.compare_digest(token, self.admin_token):
            return ADMIN
        if self.kubelet_client_token and hmac.compare_digest(token, self.kubelet_client_token):
            return KUBELET_CLIENT
        info = self.service_account(token)
        if info is not None:
            return user_from_info(info)
        user = self.bootstrap(token) if self.bootstrap is not None else None
        return User(user.name, (*user.groups, AUTHENTICATED)) if user is not None else None

    def admit(self, request: web.Request) -> User:
        """The user the request runs as; raises 401, 400 or 403 as kube-apiserver would."""
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        user = self.impersonate(self.authenticate(request.headers, peer), request.headers)
        attrs = request_info.resolve(request.method, request.path, request.query)
        if not self.authorizer.allowed(user, attrs):
            raise rbac.forbidden(user, attrs)
        request[USER] = user
        _CURRENT.set((user, self))
        return user

    # -- impersonation

    def _check(self, user: User, attrs: Attributes) -> None:
        if not self.authorizer.allowed(user, attrs):
            raise rbac.forbidden(user, attrs)

    def impersonate(self, user: User, headers: Mapping[str, str]) -> User:
        name = headers.get("Impersonate-User", "")
        groups = tuple(headers.getall("Impersonate-Group", ()))  # type: ignore[attr-defined]
        uid = headers.get("Impersonate-Uid", "")
        extra: dict[str, list[str]] = {}
        for key, value in headers.items():
            if key.lower().startswith(_EXTRA):
                extra.setdefault(key[len(_EXTRA):].lower(), []).append(value)
        if not name:
            if groups or uid or extra:
                raise errors.BadRequest(
                    "requested impersonation of groups, uid or extras without a user")
            return user
        self._check(user, _user_attrs(name))
        for group in groups:
            self._check(user, _attrs("groups", group))
        if uid:
            self._check(user, _attrs("uids", uid, group="authentication.k8s.io"))
        for key, values in extra.items():
            for value in values:
                self._check(user, _attrs("userextras", value, group="authentication.k8s.io",
                                         subresource=key))
        return _impersonated(name, groups, uid, extra)


def certificate_user(peer: Obj) -> User | None:
    """The user a verified client certificate names: CN, and each O as a group (kube's
    x509 authenticator); None without a CN."""
    names: dict[str, list[str]] = {}
    for rdn in peer.get("subject") or ():
        for key, value in rdn:
            names.setdefault(key, []).append(value)
    common = names.get("commonName") or []
    if not common or not common[0]:
        return None
    groups = [g for g in names.get("organizationName", []) if g != AUTHENTICATED]
    return User(common[0], (*groups, AUTHENTICATED))


def _attrs(resource: str, name: str, *, group: str = "", namespace: str = "",
           subresource: str = "") -> Attributes:
    return Attributes(verb="impersonate", resource_request=True, api_group=group,
                      namespace=namespace, resource=resource, subresource=subresource,
                      name=name)


def _user_attrs(name: str) -> Attributes:
    if name.startswith(rbac.SA_PREFIX) and name.count(":") == 3:
        namespace, account = name[len(rbac.SA_PREFIX):].split(":")
        return _attrs("serviceaccounts", account, namespace=namespace)
    return _attrs("users", name)


def _impersonated(name: str, groups: tuple[str, ...], uid: str,
                  extra: dict[str, list[str]]) -> User:
    all_groups = list(groups)
    if not groups and name.startswith(rbac.SA_PREFIX) and name.count(":") == 3:
        namespace = name[len(rbac.SA_PREFIX):].split(":")[0]
        for group in ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"):
            if group not in all_groups:
                all_groups.append(group)
    if name != rbac.ANONYMOUS.name and AUTHENTICATED not in all_groups:
        all_groups.append(AUTHENTICATED)
    return User(name, tuple(all_groups), uid,
                tuple((k, tuple(v)) for k, v in sorted(extra.items())))
