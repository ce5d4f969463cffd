"""Issuing a certificate from the cluster CA for an approved request (upstream's `authority`).

kube-controller-manager signs with the CA files it is given (`--cluster-signing-cert-file`,
`--cluster-signing-key-file`, in kubeadm clusters the API server's own `ca.crt`/`ca.key`);
tinykube's controllers do the same with the data directory's `ca.crt` and `ca.key`, the CA
that `apiserver.pki` made and the API server trusts. `CertificateAuthority.load` returns None
when they are not there (controllers run against another cluster): nothing is then signed.

`issue` follows `PermissiveSigningPolicy`: subject and SANs from the request, the requested
usages as key usages and extended key usages, every other requested extension dropped, not
a CA; NotBefore is now minus `BACKDATE`; NotAfter is now plus the TTL, minus the backdate
too unless the certificate is short-lived (under `SHORT`), and never after the CA's own.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ObjectIdentifier

from tinykube.api import certificates as certs

BACKDATE = datetime.timedelta(minutes=5)
SHORT = datetime.timedelta(hours=8)  # 5 minutes of backdating is about 1% of this

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SignerExpiredError(ValueError):
    """The CA's validity has ended; nothing can be signed with it."""


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    certificate: x509.Certificate
    key: SigningKey = dataclasses.field(repr=False)

    @classmethod
    def load(cls, data_dir: Path) -> CertificateAuthority | None:
        cert_file, key_file = data_dir / "ca.crt", data_dir / "ca.key"
        if not cert_file.exists() or not key_file.exists():
            return None
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            return None
        return cls(x509.load_pem_x509_certificate(cert_file.read_bytes()), key)

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc


def validity(now: datetime.datetime, ttl: datetime.timedelta,
             signer_not_after: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """(NotBefore, NotAfter) for a certificate of `ttl` issued at `now`."""
    not_before = now - BACKDATE
    not_after = now + ttl if ttl < SHORT else now + ttl - BACKDATE
    not_after = min(not_after, signer_not_after)
    if not_before >= signer_not_after:
        raise SignerExpiredError(f"the signer has expired: NotAfter={signer_not_after}")
    if now >= signer_not_after:
        raise SignerExpiredError("refusing to sign a certificate that expired in the past: "
                                 f"NotAfter={signer_not_after}")
    return not_before, not_after


def _key_usage(usages: Sequence[str]) -> x509.KeyUsage | None:
    flags = {certs.KEY_USAGES[u] for u in usages if u in certs.KEY_USAGES}
    if not flags:
        return None
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: name in flags for name in names})


def _ext_key_usage(usages: Sequence[str]) -> x509.ExtendedKeyUsage | None:
    oids = list(dict.fromkeys(certs.EXT_KEY_USAGES[u] for u in usages
                              if u in certs.EXT_KEY_USAGES))
    return x509.ExtendedKeyUsage([ObjectIdentifier(o) for o in oids]) if oids else None


def _san(request: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def issue(ca: CertificateAuthority, request: x509.CertificateSigningRequest,
          usages: Sequence[str], ttl: datetime.timedelta, now: datetime.datetime) -> bytes:
    """The PEM certificate for `request`, signed by `ca`."""
    not_before, not_after = validity(now, ttl, ca.not_after)
    builder = (
        x509.CertificateBuilder().subject_name(request.subject)
        .issuer_name(ca.certificate.subject).public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    key_usage, ext_key_usage, san = _key_usage(usages), _ext_key_usage(usages), _san(request)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ext_key_usage is not None:
        builder = builder.add_extension(ext_key_usage, critical=False)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)
