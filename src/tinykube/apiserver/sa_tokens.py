"""ServiceAccount tokens: what `kubectl create token NAME` (the `serviceaccounts/token`
subresource) issues, and what the API server then accepts as that service account.

A token is a JWT with kube's claims (`iss`, `sub` = `system:serviceaccount:NS:NAME`, `aud`,
`iat`, `nbf`, `exp`, `jti`, and `kubernetes.io` naming the namespace and the account's name and
uid), signed ES256 with the key in the data directory (`tinykube.sa_keys`: `sa.key`), so tokens
survive a restart. The public key is served as kube-apiserver serves it, for OIDC discovery:
`/.well-known/openid-configuration` (`discovery`) names the issuer and `/openid/v1/jwks`
(`jwks`), so any JWT library can check a token. A token is accepted until it expires and while
its service account exists with the uid it was issued for (delete the account and its tokens
stop working, as upstream) and, for a token bound to a pod (`boundObjectRef` kind Pod, what the
kubelet asks for), while that pod exists with its uid. What the identity may do is RBAC's.

Earlier tinykubes signed HS256 under `serviceaccount.key`; kube never had such tokens, so they
are not accepted any more (rotated on upgrade): the restarted node agents ask for new ones, and
a `kubectl create token` from before the upgrade must be made again.

A token Secret's token (type `kubernetes.io/service-account-token`, filled in by
`controllers.token_secrets` with the same key) has kube's legacy claims (issuer
`kubernetes/serviceaccount`, `kubernetes.io/serviceaccount/...` names, no expiry) and is
accepted while that Secret exists, is not being deleted and holds that token, and its account
exists with its uid.

Kube's request rules: `expirationSeconds` defaults to 3600 and must be at least 600 ("may not
specify a duration less than 10 minutes"); no audiences means the API server's own.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tinykube.api import errors
from tinykube.api.meta import rfc3339

if TYPE_CHECKING:
    from tinykube.sa_keys import SigningKey

Obj = dict[str, Any]

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"  # tokens in Secrets (`legacy_claims`)
_LEGACY = "kubernetes.io/serviceaccount/"
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600
_VERIFIED = 10_000
ALGORITHM = "ES256"  # sa_keys.ALGORITHM, without importing it
JWKS_PATH = "/openid/v1/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def user_info(namespace: str, name: str, uid: str) -> Obj:
    """The user a service account authenticates as, with kube's groups."""
    return {"username": f"system:serviceaccount:{namespace}:{name}", "uid": uid,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                       "system:authenticated"]}


