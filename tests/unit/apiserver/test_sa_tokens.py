"""ServiceAccount tokens: issued with kube's claims and request rules, accepted until they
expire, refused when altered or signed under another key; checked by a generic JWT library
(PyJWT) against the served JWKS, as any OIDC verifier would."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest

from tinykube.api import errors
from tinykube.apiserver import sa_tokens

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
ACCOUNT = {"metadata": {"name": "builder", "namespace": "ci", "uid": "u-1"}}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        return self.now


def test_token_carries_kubes_claims_until_it_expires(tmp_path: Path) -> None:
    clock = Clock()
    issuer = sa_tokens.Issuer(tmp_path / "sa.key", clock)
    answer = issuer.issue(ACCOUNT, {"spec": {"expirationSeconds": 600, "audiences": ["x"]}})
    assert answer["status"]["expirationTimestamp"] == "2026-01-01T00:10:00Z"
    claims = issuer.claims(answer["status"]["token"])
    assert claims is not None
    assert claims["sub"] == "system:serviceaccount:ci:builder" and claims["aud"] == ["x"]
    assert sa_tokens.account_of(claims) == ("ci", "builder", "u-1")
    clock.now = START + datetime.timedelta(seconds=600)
    assert issuer.claims(answer["status"]["token"]) is None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(claims: dict[str, object]) -> str:
    """A token as tinykubes before ES256 made them (HMAC under a shared key)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = f"{head}.{_b64(json.dumps(claims).encode())}"
    return f"{payload}.{_b64(hmac.new(b'k', payload.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("change", ["other-key", "altered-payload", "not-a-jwt", "hs256",
                                    "alg-none", "other-issuer"])
def test_foreign_or_altered_tokens_are_refused(change: str, tmp_path: Path) -> None:
    issuer = sa_tokens.Issuer(tmp_path / "sa.key", Clock())
    token = issuer.issue(ACCOUNT, {})["status"]["token"]
    header, payload, signature = token.split(".")
    claims = issuer.claims(token)
    assert claims is not None
    other = sa_tokens.Issuer(tmp_path / "other.key", Clock())
    none_header = _b64(json.dumps({"alg": "none"}).encode())
    forged = {"other-key": other.issue(ACCOUNT, {})["status"]["token"],
              "altered-payload": f"{header}.{payload[:-2]}xx.{signature}",
              "not-a-jwt": "admin-token",
              "hs256": _hs256(claims),
              "alg-none": f"{none_header}.{payload}.",
              "other-issuer": issuer.sign({**claims, "iss": "https://elsewhere"})}[change]
    assert issuer.claims(forged) is None


def test_the_key_survives_a_restart(tmp_path: Path) -> None:
    token = sa_tokens.Issuer(tmp_path / "sa.key", Clock()).issue(ACCOUNT, {})["status"]["token"]
    assert (tmp_path / "sa.key").stat().st_mode & 0o077 == 0
    assert sa_tokens.Issuer(tmp_path / "sa.key", Clock()).claims(token) is not None


def test_a_generic_jwt_library_verifies_tokens_against_the_jwks(tmp_path: Path) -> None:
    issuer = sa_tokens.Issuer(tmp_path / "sa.key", lambda: datetime.datetime.now(datetime.UTC))
    token = issuer.issue(ACCOUNT, {"spec": {"audiences": ["vault"]}})["status"]["token"]
    config = issuer.discovery("https://127.0.0.1:6443/openid/v1/jwks")
    assert config == {"issuer": sa_tokens.ISSUER,
                      "jwks_uri": "https://127.0.0.1:6443/openid/v1/jwks",
                      "response_types_supported": ["id_token"],
                      "subject_types_supported": ["public"],
                      "id_token_signing_alg_values_supported": ["ES256"]}
    keys = jwt.PyJWKSet.from_dict(issuer.jwks())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims = jwt.decode(token, key.key, algorithms=config["id_token_signing_alg_values_supported"],
                        audience="vault", issuer=config["issuer"])
    assert claims["sub"] == "system:serviceaccount:ci:builder"
    assert claims["kubernetes.io"]["serviceaccount"]["uid"] == "u-1"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=["ES256"], audience="other")


def test_default_duration_and_the_ten_minute_minimum(tmp_path: Path) -> None:
    issuer = sa_tokens.Issuer(tmp_path / "sa.key", Clock())
    assert issuer.issue(ACCOUNT, {})["spec"]["expirationSeconds"] == 3600
    with pytest.raises(errors.Invalid) as short:
        issuer.issue(ACCOUNT, {"spec": {"expirationSeconds": 300}})
    assert "may not specify a duration less than 10 minutes" in str(short.value)
    assert sa_tokens.user_info("ci", "builder", "u-1")["groups"] == [
        "system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]
