"""Writes a volume's files so that a reader sees the old set or the new one, never a mix (the
kubelet's AtomicWriter).

Layout of a volume directory after a write:

    ..2026_12_01_23_10_34.1234567/   the payload, in a timestamped directory
    ..data -> ..2026_12_01_23_10_34.1234567
    key    -> ..data/key             one link per top-level name of the payload

An update writes a new timestamped directory, points a new `..data_tmp` link at it and renames
that over `..data` (rename(2) is atomic), adds the links of new top-level names, removes those
of names that are gone, then removes the old directory. A payload equal to what is there (data
and modes) writes nothing, so `write` can be called on every sync. A `subPath` mount binds the
resolved file (`..2026_.../key`), so it keeps the content it was started with: kube never
updates subPath mounts, and neither does this.
"""

from __future__ import annotations

import datetime
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tinykube.kubelet.payloads import File, Payload, VolumeError

DATA = "..data"
Now = Callable[[], datetime.datetime]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def check_path(path: str) -> None:
    """A payload path must be relative, without `..` elements and not start with `..`."""
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/"):
        raise VolumeError(f"invalid path: {path!r} must be relative")
    if ".." in parts:
        raise VolumeError(f"invalid path: {path!r} must not contain '..'")
    if path.startswith(".."):
        raise VolumeError(f"invalid path: {path!r} must not start with '..'")


def current(directory: Path) -> Payload | None:
    """What the volume holds now (None: never written)."""
    link = directory / DATA
    if not link.is_symlink():
        return None
    base = directory / os.readlink(link)
    found: Payload = {}
    for root, _dirs, files in os.walk(base):
        for name in files:
            path = Path(root, name)
            found[str(path.relative_to(base))] = File(path.read_bytes(),
                                                      stat.S_IMODE(path.stat().st_mode))
    return found


def write(directory: Path, payload: Payload, *, now: Now = _utcnow,
          group: int | None = None) -> bool:
    """Make `directory` hold `payload`; True when anything changed. With `group` (the pod's
    fsGroup) the files and directories written belong to that group."""
    for path in payload:
        check_path(path)
    directory.mkdir(parents=True, exist_ok=True)
    if current(directory) == payload:
        return False
    link = directory / DATA
    old = os.readlink(link) if link.is_symlink() else None
    stamp = now().strftime("..%Y_%m_%d_%H_%M_%S.")
    fresh = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    os.chmod(fresh, 0o755)
    for path, file in payload.items():
        target = fresh / path
        _make_parents(fresh, target.parent)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(file.data)
        os.chmod(target, file.mode)
    if group is not None:
        _chgrp(fresh, group)
    tmp = directory / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(fresh.name, tmp)
    os.rename(tmp, link)
    _relink(directory, {PurePosixPath(p).parts[0] for p in payload})
    if old is not None and old != fresh.name:
        shutil.rmtree(directory / old, ignore_errors=True)
    return True


def _chgrp(base: Path, group: int) -> None:
    for root, dirs, files in os.walk(base):
        for name in [".", *dirs, *files]:
            os.chown(os.path.join(root, name), -1, group)


def _make_parents(base: Path, parent: Path) -> None:
    missing = []
    while parent != base and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for path in reversed(missing):
        path.mkdir(mode=0o755)


def _relink(directory: Path, names: set[str]) -> None:
    """One `name -> ..data/name` link per top-level name; stale links removed."""
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in names and entry.is_symlink():
            entry.unlink()
    for name in names:
        entry = directory / name
        if not entry.is_symlink():
            os.symlink(f"{DATA}/{name}", entry)
