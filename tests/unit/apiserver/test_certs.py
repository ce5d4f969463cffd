"""Credentials in the data directory: made once, reused, the serving certificate remade only
when the hosts it must name change (and then signed by the same CA)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from tinykube.apiserver import certs

HOSTS = ["localhost", "127.0.0.1", "127.96.0.1"]


def names(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
            | set(san.get_values_for_type(x509.DNSName)))


def test_made_once_then_reused(tmp_path: Path) -> None:
    first = certs.ensure_credentials(tmp_path, hosts=HOSTS)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.token"} <= set(files)
    assert names(first.server_cert) == set(HOSTS)
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    second = certs.ensure_credentials(tmp_path, hosts=list(reversed(HOSTS)))
    assert second == first
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_new_hosts_remake_the_serving_certificate_with_the_same_ca(tmp_path: Path) -> None:
    certs.ensure_credentials(tmp_path, hosts=HOSTS)
    ca_before = (tmp_path / "ca.crt").read_bytes()
    token_before = (tmp_path / "admin.token").read_text()
    creds = certs.ensure_credentials(tmp_path, hosts=[*HOSTS, "127.0.0.5"])
    assert names(creds.server_cert) == {*HOSTS, "127.0.0.5"}
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert creds.token == token_before.strip()
    ca = x509.load_pem_x509_certificate(ca_before)
    served = x509.load_pem_x509_certificate(creds.server_cert.read_bytes())
    served.verify_directly_issued_by(ca)
    assert ipaddress.ip_address("127.0.0.5") in served.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
