"""Bootstrap tokens: kube-apiserver's `--enable-bootstrap-token-auth` authenticator.

A bootstrap token is `<token-id>.<token-secret>` (6 and 16 characters of `[a-z0-9]`), as
`kubeadm token create` and `tinykube token create` make them. Its Secret is
`kube-system/bootstrap-token-<token-id>` of type `bootstrap.kubernetes.io/token` with the data
keys `token-id`, `token-secret`, `expiration` (RFC 3339, optional),
`usage-bootstrap-authentication` ("true" to authenticate), `usage-bootstrap-signing` and
`auth-extra-groups` (comma-separated, each `system:bootstrappers:...`).

`user_of` is the pure check (upstream's plugin/pkg/auth/authenticator/token/bootstrap, in
order): the Secret exists and is not being deleted, has the type, its token-id and secret match
(the secret compared in constant time), it has not expired, it is for authentication, and its
extra groups are well formed. The user is `system:bootstrap:<token-id>` in
`system:bootstrappers` and the extra groups; the access filter adds `system:authenticated`.
Any failure is "not this token": the request then gets 401, as upstream, never a hint of why.
"""

from __future__ import annotations

import datetime
import hmac
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tinykube.api.bootstraptoken import (
    GROUP_PATTERN,
    NAMESPACE,
    SECRET_PREFIX,
    SECRET_TYPE,
    expired,
    parse,
    secret_data,
)
from tinykube.apiserver.rbac import User

if TYPE_CHECKING:
    from tinykube.store.cache import Store

USER_PREFIX = "system:bootstrap:"
GROUP = "system:bootstrappers"
Obj = Mapping[str, Any]


def user_of(secret: Obj | None, token_id: str, token_secret: str,
            now: datetime.datetime) -> User | None:
    """The user the token is, given its Secret as stored; None if it does not authenticate."""
    if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if secret.get("type") != SECRET_TYPE:
        return None
    data = secret_data(secret)
    if not hmac.compare_digest(data.get("token-secret", "").encode(), token_secret.encode()):
        return None
    if data.get("token-id") != token_id or expired(data, now):
        return None
    if data.get("usage-bootstrap-authentication") != "true":
        return None
    extra = [g.strip() for g in data.get("auth-extra-groups", "").split(",") if g.strip()]
    if not all(GROUP_PATTERN.match(group) for group in extra):
        return None
    return User(USER_PREFIX + token_id, (GROUP, *extra))


class Authenticator:
    """Bearer tokens shaped as bootstrap tokens, checked against the stored Secrets."""

    def __init__(self, store: Store, clock: Callable[[], datetime.datetime]) -> None:
        self.store = store
        self.clock = clock

    def __repr__(self) -> str:
        return "bootstrap_tokens.Authenticator()"

    def __call__(self, token: str) -> User | None:
        parsed = parse(token)
        if parsed is None:
            return None
        entry = self.store.get("core/secrets", NAMESPACE, SECRET_PREFIX + parsed[0])
        return user_of(entry.obj if entry is not None else None, *parsed, self.clock())
