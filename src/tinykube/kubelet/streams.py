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
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import Any, Protocol

from tinykube.api import errors
from tinykube.api.remotecommand import (
    CLOSE,
    ERROR,
    RESIZE,
    STDIN,
    STDOUT,
    exit_status,
    failure,
    frame,
    parse,
    window_size,
)
from tinykube.kubelet.stdio import ContainerIO, Streams

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
        self.streams = Streams(tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)

    def __repr__(self) -> str:
        return f"ExecSession({self.argv!r}, {self.streams!r})"

    async def run(self, socket: Socket) -> None:
        """Run the command, relay its streams, send the final Status (unless the client left,
        which ends the command)."""
        early = await self._first_window_size(socket) if self.streams.tty else []
        env = {"TERM": "xterm", **self.env} if self.streams.tty else self.env
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, env=env, cwd=self.cwd, start_new_session=True,
                **self.streams.spawn_options())
        except (OSError, subprocess.SubprocessError) as exc:
            self.streams.started(None)
            await socket.send_bytes(frame(ERROR, errors.status_json(failure(
                f"error executing command in container: {exc}"))))
            return
        self.streams.started(proc)
        try:
            await _session(socket, self._finish(proc, socket), self._from_client(socket, early))
        finally:
            if proc.returncode is None:  # the client left: leave nothing running
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            self.streams.close()

    async def _finish(self, proc: asyncio.subprocess.Process, socket: Socket) -> int:
        """Relay the output until it ends; the exit code (128 + N for signal N)."""
        await asyncio.gather(*(_send(chunks, number, socket)
                               for number, chunks in self.streams.outputs()))
        code = await proc.wait()
        return code if code >= 0 else 128 - code

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
                        self.streams.size = size
                        break
                    early.append(message)
        return early

    async def _from_client(self, socket: Socket, early: list[bytes]) -> None:
        """Client messages: stdin data, the close of stdin (v5), window sizes."""
        for held in early:
            await self._handle(held)
        while (message := await socket.receive_bytes_or_none()) is not None:
            await self._handle(message)
        await self.streams.close_stdin()

    async def _handle(self, message: bytes) -> None:
        stream, data = parse(message)
        if stream == STDIN and data:
            await self.streams.write(data)
        elif stream == CLOSE and data[:1] == bytes((STDIN,)):
            await self.streams.close_stdin()
        elif stream == RESIZE and (size := window_size(data)) is not None:
            self.streams.resize(*size)


async def _session(socket: Socket, work: Coroutine[Any, Any, int],
                   client: Coroutine[Any, Any, None]) -> None:
    """Run a session's `work` (which returns its exit code) beside the client's messages: when
    the work ends, send its Status; when the client leaves first, stop the work. Both tasks are
    over on return; a client that left while we answered is not an error."""
    working, reading = asyncio.create_task(work), asyncio.create_task(client)
    try:
        await asyncio.wait({working, reading}, return_when=asyncio.FIRST_COMPLETED)
        if working.done() and working.exception() is None:
            await socket.send_bytes(frame(ERROR, errors.status_json(
                exit_status(working.result()))))
    except ConnectionError:
        pass
    finally:
        for task in (working, reading):
            task.cancel()
        await asyncio.gather(working, reading, return_exceptions=True)


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
        try:
            await _session(socket, self._output(socket, replay, queue),
                           self._from_client(socket))
        finally:
            self.io.unlisten(queue)
            if self.want_stdin and self.io.stdin_once:
                await self.io.close_stdin()

    async def _output(self, socket: Socket, replay: bytes,
                      queue: asyncio.Queue[bytes | None]) -> int:
        """The output until the container's run ends: the session ends with Success."""
        if replay and self.want_stdout:
            await socket.send_bytes(frame(STDOUT, replay))
        while (chunk := await queue.get()) is not None:
            if self.want_stdout:
                await socket.send_bytes(frame(STDOUT, chunk))
        return 0

    async def _from_client(self, socket: Socket) -> None:
        while (message := await socket.receive_bytes_or_none()) is not None:
            stream, data = parse(message)
            if stream == STDIN and data and self.want_stdin:
                await self.io.write(data)
            elif stream == CLOSE and data[:1] == bytes((STDIN,)) and self.want_stdin \
                    and self.io.stdin_once:
                await self.io.close_stdin()
            elif stream == RESIZE and (size := window_size(data)) is not None:
                self.io.resize(*size)

