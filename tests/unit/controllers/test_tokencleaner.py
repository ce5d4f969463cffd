"""The token cleaner's decision: when a bootstrap token Secret is due for deletion."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest

from tinykube.controllers.tokencleaner import expires_in

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def secret(expiration: str | None, *, type_: str = "bootstrap.kubernetes.io/token",
           deleting: bool = False) -> dict[str, Any]:
    data = {"token-id": "abcdef", "token-secret": "0123456789abcdef"}
    if expiration is not None:
        data["expiration"] = expiration
    meta: dict[str, Any] = {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T11:00:00Z"
    return {"type": type_, "metadata": meta,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


CASES = [
    ("expires in an hour", secret("2026-01-01T13:00:00Z"), 3600.0),
    ("expired a second ago", secret("2026-01-01T11:59:59Z"), 0.0),
    ("expires now", secret("2026-01-01T12:00:00Z"), 0.0),
    ("unparsable: due now", secret("soon"), 0.0),
    ("no expiration: kept", secret(None), None),
    ("not a bootstrap token", secret("2026-01-01T11:00:00Z", type_="Opaque"), None),
    ("already being deleted", secret("2026-01-01T11:00:00Z", deleting=True), None),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_expires_in(obj: dict[str, Any], expected: float | None) -> None:
    assert expires_in(obj, NOW) == expected
