"""Container logs: size-bounded files for the current and the previous run, and followers.

Each container has a directory with `current.log` (and `current.log.1`, its older half after
a rotation) and `previous.log` (the run before, as one file). Every line is stored as
`<RFC3339 UTC timestamp with nanoseconds> <text>`; the fixed-width timestamp makes `since`
filters plain string comparisons. A run's files never exceed `max_bytes` in total: when
`current.log` passes half of it, it becomes `current.log.1` (dropping the older one), as the
kubelet's log rotation does with `containerLogMaxSize`.

A container's output is written from the event loop, so following is race-free without locks:
`follow` reads what is on disk and subscribes in one synchronous step; new lines then arrive
on the subscriber's queue, and `None` marks the end of the run.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from tinykube import private

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
Now = Callable[[], datetime.datetime]


def _timestamp(moment: datetime.datetime) -> bytes:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode()


def since_cutoff(moment: datetime.datetime) -> bytes:
    """The stored timestamp prefix at `moment`: records >= it are not older."""
    return _timestamp(moment.astimezone(datetime.UTC))


def render(records: list[bytes], *, timestamps: bool, since: bytes | None = None,
           tail: int | None = None, limit: int | None = None) -> bytes:
    """Stored records -> the body of a log response (pure)."""
    if since is not None:
        records = [r for r in records if r[:len(since)] >= since]
    if tail is not None:
        records = records[-tail:] if tail > 0 else []
    body = b"".join(r if timestamps else r.partition(b" ")[2] for r in records)
    return body[:limit] if limit is not None else body


class ContainerLog:
    """The log files of one container and the followers of its current run."""

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 now: Now | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC))
        self.runs = 0
        self.running = False
        self._partial = b""
        self._followers: list[asyncio.Queue[bytes | None]] = []
        private.make_dir(directory)  # under the data directory: 0700, its files 0600

    def __repr__(self) -> str:
        return f"ContainerLog({self.directory}, runs={self.runs}, running={self.running})"

    @property
    def _current(self) -> Path:
        return self.directory / "current.log"

    @property
    def _rotated(self) -> Path:
        return self.directory / "current.log.1"

    @property
    def _previous(self) -> Path:
        return self.directory / "previous.log"

    def start_run(self) -> None:
        """A new run starts: the last run's output becomes `previous`."""
        if self.runs:
            parts = [p.read_bytes() for p in (self._rotated, self._current) if p.exists()]
            private.write(self._previous, b"".join(parts))
            self._rotated.unlink(missing_ok=True)
            private.write(self._current, b"")
        self.runs += 1
        self.running = True

    def resume_run(self, runs: int) -> None:
        """Run `runs` goes on after the agent's restart: its output is appended to `current`."""
        self.runs = runs
        self.running = True

    def end_run(self) -> None:
        if self._partial:
            self._append(self._partial + b"\n")
            self._partial = b""
        self.running = False
        for queue in self._followers:
            queue.put_nowait(None)

    def write(self, data: bytes) -> None:
        """Output of the running process; complete lines are stored at once."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > 16 * 1024:  # a very long line is cut, as CRI does
            lines.append(self._partial)
            self._partial = b""
        if lines:
            self._append(b"".join(line + b"\n" for line in lines))

    def _append(self, text: bytes) -> None:
        stamp = _timestamp(self.now())
        records = b"".join(stamp + b" " + line + b"\n" for line in text.splitlines())
        with private.append(self._current) as file:
            file.write(records)
            size = file.tell()
        if size > self.max_bytes // 2:
            self._current.replace(self._rotated)
        for queue in self._followers:
            for record in records.splitlines(keepends=True):
                queue.put_nowait(record)

    def records(self, *, previous: bool = False) -> list[bytes]:
        paths = [self._previous] if previous else [self._rotated, self._current]
        return [line for p in paths if p.exists()
                for line in p.read_bytes().splitlines(keepends=True)]

    def has_previous(self) -> bool:
        return self._previous.exists()

    def subscribe(self) -> tuple[list[bytes], asyncio.Queue[bytes | None]]:
        """What is stored now and a queue of what comes next (no await in between)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        if not self.running:
            queue.put_nowait(None)
        self._followers.append(queue)
        return self.records(), queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        if queue in self._followers:
            self._followers.remove(queue)

    async def follow(self, *, timestamps: bool, since: bytes | None,
                     tail: int | None) -> AsyncGenerator[bytes, None]:
        stored, queue = self.subscribe()
        try:
            yield render(stored, timestamps=timestamps, since=since, tail=tail)
            while (record := await queue.get()) is not None:
                yield record if timestamps else record.partition(b" ")[2]
        finally:
            self.unsubscribe(queue)

    def remove(self) -> None:
        for queue in self._followers:
            queue.put_nowait(None)
        shutil.rmtree(self.directory, ignore_errors=True)
