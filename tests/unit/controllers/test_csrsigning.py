"""The CSR signer: its per-signer rules, durations, what it acts on, and the certificate."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tinykube.api import certificates as certs
from tinykube.controllers import csr_authority as authority
from tinykube.controllers.csrsigning import (
    SIGNERS,
    Decision,
    Request,
    check_apiserver_client,
    check_kubelet_client,
    check_kubelet_serving,
    decide,
    duration,
    failed_status,
    request_view,
    wanted_signer,
)

NODE = Request(common_name="system:node:n1", organizations=("system:nodes",))
SERVING = Request(common_name="system:node:n1", organizations=("system:nodes",),
                  dns_names=("n1.example",))
CLIENT = ["digital signature", "key encipherment", "client auth"]
SERVE = ["digital signature", "key encipherment", "server auth"]
CLIENT_MISMATCH = "usages did not match [client auth digital signature key encipherment]"
SERVING_MISMATCH = "usages did not match [digital signature key encipherment server auth]"


@pytest.mark.parametrize(("check", "req", "usages", "problem"), [
    pytest.param(check_apiserver_client, Request("alice"), ["client auth"], None,
                 id="client-auth-only"),
    pytest.param(check_apiserver_client, Request("alice"), CLIENT, None, id="client-all"),
    pytest.param(check_apiserver_client, Request("alice"), ["digital signature"],
                 "missing required usage for client certificate: client auth",
                 id="client-missing-client-auth"),
    pytest.param(check_apiserver_client, Request("alice"), ["client auth", "server auth"],
                 "invalid usage for client certificate: server auth", id="client-server-auth"),
    pytest.param(check_kubelet_client, NODE, CLIENT, None, id="kubelet-client-rsa"),
    pytest.param(check_kubelet_client, NODE, CLIENT[::2], None, id="kubelet-client-ecdsa"),
    pytest.param(check_kubelet_client, Request("system:node:n1", ("devs",)), CLIENT,
                 "subject organization is not system:nodes", id="kubelet-client-org"),
    pytest.param(check_kubelet_client,
                 Request("system:node:n1", ("system:nodes", "devs")), CLIENT,
                 "subject organization is not system:nodes", id="kubelet-client-two-orgs"),
    pytest.param(check_kubelet_client, Request("alice", ("system:nodes",)), CLIENT,
                 "subject common name does not begin with system:node:",
                 id="kubelet-client-cn"),
    pytest.param(check_kubelet_client, SERVING, CLIENT,
                 "DNS subjectAltNames are not allowed", id="kubelet-client-dns"),
    pytest.param(check_kubelet_client, Request(NODE.common_name, NODE.organizations,
                                               ip_addresses=("10.0.0.1",)), CLIENT,
                 "IP subjectAltNames are not allowed", id="kubelet-client-ip"),
    pytest.param(check_kubelet_client, NODE, ["client auth"], CLIENT_MISMATCH,
                 id="kubelet-client-usages"),
    pytest.param(check_kubelet_serving, SERVING, SERVE, None, id="serving"),
    pytest.param(check_kubelet_serving, SERVING, SERVE[::2], None, id="serving-ecdsa"),
    pytest.param(check_kubelet_serving, NODE, SERVE,
                 "DNS or IP subjectAltName is required", id="serving-no-san"),
    pytest.param(check_kubelet_serving, Request(NODE.common_name, NODE.organizations,
                                                ip_addresses=("10.0.0.1",)), SERVE, None,
                 id="serving-ip-only"),
    pytest.param(check_kubelet_serving, Request(NODE.common_name, NODE.organizations,
                                                dns_names=("a",), emails=("a@b",)), SERVE,
                 "Email subjectAltNames are not allowed", id="serving-email"),
    pytest.param(check_kubelet_serving, Request(NODE.common_name, NODE.organizations,
                                                dns_names=("a",), uris=("spiffe://x",)), SERVE,
                 "URI subjectAltNames are not allowed", id="serving-uri"),
    pytest.param(check_kubelet_serving, SERVING, CLIENT, SERVING_MISMATCH, id="serving-usages"),
    pytest.param(check_kubelet_serving, Request("n1", ("system:nodes",), ("a",)), SERVE,
                 "subject common name does not begin with system:node:", id="serving-cn"),
])
def test_signer_rules(check: Any, req: Request, usages: list[str], problem: str | None) -> None:
    assert check(req, usages) == problem


DAY = datetime.timedelta(days=1)


@pytest.mark.parametrize(("seconds", "cap", "expected"), [
    pytest.param(None, DAY, DAY, id="unset-is-the-cap"),
    pytest.param(3600, DAY, datetime.timedelta(hours=1), id="honoured"),
    pytest.param(10 * 86400, DAY, DAY, id="capped"),
    pytest.param(60, DAY, datetime.timedelta(minutes=10), id="at-least-10-minutes"),
    pytest.param(True, DAY, DAY, id="not-a-number"),
])
def test_duration(seconds: Any, cap: datetime.timedelta, expected: datetime.timedelta) -> None:
    assert duration(seconds, cap) == expected


APPROVED = {"type": "Approved", "status": "True"}
DENIED = {"type": "Denied", "status": "True"}
FAILED = {"type": "Failed", "status": "True"}


def _csr(signer: str, *conditions: dict[str, str], certificate: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if certificate:
        status["certificate"] = certificate
    return {"metadata": {"name": "c"}, "spec": {"signerName": signer}, "status": status}


CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"


@pytest.mark.parametrize(("csr", "acts"), [
    pytest.param(_csr(CLIENT_SIGNER, APPROVED), True, id="approved"),
    pytest.param(_csr(CLIENT_SIGNER), False, id="pending"),
    pytest.param(_csr(CLIENT_SIGNER, DENIED), False, id="denied"),
    pytest.param(_csr(CLIENT_SIGNER, APPROVED, DENIED), False, id="approved-and-denied"),
    pytest.param(_csr(CLIENT_SIGNER, APPROVED, FAILED), False, id="already-failed"),
    pytest.param(_csr(CLIENT_SIGNER, APPROVED, certificate="Y2VydA=="), False, id="issued"),
    pytest.param(_csr("kubernetes.io/legacy-unknown", APPROVED), False, id="legacy-unknown"),
    pytest.param(_csr("example.com/other", APPROVED), False, id="another-signer"),
    pytest.param(_csr("kubernetes.io/kubelet-serving", APPROVED), True, id="kubelet-serving"),
    pytest.param(_csr("kubernetes.io/kube-apiserver-client-kubelet", APPROVED), True,
                 id="kubelet-client"),
])
def test_wanted_signer(csr: dict[str, Any], acts: bool) -> None:
    assert (wanted_signer(csr) is not None) == acts


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"usages": ["client auth"], "expirationSeconds": 3600},
                 Decision(ttl=datetime.timedelta(hours=1)), id="sign"),
    pytest.param({"usages": ["server auth"]},
                 Decision(failure="invalid usage for client certificate: server auth"),
                 id="fail"),
])
def test_decide(spec: dict[str, Any], expected: Decision) -> None:
    assert decide(SIGNERS[CLIENT_SIGNER], Request("alice"), spec) == expected


def test_failed_status_leaves_its_input_alone() -> None:
    csr = _csr(CLIENT_SIGNER, APPROVED)
    before = repr(csr)
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    new = failed_status(csr, "no", now)
    assert repr(csr) == before
    assert new["status"]["conditions"][-1] == {
        "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
        "message": "no", "lastUpdateTime": "2026-01-02T03:04:05Z"}


NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
MINUTES = datetime.timedelta(minutes=1)


@pytest.mark.parametrize(("ttl", "ca_end", "expected"), [
    pytest.param(datetime.timedelta(hours=1), NOW + 365 * DAY,
                 (NOW - 5 * MINUTES, NOW + datetime.timedelta(hours=1)), id="short"),
    pytest.param(30 * DAY, NOW + 365 * DAY, (NOW - 5 * MINUTES, NOW + 30 * DAY - 5 * MINUTES),
                 id="long-is-backdated"),
    pytest.param(30 * DAY, NOW + DAY, (NOW - 5 * MINUTES, NOW + DAY), id="ca-ends-first"),
])
def test_validity(ttl: datetime.timedelta, ca_end: datetime.datetime,
                  expected: tuple[datetime.datetime, datetime.datetime]) -> None:
    assert authority.validity(NOW, ttl, ca_end) == expected


def test_validity_refuses_an_expired_ca() -> None:
    with pytest.raises(authority.SignerExpiredError, match="expired in the past"):
        authority.validity(NOW, DAY, NOW - MINUTES)


def _ca() -> authority.CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return authority.CertificateAuthority(cert, key)


def _request(cn: str, orgs: list[str], dns: list[str]) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_request_view_and_issue() -> None:
    request = _request("system:node:n1", ["system:nodes"], ["n1.example"])
    pem = request.public_bytes(serialization.Encoding.PEM)
    parsed = certs.parse_request(base64.b64encode(pem).decode())
    assert request_view(parsed) == SERVING
    ca = _ca()
    cert = x509.load_pem_x509_certificate(
        authority.issue(ca, parsed, SERVE[::2], DAY, NOW))
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject == request.subject
    assert cert.not_valid_before_utc == NOW - 5 * MINUTES
    assert cert.not_valid_after_utc == NOW + DAY - 5 * MINUTES
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_encipherment
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
