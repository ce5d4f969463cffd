"""Credentials in the data directory: a CA, a serving certificate, an admin token, a kubeconfig.

`ensure_credentials` creates what is missing and reuses what is there, so a second `tinykube up`
on the same data directory keeps working kubeconfigs. The CA and the serving certificate are
ECDSA P-256 (fast to generate: `tinykube up` must be ready in under a second); the serving
certificate names `localhost`, `127.0.0.1`, the `kubernetes` Service's cluster IP and the
listening address.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import ipaddress
import os
import secrets
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALID_FOR = datetime.timedelta(days=3650)


@dataclasses.dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    token: str
    kubeconfig: Path


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _make_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
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
    (data_dir / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(data_dir / "ca.key", _pem_key(key))
    return cert, key


def _load_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((data_dir / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((data_dir / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _make_serving(data_dir: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
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
    (data_dir / "apiserver.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(data_dir / "apiserver.key", _pem_key(key))
    (data_dir / "apiserver.hosts").write_text("\n".join(hosts))


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tinykube", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
        }}],
        "users": [{"name": "tinykube-admin", "user": {"token": token}}],
        "contexts": [{"name": "tinykube", "context": {
            "cluster": "tinykube", "user": "tinykube-admin", "namespace": "default"}}],
        "current-context": "tinykube",
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())


def ensure_credentials(data_dir: Path, *, hosts: list[str]) -> Credentials:
    """Create (or reuse) the CA, serving certificate and admin token.

    The kubeconfig is written by `write_kubeconfig` once the listening port is known.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / "ca.crt").exists() and (data_dir / "ca.key").exists():
        ca, ca_key = _load_ca(data_dir)
    else:
        ca, ca_key = _make_ca(data_dir)
    hosts_file = data_dir / "apiserver.hosts"
    have_hosts = hosts_file.read_text().split("\n") if hosts_file.exists() else []
    if not (data_dir / "apiserver.crt").exists() or sorted(have_hosts) != sorted(hosts):
        _make_serving(data_dir, ca, ca_key, hosts)
    token_file = data_dir / "admin.token"
    if not token_file.exists():
        _write_private(token_file, secrets.token_urlsafe(32).encode())
    token = token_file.read_text().strip()
    return Credentials(data_dir / "ca.crt", data_dir / "apiserver.crt", data_dir / "apiserver.key",
                       token, data_dir / "kubeconfig")
