"""Where the API server is and how to prove who we are: kubeconfig and in-cluster loading.

`load()` resolves a `ClientConfig` in this order (first match wins):

1. an explicit kubeconfig path (the `--kubeconfig` flag);
2. `$KUBECONFIG` (a `os.pathsep`-separated list; files are merged the way kubectl merges
   them: the first file that defines a name, or `current-context`, wins);
3. the in-cluster service account, when `KUBERNETES_SERVICE_HOST`/`_PORT` are set and the token
   file exists;
4. `~/.kube/config`.

Only what travels on the wire is kept: the server URL, a bearer token (inline or a token file that
is re-read, so projected tokens can rotate), the CA bundle, a client certificate and key, and the
`insecure-skip-tls-verify` switch. Relative file paths in a kubeconfig are relative to the file
that names them, as in client-go. Exec and auth-provider plugins are not supported; a user entry
that needs one loads without credentials.

`ClientConfig.ssl_context()` turns the TLS parts into an `ssl.SSLContext` (or `None` for
`http://` servers).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ConfigError(Exception):
    """No usable configuration, or a kubeconfig that does not say what it needs to."""


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """Everything a `RESTClient` needs to reach and authenticate to one API server."""

    server: str
    token: str | None = None
    ca_data: bytes | None = None  # PEM
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None  # PEM, from client-certificate-data
    key_data: bytes | None = None  # PEM, from client-key-data
    token_file: str | None = None  # re-read by current_token(); wins over `token`
    namespace: str = "default"  # the context's (or service account's) namespace
    unix_socket: str | None = None  # reach `server` through this unix socket instead of TCP

    def current_token(self) -> str | None:
        """The bearer token to send now: the token file's content if set, else `token`."""
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context for `server`, or None for plain HTTP."""
        if not self.server.startswith("https://"):
            return None
        if self.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            context = ssl.create_default_context(cadata=self.ca_data.decode())
        else:
            context = ssl.create_default_context()
        self._load_client_cert(context)
        return context

    def _load_client_cert(self, context: ssl.SSLContext) -> None:
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_data and self.key_data:
            # ssl can only read a certificate chain from files; keep them for as little as we can.
            with tempfile.TemporaryDirectory() as tmp:
                cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
                cert_path.write_bytes(self.cert_data)
                key_path.touch(mode=0o600)
                key_path.write_bytes(self.key_data)
                context.load_cert_chain(str(cert_path), str(key_path))


# --- kubeconfig ---------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid kubeconfig: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: kubeconfig is not a mapping")
    return data


def _named(entries: Any, field: str, base: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """`[{name: x, cluster: {...}}]` -> {"x": ({...}, directory of the defining file)}."""
    result: dict[str, tuple[dict[str, Any], Path]] = {}
    for entry in entries or []:
        if isinstance(entry, dict) and "name" in entry:
            result[str(entry["name"])] = (entry.get(field) or {}, base)
    return result


@dataclasses.dataclass
class _Merged:
    """Several kubeconfig files merged: the first definition of each name wins."""

    clusters: dict[str, tuple[dict[str, Any], Path]] = dataclasses.field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = dataclasses.field(default_factory=dict)
    contexts: dict[str, tuple[dict[str, Any], Path]] = dataclasses.field(default_factory=dict)
    current_context: str = ""

    def add(self, data: dict[str, Any], base: Path) -> None:
        for mine, entries, field in ((self.clusters, data.get("clusters"), "cluster"),
                                     (self.users, data.get("users"), "user"),
                                     (self.contexts, data.get("contexts"), "context")):
            for name, value in _named(entries, field, base).items():
                mine.setdefault(name, value)
        if not self.current_context:
            self.current_context = str(data.get("current-context") or "")


def _file_or_data(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """Read `<key>-data` (base64) or the file `<key>` (relative to `base`)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(str(entry[f"{key}-data"]))
    if entry.get(key):
        return (base / os.path.expanduser(str(entry[key]))).read_bytes()
    return None


def _path(entry: dict[str, Any], key: str, base: Path) -> str | None:
    value = entry.get(key)
    return str(base / os.path.expanduser(value)) if value else None


