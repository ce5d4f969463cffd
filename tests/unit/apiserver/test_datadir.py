"""The data directory's lock and modes, without a running server.

flock locks belong to an open file description, so a second `open_data_dir` in this process
conflicts with the first exactly as a second process would. Files are created owner-only even
under umask 0 (the mode is given at creation, not left to the umask)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinykube import private
from tinykube.apiserver import certs, datadir
from tinykube.store.sqlite import SQLiteBackend


@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.usefixtures("no_umask")
def test_a_new_data_dir_and_its_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b" / "data"
    lock = datadir.open_data_dir(data_dir)
    try:
        certs.ensure_credentials(data_dir, hosts=["127.0.0.1"])
        backend = SQLiteBackend(data_dir / "state.db")
        backend.put("core/secrets/default/s", 1, b"{}")
        backend.commit()
        private.make_dir(data_dir / "kubelet" / "node" / "pods")
        with private.append(data_dir / "kubelet" / "node" / "pods" / "log") as file:
            file.write(b"line\n")
        found = {str(p.relative_to(data_dir)): mode(p) for p in data_dir.rglob("*")}
        assert {"state.db", "state.db-wal", "state.db-shm", "up.lock", "ca.key",
                "apiserver.crt", "admin.token"} <= set(found)
        assert {p: m for p, m in found.items()
                if m != (0o700 if (data_dir / p).is_dir() else 0o600)} == {}
        assert mode(data_dir) == 0o700
        backend.close()
    finally:
        lock.release()


def test_a_second_holder_is_told_who_has_it(tmp_path: Path) -> None:
    first = datadir.open_data_dir(tmp_path)
    with pytest.raises(datadir.DataDirInUse) as starting:
        datadir.open_data_dir(tmp_path)
    assert str(starting.value) == (
        f"the data directory {tmp_path} is in use by another tinykube (PID {os.getpid()}, "
        "still starting): stop it, or give this one another --data-dir")
    first.record("https://127.0.0.1:6443")
    assert json.loads((tmp_path / "up.lock").read_text()) == {
        "pid": os.getpid(), "url": "https://127.0.0.1:6443"}
    with pytest.raises(datadir.DataDirInUse, match=r"PID \d+, API server at "
                       r"https://127\.0\.0\.1:6443\)"):
        datadir.open_data_dir(tmp_path)
    first.release()
    datadir.open_data_dir(tmp_path).release()  # free again


@pytest.mark.parametrize(("before", "after"), [
    pytest.param({".": 0o755, "state.db": 0o644, "kubelet": 0o755, "kubelet/log": 0o644},
                 {".": 0o700, "state.db": 0o600, "kubelet": 0o700, "kubelet/log": 0o600},
                 id="older-tinykube"),
    pytest.param({".": 0o700, "state.db": 0o640, "kubelet": 0o700, "kubelet/log": 0o604},
                 {".": 0o700, "state.db": 0o600, "kubelet": 0o700, "kubelet/log": 0o600},
                 id="one-loose-file-below"),
    pytest.param({".": 0o700, "state.db": 0o400, "kubelet": 0o500, "kubelet/log": 0o600},
                 {".": 0o700, "state.db": 0o400, "kubelet": 0o500, "kubelet/log": 0o600},
                 id="owner-bits-kept"),
])
def test_tighten_clears_group_and_other_bits(tmp_path: Path, before: dict[str, int],
                                             after: dict[str, int]) -> None:
    (tmp_path / "kubelet").mkdir()
    (tmp_path / "state.db").write_bytes(b"")
    (tmp_path / "kubelet" / "log").write_bytes(b"")
    for name in sorted(before, reverse=True):  # files before the directories holding them
        (tmp_path / name).chmod(before[name])
    fixed = private.tighten(tmp_path)
    assert {name: mode(tmp_path / name) for name in after} == after
    assert fixed == sum(before[n] != after[n] for n in before)
    (tmp_path / "kubelet").chmod(0o700)  # so that pytest can remove it


def test_sqlite_gives_its_wal_and_shm_the_database_mode(tmp_path: Path) -> None:
    """The fact `SQLiteBackend` relies on: create the database 0600 and its companions follow."""
    path = tmp_path / "db"
    private.create(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "db": 0o600, "db-wal": 0o600, "db-shm": 0o600}
    db.close()