@dataclasses.dataclass
class Issuer:
    key_file: Path  # the signing key (sa_keys), loaded or made on first use
    clock: Callable[[], datetime.datetime]
    issuer: str = ISSUER
    # tokens whose signature checked out, with their claims: a token is verified once, its
    # expiry at every use (at most _VERIFIED entries, dropped all at once when full)
    _verified: dict[str, Obj] = dataclasses.field(default_factory=dict, repr=False,
                                                  compare=False)
    _key: SigningKey | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            from tinykube import sa_keys  # imports cryptography: on first use

            self._key = sa_keys.load_or_make(self.key_file)
        return self._key

    def jwks(self) -> Obj:
        """`/openid/v1/jwks`: the public keys tokens are signed with."""
        return {"keys": [self.key.jwk()]}

    def discovery(self, jwks_uri: str) -> Obj:
        """`/.well-known/openid-configuration`, kube-apiserver's fields."""
        return {"issuer": self.issuer, "jwks_uri": jwks_uri,
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [ALGORITHM]}

    def issue(self, account: Obj, request: Any) -> Obj:
        """The TokenRequest answer for `account` (a ServiceAccount) and the request body."""
        spec = request.get("spec") if isinstance(request, dict) else None
        spec = spec if isinstance(spec, dict) else {}
        seconds = spec.get("expirationSeconds", DEFAULT_SECONDS)
        if not isinstance(seconds, int) or seconds < MIN_SECONDS:
            raise errors.Invalid("TokenRequest", "authentication.k8s.io", "", [
                errors.FieldError.invalid("spec.expirationSeconds", seconds,
                                          "may not specify a duration less than 10 minutes")])
        audiences = list(spec.get("audiences") or [ISSUER])
        meta = account["metadata"]
        now = self.clock()
        issued = int(now.timestamp())
        claims: Obj = {"aud": audiences, "exp": issued + seconds, "iat": issued,
                       "iss": self.issuer, "jti": str(uuid.uuid4()), "nbf": issued,
                       "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}",
                       "kubernetes.io": {"namespace": meta["namespace"], "serviceaccount": {
                           "name": meta["name"], "uid": meta["uid"]}}}
        bound = spec.get("boundObjectRef")
        if isinstance(bound, dict) and bound.get("kind") == "Pod":
            claims["kubernetes.io"]["pod"] = {"name": bound.get("name", ""),
                                              "uid": bound.get("uid", "")}
        token = self.sign(claims)
        expires = now + datetime.timedelta(seconds=seconds)
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "creationTimestamp": None},
                "spec": {"audiences": audiences, "expirationSeconds": seconds,
                         "boundObjectRef": spec.get("boundObjectRef")},
                "status": {"token": token, "expirationTimestamp": rfc3339(expires)}}

    def sign(self, claims: Obj) -> str:
        """A compact JWS of `claims` under the signing key."""
        from tinykube import sa_keys

        return sa_keys.sign_jwt(self.key, claims)

    def claims(self, token: str) -> Obj | None:
        """The claims of a token this issuer signed and that has not expired, else None."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if claims is None:
                return None
            if len(self._verified) >= _VERIFIED:
                self._verified.clear()
            self._verified[token] = claims
        if claims["iss"] == LEGACY_ISSUER:
            return claims  # never expires; valid while its Secret holds it
        now = self.clock().timestamp()
        if claims["exp"] <= now or int(claims.get("nbf", 0)) > now + 60:
            return None
        return claims

    def _verify(self, token: str) -> Obj | None:
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].startswith("eyJ"):
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
            return None  # also the HS256 tokens of earlier tinykubes (module docstring)
        if header.get("kid", self.key.kid) != self.key.kid:
            return None
        if not self.key.verify(f"{parts[0]}.{parts[1]}", parts[2]):
            return None
        if not isinstance(claims, dict):
            return None
        if claims.get("iss") == LEGACY_ISSUER:
            return claims if secret_of(claims) is not None else None
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int):
            return None
        return claims


def pod_of(claims: Obj) -> tuple[str, str] | None:
    """(name, uid) of the pod a token is bound to, or None."""
    pod = (claims.get("kubernetes.io") or {}).get("pod")
    if not isinstance(pod, dict):
        return None
    return str(pod.get("name", "")), str(pod.get("uid", ""))


def secret_of(claims: Obj) -> str | None:
    """The Secret a legacy token says it lives in, or None for another kind of token."""
    if claims.get("iss") != LEGACY_ISSUER:
        return None
    name = claims.get(f"{_LEGACY}secret.name")
    return name if isinstance(name, str) and name else None


def account_of(claims: Obj) -> tuple[str, str, str] | None:
    """(namespace, name, uid) a token's claims name."""
    if claims.get("iss") == LEGACY_ISSUER:
        return (str(claims.get(f"{_LEGACY}namespace", "")),
                str(claims.get(f"{_LEGACY}service-account.name", "")),
                str(claims.get(f"{_LEGACY}service-account.uid", "")))
    info = claims.get("kubernetes.io")
    if not isinstance(info, dict) or not isinstance(info.get("serviceaccount"), dict):
        return None
    account = info["serviceaccount"]
    return str(info.get("namespace", "")), str(account.get("name", "")), str(account.get("uid", ""))
