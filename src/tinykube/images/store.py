"""The content-addressed image cache in the data directory, with a size bound and GC.

Layout under the directory the caller gives (`DATA/images`):

    blobs/sha256/HEX          manifests, indexes, configs and layer blobs, by digest
    layers/HEX/fs             a layer unpacked (`unpack`), by the hex of its diff_id
    layers/HEX/layer.json     its form (overlay or oci) and unpacked size
    images.json               image records by manifest digest, and tag -> manifest digest
    containers/ID/            per-container root filesystems (`rootfs`)
    tmp/                      everything being written

Nothing enters `blobs/` or `layers/` but by `os.rename` from `tmp/` after verification, so an
interrupted pull leaves no partial blob or layer, only files in `tmp/`, which `Store()`
empties when it opens (a crashed agent's leftovers): so one `Store` per directory, opened by
the one process that pulls into it (the node agent). `images.json` is replaced the same way.

Garbage collection removes images, then the blobs and layers no remaining image references:
`free` removes chosen images until enough bytes are freed (the kubelet's policy that chooses
them, thresholds, ages and events, is `images.gc`); `gc` removes unused images least recently
used first until the cache fits a byte bound. Images named by a container's rootfs (`rootfs`)
always count as used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from tinykube.images.unpack import Form, LayerDir


@dataclasses.dataclass
class Layer:
    digest: str  # of the blob
    diff_id: str
    size: int  # of the blob
    unpacked: int = 0


@dataclasses.dataclass
class Image:
    """An image in the cache: what the kubelet shows (`imageID` is `name@digest`)."""

    digest: str  # of the manifest
    config: str
    config_size: int
    layers: list[Layer]
    manifest_size: int
    names: list[str] = dataclasses.field(default_factory=list)  # normalised references
    index: str = ""  # digest of the index the manifest was chosen from, if any
    pulled: float = 0.0
    last_used: float = 0.0

    @property
    def content_size(self) -> int:
        """Bytes of its blobs (manifest, config, compressed layers): the size containerd's
        CRI reports and the kubelet's `Pulled` event and `status.images` show."""
        return self.manifest_size + self.config_size + sum(ly.size for ly in self.layers)

    @property
    def size(self) -> int:
        """Bytes it takes in the cache: its blobs and its unpacked layers."""
        layers = sum(ly.size + ly.unpacked for ly in self.layers)
        return self.manifest_size + self.config_size + layers

    def blobs(self) -> set[str]:
        return {self.digest, self.config, *(ly.digest for ly in self.layers),
                *([self.index] if self.index else [])}


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hexpart


