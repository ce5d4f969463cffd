"""Kubeconfig and in-cluster loading with temp files, `load()` precedence, and TLS end to end."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tinykube.api import resources
from tinykube.client.config import (
    ClientConfig,
    ConfigError,
    load,
    load_in_cluster,
    load_kubeconfig,
)
from tinykube.client.rest import RESTClient

# --- certificates (made once per test that needs them) ------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, ip: str | None = None) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class PKI:
    def __init__(self) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("test-ca", ca_key, "test-ca", ca_key, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_cert = _cert("apiserver", server_key, "test-ca", ca_key, ca=False,
                                 ip="127.0.0.1")
        self.server_key = _pem_key(server_key)
        client_key = ec.generate_private_key(ec.SECP256R1())
        self.client_cert = _cert("admin", client_key, "test-ca", ca_key, ca=False)
        self.client_key = _pem_key(client_key)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kubeconfig(path: Path, clusters: dict[str, Any], users: dict[str, Any],
                contexts: dict[str, tuple[str, str, str | None]], current: str = "") -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u,
                                              **({"namespace": ns} if ns else {})}}
                     for n, (c, u, ns) in contexts.items()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


# --- kubeconfig fields --------------------------------------------------------------------------


def _write(tmp: Path, name: str, data: bytes) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / name).write_bytes(data)
    return name  # relative: resolved against the kubeconfig's directory


USERS: list[Any] = [
    pytest.param(lambda tmp, pki: {"token": "abc"},
                 {"token": "abc", "current_token": "abc"}, id="inline-token"),
    pytest.param(lambda tmp, pki: {"tokenFile": _write(tmp, "tok", b"from-file\n")},
                 {"token": None, "current_token": "from-file"}, id="token-file-relative"),
    pytest.param(lambda tmp, pki: {"client-certificate-data": _b64(pki.client_cert),
                                   "client-key-data": _b64(pki.client_key)},
                 {"cert_data": "client_cert", "key_data": "client_key", "cert_file": None},
                 id="client-cert-data"),
    pytest.param(lambda tmp, pki: {"client-certificate": _write(tmp, "c.crt", pki.client_cert),
                                   "client-key": _write(tmp, "c.key", pki.client_key)},
                 {"cert_file": "c.crt", "key_file": "c.key"}, id="client-cert-files"),
]

CLUSTERS: list[Any] = [
    pytest.param(lambda tmp, pki: {"server": "https://h:6443/",
                                   "certificate-authority-data": _b64(pki.ca)},
                 {"server": "https://h:6443", "ca_data": "ca", "insecure": False}, id="ca-data"),
    pytest.param(lambda tmp, pki: {"server": "https://h:6443",
                                   "certificate-authority": _write(tmp, "ca.crt", pki.ca)},
                 {"ca_data": "ca"}, id="ca-file-relative"),
    pytest.param(lambda tmp, pki: {"server": "https://h:6443", "insecure-skip-tls-verify": True},
                 {"ca_data": None, "insecure": True}, id="insecure"),
]


def _expected_value(value: Any, tmp: Path, pki: PKI) -> Any:
    if value in ("ca", "client_cert", "client_key"):
        return getattr(pki, value)
    if isinstance(value, str) and value.endswith((".crt", ".key")):
        return str(tmp / value)
    return value


def _check(config: ClientConfig, expected: dict[str, Any], tmp: Path, pki: PKI) -> None:
    for field, value in expected.items():
        actual = config.current_token() if field == "current_token" else getattr(config, field)
        assert actual == _expected_value(value, tmp, pki), field
    if config.server.startswith("https://"):
        assert isinstance(config.ssl_context(), ssl.SSLContext)  # certs and keys actually load


@pytest.mark.parametrize(("make_user", "expected"), USERS)
def test_kubeconfig_users(tmp_path: Path, pki: PKI, make_user: Any,
                          expected: dict[str, Any]) -> None:
    cluster = {"server": "https://h:6443", "certificate-authority-data": _b64(pki.ca)}
    user = make_user(tmp_path / "kc", pki)
    path = _kubeconfig(tmp_path / "kc" / "config", {"c": cluster}, {"u": user},
                       {"ctx": ("c", "u", None)}, current="ctx")
    _check(load_kubeconfig(str(path)), expected, tmp_path / "kc", pki)


@pytest.mark.parametrize(("make_cluster", "expected"), CLUSTERS)
def test_kubeconfig_clusters(tmp_path: Path, pki: PKI, make_cluster: Any,
                             expected: dict[str, Any]) -> None:
    path = _kubeconfig(tmp_path / "kc" / "config", {"c": make_cluster(tmp_path / "kc", pki)},
                       {"u": {"token": "t"}}, {"ctx": ("c", "u", None)}, current="ctx")
    config = load_kubeconfig(str(path))
    _check(config, expected, tmp_path / "kc", pki)
    if config.insecure:
        context = config.ssl_context()
        assert context is not None and context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(("context", "server", "namespace"), [
    pytest.param(None, "http://one", "default", id="current-context"),
    pytest.param("two", "http://two", "kube-system", id="explicit-context"),
])
def test_kubeconfig_context_choice(tmp_path: Path, context: str | None, server: str,
                                   namespace: str) -> None:
    path = _kubeconfig(tmp_path / "config",
                       {"c1": {"server": "http://one"}, "c2": {"server": "http://two"}},
                       {"u": {"token": "t"}},
                       {"one": ("c1", "u", None), "two": ("c2", "u", "kube-system")},
                       current="one")
    config = load_kubeconfig(str(path), context)
    assert (config.server, config.namespace) == (server, namespace)
    assert config.ssl_context() is None  # plain http


@pytest.mark.parametrize(("contexts", "current", "message"), [
    pytest.param({"x": ("c", "u", None)}, "", "context '' not found", id="no-current-context"),
    pytest.param({"x": ("nope", "u", None)}, "x", "cluster 'nope'", id="missing-cluster"),
])
def test_kubeconfig_errors(tmp_path: Path, contexts: dict[str, Any], current: str,
                           message: str) -> None:
    path = _kubeconfig(tmp_path / "config", {"c": {"server": "http://s"}}, {}, contexts, current)
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(str(path))


def test_kubeconfig_list_merges_first_definition_wins(tmp_path: Path) -> None:
    first = _kubeconfig(tmp_path / "a" / "config", {"c": {"server": "http://first"}},
                        {"u": {"token": "first"}}, {"ctx": ("c", "u", None)}, current="ctx")
    second = _kubeconfig(tmp_path / "b" / "config",
                         {"c": {"server": "http://second"}, "only2": {"server": "http://only2"}},
                         {"u": {"token": "second"}},
                         {"ctx": ("c", "u", None), "other": ("only2", "u", None)},
                         current="other")
    missing = str(tmp_path / "missing")
    config = load_kubeconfig([missing, str(first), str(second)])
    assert (config.server, config.token) == ("http://first", "first")
    assert load_kubeconfig([str(first), str(second)], "other").server == "http://only2"


# --- in-cluster and precedence ------------------------------------------------------------------


def _service_account(directory: Path, ca: bytes) -> Path:
    directory.mkdir(parents=True)
    (directory / "token").write_text("sa-token\n")
    (directory / "ca.crt").write_bytes(ca)
    (directory / "namespace").write_text("team-a")
    return directory


@pytest.mark.parametrize(("host", "server"), [
    pytest.param("10.96.0.1", "https://10.96.0.1:443", id="ipv4"),
    pytest.param("fd00::1", "https://[fd00::1]:443", id="ipv6"),
])
def test_in_cluster(tmp_path: Path, pki: PKI, host: str, server: str) -> None:
    account = _service_account(tmp_path / "sa", pki.ca)
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": "443"}
    config = load_in_cluster(env, str(account))
    assert config.server == server and config.ca_data == pki.ca
    assert config.current_token() == "sa-token" and config.namespace == "team-a"
    (account / "token").write_text("rotated")
    assert config.current_token() == "rotated"  # projected tokens rotate


@pytest.mark.parametrize(("explicit", "kubeconfig_env", "in_cluster", "home", "server"), [
    pytest.param(True, True, True, True, "http://explicit", id="explicit-wins"),
    pytest.param(False, True, True, True, "http://env", id="env-before-in-cluster"),
    pytest.param(False, False, True, True, "https://10.0.0.1:443", id="in-cluster-before-home"),
    pytest.param(False, False, False, True, "http://home", id="home-last"),
    pytest.param(False, False, False, False, None, id="nothing"),
])
def test_load_precedence(tmp_path: Path, pki: PKI, explicit: bool, kubeconfig_env: bool,
                         in_cluster: bool, home: bool, server: str | None) -> None:
    def kubeconfig(name: str, path: Path) -> str:
        return str(_kubeconfig(path, {"c": {"server": f"http://{name}"}}, {"u": {}},
                               {"x": ("c", "u", None)}, current="x"))

    env: dict[str, str] = {}
    if kubeconfig_env:
        env["KUBECONFIG"] = kubeconfig("env", tmp_path / "env.yaml")
    if in_cluster:
        env |= {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    account = _service_account(tmp_path / "sa", pki.ca) if in_cluster else tmp_path / "no-sa"
    home_dir = tmp_path / "home"
    if home:
        kubeconfig("home", home_dir / ".kube" / "config")
    path = kubeconfig("explicit", tmp_path / "explicit.yaml") if explicit else None
    if server is None:
        with pytest.raises(ConfigError):
            load(path, environ=env, service_account_dir=str(account), home=str(home_dir))
        return
    config = load(path, environ=env, service_account_dir=str(account), home=str(home_dir))
    assert config.server == server


# --- end to end: TLS verified against the kubeconfig's CA, bearer token sent ---------------------


async def test_tls_and_bearer_token_end_to_end(tmp_path: Path, pki: PKI) -> None:
    seen: list[str] = []

    async def namespace(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"kind": "Namespace", "metadata": {"name": "default"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default", namespace)
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (tmp_path / "s.crt").write_bytes(pki.server_cert)
    (tmp_path / "s.key").write_bytes(pki.server_key)
    server_ssl.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await site.start()
    port = runner.addresses[0][1]
    try:
        path = _kubeconfig(tmp_path / "config",
                           {"c": {"server": f"https://127.0.0.1:{port}",
                                  "certificate-authority-data": _b64(pki.ca)}},
                           {"u": {"token": "tls-token"}}, {"x": ("c", "u", None)}, current="x")
        namespaces = resources.lookup("", "v1", "namespaces")
        assert namespaces is not None
        async with RESTClient(load(str(path))) as client:
            assert (await client.get(namespaces, "default"))["kind"] == "Namespace"
        untrusted = ClientConfig(server=f"https://127.0.0.1:{port}", token="x")
        async with RESTClient(untrusted) as client:
            with pytest.raises(Exception, match="certificate verify failed"):
                await client.get(namespaces, "default")
    finally:
        await runner.cleanup()
    assert seen == ["Bearer tls-token"]
