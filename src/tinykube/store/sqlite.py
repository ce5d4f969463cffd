"""The durable backend: one SQLite file in the data directory.

Every object is a row `(key, rv, data)` where `key` is `<group>/<plural>/<namespace>/<name>` and
`data` is the object's JSON in its storage version. The last resourceVersion handed out lives in
the `meta` table and is written in the same transaction as the object, so the sequence survives
restarts even when the newest write was a delete.

A write returns only after `COMMIT`. The database runs in WAL mode with `synchronous=NORMAL`: a
committed write survives the process being killed (the test kills `tinykube up` with SIGKILL),
though not necessarily a power loss of the host; `durable=True` switches to `synchronous=FULL`
for that, at the cost of one fsync per write.

All calls are synchronous and short; the API server runs them on its event loop, which keeps the
order of writes equal to the order of resourceVersions without any locking.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, rv INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SQLiteBackend:
    """Rows of JSON objects plus the resourceVersion counter."""

    def __init__(self, path: Path | str, *, durable: bool = False) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"

    def last_rv(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name='rv'").fetchone()
        return int(row[0]) if row else 0

    def load(self) -> Iterator[tuple[str, int, bytes]]:
        """Every stored row, in key order."""
        yield from self._db.execute("SELECT key, rv, data FROM objects ORDER BY key")

    def put(self, key: str, rv: int, data: bytes) -> None:
        self._write(("INSERT OR REPLACE INTO objects (key, rv, data) VALUES (?, ?, ?)",
                     (key, rv, data)), rv)

    def delete(self, key: str, rv: int) -> None:
        self._write(("DELETE FROM objects WHERE key = ?", (key,)), rv)

    def _write(self, statement: tuple[str, tuple[object, ...]], rv: int) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(*statement)
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('rv', ?)", (rv,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
