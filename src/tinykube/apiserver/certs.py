"""Credentials in the data directory: a CA, a serving certificate, tokens, a kubeconfig.

`ensure_credentials` creates what is missing and reuses what is there, so a second `tinykube up`
on the same data directory keeps working kubeconfigs. Two random tokens: the admin's (in the
kubeconfig) and the kubelet token, which the API server presents to the node agents' kubelet
endpoints (logs, exec) and which reaches the node agents in their start-up options.

The CA and the serving certificate are ECDSA P-256 (fast to generate: `tinykube up` must be
ready in under a second), made by `apiserver.pki` only when missing or when the hosts changed;
the serving certificate names `localhost`, `127.0.0.1`, the listening address, and the
`kubernetes` Service as in-cluster clients reach it: its cluster IP (the service CIDR's first)
and `SERVICE_NAMES` (`https://kubernetes.default.svc` is what client-go's in-cluster config and
most in-cluster tools dial). `apiserver.hosts` records the names the certificate was made for,
so that comparing them needs no certificate parsing (and no `cryptography` import) at start: a
certificate made for other names (an older tinykube's, without `SERVICE_NAMES`; another
`--service-cidr`) is reissued by the same CA, so existing kubeconfigs keep verifying. The
admin's client certificate (`admin.crt`, CN `kubernetes-admin`, O `system:masters`, as
kubeadm's `admin.conf`) is made beside them when missing.
"""


from __future__ import annotations

import base64
import dataclasses
import secrets
from pathlib import Path

import yaml

from tinykube import private

ADMIN_CERT_USER = "kubernetes-admin"  # kubeadm's admin.conf subject: CN, then O
ADMIN_CERT_GROUPS = ["system:masters"]
SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")


@dataclasses.dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    token: str = dataclasses.field(repr=False)
    kubeconfig: Path
    # What the API server shows the node agents' kubelet endpoints.
    kubelet_token: str = dataclasses.field(repr=False)
    # Signs ServiceAccount tokens (tinykube.sa_keys), here and in the token controller.
    service_account_key: Path


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, token: str,
                     name: str = "tinykube") -> None:
    """The admin's kubeconfig; cluster and context are `name`, the user `tinykube-admin` for
    the default cluster and `name` for a named one (so merged kubeconfigs keep them apart),
    with the admin token. Beside it, when the data directory has the admin client certificate,
    user and context `kubernetes-admin@NAME` authenticate with it instead (kind's and
    kubeadm's kind of admin kubeconfig)."""
    user = "tinykube-admin" if name == "tinykube" else name
    cert_user = f"{ADMIN_CERT_USER}@{name}"
    cert, key = ca_cert.parent / "admin.crt", ca_cert.parent / "admin.key"
    users: list[dict[str, object]] = [{"name": user, "user": {"token": token}}]
    contexts = [{"name": name, "context": {"cluster": name, "user": user,
                                           "namespace": "default"}}]
    if cert.exists() and key.exists():
        users.append({"name": cert_user, "user": {
            "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(key.read_bytes()).decode()}})
        contexts.append({"name": cert_user, "context": {
            "cluster": name, "user": cert_user, "namespace": "default"}})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
        }}],
        "users": users,
        "contexts": contexts,
        "current-context": name,
        "preferences": {},
    }
    private.write(path, yaml.safe_dump(config, sort_keys=False))


def ensure_credentials(data_dir: Path, *, hosts: list[str]) -> Credentials:
    """Create (or reuse) the CA, serving certificate and admin token.

    The kubeconfig is written by `write_kubeconfig` once the listening port is known.
    """
    (data_dir / "serviceaccount.key").unlink(missing_ok=True)  # HS256, before sa.key
    hosts_file = data_dir / "apiserver.hosts"
    have_hosts = hosts_file.read_text().split("\n") if hosts_file.exists() else []
    if not (data_dir / "apiserver.crt").exists() or sorted(have_hosts) != sorted(hosts):
        from tinykube.apiserver import pki  # imports cryptography: only when one is made

        pki.ensure_serving(data_dir, hosts)
    if not (data_dir / "admin.crt").exists() or not (data_dir / "admin.key").exists():
        from tinykube.apiserver import pki

        pki.make_client(data_dir, "admin", ADMIN_CERT_USER, ADMIN_CERT_GROUPS)
    if not (data_dir / "sa.key").exists():  # made here, before the token controller reads it
        from tinykube import sa_keys

        sa_keys.load_or_make(data_dir / "sa.key")
    return Credentials(data_dir / "ca.crt", data_dir / "apiserver.crt", data_dir / "apiserver.key",
                       _token(data_dir / "admin.token"), data_dir / "kubeconfig",
                       _token(data_dir / "kubelet.token"), data_dir / "sa.key")


def _token(path: Path) -> str:
    """The token in `path`, made (random, readable by its owner only) if missing."""
    if not path.exists():
        private.write(path, secrets.token_urlsafe(32))
    return path.read_text().strip()
