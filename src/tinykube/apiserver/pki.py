"""Making keys and certificates: the CA, the API server's serving certificate and client
certificates (the admin's, CN `kubernetes-admin` in O `system:masters` as kubeadm's), all ECDSA
P-256.

A module of its own so that `cryptography` (about 70 ms to import) is loaded only when a
certificate has to be made: a `tinykube up` that finds them in its data directory never
imports it. `apiserver.certs` decides what is missing.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tinykube import private

_VALID_FOR = datetime.timedelta(days=3650)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tinykube-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                       critical=True)
        .sign(key, hashes.SHA256())
    )
    private.write(data_dir / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
    private.write(data_dir / "ca.key", _pem_key(key))
    return cert, key


def load_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((data_dir / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((data_dir / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def make_serving(data_dir: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                  hosts: list[str]) -> None:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    private.write(data_dir / "apiserver.crt", cert.public_bytes(serialization.Encoding.PEM))
    private.write(data_dir / "apiserver.key", _pem_key(key))
    private.write(data_dir / "apiserver.hosts", "\n".join(hosts))


def ensure_serving(data_dir: Path, hosts: list[str]) -> None:
    """Make the serving certificate for `hosts`, with the CA (made first if missing)."""
    if (data_dir / "ca.crt").exists() and (data_dir / "ca.key").exists():
        ca, ca_key = load_ca(data_dir)
    else:
        ca, ca_key = make_ca(data_dir)
    make_serving(data_dir, ca, ca_key, hosts)


def make_client(data_dir: Path, name: str, common_name: str, organizations: list[str]) -> None:
    """`NAME.crt`/`NAME.key`: a client certificate (usage `client auth`) from the CA, which the
    API server takes as user `common_name` in groups `organizations`."""
    ca, ca_key = load_ca(data_dir)
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name(subject))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALID_FOR)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    private.write(data_dir / f"{name}.key", _pem_key(key))
    private.write(data_dir / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
