"""A running container's standard streams: to its log, and to `kubectl attach` sessions.

A container that asks for neither `stdin` nor `tty` runs with stdin closed and its stdout and
stderr piped into its log, as before. `stdin: true` keeps a pipe to its stdin open for attach
sessions; `tty: true` runs it on a pseudo-terminal (stdout and stderr are then one stream, input
is echoed, window sizes apply). With `stdinOnce`, the first attach session that ends closes the
container's stdin, as the kubelet does: `kubectl run -i --rm` relies on it to end the command.

Output goes to the log line by line (`ContainerLog`) and, raw, to every attach session: a shell
prompt has no newline. A session first gets what this run has printed so far (up to
`REPLAY_BYTES`), so the output of a command that started before kubectl attached is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import struct
import termios
from collections.abc import AsyncIterator
from typing import Any

from tinykube.kubelet.logs import ContainerLog

REPLAY_BYTES = 64 * 1024
_CHUNK = 64 * 1024


class ContainerIO:
    """The standard streams of one run of one container."""

    def __init__(self, container: dict[str, Any] | Any) -> None:
        self.tty = bool(container.get("tty"))
        self.interactive = bool(container.get("stdin"))
        self.stdin_once = bool(container.get("stdinOnce"))
        self.proc: asyncio.subprocess.Process | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._listeners: list[asyncio.Queue[bytes | None]] = []
        self._so_far = bytearray()
        self._ended = False

    def __repr__(self) -> str:
        return f"ContainerIO(tty={self.tty}, stdin={self.interactive}, ended={self._ended})"

    def spawn_options(self) -> dict[str, Any]:
        """Keyword arguments for `create_subprocess_exec`."""
        pipe = asyncio.subprocess.PIPE
        if self.tty:
            self._master, self._slave = os.openpty()
            return {"stdin": self._slave, "stdout": self._slave, "stderr": self._slave,
                    "preexec_fn": functools.partial(take_terminal, self._slave)}
        return {"stdin": pipe if self.interactive else asyncio.subprocess.DEVNULL,
                "stdout": pipe, "stderr": asyncio.subprocess.STDOUT}

    def started(self, proc: asyncio.subprocess.Process | None) -> None:
        """After the spawn (None: it failed): the parent's end of the terminal is closed."""
        self.proc = proc
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        if proc is None:
            self.end()

    async def pump(self, log: ContainerLog) -> None:
        """Copy the output to the log and the attach sessions until it ends (which ends the
        sessions)."""
        try:
            async for chunk in self._output():
                log.write(chunk)
                if len(self._so_far) < REPLAY_BYTES:
                    self._so_far += chunk[:REPLAY_BYTES - len(self._so_far)]
                for queue in self._listeners:
                    queue.put_nowait(chunk)
        finally:
            self._output_ended()

    def _output_ended(self) -> None:
        if not self._ended:
            self._ended = True
            for queue in self._listeners:
                queue.put_nowait(None)

    def _output(self) -> AsyncIterator[bytes]:
        if self._master is not None:
            return read_terminal(self._master)
        assert self.proc is not None and self.proc.stdout is not None
        return read_stream(self.proc.stdout)

    def end(self) -> None:
        """The run is over: attach sessions end, the terminal closes."""
        self._output_ended()
        if self._master is not None:
            os.close(self._master)
            self._master = None

    # --- for attach sessions --------------------------------------------------------------

    def listen(self) -> tuple[bytes, asyncio.Queue[bytes | None]]:
        """What this run printed so far, and a queue of what comes next (None: the end)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        if self._ended:
            queue.put_nowait(None)
        self._listeners.append(queue)
        return bytes(self._so_far), queue

    def unlisten(self, queue: asyncio.Queue[bytes | None]) -> None:
        if queue in self._listeners:
            self._listeners.remove(queue)

    async def write(self, data: bytes) -> None:
        if self._master is not None:
            os.write(self._master, data)
        elif self.proc is not None and self.proc.stdin is not None \
                and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")  # end of file, as a terminal types it
        elif self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, rows: int, columns: int) -> None:
        if self._master is not None:
            set_window_size(self._master, (rows, columns))


async def read_stream(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await stream.read(_CHUNK):
        yield chunk


async def read_terminal(master: int) -> AsyncIterator[bytes]:
    """What a pseudo-terminal's process writes, until every holder of its other side closed."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, _CHUNK)
        except OSError:  # EIO: the process and its children closed the terminal
            data = b""
        if not data:
            loop.remove_reader(master)
        chunks.put_nowait(data)

    loop.add_reader(master, readable)
    try:
        while chunk := await chunks.get():
            yield chunk
    finally:
        loop.remove_reader(master)


def set_window_size(master: int, size: tuple[int, int]) -> None:
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


def take_terminal(slave: int) -> None:
    """In the child before exec: a new session whose controlling terminal is the pty. By fd
    number, not stdin: uvloop runs this before it sets up the child's standard streams."""
    with contextlib.suppress(PermissionError):  # already a session leader
        os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
