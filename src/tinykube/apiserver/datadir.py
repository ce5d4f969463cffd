"""The data directory: owner-only, and used by one API server at a time.

Two `tinykube up` on one directory would share `state.db` and each rewrite the other's
kubeconfig, so the API server holds an exclusive `flock(2)` on `up.lock` in it for as long as it
runs. The kernel releases the lock when the process ends, however it ends (SIGKILL too), so a
stale lock file never blocks a new start. The holder writes its PID into the file at once and its
API server URL once it listens; a second start reads them for its error message. flock locks
belong to the open file description: the file is opened close-on-exec, so no child holds it.

`open_data_dir` also makes the directory owner-only (`private`): a new one is made 0700, and an
existing one an older tinykube left readable by other users is tightened, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path

from tinykube import private

log = logging.getLogger(__name__)
LOCK_FILE = "up.lock"


class DataDirInUse(Exception):
    """Another running API server holds the data directory."""

    def __init__(self, data_dir: Path, holder: dict[str, object]) -> None:
        pid = holder.get("pid", "unknown")
        where = f"API server at {holder['url']}" if holder.get("url") else "still starting"
        super().__init__(
            f"the data directory {data_dir} is in use by another tinykube (PID {pid}, {where}): "
            "stop it, or give this one another --data-dir")


class DataDirLock:
    """The held lock; `record` adds the API server URL; `release` lets go (so does exiting)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        self._record({"pid": os.getpid()})

    def __repr__(self) -> str:
        return f"DataDirLock(fd={self.fd})"

    def record(self, url: str) -> None:
        self._record({"pid": os.getpid(), "url": url})

    def _record(self, holder: dict[str, object]) -> None:
        assert self.fd is not None
        data = json.dumps(holder).encode() + b"\n"
        os.pwrite(self.fd, data, 0)  # then cut: a reader sees the old text or the new
        os.ftruncate(self.fd, len(data))

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def open_data_dir(data_dir: Path, lock_file: str = LOCK_FILE) -> DataDirLock:
    """Make (or tighten) the owner-only data directory and lock it (`lock_file`: API servers
    on etcd share a directory, each with its own); DataDirInUse if another holds it."""
    private.make_dir(data_dir)
    fd = os.open(data_dir / lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private.FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise DataDirInUse(data_dir, holder) from None
    fixed = private.tighten(data_dir)
    if fixed:
        log.warning("made %d files and directories in %s readable by their owner only (an "
                    "older tinykube left them readable by every local user)", fixed, data_dir)
    return DataDirLock(fd)


def _holder(fd: int) -> dict[str, object]:
    with contextlib.suppress(ValueError):
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        if isinstance(holder, dict):
            return holder
    return {}
