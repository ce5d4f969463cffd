"""One layer tar into its own directory, whiteouts kept, escapes refused, diff_id checked.

Each layer is unpacked once into `layers/<diff_id hex>/fs` and shared: by an overlay mount
(lowest layer last in `lowerdir`) or by `rootfs.copy_layers`. So a layer's directory keeps
its whiteouts instead of applying them, in one of two forms (`Form`):

- `overlay` (as root): `.wh.NAME` becomes a character device 0/0 named NAME and
  `.wh..wh..opq` the `trusted.overlay.opaque=y` attribute on its directory: overlayfs' own
  representation, so the directory is a valid `lowerdir` as it is.
- `oci` (not root: no mknod, no trusted xattrs): the marker files stay as they are.

Paths are checked by us, not by `tarfile`'s filters (which strip setuid bits and refuse the
absolute symlinks real images have, `/bin/sh -> /bin/busybox`); `tarfile` extracts with
`filter="fully_trusted"` only after the checks: no absolute name, no `..`, and every parent
must resolve to a directory in the merged view of this layer over the lower ones (as
overlayfs would show it), so a symlink planted by any earlier layer (`etc -> /host/etc`) is
never followed; an existing non-directory entry is removed before a member replaces it, so
extraction never writes through a symlink. Hard links must name a regular file of the same
merged view (one in a lower layer is copied). Ownership is kept as root (numeric ids), modes
always (setuid, sticky), `SCHILY.xattr` attributes as root, devices only as root.

The blob is read once: gzip (`gzip` module) or zstd (the `zstandard` package, or Python's
`compression.zstd` from 3.14, when installed; otherwise a clear refusal) is decompressed in a
stream that hashes every byte it hands to `tarfile` in stream mode, and the rest of the
stream after the end-of-archive blocks too, so the diff_id is known when the last member is
written. The caller unpacks into a temporary directory and renames it only if it matches.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import gzip
import hashlib
import importlib
import os
import shutil
import stat
import tarfile
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

from tinykube.images.errors import UnpackError

OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."
OVERLAY_OPAQUE = "trusted.overlay.opaque"
MAX_MEMBERS = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


class Form(enum.Enum):
    OVERLAY = "overlay"
    OCI = "oci"


@dataclasses.dataclass(frozen=True)
class LayerDir:
    """An unpacked layer: its directory and the form its whiteouts take."""

    root: Path
    form: Form

    def is_whiteout(self, path: Path, st: os.stat_result | None) -> bool:
        if self.form is Form.OVERLAY:
            return st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        return os.path.lexists(path.parent / f"{WHITEOUT}{path.name}")

    def is_opaque(self, path: Path) -> bool:
        if self.form is Form.OVERLAY:
            try:
                return os.getxattr(path, OVERLAY_OPAQUE, follow_symlinks=False) == b"y"
            except OSError:
                return False
        return os.path.lexists(path / OPAQUE)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def lookup(layers: Sequence[LayerDir], parts: Sequence[str]) -> tuple[os.stat_result, Path] | None:
    """What `parts` is in the merged view of `layers` (top first), as overlayfs resolves it:
    a whiteout hides lower layers, a non-directory or an opaque directory stops the merge."""
    active = list(layers)
    found: tuple[os.stat_result, Path] | None = None
    for i in range(len(parts)):
        found, below = None, []
        for layer in active:
            path = layer.root.joinpath(*parts[: i + 1])
            st = _lstat(path)
            if layer.is_whiteout(path, st):
                break
            if st is None:
                continue
            if found is None:
                found = (st, path)
            if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(found[0].st_mode):
                break
            below.append(layer)
            if layer.is_opaque(path):
                break
        if found is None or (i < len(parts) - 1 and not stat.S_ISDIR(found[0].st_mode)):
            return None  # absent, or below a non-directory: not in the view
        active = below
    return found


def zstd_module() -> Any | None:
    """The zstd decompressor available here: `zstandard`, or Python 3.14's `compression.zstd`."""
    for name in ("zstandard", "compression.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class _Hashing:
    """A read-only stream that hashes (and counts) what passes through it, bounded."""

    def __init__(self, inner: BinaryIO, limit: int, diff_id: str,
                 stop: threading.Event | None) -> None:
        self.inner, self.limit, self.diff_id, self.stop = inner, limit, diff_id, stop
        self.sha = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        """At most `size` bytes (1 MiB when unbounded: tarfile always asks for a size)."""
        if self.stop is not None and self.stop.is_set():
            raise UnpackError(self.diff_id, "unpacking cancelled")
        data = self.inner.read(size if size >= 0 else 1 << 20)
        self.n += len(data)
        if self.n > self.limit:
            raise UnpackError(self.diff_id, f"layer larger than {self.limit} bytes uncompressed")
        self.sha.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.sha.hexdigest()


def _open_decompressed(blob: BinaryIO, diff_id: str) -> BinaryIO:
    magic = blob.read(4)
    blob.seek(0)
    if magic.startswith(_GZIP_MAGIC):
        return cast(BinaryIO, gzip.GzipFile(fileobj=blob, mode="rb"))
    if magic == _ZSTD_MAGIC:
        mod = zstd_module()
        if mod is None:
            raise UnpackError(diff_id, "zstd-compressed layer, but neither the zstandard package "
                                       "nor Python's compression.zstd is installed")
        if hasattr(mod, "ZstdDecompressor"):
            return cast(BinaryIO, mod.ZstdDecompressor().stream_reader(blob))
        return cast(BinaryIO, mod.ZstdFile(blob))
    return blob


class _Unpacker:
    """The state of one layer's unpacking: its directory, the layers below, checked parents."""

    def __init__(self, dest: LayerDir, lowers: Sequence[LayerDir], diff_id: str) -> None:
        self.dest, self.lowers, self.diff_id = dest, lowers, diff_id
        self.view = [dest, *lowers]
        self.dirs: set[tuple[str, ...]] = {()}
        self.deferred: list[tuple[tarfile.TarInfo, Path]] = []
        self.root = os.geteuid() == 0
        self.size = 0

    def refuse(self, name: str, why: str) -> UnpackError:
        return UnpackError(self.diff_id, f"refusing {name!r}: {why}")

    def parts(self, name: str) -> tuple[str, ...]:
        if name.startswith("/"):
            raise self.refuse(name, "absolute path in layer")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(name, "path escapes the root filesystem (..)")
        return parts

    def ensure_dir(self, parts: tuple[str, ...], name: str) -> Path:
        """Make `parts` a directory of this layer, checked against the merged view."""
        path = self.dest.root.joinpath(*parts)
        if parts in self.dirs:
            return path
        self.ensure_dir(parts[:-1], name)
        st = _lstat(path)
        if st is not None and stat.S_ISDIR(st.st_mode):
            self.dirs.add(parts)
            return path
        if st is not None and not self.dest.is_whiteout(path, st):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise self.refuse(name, f"parent {'/'.join(parts)} is {kind}")
        below = lookup(self.view, parts) if st is None else None
        if below is not None and not stat.S_ISDIR(below[0].st_mode):
            kind = "a symlink" if stat.S_ISLNK(below[0].st_mode) else "not a directory"
            raise self.refuse(name, f"parent {'/'.join(parts)} is {kind} in a lower layer")
        if st is not None:  # a whiteout of this layer: the new directory hides the lower one
            os.unlink(path)
        os.mkdir(path, 0o755)
        if below is not None:
            self.copy_attrs(below[0], path)
        elif st is not None:
            self.set_opaque(path)
        self.dirs.add(parts)
        return path

    def copy_attrs(self, st: os.stat_result, path: Path) -> None:
        if self.root:
            os.lchown(path, st.st_uid, st.st_gid)
        os.chmod(path, stat.S_IMODE(st.st_mode))

    def set_opaque(self, path: Path) -> None:
        if self.dest.form is Form.OVERLAY:
            os.setxattr(path, OVERLAY_OPAQUE, b"y", follow_symlinks=False)
        else:
            (path / OPAQUE).touch()

    def clear(self, path: Path, keep_dir: bool) -> None:
        st = _lstat(path)
        if st is None or (keep_dir and stat.S_ISDIR(st.st_mode)):
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self.dirs = {d for d in self.dirs if not _under(d, path, self.dest.root)}
        else:
            os.unlink(path)

    def whiteout(self, parts: tuple[str, ...], name: str) -> None:
        parent = self.ensure_dir(parts[:-1], name)
        base = parts[-1]
        if base == OPAQUE:
            self.set_opaque(parent)
            return
        target = parent / base[len(WHITEOUT):]
        self.clear(target, keep_dir=False)
        if self.dest.form is Form.OVERLAY:
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        else:
            (parent / base).touch()

    def hardlink(self, member: tarfile.TarInfo, path: Path) -> None:
        link = self.parts(member.linkname.lstrip("/"))
        found = lookup(self.view, link) if link else None
        if found is None or not stat.S_ISREG(found[0].st_mode):
            raise self.refuse(member.name, f"hard link to {member.linkname!r}, "
                                           "which is not a file of the image")
        if found[1].is_relative_to(self.dest.root):
            os.link(found[1], path)
        else:
            shutil.copy2(found[1], path)
            if self.root:
                os.chown(path, found[0].st_uid, found[0].st_gid)
                os.chmod(path, stat.S_IMODE(found[0].st_mode))

    def member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = self.parts(m.name)
        if not parts:
            return
        if parts[-1].startswith(WHITEOUT):
            self.whiteout(parts, m.name)
            return
        self.ensure_dir(parts[:-1], m.name)
        path = self.dest.root.joinpath(*parts)
        st = _lstat(path)
        replaces_whiteout = self.dest.form is Form.OVERLAY and self.dest.is_whiteout(path, st)
        self.clear(path, keep_dir=m.isdir())
        self.size += m.size if m.isreg() else 0
        if m.isdir():
            path.mkdir(exist_ok=True)
            if replaces_whiteout:  # deleted, then made anew: it must hide the lower one
                self.set_opaque(path)
            self.dirs.add(parts)
            self.deferred.append((m, path))
        elif m.islnk():
            self.hardlink(m, path)
        elif (m.ischr() or m.isblk()) and not self.root:
            return
        else:
            _extract(tf, m, "/".join(parts), self.dest.root)
            self.xattrs(m, path)

    def xattrs(self, m: tarfile.TarInfo, path: Path) -> None:
        if not self.root or m.issym():
            return
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted."):
                os.setxattr(path, key[len("SCHILY.xattr."):],
                            value.encode("utf-8", "surrogateescape"), follow_symlinks=False)

    def finish(self) -> None:
        """Directory modes, owners and times last (a read-only directory is filled first)."""
        for m, path in reversed(self.deferred):
            if not path.is_dir() or path.is_symlink():
                continue  # replaced by a later member of the same name
            if self.root:
                os.lchown(path, m.uid, m.gid)
            os.chmod(path, m.mode & 0o7777)
            os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
            self.xattrs(m, path)


def _extract(tf: tarfile.TarFile, m: tarfile.TarInfo, name: str, root: Path) -> None:
    """`tarfile` writes the member under its checked name, keeping setuid bits and owners
    (`fully_trusted`; Pythons before 3.11.4 have no filters and behave so anyway)."""
    if hasattr(tarfile, "fully_trusted_filter"):
        tf.extract(m.replace(name=name, deep=False), root, set_attrs=True, numeric_owner=True,
                   filter="fully_trusted")
    else:
        checked = copy.copy(m)
        checked.name = name
        tf.extract(checked, root, set_attrs=True, numeric_owner=True)


def _under(d: tuple[str, ...], path: Path, root: Path) -> bool:
    return root.joinpath(*d).is_relative_to(path)


def unpack(blob: Path, dest: LayerDir, lowers: Sequence[LayerDir], diff_id: str, *,
           max_bytes: int = 64 << 30, stop: threading.Event | None = None) -> int:
    """Unpack the layer `blob` into the empty directory `dest.root` over `lowers` (top
    first); return its unpacked size. `UnpackError` if it escapes or its diff_id differs,
    or soon after `stop` is set (checked before every read of at most 1 MiB)."""
    unpacker = _Unpacker(dest, lowers, diff_id)
    with blob.open("rb") as raw:
        stream = _Hashing(_open_decompressed(raw, diff_id), max_bytes, diff_id, stop)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
                for count, m in enumerate(tf):
                    if count >= MAX_MEMBERS:
                        raise UnpackError(diff_id, f"more than {MAX_MEMBERS} entries")
                    unpacker.member(tf, m)
                unpacker.finish()
            got = stream.drain()
        except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
            raise UnpackError(diff_id, f"invalid layer: {exc}") from exc
    if got != diff_id:
        raise UnpackError(diff_id, f'wrong diff id calculated on extraction "{got}"')
    return unpacker.size
