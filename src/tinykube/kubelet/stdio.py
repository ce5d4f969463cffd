"""Child processes' standard streams: a container's (to its log and to `kubectl attach`
sessions), and an exec'd command's.

`Streams` sets them up as a container runtime does, for both: one pseudo-terminal, or pipes for
the wanted streams. `ContainerIO` adds what a container's run needs on top.

A container that asks for neither `stdin` nor `tty` runs with stdin closed and its stdout and
stderr piped into its log, as before. `stdin: true` keeps a pipe to its stdin open for attach
sessions; `tty: true` runs it on a pseudo-terminal (stdout and stderr are then one stream, input
is echoed, window sizes apply). With `stdinOnce`, the first attach session that ends closes the
container's stdin, as the kubelet does: `kubectl run -i --rm` relies on it to end the command.

Output streams are pipes made with pipe(2), not the socket pairs uvloop's subprocess pipes are,
so a container that opens `/dev/stdout` or `/dev/stderr` (nginx's `access_log /dev/stdout`)
reopens its pipe as a container runtime's FIFO is reopened (a socket cannot be opened by path).

A container runtime's shim (`shim_stdio()`) gets the stdin pipe or the terminal as fds, both
ends: the container keeps its side, the shim holds a copy of ours so that the container's stdin
outlives the agent. A new agent takes ours back from the shim (`use_terminal`, `use_stdin`);
closing stdin then asks the shim to drop its copy too (`release`).

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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tinykube.api.remotecommand import STDERR, STDOUT
from tinykube.kubelet.logs import ContainerLog

REPLAY_BYTES = 64 * 1024
_CHUNK = 64 * 1024


class Streams:
    """A child process's standard streams, set up as a container runtime sets them up: one
    pseudo-terminal for all three (`tty`), or pipes for the streams wanted (the others closed),
    with stderr either apart or merged into stdout.

    Call `spawn_options()` for `create_subprocess_exec`, then `started(proc)`; `outputs()` gives
    the output streams as (stream number, chunks); `close()` once the process is over."""

    def __init__(self, *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True,
                 merge_stderr: bool = False, size: tuple[int, int] | None = None) -> None:
        self.tty, self.stdin, self.stdout, self.stderr = tty, stdin, stdout, stderr
        self.merge_stderr = merge_stderr
        self.size = size  # (rows, columns) to start a terminal with
        self.proc: asyncio.subprocess.Process | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._pipes: dict[int, tuple[int, int]] = {}  # stream number -> (read end, write end)
        self._stdin_fd: int | None = None  # our end of a shim's stdin pipe (non-blocking)
        self._stdin_given: int | None = None  # the container's end, until it started
        self._release: Callable[[], Awaitable[None]] | None = None  # the shim lets go of stdin

    def __repr__(self) -> str:
        return f"Streams(tty={self.tty}, stdin={self.stdin})"

    def spawn_options(self) -> dict[str, Any]:
        """Keyword arguments for `create_subprocess_exec`."""
        if self.tty:
            self._master, self._slave = os.openpty()
            if self.size is not None:
                set_window_size(self._master, self.size)
            return {"stdin": self._slave, "stdout": self._slave, "stderr": self._slave,
                    "preexec_fn": functools.partial(take_terminal, self._slave)}
        pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        if self.stdout:
            self._pipes[STDOUT] = os.pipe()
        if self.stderr and not self.merge_stderr:
            self._pipes[STDERR] = os.pipe()
        stderr = asyncio.subprocess.STDOUT if self.merge_stderr else \
            self._pipes[STDERR][1] if self.stderr else devnull
        return {"stdin": pipe if self.stdin else devnull,
                "stdout": self._pipes[STDOUT][1] if self.stdout else devnull, "stderr": stderr}

    def shim_stdio(self) -> tuple[str, int, int] | None:
        """For a shim that holds the container's stdin: ("tty", slave, master) or ("stdin",
        read end, write end), made now (we keep master or write end); None without stdin or
        tty."""
        if self.tty:
            self._master, self._slave = os.openpty()
            if self.size is not None:
                set_window_size(self._master, self.size)
            return "tty", self._slave, self._master
        if not self.stdin:
            return None
        self._stdin_given, self._stdin_fd = os.pipe()
        os.set_blocking(self._stdin_fd, False)
        return "stdin", self._stdin_given, self._stdin_fd

    def use_terminal(self, master: int) -> None:
        """The terminal's master from the shim of a run started earlier."""
        self._master = master

    def use_stdin(self, fd: int) -> None:
        """Write the input into `fd` (the stdin pipe of a run a shim holds)."""
        os.set_blocking(fd, False)
        self._stdin_fd = fd

    def set_release(self, release: Callable[[], Awaitable[None]]) -> None:
        """`release()` asks the shim to close its copy of the stdin pipe, when stdin closes."""
        self._release = release

    def use_output(self, fd: int) -> None:
        """Read the output from `fd` instead of a pipe made here (a container shim's FIFO,
        which the shim writes into; stderr is merged into it)."""
        self._pipes = {STDOUT: (fd, -1)}

    def started(self, proc: asyncio.subprocess.Process | None) -> None:
        """After the spawn (None: it failed): the parent's end of the terminal is closed."""
        self.proc = proc
        for given in (self._slave, self._stdin_given):
            if given is not None:
                os.close(given)
        self._slave = self._stdin_given = None
        for number, (read_end, write_end) in list(self._pipes.items()):
            if write_end >= 0:
                os.close(write_end)  # the child has its own copy
            self._pipes[number] = (read_end, -1)
        if proc is None:
            self.close()

    def outputs(self) -> list[tuple[int, AsyncIterator[bytes]]]:
        """The output streams: (1, stdout) and (2, stderr) as far as they are pipes, or
        (1, the terminal)."""
        if self._master is not None:
            return [(STDOUT, read_terminal(self._master))]
        assert self.proc is not None
        pipes, self._pipes = self._pipes, {}  # the readers own the read ends from here on
        return [(number, read_pipe(read_end)) for number, (read_end, _) in sorted(pipes.items())]

    async def write(self, data: bytes) -> None:
        if self._master is not None:
            os.write(self._master, data)
        elif self._stdin_fd is not None:
            await write_all(self._stdin_fd, data)
        elif self.proc is not None and self.proc.stdin is not None \
                and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")  # end of file, as a terminal types it
        elif self._stdin_fd is not None:
            os.close(self._stdin_fd)
            self._stdin_fd = None
            if self._release is not None:
                await self._release()
        elif self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, rows: int, columns: int) -> None:
        if self._master is not None:
            set_window_size(self._master, (rows, columns))

    def close(self) -> None:
        """The process is over: the terminal closes (and pipes nobody reads)."""
        for fd in (self._master, self._stdin_fd, self._slave, self._stdin_given):
            if fd is not None:
                os.close(fd)
        self._master = self._stdin_fd = self._slave = self._stdin_given = None
        for read_end, write_end in self._pipes.values():
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
        self._pipes = {}


