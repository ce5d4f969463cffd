"""`kubectl exec` and `kubectl attach` on a node: a command, or a running container, bridged
to one WebSocket.

The messages are those of `api.remotecommand` (stdin, stdout, stderr, the final Status, resize,
close). `ExecSession` runs one command for one session: with pipes, or with a pseudo-terminal
when the client asked for a TTY (`-t`; stdout and stderr are then one stream, and resize messages
set the window size). The final Status carries the exit code; a client that leaves kills the
command's process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from tinykube.api.remotecommand import (
    CLOSE,
    ERROR,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    exit_status,
    failure,
    frame,
    parse,
    window_size,
)
from tinykube.kubelet.stdio import (
    ContainerIO,
    read_stream,
    read_terminal,
    set_window_size,
    take_terminal,
)

FIRST_SIZE_WAIT = 0.25  # seconds a TTY session waits for the client's terminal size


class Socket(Protocol):
    """What a session needs of a WebSocket (aiohttp's server or client side)."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive_bytes_or_none(self) -> bytes | None: ...


class ExecSession:
    """One command bridged to one WebSocket (see the module docstring)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None,
                 stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
        self.argv, self.env, self.cwd = list(argv), dict(env), cwd
        self.want_stdin, self.want_stdout, self.want_stderr = stdin, stdout, stderr
        self.tty = tty
        self._master: int | None = None  # the pty's master side, with a TTY
        self._size: tuple[int, int] | None = None  # (rows, columns) to start the TTY with

    def __repr__(self) -> str:
        return f"ExecSession({self.argv!r}, tty={self.tty})"

    async def run(self, socket: Socket) -> None:
        """Run the command, relay its streams, send the final Status (unless the client left,
        which ends the command)."""
        early = await self._first_window_size(socket) if self.tty else []
        try:
            proc = await self._spawn()
        except (OSError, subprocess.SubprocessError) as exc:
            await socket.send_bytes(frame(ERROR, json.dumps(failure(
                f"error executing command in container: {exc}")).encode()))
            return
        finished = asyncio.create_task(self._finish(proc, socket))
        reader = asyncio.create_task(self._from_client(proc, socket, early))
        try:
            await asyncio.wait({finished, reader}, return_when=asyncio.FIRST_COMPLETED)
            if finished.done() and finished.exception() is None:
                await socket.send_bytes(frame(ERROR, json.dumps(
                    exit_status(finished.result())).encode()))
        except ConnectionError:
            pass  # the client left while we answered
        finally:
            for task in (finished, reader):
                task.cancel()
            await asyncio.gather(finished, reader, return_exceptions=True)
            if proc.returncode is None:  # the client left: leave nothing running
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            if self._master is not None:
                os.close(self._master)

    async def _finish(self, proc: asyncio.subprocess.Process, socket: Socket) -> int:
        """Relay the output until it ends; the exit code (128 + N for signal N)."""
        await asyncio.gather(*self._outputs(proc, socket))
        code = await proc.wait()
        return code if code >= 0 else 128 - code

    async def _spawn(self) -> asyncio.subprocess.Process:
        pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        if not self.tty:
            return await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=self.cwd, start_new_session=True,
                stdin=pipe if self.want_stdin else devnull,
                stdout=pipe if self.want_stdout else devnull,
                stderr=pipe if self.want_stderr else devnull)
        master, slave = os.openpty()
        if self._size is not None:
            set_window_size(master, self._size)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, env={"TERM": "xterm", **self.env}, cwd=self.cwd,
                start_new_session=True, stdin=slave, stdout=slave, stderr=slave,
                preexec_fn=functools.partial(take_terminal, slave))
        except (OSError, subprocess.SubprocessError):
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._master = master
        return proc

    def _outputs(self, proc: asyncio.subprocess.Process,
                 socket: Socket) -> list[asyncio.Task[None]]:
        if self._master is not None:
            return [asyncio.create_task(_send(read_terminal(self._master), STDOUT, socket))]
        pumps = [(proc.stdout, STDOUT), (proc.stderr, STDERR)]
        return [asyncio.create_task(_send(read_stream(stream), number, socket))
                for stream, number in pumps if stream is not None]

    async def _first_window_size(self, socket: Socket) -> list[bytes]:
        """kubectl sends the terminal's size right after connecting: wait for it briefly, so
        the command starts with the right size (`stty size`, full-screen programs). Returns
        the messages that came before it, to be handled once the command runs."""
        early: list[bytes] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_SIZE_WAIT):
                while (message := await socket.receive_bytes_or_none()) is not None:
                    stream, data = parse(message)
                    if stream == RESIZE and (size := window_size(data)) is not None:
                        self._size = size
                        break
                    early.append(message)
        return early

    async def _from_client(self, proc: asyncio.subprocess.Process, socket: Socket,
                           early: list[bytes]) -> None:
        """Client messages: stdin data, the close of stdin (v5), window sizes."""
        for held in early:
            await self._handle(proc, held)
        while (message := await socket.receive_bytes_or_none()) is not None:
            await self._handle(proc, message)
        self._close_stdin(proc)

    async def _handle(self, proc: asyncio.subprocess.Process, message: bytes) -> None:
        stream, data = parse(message)
        if stream == STDIN and data:
            await self._write_stdin(proc, data)
        elif stream == CLOSE and data[:1] == bytes((STDIN,)):
            self._close_stdin(proc)
        elif stream == RESIZE and self._master is not None:
            size = window_size(data)
            if size is not None:
                set_window_size(self._master, size)

    async def _write_stdin(self, proc: asyncio.subprocess.Process, data: bytes) -> None:
        if self._master is not None:
            os.write(self._master, data)
        elif proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()

    def _close_stdin(self, proc: asyncio.subprocess.Process) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")  # end of file, as a terminal types it
        elif proc.stdin is not None:
            proc.stdin.close()


async def _send(chunks: AsyncIterator[bytes], number: int, socket: Socket) -> None:
    async for chunk in chunks:
        await socket.send_bytes(frame(number, chunk))


class AttachSession:
    """`kubectl attach` (and `kubectl run -i`): one client on a running container's streams.

    The client first gets what this run printed so far, then the output as it comes; its input
    goes to the container's stdin (if the container has one). The session ends when the
    container's run ends (with a Success Status) or when the client leaves; with `stdinOnce`,
    either closes the container's stdin."""

    def __init__(self, io: ContainerIO, *, stdin: bool, stdout: bool) -> None:
        self.io = io
        self.want_stdin, self.want_stdout = stdin and io.interactive, stdout

    def __repr__(self) -> str:
        return f"AttachSession({self.io!r})"

    async def run(self, socket: Socket) -> None:
        replay, queue = self.io.listen()
        output = asyncio.create_task(self._output(socket, replay, queue))
        reader = asyncio.create_task(self._from_client(socket))
        try:
            await asyncio.wait({output, reader}, return_when=asyncio.FIRST_COMPLETED)
            if output.done() and output.exception() is None:
                await socket.send_bytes(frame(ERROR, json.dumps(exit_status(0)).encode()))
        except ConnectionError:
            pass  # the client left while we answered
        finally:
            for task in (output, reader):
                task.cancel()
            await asyncio.gather(output, reader, return_exceptions=True)
            self.io.unlisten(queue)
            if self.want_stdin and self.io.stdin_once:
                self.io.close_stdin()

    async def _output(self, socket: Socket, replay: bytes,
                      queue: asyncio.Queue[bytes | None]) -> None:
        if replay and self.want_stdout:
            await socket.send_bytes(frame(STDOUT, replay))
        while (chunk := await queue.get()) is not None:
            if self.want_stdout:
                await socket.send_bytes(frame(STDOUT, chunk))

    async def _from_client(self, socket: Socket) -> None:
        while (message := await socket.receive_bytes_or_none()) is not None:
            stream, data = parse(message)
            if stream == STDIN and data and self.want_stdin:
                await self.io.write(data)
            elif stream == CLOSE and data[:1] == bytes((STDIN,)) and self.want_stdin \
                    and self.io.stdin_once:
                self.io.close_stdin()
            elif stream == RESIZE and (size := window_size(data)) is not None:
                self.io.resize(*size)