class Store:
    """The cache at `root`; `clock` gives the times recorded as pulled and last used."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.clock = clock
        for sub in ("blobs/sha256", "layers", "containers", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for leftover in (root / "tmp").iterdir():
            _remove(leftover)
        self.images: dict[str, Image] = {}
        self.tags: dict[str, str] = {}
        self.pulling = 0  # pulls in flight (they commit blobs before recording the image)
        self._load()

    def __repr__(self) -> str:
        return f"Store({self.root}, images={len(self.images)}, bytes={self.usage()})"

    # records

    def _load(self) -> None:
        try:
            doc: dict[str, Any] = json.loads((self.root / "images.json").read_bytes())
        except FileNotFoundError:
            return
        for raw in doc.get("images", []):
            raw["layers"] = [Layer(**ly) for ly in raw["layers"]]
            image = Image(**raw)
            self.images[image.digest] = image
        self.tags = dict(doc.get("tags", {}))

    def _save(self) -> None:
        doc = {"images": [dataclasses.asdict(i) for i in self.images.values()], "tags": self.tags}
        with self.temp_file() as (f, path):
            f.write(json.dumps(doc, indent=1).encode())
            f.flush()
            os.fsync(f.fileno())
            os.replace(path, self.root / "images.json")

    def find(self, ref: str) -> Image | None:
        """The image of a normalised reference (`name:tag`, or `name@digest` of its manifest
        or of the index it was chosen from)."""
        digest = ref.partition("@")[2] or self.tags.get(ref, "")
        if digest in self.images:
            return self.images[digest]
        return next((i for i in self.images.values() if digest and i.index == digest), None)

    def add(self, image: Image, ref: str) -> Image:
        """Record `image` (merging its names with an existing record) and tag `ref` to it."""
        now = self.clock()
        old = self.images.get(image.digest)
        if old is not None:
            image.names = sorted({*old.names, *image.names})
            image.pulled = old.pulled
        image.pulled = image.pulled or now
        image.last_used = now
        if ref not in image.names:
            image.names.append(ref)
        if "@" not in ref:
            self.tags[ref] = image.digest
        self.images[image.digest] = image
        self._save()
        return image

    def touch(self, digest: str) -> None:
        """Mark an image used now (a container was created from it)."""
        if digest in self.images:
            self.images[digest].last_used = self.clock()
            self._save()

    # content

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    @contextlib.contextmanager
    def temp_file(self) -> Iterator[tuple[Any, Path]]:
        """A new file in `tmp/`, removed on exit unless it was renamed away."""
        fd, name = tempfile.mkstemp(dir=self.root / "tmp")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, path
        finally:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def temp_dir(self) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(dir=self.root / "tmp"))
        try:
            yield path
        finally:
            _remove(path)

    def commit_blob(self, path: Path, digest: str) -> Path:
        """Move the verified file `path` to its place (keeping an existing copy)."""
        dest = self.blob_path(digest)
        os.chmod(path, 0o444)
        os.replace(path, dest)
        return dest

    def layer(self, diff_id: str) -> LayerDir | None:
        """The unpacked layer `diff_id`, if it is cached."""
        d = self.root / "layers" / _hex(diff_id)
        try:
            meta = json.loads((d / "layer.json").read_bytes())
        except FileNotFoundError:
            return None
        return LayerDir(d / "fs", Form(meta["form"]))

    def layer_size(self, diff_id: str) -> int:
        d = self.root / "layers" / _hex(diff_id)
        return int(json.loads((d / "layer.json").read_bytes())["size"])

    def commit_layer(self, tmp: Path, diff_id: str, form: Form, size: int) -> LayerDir:
        """Move the verified layer directory `tmp` (holding `fs/`) to its place."""
        (tmp / "layer.json").write_text(json.dumps({"diff_id": diff_id, "form": form.value,
                                                    "size": size}))
        dest = self.root / "layers" / _hex(diff_id)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "layer.json").exists():  # not a concurrent pull of the same layer
                raise
        return LayerDir(dest / "fs", form)

    # size and garbage collection

    def usage(self) -> int:
        """Bytes the cached images take (each blob and layer once)."""
        blobs: dict[str, int] = {}
        layers: dict[str, int] = {}
        for image in self.images.values():
            blobs[image.digest] = image.manifest_size
            blobs[image.config] = image.config_size
            for ly in image.layers:
                blobs[ly.digest] = ly.size
                layers[ly.diff_id] = ly.unpacked
        return sum(blobs.values()) + sum(layers.values())

    def used_by_containers(self) -> set[str]:
        used = set()
        for meta in (self.root / "containers").glob("*/container.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                used.add(json.loads(meta.read_bytes())["image"])
        return used

    def gc(self, limit: int, in_use: Collection[str] = ()) -> list[Image]:
        """Remove unused images, least recently used first, until `usage() <= limit`; then
        the blobs and layers no image references. `in_use`: manifest digests to keep."""
        keep = {*in_use, *self.used_by_containers()}
        removed = []
        for image in sorted(self.images.values(), key=lambda i: (i.last_used, i.digest)):
            if self.usage() <= limit:
                break
            if image.digest in keep:
                continue
            del self.images[image.digest]
            self.tags = {t: d for t, d in self.tags.items() if d != image.digest}
            removed.append(image)
        if removed:
            self._save()
            self._sweep()
        return removed

    def free(self, chosen: Iterable[Image], amount: int) -> tuple[list[Image], int]:
        """Remove the `chosen` images in order until `amount` bytes are freed (or none is
        left), then their blobs and layers no remaining image references; (removed, bytes
        freed)."""
        before = self.usage()
        removed = []
        for image in chosen:
            if before - self.usage() >= amount:
                break
            if self.images.pop(image.digest, None) is None:
                continue
            self.tags = {t: d for t, d in self.tags.items() if d != image.digest}
            removed.append(image)
        if removed:
            self._save()
            self._sweep()
        return removed, before - self.usage()

    def _sweep(self) -> None:
        blobs = {_hex(b) for i in self.images.values() for b in i.blobs()}
        layers = {_hex(ly.diff_id) for i in self.images.values() for ly in i.layers}
        for path in (self.root / "blobs" / "sha256").iterdir():
            if path.name not in blobs:
                path.unlink()
        for path in (self.root / "layers").iterdir():
            if path.name not in layers:
                _remove(path)


def _writable_retry(func: Callable[..., object], path: str, _exc: BaseException) -> None:
    """rmtree's error hook: a read-only directory (kept from a layer) is made writable."""
    parent = os.path.dirname(path)
    os.chmod(parent, os.stat(parent).st_mode | 0o700)
    func(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_writable_retry)
        else:
            shutil.rmtree(path, onerror=lambda f, p, e: _writable_retry(f, p, e[1]))
    else:
        path.unlink(missing_ok=True)
