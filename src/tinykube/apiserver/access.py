"""Who is asking, and may they: kube-apiserver's authentication, impersonation and
authorization filters, in that order, in front of every request.

Authentication (kube's union of authenticators, in its order, anonymous last): a table,
`AccessControl.authenticators`, each returning the user, or None when the request has no
credential of its kind; the first answer wins.

- an X.509 client certificate the TLS handshake verified against the cluster CA (the
  listener asks for one and does not require it, as kube-apiserver's `--client-ca-file`):
  CN = user, each O = a group (`user_from_certificate`); a certificate that does not verify,
  or lacks the `client auth` usage, fails the handshake, as with Go's TLS. It is tried first,
  as x509 comes before tokens in kube's union; certificates come from the CSR signer
  (`controllers/csrsigning`), a node's from `tinykube node --token` (`join`);
- bearer tokens, through `token_authenticators` (a table too): `Authorization: Bearer <admin
  token>` (the kubeconfig's) is `tinykube-admin` in `system:masters`; the kubelet token (the
  one this server shows the kubelets) is `kube-apiserver-kubelet-client` in
  `kubeadm:cluster-admins` (cluster-admin through RBAC), as kubeadm's
  apiserver-kubelet-client certificate is since 1.29, so that a kubelet that
  does not know it (a node joined by token) can review it (`kubelet.webhookauth`); a
  ServiceAccount token this server issued (`apiserver.sa_tokens`) is its account; a bootstrap
  token (`apiserver.bootstrap_tokens`) is `system:bootstrap:<id>` in `system:bootstrappers`,
  as with kube's `--enable-bootstrap-token-auth`; any other bearer token is refused with 401
  (kube does not fall back to anonymous when a credential was offered and failed);
- no bearer credential at all (also `Basic ...`, which kube-apiserver does not accept) is
  `system:anonymous` in `system:unauthenticated`, as with kube's `--anonymous-auth=true`.

Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-<key>`): each asked-for attribute
is authorized as the verb `impersonate` on `users`, `groups`, `serviceaccounts` (in the
account's namespace), `uids` or `userextras/<key>` (group `authentication.k8s.io` for the last
two), and the request then runs as the impersonated user: `system:authenticated` is added (for
anyone but `system:anonymous`), and a service account asked for without groups gets its
account groups. Groups, uid or extras without a user are a 400, as upstream.

Authorization: the request's attributes (`request_info`) go to `rbac.RBACAuthorizer`, which
asks the Node authorizer first (`nodeauthz`, kube's `--authorization-mode=Node,RBAC`); a denial
is kube's 403 (`rbac.forbidden`), ending with the Node authorizer's reason for a node. The
user is left on the request (`USER`) for the reviews and RBAC's escalation check.
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
TokenAuthenticator = Callable[[str], "User | None"]  # a bearer token -> its user, or None
TokenCheck = TokenAuthenticator
# (headers, the verified peer certificate as `ssl.SSLSocket.getpeercert()` gives it) -> the user,
# or None if the request has no credential of this kind; raises Unauthorized for a bad one
Authenticator = Callable[[Mapping[str, str], "Obj | None"], "User | None"]

ADMIN = User("tinykube-admin", (rbac.MASTERS, "system:authenticated"))
# as kubeadm's apiserver-kubelet-client certificate since 1.29 (O=kubeadm:cluster-admins,
# bound to cluster-admin by `rbac_bootstrap.kubeadm_cluster_admins`, no longer system:masters)
KUBELET_CLIENT = User("kube-apiserver-kubelet-client",
                      ("kubeadm:cluster-admins", "system:authenticated"))
AUTHENTICATED = "system:authenticated"
USER = web.RequestKey("tinykube.user", User)
# for the audit log: who authenticated (before impersonation), and the request's attributes
AUTHENTICATED_USER = web.RequestKey("tinykube.authenticated_user", User)
ATTRIBUTES = web.RequestKey("tinykube.attributes", Attributes)
# The user the current request runs as, with the authorizer: for checks deep in a write (RBAC
# escalation) that only get the object. Set per request task, so never seen by another one.
_CURRENT: contextvars.ContextVar[tuple[User, AccessControl] | None] = \
    contextvars.ContextVar("tinykube_access", default=None)


def current() -> tuple[User, AccessControl] | None:
    return _CURRENT.get()


def cel_authorizer() -> Callable[[Obj], tuple[str, str]]:
    """What admission CEL's `authorizer...check(verb)` asks (`api.cel.authz`): the request's
    authorizer (`decide`, synchronous) on the attributes the expression built, `Allow` or
    kube's union's `NoOpinion` with its reason; without access control everything is
    allowed (kube's AlwaysAllow)."""
    found = current()
    if found is None:
        return lambda attrs: ("Allow", "")
    control = found[1]

    def authorize(attrs: Obj) -> tuple[str, str]:
        user = User(str(attrs.get("user", "")), tuple(attrs.get("groups") or ()),
                    str(attrs.get("uid", "")))
        resource = bool(attrs.get("resourceRequest"))
        request = Attributes(
            verb=str(attrs.get("verb", "")), path=str(attrs.get("path", "")),
            resource_request=resource, api_group=str(attrs.get("apiGroup", "")),
            api_version=str(attrs.get("apiVersion", "")),
            namespace=str(attrs.get("namespace", "")), resource=str(attrs.get("resource", "")),
            subresource=str(attrs.get("subresource", "")), name=str(attrs.get("name", "")),
            field_selector=str(attrs.get("fieldSelector", "")))
        allowed, reason = control.authorizer.decide(user, request)
        return ("Allow", reason) if allowed else ("NoOpinion", reason)
    return authorize
_EXTRA = "impersonate-extra-"


def user_from_certificate(peer: Obj | None) -> User | None:
    """kube's x509 user: the leaf's CN, its O values as groups; None without a CN."""
    if not peer:
        return None
    names: dict[str, list[str]] = {"commonName": [], "organizationName": []}
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key in names:
                names[key].append(value)
    if not names["commonName"] or not names["commonName"][0]:
        return None
    groups = [g for g in names["organizationName"] if g != AUTHENTICATED]
    return User(names["commonName"][0], (*groups, AUTHENTICATED))


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
        self.authenticators: list[Authenticator] = [
            lambda _headers, peer: user_from_certificate(peer), self._bearer]
        self.token_authenticators: list[TokenAuthenticator] = [
            self._admin_token, self._kubelet_client_token, self._service_account_token,
            self._bootstrap_token]

    def __repr__(self) -> str:
        return f"AccessControl({self.authorizer!r})"

    def authenticate(self, headers: Mapping[str, str], peer: Obj | None = None) -> User:
        for authenticator in self.authenticators:
            user = authenticator(headers, peer)
            if user is not None:
                return user
        return rbac.ANONYMOUS

    def _bearer(self, headers: Mapping[str, str], _peer: Obj | None) -> User | None:
        scheme, _, credentials = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        user = self.token_user(credentials.strip())
        if user is None:
            raise errors.Unauthorized("Unauthorized")
        return user

    def token_user(self, token: str) -> User | None:
        """Who a bearer token is (TokenReview asks the same), or None."""
        for authenticator in self.token_authenticators:
            user = authenticator(token)
            if user is not None:
                return user
        return None

    def _admin_token(self, token: str) -> User | None:
        if self.admin_token and hmac.compare_digest(token, self.admin_token):
            return ADMIN
        return None

    def _kubelet_client_token(self, token: str) -> User | None:
        if self.kubelet_client_token and hmac.compare_digest(token, self.kubelet_client_token):
            return KUBELET_CLIENT
        return None

    def _service_account_token(self, token: str) -> User | None:
        info = self.service_account(token)
        return user_from_info(info) if info is not None else None

    def _bootstrap_token(self, token: str) -> User | None:
        user = self.bootstrap(token) if self.bootstrap is not None else None
        return User(user.name, (*user.groups, AUTHENTICATED)) if user is not None else None

    def admit(self, request: web.Request) -> User:
        """The user the request runs as; raises 401, 400 or 403 as kube-apiserver would."""
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        authenticated = self.authenticate(request.headers, peer)
        request[AUTHENTICATED_USER] = authenticated
        user = self.impersonate(authenticated, request.headers)
        attrs = request_info.resolve(request.method, request.path, request.query)
        request[ATTRIBUTES] = attrs
        allowed, reason = self.authorizer.decide(user, attrs)
        if not allowed:
            raise rbac.forbidden(user, attrs, reason)
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
