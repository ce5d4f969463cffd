"""Registry credentials and the `WWW-Authenticate` challenge.

Credentials come as the kubelet finds them: a `kubernetes.io/dockerconfigjson` Secret's
`.dockerconfigjson` (or a legacy `kubernetes.io/dockercfg` `.dockercfg`), or the user's
`~/.docker/config.json`. Both are `{"auths": {KEY: {"auth": base64("user:password")}}}` (or
`username`/`password` fields; the legacy form has the entries at the top level). A KEY is
matched to a registry as the kubelet's credential keyring does: `https://index.docker.io/v1/`
and `docker.io` both mean Docker Hub, a scheme and path are ignored, the longest matching key
wins (`127.0.0.1:5000/demo` before `127.0.0.1:5000`). `credsStore`/`credHelpers` helpers are
not run.

`parse_challenge` reads `Bearer realm="...",service="...",scope="..."` (and `Basic
realm="..."`) as distribution writes it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from tinykube.images.reference import DOCKER_HUB, Reference

MAX_CONFIG = 1 << 20  # a docker config larger than 1 MiB is refused
_HUB_KEYS = {"index.docker.io", "registry-1.docker.io", "docker.io"}
_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


class CredentialError(ValueError):
    """A docker config that cannot be read."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A username and password for one registry (or an identity token as password)."""

    username: str
    password: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: its scheme (lowercase) and parameters."""

    scheme: str
    params: Mapping[str, str]


def _entry(key: str, value: object) -> Credentials:
    if not isinstance(value, dict):
        raise CredentialError(f"auths[{key!r}] is not an object")
    if value.get("auth"):
        try:
            decoded = base64.b64decode(value["auth"], validate=True).decode()
            user, sep, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError, TypeError) as exc:
            raise CredentialError(f"auths[{key!r}].auth is not base64 of user:password") from exc
        if not sep:
            raise CredentialError(f"auths[{key!r}].auth has no ':' between user and password")
        return Credentials(user, password)
    if value.get("identitytoken"):
        return Credentials(str(value.get("username") or "<token>"), str(value["identitytoken"]))
    return Credentials(str(value.get("username", "")), str(value.get("password", "")))


def parse_docker_config(data: bytes | str) -> dict[str, Credentials]:
    """The `auths` of a docker config (or of a legacy dockercfg): key -> credentials."""
    if len(data) > MAX_CONFIG:
        raise CredentialError(f"docker config larger than {MAX_CONFIG} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CredentialError(f"docker config is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CredentialError("docker config is not a JSON object")
    auths = doc.get("auths", doc if "auths" not in doc and "credsStore" not in doc else {})
    if not isinstance(auths, dict):
        raise CredentialError("docker config's auths is not an object")
    return {key: _entry(key, value) for key, value in auths.items()}


def from_secret(data: Mapping[str, str]) -> dict[str, Credentials]:
    """The credentials of an image pull Secret's `data` (base64 values, as the API gives them)."""
    for field in (".dockerconfigjson", ".dockercfg"):
        if field in data:
            try:
                return parse_docker_config(base64.b64decode(data[field], validate=True))
            except binascii.Error as exc:
                raise CredentialError(f"{field} is not base64") from exc
    raise CredentialError("secret has neither .dockerconfigjson nor .dockercfg")


def from_file(path: Path) -> dict[str, Credentials]:
    """The credentials of `~/.docker/config.json` (nothing if the file does not exist)."""
    try:
        with path.open("rb") as f:
            return parse_docker_config(f.read(MAX_CONFIG + 1))
    except FileNotFoundError:
        return {}


def _key_parts(key: str) -> tuple[str, str]:
    key = re.sub(r"^[a-z]+://", "", key.strip()).rstrip("/")
    host, _, path = key.partition("/")
    if host in _HUB_KEYS:
        host, path = DOCKER_HUB, "" if path.startswith("v1") or path.startswith("v2") else path
    return host, path


def lookup(keyrings: Iterable[Mapping[str, Credentials]], ref: Reference) -> Credentials | None:
    """The credentials for `ref`: the longest key matching its registry (and repository path),
    from the first keyring that has one (pod secrets in order, then the node's file)."""
    for ring in keyrings:
        best: tuple[int, Credentials] | None = None
        for key, creds in ring.items():
            host, path = _key_parts(key)
            if host != ref.registry:
                continue
            if path and ref.repository != path and not ref.repository.startswith(f"{path}/"):
                continue
            if best is None or len(path) > best[0]:
                best = (len(path), creds)
        if best is not None:
            return best[1]
    return None


def parse_challenge(header: str) -> Challenge:
    """`Bearer realm="r",service="s"` -> Challenge("bearer", {...}); unknown text -> empty."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        quoted, bare = m.group(2), m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        pos = m.end()
    return Challenge(scheme.lower(), params)


def basic_header(creds: Credentials) -> str:
    """The `Authorization: Basic ...` value for `creds`."""
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
