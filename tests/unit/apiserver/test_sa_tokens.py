"""ServiceAccount tokens: issued with kube's claims and request rules, accepted until they
expire, refused when altered or signed under another key."""

from __future__ import annotations

import datetime

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


def test_token_carries_kubes_claims_until_it_expires() -> None:
    clock = Clock()
    issuer = sa_tokens.Issuer(b"key", clock)
    answer = issuer.issue(ACCOUNT, {"spec": {"expirationSeconds": 600, "audiences": ["x"]}})
    assert answer["status"]["expirationTimestamp"] == "2026-01-01T00:10:00Z"
    claims = issuer.claims(answer["status"]["token"])
    assert claims is not None
    assert claims["sub"] == "system:serviceaccount:ci:builder" and claims["aud"] == ["x"]
    assert sa_tokens.account_of(claims) == ("ci", "builder", "u-1")
    clock.now = START + datetime.timedelta(seconds=600)
    assert issuer.claims(answer["status"]["token"]) is None


@pytest.mark.parametrize("change", ["other-key", "altered-payload", "not-a-jwt"])
def test_foreign_or_altered_tokens_are_refused(change: str) -> None:
    issuer = sa_tokens.Issuer(b"key", Clock())
    token = issuer.issue(ACCOUNT, {})["status"]["token"]
    header, payload, signature = token.split(".")
    forged = {"other-key": sa_tokens.Issuer(b"other", Clock()).issue(ACCOUNT, {})["status"][
                  "token"],
              "altered-payload": f"{header}.{payload[:-2]}xx.{signature}",
              "not-a-jwt": "admin-token"}[change]
    assert issuer.claims(forged) is None


def test_default_duration_and_the_ten_minute_minimum() -> None:
    issuer = sa_tokens.Issuer(b"key", Clock())
    assert issuer.issue(ACCOUNT, {})["spec"]["expirationSeconds"] == 3600
    with pytest.raises(errors.Invalid) as short:
        issuer.issue(ACCOUNT, {"spec": {"expirationSeconds": 300}})
    assert "may not specify a duration less than 10 minutes" in str(short.value)
    assert sa_tokens.user_info("ci", "builder", "u-1")["groups"] == [
        "system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]
