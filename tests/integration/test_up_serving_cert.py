"""The API server's certificate verifies under the names in-cluster clients dial.

In a pod, client-go and most tools reach the API server as `https://kubernetes.default.svc`
(or its short and long forms) or at the `kubernetes` Service IP, the service CIDR's first
address. A real TLS handshake (Python's `ssl`, verifying against the data directory's CA with
each name as server_hostname) and the real kubectl (`--tls-server-name`) must both succeed. A
data directory whose certificate an older tinykube made without those names gets a new one from
the same CA at start, so its existing kubeconfigs keep working.
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster
from tinykube.apiserver import pki

NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
         "kubernetes.default.svc.cluster.local", "localhost", "127.0.0.1"]
CIDRS = [  # --service-cidr, the kubernetes Service IP
    pytest.param(None, "127.96.0.1", id="default-cidr"),
    pytest.param("10.96.0.0/12", "10.96.0.1", id="10.96.0.0-12"),
]


def handshake(cluster: Cluster, server_hostname: str) -> None:
    """A TLS handshake with the API server, verifying its certificate for `server_hostname`."""
    url = urllib.parse.urlsplit(cluster.url)
    assert url.hostname is not None and url.port is not None
    context = ssl.create_default_context(cafile=str(cluster.data_dir / "ca.crt"))
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server_hostname) as tls:
        assert tls.version() is not None


def kubectl_as(cluster: Cluster, tmp_path: Path, server_name: str) -> str:
    kubectl = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path)
    return kubectl("--tls-server-name", server_name, "get", "namespace", "default",
                   "-o", "name")


@pytest.mark.parametrize(("cidr", "service_ip"), CIDRS)
def test_the_certificate_names_the_kubernetes_service(tmp_path: Path, cidr: str | None,
                                                      service_ip: str) -> None:
    cluster = start_cluster(tmp_path / "data", "--no-dns",
                            *(["--service-cidr", cidr] if cidr else []))
    try:
        for name in [*NAMES, service_ip]:
            handshake(cluster, name)
        assert kubectl_as(cluster, tmp_path, "kubernetes.default.svc") == "namespace/default\n"
        with pytest.raises(ssl.SSLCertVerificationError):  # the check does check
            handshake(cluster, "kubernetes.other.svc")
    finally:
        assert cluster.stop() == 0


def test_an_older_certificate_is_reissued_by_the_same_ca(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    ca, ca_key = pki.make_ca(data_dir)
    pki.make_serving(data_dir, ca, ca_key, ["127.0.0.1", "127.96.0.1", "localhost"])  # as before
    ca_pem = (data_dir / "ca.crt").read_bytes()
    cluster = start_cluster(data_dir, "--no-dns")
    try:
        assert (data_dir / "ca.crt").read_bytes() == ca_pem
        handshake(cluster, "kubernetes.default.svc")
        assert kubectl_as(cluster, tmp_path, "kubernetes.default.svc") == "namespace/default\n"
    finally:
        assert cluster.stop() == 0
