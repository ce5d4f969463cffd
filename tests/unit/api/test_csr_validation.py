"""CertificateSigningRequest validation and update strategy, as kube-apiserver's."""

from __future__ import annotations

import base64
import copy
import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tinykube.api import certificates as certs
from tinykube.api import validation

KIND = "CertificateSigningRequest"
_KEY = ec.generate_private_key(ec.SECP256R1())
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
REQUEST = base64.b64encode(x509.CertificateSigningRequestBuilder().subject_name(_NAME)
                           .sign(_KEY, hashes.SHA256())
                           .public_bytes(serialization.Encoding.PEM)).decode()
_CERT = (x509.CertificateBuilder().subject_name(_NAME).issuer_name(_NAME)
         .public_key(_KEY.public_key()).serial_number(1)
         .not_valid_before(datetime.datetime(2026, 1, 1))
         .not_valid_after(datetime.datetime(2027, 1, 1)).sign(_KEY, hashes.SHA256()))
CERT = base64.b64encode(_CERT.public_bytes(serialization.Encoding.PEM)).decode()
APPROVED = {"type": "Approved", "status": "True", "reason": "KubectlApprove"}
DENIED = {"type": "Denied", "status": "True"}
FAILED = {"type": "Failed", "status": "True"}


def csr(*conditions: dict[str, Any], certificate: str = "", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "c"}, "spec": {
        "request": REQUEST, "signerName": "kubernetes.io/kube-apiserver-client",
        "usages": ["client auth"], **spec}, "status": {}}
    if conditions:
        obj["status"]["conditions"] = list(conditions)
    if certificate:
        obj["status"]["certificate"] = certificate
    return obj


def _b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(csr(), [], id="valid"),
    pytest.param(csr(usages=[]), ["spec.usages: Required value"], id="no-usages"),
    pytest.param(csr(usages=["client auth", "bogus"]),
                 ['spec.usages[1]: Unsupported value: "bogus": supported values: "any", '],
                 id="unknown-usage"),
    pytest.param(csr(usages=["client auth", "client auth"]),
                 ['spec.usages[1]: Duplicate value: "client auth"'], id="duplicate-usage"),
    pytest.param(csr(signerName="kubernetes.io/legacy-unknown"),
                 ['spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy '
                  'signerName is not allowed via this API version'], id="legacy"),
    pytest.param(csr(signerName="nodomain"),
                 ['spec.signerName: Invalid value: "nodomain": must be a fully qualified '
                  "domain and path of the form 'example.com/signer-name'"], id="signer-shape"),
    pytest.param(csr(signerName="Example.com/x"),
                 ['spec.signerName: Invalid value: "Example.com/x": a lowercase RFC 1123 '],
                 id="signer-domain"),
    pytest.param(csr(expirationSeconds=599),
                 ["spec.expirationSeconds: Invalid value: 599: may not specify a duration "
                  "less than 600 seconds (10 minutes)"], id="short"),
    pytest.param(csr(request=_b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE"
                                  b"-----\n")),
                 ["spec.request: Invalid value: []byte{0x2d, 0x2d, "], id="not-a-request"),
    pytest.param(csr(APPROVED, DENIED),
                 ['status.conditions[1].type: Invalid value: "Denied": Approved and Denied '
                  'conditions are mutually exclusive'], id="approved-and-denied"),
    pytest.param(csr(APPROVED, APPROVED),
                 ['status.conditions[1].type: Duplicate value: "Approved"'], id="duplicate"),
    pytest.param(csr({"type": "Approved", "status": "False"}),
                 ['status.conditions[0].status: Unsupported value: "False": supported values: '
                  '"True"'], id="approved-false"),
    pytest.param(csr({"type": "", "status": "True"}),
                 ["status.conditions[0].type: Required value"], id="no-type"),
    pytest.param(csr({"type": "Custom", "status": "Maybe"}),
                 ['status.conditions[0].status: Unsupported value: "Maybe": supported values: '
                  '"False", "True", "Unknown"'], id="custom-status"),
    pytest.param(csr(certificate=_b64(b"junk")),
                 ['status.certificate: Invalid value: "<certificate data>": must contain at '
                  "least one CERTIFICATE PEM block"], id="certificate-junk"),
    pytest.param(csr(certificate=_b64(b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE "
                                      b"KEY-----\n")),
                 ['status.certificate: Invalid value: "<certificate data>": only CERTIFICATE '
                  'PEM blocks are allowed, found "PRIVATE KEY"'], id="certificate-key"),
    pytest.param(csr(certificate=CERT), [], id="certificate-good"),
])
def test_create(obj: dict[str, Any], expected: list[str]) -> None:
    errors = [str(e) for e in validation.validate(KIND, obj)]
    assert len(errors) == len(expected), errors
    for error, prefix in zip(errors, expected, strict=True):
        assert error.startswith(prefix), error