def _from_merged(merged: _Merged, context_name: str | None, origin: str) -> ClientConfig:
    name = context_name or merged.current_context
    if not name or name not in merged.contexts:
        raise ConfigError(f"{origin}: context {name!r} not found")
    context, _ = merged.contexts[name]
    cluster_name = context.get("cluster", "")
    if cluster_name not in merged.clusters:
        raise ConfigError(f"{origin}: cluster {cluster_name!r} of context {name!r} not found")
    cluster, cluster_base = merged.clusters[cluster_name]
    user, user_base = merged.users.get(context.get("user", ""), ({}, Path(".")))
    if not cluster.get("server"):
        raise ConfigError(f"{origin}: cluster {cluster_name!r} has no server")
    return ClientConfig(
        server=str(cluster["server"]).rstrip("/"),
        token=user.get("token") or None,
        token_file=_path(user, "tokenFile", user_base),
        ca_data=_file_or_data(cluster, "certificate-authority", cluster_base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        cert_file=None if user.get("client-certificate-data")
        else _path(user, "client-certificate", user_base),
        key_file=None if user.get("client-key-data") else _path(user, "client-key", user_base),
        cert_data=_decode(user.get("client-certificate-data")),
        key_data=_decode(user.get("client-key-data")),
        namespace=context.get("namespace") or "default",
    )


def _decode(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None


def load_kubeconfig(paths: str | list[str], context: str | None = None) -> ClientConfig:
    """Load one kubeconfig file, or merge several (kubectl's `$KUBECONFIG` rules)."""
    path_list = [paths] if isinstance(paths, str) else paths
    merged = _Merged()
    found = False
    for raw in path_list:
        path = Path(os.path.expanduser(raw))
        if not path.exists():
            if len(path_list) == 1:
                raise ConfigError(f"{path}: no such kubeconfig")
            continue  # kubectl skips missing entries of $KUBECONFIG
        merged.add(_read_yaml(path), path.resolve().parent)
        found = True
    if not found:
        raise ConfigError(f"none of {path_list} exists")
    return _from_merged(merged, context, os.pathsep.join(path_list))


# --- in-cluster -------------------------------------------------------------------------------


def in_cluster_available(environ: Mapping[str, str] | None = None,
                         service_account_dir: str = SERVICE_ACCOUNT_DIR) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT")
                and Path(service_account_dir, "token").exists())


def load_in_cluster(environ: Mapping[str, str] | None = None,
                    service_account_dir: str = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    """The pod's service account: token + CA from `service_account_dir`, server from the env."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
    account = Path(service_account_dir)
    token_path = account / "token"
    if not token_path.exists():
        raise ConfigError(f"{token_path}: no service account token")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    ca_path, ns_path = account / "ca.crt", account / "namespace"
    return ClientConfig(
        server=f"https://{host}:{port}",
        token_file=str(token_path),
        ca_data=ca_path.read_bytes() if ca_path.exists() else None,
        namespace=ns_path.read_text().strip() if ns_path.exists() else "default",
    )


# --- precedence ---------------------------------------------------------------------------------


def load(kubeconfig: str | None = None, context: str | None = None, *,
         environ: Mapping[str, str] | None = None,
         service_account_dir: str = SERVICE_ACCOUNT_DIR,
         home: str | None = None) -> ClientConfig:
    """Explicit path > $KUBECONFIG > in-cluster service account > ~/.kube/config.

    `environ`, `service_account_dir` and `home` are for tests; they default to the process's.
    """
    env = os.environ if environ is None else environ
    if kubeconfig:
        return load_kubeconfig(kubeconfig, context)
    if env.get("KUBECONFIG"):
        return load_kubeconfig([p for p in env["KUBECONFIG"].split(os.pathsep) if p], context)
    if in_cluster_available(env, service_account_dir):
        return load_in_cluster(env, service_account_dir)
    default = Path(home or os.path.expanduser("~"), ".kube", "config")
    if default.exists():
        return load_kubeconfig(str(default), context)
    raise ConfigError("no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not "
                      "running in a cluster")
