"""Files and directories only their owner may use: everything in the data directory.

The data directory holds Secrets (in `state.db`), the admin and kubelet tokens, the CA key and
the pods' service account tokens and logs, so it is 0700 and every file in it 0600. Each is
created with its mode (`os.open`/`mkdir` with a mode), never created first and tightened after,
so that there is no moment at which another local user could open it. The process umask is left
alone on purpose: process pods inherit it, and containers get the runtime's 0022.

`tighten` repairs a directory an older tinykube made (0755, files 0644); `tinykube up` calls it at
start. Imports nothing heavy: the API server and the node agents both use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077  # group and other bits


def make_dir(path: Path) -> None:
    """`mkdir -p` with every directory it makes 0700 (`Path.mkdir(parents=True)` gives the
    parents the default mode)."""
    if path.is_dir():
        return
    make_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise


def opener(path: str, flags: int) -> int:
    """An `open(..., opener=opener)` that creates files 0600."""
    return os.open(path, flags | os.O_CLOEXEC, FILE_MODE)


def write(path: Path, data: bytes | str) -> None:
    """Replace `path`'s contents; a new file is made 0600, an existing one keeps its mode."""
    with open(path, "wb", opener=opener) as file:
        file.write(data.encode() if isinstance(data, str) else data)


def append(path: Path) -> IO[bytes]:
    """`path` opened to append to, made 0600 if new."""
    return open(path, "ab", opener=opener)


def create(path: Path) -> None:
    """Make `path` an empty 0600 file unless it exists (for files another library fills in)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))


def tighten(top: Path) -> int:
    """Clear the group and other bits of `top` and of everything under it; how many entries had
    any. Quick when there is nothing to do: below an owner-only `top` whose own entries are all
    owner-only, nobody else could reach anything anyway, so only then is the walk skipped."""
    entries = [top, *top.iterdir()]
    if not any(_loose(entry) for entry in entries):
        return 0
    fixed = _fix(top)
    for root, dirs, files in os.walk(top):
        fixed += sum(_fix(Path(root, name)) for name in [*dirs, *files])
    return fixed


def _loose(path: Path) -> bool:
    mode = path.lstat().st_mode
    return not stat.S_ISLNK(mode) and bool(mode & _OTHERS)


def _fix(path: Path) -> int:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or not mode & _OTHERS:
        return 0
    os.chmod(path, stat.S_IMODE(mode) & ~_OTHERS)
    return 1
