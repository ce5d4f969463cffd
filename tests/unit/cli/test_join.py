"""The pure parts of joining a node: the token Secret, the CA pin, the CSR and its outcome
(a joining node's pod range is node IPAM's: tests/unit/controllers/test_nodeipam.py)."""

from __future__ import annotations

import base64
import datetime
import hashlib
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tinykube import join
from tinykube.api.bootstraptoken import parse, secret_data
from tinykube.controllers.csrsigning import check_kubelet_client, request_view

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_token_secret_is_kubeadms_layout() -> None:
    obj = join.token_secret("abcdef.0123456789abcdef", ttl=datetime.timedelta(hours=24),
                            now=NOW, description="for n2")
    assert obj["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert obj["type"] == "bootstrap.kubernetes.io/token"
    assert secret_data(obj) == {
        "token-id": "abcdef", "token-secret": "0123456789abcdef",
        "expiration": "2026-01-02T00:00:00Z", "description": "for n2",
        "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}


def test_token_without_ttl_never_expires() -> None:
    obj = join.token_secret("abcdef.0123456789abcdef", ttl=None, now=NOW)
    assert "expiration" not in secret_data(obj)


def test_generated_tokens_parse() -> None:
    assert all(parse(join.generate_token()) for _ in range(50))


def test_ca_cert_hash_is_sha256_of_the_public_key_info() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "ca")])
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(
        key.public_key()).serial_number(1).not_valid_before(NOW).not_valid_after(
        NOW + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    assert join.ca_cert_hash(pem) == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_the_node_request_passes_the_kubelet_client_signer_rules() -> None:
    _, request_pem = join.node_key_and_request("n2")
    csr = join.csr_object("n2", request_pem)
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    request = x509.load_pem_x509_csr(request_pem)
    assert check_kubelet_client(request_view(request), csr["spec"]["usages"]) is None


OUTCOMES: list[tuple[str, dict[str, Any], Any]] = [
    ("pending", {}, None),
    ("approved, not yet signed", {"status": {"conditions": [
        {"type": "Approved", "status": "True"}]}}, None),
    ("issued", {"status": {"certificate": base64.b64encode(b"PEM").decode()}}, b"PEM"),
    ("denied", {"status": {"conditions": [
        {"type": "Denied", "status": "True", "message": "no"}]}}, "Denied: no"),
    ("failed", {"status": {"conditions": [
        {"type": "Failed", "status": "True", "message": "bad"}]}}, "Failed: bad"),
]


@pytest.mark.parametrize(("csr", "expected"), [c[1:] for c in OUTCOMES],
                         ids=[c[0] for c in OUTCOMES])
def test_csr_outcome(csr: dict[str, Any], expected: Any) -> None:
    assert join.csr_outcome(csr) == expected
