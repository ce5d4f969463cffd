"""A `hostPath` volume's `type` check, with the kubelet's messages (`hostPath type check
failed: /x is not a directory`).

`DirectoryOrCreate` makes a missing directory (0755, with its parents) and `FileOrCreate` a
missing file (0644): those two write the host, as asked; every other type only looks. An empty
type checks nothing (the kubelet's default, for backward compatibility).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from tinykube.kubelet.payloads import VolumeError

# type -> (test of the lstat mode, what the message says the path is not)
CHECKS: dict[str, tuple[Callable[[int], bool], str]] = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a socket file"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}
CREATES = {"DirectoryOrCreate": "Directory", "FileOrCreate": "File"}


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None


def check(path: Path, type_: str | None) -> None:
    """Check (and for the ...OrCreate types make) `path`; raises VolumeError."""
    if not type_:
        return
    base = CREATES.get(type_, type_)
    if base not in CHECKS:
        raise VolumeError(f"invalid HostPathType {type_!r}")
    if type_ in CREATES and _mode(path) is None:
        try:
            if base == "Directory":
                os.makedirs(path, mode=0o755, exist_ok=True)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        except OSError as exc:
            raise VolumeError(f"hostPath type check failed: {exc}") from exc
    test, what = CHECKS[base]
    mode = _mode(path)
    if mode is None or not test(mode):
        raise VolumeError(f"hostPath type check failed: {path} is not {what}")
