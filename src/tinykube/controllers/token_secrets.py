"""The token controller: legacy ServiceAccount token Secrets, as kube-controller-manager's
`serviceaccount-token` controller keeps them.

A Secret of type `kubernetes.io/service-account-token` whose annotation
`kubernetes.io/service-account.name` names an account gets, once, the data a pod or a person
reads from it: `token` (a non-expiring JWT with kube's legacy claims, signed with the cluster's
ServiceAccount key, `sa.key` in the data directory, as the controller manager's
`--service-account-private-key-file`), `ca.crt` (the cluster CA) and `namespace`; and the
annotation `kubernetes.io/service-account.uid` if it has none. A Secret whose account does not
exist, or exists with another uid than its annotation says, is deleted, so deleting an account
deletes its token Secrets (upstream does the same from both sides). Nothing else is touched:
a Secret already filled in is left as it is.

Keys are Secrets' `namespace/name`; an account's change enqueues the token Secrets that name it.
`decide` is the pure part; the API server accepts the token while the Secret holds it
(`apiserver.sa_tokens`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tinykube.api import errors, resources
from tinykube.api.clone import clone
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
Sign = Callable[[dict[str, Any]], str]  # claims -> a signed JWT

TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
LEGACY_ISSUER = "kubernetes/serviceaccount"
_CLAIM = "kubernetes.io/serviceaccount/"


def legacy_claims(namespace: str, account: str, uid: str, secret: str) -> dict[str, Any]:
    """kube's legacy token claims (the API server's `sa_tokens.account_of` reads them)."""
    return {"iss": LEGACY_ISSUER, f"{_CLAIM}namespace": namespace,
            f"{_CLAIM}secret.name": secret, f"{_CLAIM}service-account.name": account,
            f"{_CLAIM}service-account.uid": uid,
            "sub": f"system:serviceaccount:{namespace}:{account}"}


@dataclasses.dataclass(frozen=True)
class Decision:
    delete: bool = False
    fill: bool = False  # write token, ca.crt, namespace (and the uid annotation)


def decide(secret: Obj | None, account: Obj | None) -> Decision:
    """What a Secret needs, given the account its annotation names (None: there is none)."""
    if secret is None or secret.get("type") != TOKEN_TYPE:
        return Decision()
    meta = secret.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Decision()
    annotations = meta.get("annotations") or {}
    if not annotations.get(NAME_ANNOTATION):
        return Decision()
    wanted_uid = annotations.get(UID_ANNOTATION)
    if account is None or (wanted_uid and wanted_uid != account["metadata"].get("uid")):
        return Decision(delete=True)
    data = secret.get("data") or {}
    complete = all(data.get(key) for key in ("token", "ca.crt", "namespace")) and wanted_uid
    return Decision(fill=not complete)


def filled(secret: Obj, account: Obj, ca_bundle: bytes, sign: Sign) -> dict[str, Any]:
    """`secret` (a copy) with its token, CA, namespace and account uid."""
    new = clone(dict(secret))
    meta = new["metadata"]
    namespace, uid = meta["namespace"], account["metadata"]["uid"]
    meta.setdefault("annotations", {})[UID_ANNOTATION] = uid
    data = new.setdefault("data", {}) or {}
    new["data"] = data
    if not data.get("token"):
        token = sign(legacy_claims(namespace, meta["annotations"][NAME_ANNOTATION], uid,
                                   meta["name"]))
        data["token"] = base64.b64encode(token.encode()).decode()
    data["ca.crt"] = base64.b64encode(ca_bundle).decode()
    data["namespace"] = base64.b64encode(namespace.encode()).decode()
    return new


class TokenSecretsController(Controller):
    name = "serviceaccount-token-controller"

    def __init__(self, client: RESTClient, data_dir: Path) -> None:
        self.secret_res = resources.must("", "v1", "secrets")
        self.sa_res = resources.must("", "v1", "serviceaccounts")
        self.secrets = shared_informer(client, self.secret_res,
                                       field_selector=f"type={TOKEN_TYPE}")
        self.accounts = shared_informer(client, self.sa_res)
        super().__init__(client, [self.secrets, self.accounts])
        self.key_file = data_dir / "sa.key"
        self._sign: Sign | None = None
        self.secrets.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.accounts.add_handlers(on_add=self._enqueue_secrets,
                                   on_update=lambda _o, n: self._enqueue_secrets(n),
                                   on_delete=self._enqueue_secrets)

    def _enqueue_secrets(self, account: Obj) -> None:
        meta = account.get("metadata") or {}
        for secret in self.secrets.cache.list():
            smeta = secret["metadata"]
            if smeta.get("namespace") == meta.get("namespace") and \
                    (smeta.get("annotations") or {}).get(NAME_ANNOTATION) == meta.get("name"):
                self.enqueue(secret)

    def sign(self, claims: dict[str, Any]) -> str:
        if self._sign is None:
            from tinykube import sa_keys  # imports cryptography: only once a Secret needs it

            key = sa_keys.load_or_make(self.key_file)
            self._sign = lambda c: sa_keys.sign_jwt(key, c)
        return self._sign(claims)

    async def sync(self, key: str) -> None:
        secret = self.secrets.cache.get(key)
        if secret is None:
            return
        meta = secret["metadata"]
        name = (meta.get("annotations") or {}).get(NAME_ANNOTATION, "")
        account = self.accounts.cache.get(f"{meta['namespace']}/{name}") if name else None
        decision = decide(secret, account)
        with contextlib.suppress(errors.NotFound, errors.Conflict):  # gone or replaced: its
            if decision.delete:                                          # own event comes
                await self.client.delete(self.secret_res, meta["name"], meta["namespace"],
                                         preconditions={"uid": meta["uid"]})
            elif decision.fill and account is not None:
                await self.client.update(self.secret_res, filled(
                    secret, account, self.client.config.ca_data or b"", self.sign))
