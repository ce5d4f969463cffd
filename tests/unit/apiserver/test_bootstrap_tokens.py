"""Bootstrap token authentication (upstream's checks, in order) and the x509 user of a
verified client certificate, as tables."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest

from tinykube.api.bootstraptoken import expired, parse
from tinykube.apiserver import access, bootstrap_tokens
from tinykube.apiserver.rbac import User

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
ID, SECRET = "abcdef", "0123456789abcdef"


def secret(**data: str) -> dict[str, Any]:
    fields = {"token-id": ID, "token-secret": SECRET, "usage-bootstrap-authentication": "true",
              "expiration": "2026-01-02T00:00:00Z", **data}
    return {"type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{ID}", "namespace": "kube-system"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()
                     if v != "-"}}


def with_(obj: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**obj, **top}


BASE = User("system:bootstrap:abcdef", ("system:bootstrappers",))
EXTRA = "system:bootstrappers:kubeadm:default-node-token"
USERS: list[tuple[str, dict[str, Any] | None, str, User | None]] = [
    ("a good token", secret(), SECRET, BASE),
    ("with extra groups", secret(**{"auth-extra-groups": EXTRA}), SECRET,
     User(BASE.name, (*BASE.groups, EXTRA))),
    ("no such secret", None, SECRET, None),
    ("being deleted", with_(secret(), metadata={"name": "x", "deletionTimestamp": "now"}),
     SECRET, None),
    ("another type", with_(secret(), type="Opaque"), SECRET, None),
    ("wrong secret", secret(), "fedcba9876543210", None),
    ("token-id differs", secret(**{"token-id": "zzzzzz"}), SECRET, None),
    ("expired", secret(expiration="2026-01-01T11:59:59Z"), SECRET, None),
    ("expires exactly now", secret(expiration="2026-01-01T12:00:00Z"), SECRET, None),
    ("unparsable expiration", secret(expiration="tomorrow"), SECRET, None),
    ("no expiration: never expires", secret(expiration="-"), SECRET, BASE),
    ("not for authentication", secret(**{"usage-bootstrap-authentication": "false"}), SECRET,
     None),
    ("usage missing", secret(**{"usage-bootstrap-authentication": "-"}), SECRET, None),
    ("extra group outside system:bootstrappers", secret(**{"auth-extra-groups": "admins"}),
     SECRET, None),
]


@pytest.mark.parametrize(("obj", "given", "expected"), [c[1:] for c in USERS],
                         ids=[c[0] for c in USERS])
def test_user_of(obj: dict[str, Any] | None, given: str, expected: User | None) -> None:
    assert bootstrap_tokens.user_of(obj, ID, given, NOW) == expected


PARSE = [
    ("abcdef.0123456789abcdef", ("abcdef", "0123456789abcdef")),
    ("ABCDEF.0123456789abcdef", None),
    ("abcdef.0123456789abcde", None),
    ("abcdef0123456789abcdef", None),
    ("eyJhbGciOiJSUzI1NiJ9.e30.sig", None),
]


@pytest.mark.parametrize(("token", "expected"), PARSE)
def test_parse(token: str, expected: tuple[str, str] | None) -> None:
    assert parse(token) == expected


def test_expired_without_a_zone_counts_as_expired() -> None:
    assert expired({"expiration": "2030-01-01T00:00:00"}, NOW)


CERTS: list[tuple[str, dict[str, Any], User | None]] = [
    ("node", {"subject": ((("organizationName", "system:nodes"),),
                          (("commonName", "system:node:n1"),))},
     User("system:node:n1", ("system:nodes", "system:authenticated"))),
    ("user in two groups", {"subject": ((("organizationName", "a"),),
                                        (("organizationName", "b"),),
                                        (("commonName", "jane"),))},
     User("jane", ("a", "b", "system:authenticated"))),
    ("no common name", {"subject": ((("organizationName", "a"),),)}, None),
    ("no subject", {}, None),
]


@pytest.mark.parametrize(("peer", "expected"), [c[1:] for c in CERTS],
                         ids=[c[0] for c in CERTS])
def test_certificate_user(peer: dict[str, Any], expected: User | None) -> None:
    assert access.user_from_certificate(peer) == expected


class _NoRBAC:
    def allowed(self, *_args: object) -> bool:
        return True


TOKENS: list[tuple[str, str, User | None]] = [
    ("the admin token", "admin-token", access.ADMIN),
    ("the kubelet token is the API server's kubelet client", "kubelet-token",
     access.KUBELET_CLIENT),
    ("a bootstrap token gets system:authenticated", "abcdef.0123456789abcdef",
     User("system:bootstrap:abcdef", ("system:bootstrappers", "system:authenticated"))),
    ("an unknown token", "nope", None),
]


@pytest.mark.parametrize(("token", "expected"), [c[1:] for c in TOKENS],
                         ids=[c[0] for c in TOKENS])
def test_token_user(token: str, expected: User | None) -> None:
    control = access.AccessControl(
        "admin-token", lambda _t: None, _NoRBAC(),  # type: ignore[arg-type]
        bootstrap=lambda t: BASE if t == f"{ID}.{SECRET}" else None,
        kubelet_client_token="kubelet-token")
    assert control.token_user(token) == expected
