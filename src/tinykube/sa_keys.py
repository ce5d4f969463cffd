"""The ServiceAccount token signing key: ES256 (ECDSA P-256 with SHA-256), as kube-apiserver
signs with an EC `--service-account-signing-key-file`.

The key is `sa.key` (PKCS#8 PEM, owner-only) in the data directory, made when missing, so tokens
survive a restart. Its key id is kube's: the unpadded base64url SHA-256 of the public key's DER
(SubjectPublicKeyInfo), so a verifier picks the key from `/openid/v1/jwks` by the token's `kid`.
A module of its own because it imports `cryptography` (about 70 ms): `apiserver.sa_tokens`
loads it the first time a token is issued or checked, never at start; outside the components
because two of them sign with it: the API server (TokenRequest) and the token controller
(`controllers.token_secrets`, legacy token Secrets), as kube-controller-manager has
`--service-account-private-key-file`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tinykube import private

ALGORITHM = "ES256"
_SIZE = 32  # bytes of r and of s for P-256


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SigningKey:
    """One EC P-256 key: signs JWS payloads, checks their signatures, and describes itself as
    a JWK."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    def sign(self, payload: str) -> str:
        """The JWS signature of `header.claims`: r and s, 32 bytes each, base64url."""
        r, s = decode_dss_signature(self._key.sign(payload.encode(), ec.ECDSA(hashes.SHA256())))
        return _b64(r.to_bytes(_SIZE, "big") + s.to_bytes(_SIZE, "big"))

    def verify(self, payload: str, signature: str) -> bool:
        try:
            raw = _unb64(signature)
        except ValueError:
            return False
        if len(raw) != 2 * _SIZE:
            return False
        der = encode_dss_signature(int.from_bytes(raw[:_SIZE], "big"),
                                   int.from_bytes(raw[_SIZE:], "big"))
        try:
            self._public.verify(der, payload.encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def jwk(self) -> dict[str, Any]:
        """The public key as `/openid/v1/jwks` lists it (kube's field order)."""
        numbers = self._public.public_numbers()
        return {"use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": ALGORITHM,
                "x": _b64(numbers.x.to_bytes(_SIZE, "big")),
                "y": _b64(numbers.y.to_bytes(_SIZE, "big"))}


def sign_jwt(key: SigningKey, claims: dict[str, Any]) -> str:
    """A compact JWS of `claims` under `key`, with kube's header (`alg`, `kid`)."""
    header = {"alg": ALGORITHM, "kid": key.kid}
    payload = (f"{_b64(json.dumps(header, separators=(',', ':')).encode())}."
               f"{_b64(json.dumps(claims, separators=(',', ':')).encode())}")
    return f"{payload}.{key.sign(payload)}"


def load_or_make(path: Path) -> SigningKey:
    """The key in `path`, made (owner-only) if missing."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: not an EC private key")
        return SigningKey(key)
    key = ec.generate_private_key(ec.SECP256R1())
    private.write(path, key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return SigningKey(key)
