"""Manifests, indexes and the platform this machine runs.

The four media types a registry may answer with: OCI and Docker v2 manifests (a config and
layers) and OCI indexes and Docker manifest lists (one manifest per platform). `parse` checks
the shape of a manifest document and returns either an `Index` or a `Manifest` with typed
descriptors; `choose` picks the index entry for `this_platform()` as containerd's default
platform matcher does: same os and architecture, the variant equal when both name one (arm64
with no variant counts as `v8`), an exact variant preferred.
"""

from __future__ import annotations

import dataclasses
import json
import platform as _platform
import re
from typing import Any

from tinykube.images.errors import NoMatchingPlatform, ResolveError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES)
MAX_MANIFEST = 4 << 20  # containerd's limit on a manifest or index body
MAX_CONFIG = 8 << 20
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_MACHINES = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"),
             "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
             "i686": ("386", ""), "i386": ("386", ""), "ppc64le": ("ppc64le", ""),
             "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


@dataclasses.dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclasses.dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclasses.dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclasses.dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def this_platform() -> Platform:
    """The os/architecture/variant of this machine, in Go's (GOOS/GOARCH) names."""
    machine = _platform.machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ResolveError(f"invalid manifest: {what} is not an object")
    digest, size = raw.get("digest"), raw.get("size")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ResolveError(f"invalid manifest: {what} has no sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ResolveError(f"invalid manifest: {what} has no size")
    plat = raw.get("platform")
    return Descriptor(str(raw.get("mediaType", "")), digest, size,
                      Platform(str(plat.get("os", "")), str(plat.get("architecture", "")),
                               str(plat.get("variant", "")))
                      if isinstance(plat, dict) else None)


def parse(body: bytes, content_type: str) -> Manifest | Index:
    """The manifest or index in `body` (its `mediaType`, else the response's Content-Type)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResolveError(f"invalid manifest: {exc}") from exc
    if not isinstance(doc, dict):
        raise ResolveError("invalid manifest: not a JSON object")
    media = str(doc.get("mediaType") or content_type.split(";")[0].strip())
    if media in INDEX_TYPES or (not media and "manifests" in doc):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ResolveError("invalid manifest: index has no manifests list")
        return Index(media, tuple(_descriptor(d, f"manifests[{i}]") for i, d in enumerate(entries)))
    if media not in (OCI_MANIFEST, DOCKER_MANIFEST, ""):
        raise ResolveError(f"unsupported manifest media type {media}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ResolveError("invalid manifest: no layers list")
    return Manifest(media or OCI_MANIFEST, _descriptor(doc.get("config"), "config"),
                    tuple(_descriptor(d, f"layers[{i}]") for i, d in enumerate(layers)))


def _matches(want: Platform, have: Platform | None) -> int:
    """0 if `have` does not run here, else a rank (2 = exact variant, 1 = compatible)."""
    if have is None or have.os != want.os or have.architecture != want.architecture:
        return 0
    have_variant = have.variant or ("v8" if have.architecture == "arm64" else "")
    if have_variant == want.variant:
        return 2
    return 1 if not have_variant or not want.variant else 0


def choose(index: Index, want: Platform) -> Descriptor:
    """The index entry for `want`; `NoMatchingPlatform` (containerd's text) if none."""
    ranked = [(_matches(want, d.platform), i, d) for i, d in enumerate(index.manifests)]
    ranked = [r for r in ranked if r[0]]
    if not ranked:
        raise NoMatchingPlatform("no match for platform in manifest: not found")
    return min(ranked, key=lambda r: (-r[0], r[1]))[2]


def diff_ids(config: bytes, layers: int) -> tuple[str, ...]:
    """The image config's `rootfs.diff_ids`, one per layer of the manifest."""
    try:
        doc = json.loads(config)
        ids = doc["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ResolveError(f"invalid image config: no rootfs.diff_ids ({exc})") from exc
    if (not isinstance(ids, list) or len(ids) != layers
            or not all(isinstance(d, str) and _DIGEST.match(d) for d in ids)):
        raise ResolveError(f"invalid image config: {layers} layers but diff_ids {ids!r}")
    return tuple(ids)