class ContainerIO:
    """The standard streams of one run of one container, and its attach sessions."""

    def __init__(self, container: dict[str, Any] | Any) -> None:
        self.interactive = bool(container.get("stdin"))
        self.stdin_once = bool(container.get("stdinOnce"))
        self.streams = Streams(tty=bool(container.get("tty")), stdin=self.interactive,
                               merge_stderr=True)
        self._listeners: list[asyncio.Queue[bytes | None]] = []
        self._so_far = bytearray()
        self._ended = False

    def __repr__(self) -> str:
        return f"ContainerIO({self.streams!r}, ended={self._ended})"

    @property
    def proc(self) -> asyncio.subprocess.Process | None:
        return self.streams.proc

    def spawn_options(self) -> dict[str, Any]:
        """Keyword arguments for `create_subprocess_exec`."""
        return self.streams.spawn_options()

    def started(self, proc: asyncio.subprocess.Process | None) -> None:
        """After the spawn (None: it failed)."""
        self.streams.started(proc)
        if proc is None:
            self.end()

    async def pump(self, log: ContainerLog) -> None:
        """Copy the output to the log and the attach sessions until it ends (which ends the
        sessions)."""
        ((_number, output),) = self.streams.outputs()  # stderr is merged into stdout
        try:
            async for chunk in output:
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

    def end(self) -> None:
        """The run is over: attach sessions end, the terminal closes."""
        self._output_ended()
        self.streams.close()

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
        await self.streams.write(data)

    async def close_stdin(self) -> None:
        await self.streams.close_stdin()

    def resize(self, rows: int, columns: int) -> None:
        self.streams.resize(rows, columns)


async def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` into a non-blocking pipe, waiting while it is full; a reader that
    has gone (EPIPE) takes nothing more."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(fd, _settle, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)
        except OSError:  # EPIPE and the like
            return


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def read_stream(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await stream.read(_CHUNK):
        yield chunk


async def read_pipe(fd: int) -> AsyncIterator[bytes]:
    """What is written into a pipe (its read end `fd`, closed at the end), until every
    writer closed it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    try:
        async for chunk in read_stream(reader):
            yield chunk
    finally:
        transport.close()


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