def _tampered(der_index: int) -> str:
    request = x509.load_pem_x509_csr(base64.b64decode(REQUEST))
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[der_index] ^= 0x01
    body = base64.encodebytes(bytes(der))
    return _b64(b"-----BEGIN CERTIFICATE REQUEST-----\n" + body +
                b"-----END CERTIFICATE REQUEST-----\n")


@pytest.mark.parametrize(("request_", "detail"), [
    pytest.param(_tampered(-1), ": x509: ECDSA verification failure", id="signature"),
    pytest.param(_tampered(60), ": x509: Invalid key", id="public-key"),
])
def test_a_tampered_request_is_refused(request_: str, detail: str) -> None:
    errors = [str(e) for e in validation.validate(KIND, csr(request=request_))]
    assert len(errors) == 1 and errors[0].startswith("spec.request: Invalid value: []byte{")
    assert detail in errors[0], errors[0][-200:]


@pytest.mark.parametrize(("old", "new", "subresource", "expected"), [
    pytest.param(csr(), csr(APPROVED), "approval", [], id="approve"),
    pytest.param(csr(), csr(APPROVED), "status",
                 ['status.conditions: Forbidden: updates may not add a condition of type '
                  '"Approved"'], id="approve-through-status"),
    pytest.param(csr(APPROVED), csr(), "approval",
                 ['status.conditions: Forbidden: updates may not remove a condition of type '
                  '"Approved"'], id="unapprove"),
    pytest.param(csr(APPROVED), csr({**APPROVED, "reason": "Other"}), "status",
                 ['status.conditions: Forbidden: updates may not modify a condition of type '
                  '"Approved"'], id="modify-through-status"),
    pytest.param(csr(APPROVED), csr(APPROVED, DENIED), "approval",
                 ['status.conditions[1].type: Invalid value: "Denied": Approved and Denied '
                  'conditions are mutually exclusive'], id="deny-an-approved"),
    pytest.param(csr(APPROVED, DENIED), csr(APPROVED, DENIED, FAILED), "status", [],
                 id="stored-both-tolerated"),
    pytest.param(csr(APPROVED), csr(APPROVED, certificate=CERT), "status", [], id="issue"),
    pytest.param(csr(APPROVED), csr(APPROVED, certificate=CERT), "approval",
                 ["status.certificate: Forbidden: updates may not set certificate content"],
                 id="issue-through-approval"),
    pytest.param(csr(APPROVED, certificate=CERT), csr(APPROVED, certificate=_b64(b"x")),
                 "status", ['status.certificate: Invalid value: "<certificate data>"',
                            "status.certificate: Forbidden: updates may not modify existing "
                            "certificate content"], id="reissue"),
    pytest.param(csr(APPROVED, FAILED), csr(APPROVED), "status",
                 ['status.conditions: Forbidden: updates may not remove a condition of type '
                  '"Failed"'], id="unfail"),
])
def test_update(old: dict[str, Any], new: dict[str, Any], subresource: str,
                expected: list[str]) -> None:
    errors = [str(e) for e in validation.validate(KIND, new, old, subresource=subresource)]
    assert len(errors) == len(expected), errors
    for error, prefix in zip(errors, expected, strict=True):
        assert error.startswith(prefix), error


NOW = "2026-01-02T03:04:05Z"
EARLIER = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(("old", "new", "subresource", "expected"), [
    pytest.param(csr(APPROVED), csr(usages=["server auth"]), "", csr(APPROVED),
                 id="object-keeps-spec-and-status"),
    pytest.param(csr(), {**csr(APPROVED, certificate=CERT), "spec": {}}, "approval",
                 csr({**APPROVED, "lastUpdateTime": NOW, "lastTransitionTime": NOW}),
                 id="approval-sets-conditions-only"),
    pytest.param(csr({**APPROVED, "lastTransitionTime": EARLIER}),
                 csr(APPROVED, FAILED, certificate=CERT), "status",
                 csr({**APPROVED, "lastUpdateTime": NOW, "lastTransitionTime": EARLIER},
                     {**FAILED, "lastUpdateTime": NOW, "lastTransitionTime": NOW},
                     certificate=CERT), id="status-keeps-transition-times"),
])
def test_prepare_update(old: dict[str, Any], new: dict[str, Any], subresource: str,
                        expected: dict[str, Any]) -> None:
    before = copy.deepcopy((old, new))
    assert certs.prepare_update(new, old, subresource, NOW) == expected
    assert (old, new) == before
