"""Image references as Docker and containerd normalise them, and the endpoint serving them.

`parse("nginx")` is `docker.io/library/nginx:latest`, as containerd's CRI names it in its
messages; a name whose first component has a `.` or `:` or is `localhost` names its registry
(`127.0.0.1:5000/demo/busybox:1`). The grammar is distribution's `reference` package's:
lowercase path components joined by `.`, `_`, `__` or dashes, a tag of at most 128 word
characters, a digest `sha256:` + 64 hex. Anything else is `invalid reference format`, the
kubelet's `InvalidImageName`.

`endpoint` says how to reach the registry: plain HTTP for loopback hosts (`localhost`,
`127.0.0.0/8`, `::1`, as containerd and Docker treat them) and for hosts the caller lists as
insecure (`--insecure-registry`), HTTPS otherwise; Docker Hub's API host is
`registry-1.docker.io`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Collection

from tinykube.images.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_MAX_NAME = 255


@dataclasses.dataclass(frozen=True)
class Reference:
    """A normalised image reference: registry host, repository path, tag and/or digest."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """`registry/repository`, the image's name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def object(self) -> str:
        """What to ask the registry's `manifests/` for: the digest if any, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def _invalid(image: str) -> InvalidReference:
    return InvalidReference(f'couldn\'t parse image name "{image}": invalid reference format')


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return DOCKER_HUB, name


def parse(image: str) -> Reference:
    """Normalise `image` (default registry docker.io, `library/` there, tag `latest` when the
    reference has neither tag nor digest); `InvalidReference` if it breaks the grammar."""
    rest, _, digest = image.partition("@")
    if digest and not _DIGEST.match(digest):
        raise _invalid(image)
    name, tag = rest, ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise _invalid(image)
    registry, path = _split_domain(name)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if (not _DOMAIN.match(registry) or not _PATH.match(path)
            or len(f"{registry}/{path}") > _MAX_NAME):
        raise _invalid(image)
    return Reference(registry, path, tag or ("" if digest else "latest"), digest)


def is_loopback(host: str) -> bool:
    """Whether `host` (without its port) is a loopback name or address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_of(registry: str) -> str:
    """`registry` without its port (`[::1]:5000` -> `[::1]`)."""
    if registry.startswith("["):
        return registry[: registry.index("]") + 1]
    return registry.rsplit(":", 1)[0] if ":" in registry else registry


def endpoint(registry: str, insecure: Collection[str] = ()) -> str:
    """The base URL of `registry`'s v2 API: http for loopback and `insecure` hosts."""
    api = DOCKER_HUB_API if registry == DOCKER_HUB else registry
    plain = is_loopback(host_of(registry)) or registry in insecure or host_of(registry) in insecure
    return f"{'http' if plain else 'https'}://{api}"
