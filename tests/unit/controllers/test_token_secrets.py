"""The token controller's decision, as a table, and the Secret it fills in: a token the API
server's issuer accepts, with kube's legacy claims."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest

from tinykube import sa_keys
from tinykube.apiserver import sa_tokens
from tinykube.controllers import token_secrets as ts

ACCOUNT = {"metadata": {"name": "app", "namespace": "ns", "uid": "sa-1"}}


def secret(annotations: dict[str, str] | None = None, data: dict[str, str] | None = None,
           type_: str = ts.TOKEN_TYPE, **meta: Any) -> dict[str, Any]:
    return {"type": type_, "data": data or {}, "metadata": {
        "name": "app-token", "namespace": "ns", "uid": "s-1", "annotations": annotations
        if annotations is not None else {ts.NAME_ANNOTATION: "app"}, **meta}}


FULL = {"token": "dA==", "ca.crt": "Yw==", "namespace": "bnM="}
NAMED_UID = {ts.NAME_ANNOTATION: "app", ts.UID_ANNOTATION: "sa-1"}
CASES: dict[str, tuple[Any, Any, ts.Decision]] = {
    "no secret": (None, ACCOUNT, ts.Decision()),
    "another type": (secret(type_="Opaque"), ACCOUNT, ts.Decision()),
    "no account annotation": (secret({}), ACCOUNT, ts.Decision()),
    "being deleted": (secret(deletionTimestamp="2026-01-01T00:00:00Z"), None, ts.Decision()),
    "new: fill": (secret(), ACCOUNT, ts.Decision(fill=True)),
    "filled but no uid annotation": (secret(data=FULL), ACCOUNT, ts.Decision(fill=True)),
    "complete": (secret(NAMED_UID, FULL), ACCOUNT, ts.Decision()),
    "account missing: delete": (secret(), None, ts.Decision(delete=True)),
    "account recreated: delete": (
        secret({ts.NAME_ANNOTATION: "app", ts.UID_ANNOTATION: "old"}), ACCOUNT,
        ts.Decision(delete=True)),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_decide(case: str) -> None:
    obj, account, expected = CASES[case]
    assert ts.decide(obj, account) == expected


def test_filled_secret_holds_a_token_the_issuer_reads(tmp_path: Path) -> None:
    key = sa_keys.load_or_make(tmp_path / "sa.key")
    new = ts.filled(secret(), ACCOUNT, b"CA PEM", lambda c: sa_keys.sign_jwt(key, c))
    assert new["metadata"]["annotations"][ts.UID_ANNOTATION] == "sa-1"
    assert base64.b64decode(new["data"]["ca.crt"]) == b"CA PEM"
    assert base64.b64decode(new["data"]["namespace"]) == b"ns"
    token = base64.b64decode(new["data"]["token"]).decode()
    issuer = sa_tokens.Issuer(tmp_path / "sa.key", lambda: datetime.datetime.now(datetime.UTC))
    claims = issuer.claims(token)
    assert claims is not None and claims["iss"] == "kubernetes/serviceaccount"
    assert sa_tokens.account_of(claims) == ("ns", "app", "sa-1")
    assert sa_tokens.secret_of(claims) == "app-token"
    assert "exp" not in claims
    # a filled secret keeps its token: filling again changes nothing
    assert ts.filled(new, ACCOUNT, b"CA PEM", lambda c: "other") == new
