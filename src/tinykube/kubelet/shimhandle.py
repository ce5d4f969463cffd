"""The node agent's side of `shim`: start a container's shim, adopt one an earlier agent
started, and see its end as the end of a process.

`launch(state, argv)` makes the run's state directory and its output FIFO, runs the shim's
launcher and waits for it (the shim is then set up and running `argv`); `adopt(state)` finds
the shim of a state directory again (its pid from `shim.json`, checked against
`/proc/PID/cmdline` so a reused pid is not taken for it). Either gives a `ShimProcess`: an
`asyncio.subprocess.Process` for the `PodWorker` (pid, returncode, wait, signals), whose end
is seen through a pidfd (the shim is not the agent's child, so there is no wait status) and
whose returncode comes from the shim's `exit.json`: the command's exit code, minus the
signal number when it was killed (as asyncio reports a child), -SIGKILL when the shim died
without recording one. `take_output` gives the FIFO's read side for the run's log pump;
`launch` opens it before the shim starts, because a FIFO nobody holds open loses what is
in it: a command that prints and exits at once would otherwise lose its output.

A container with `stdin` or `tty` is launched with the stdin pipe or the terminal the agent
made (`Stdio`: both ends; the agent keeps the write end or the master). After the agent's
restart, `take_stdio()` gets the shim's copy of that fd back through `io.sock` (SCM_RIGHTS),
and `close_stdin()` asks the shim to drop its copy, so that the agent's close ends the
container's stdin (`stdinOnce`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

from tinykube import private
from tinykube.kubelet import shim

SHIM_PROGRAM = Path(shim.__file__)
LAUNCH_TIMEOUT = 30.0  # bounds the wait for the launcher (it only forks and sets up)
IO_TIMEOUT = 5.0  # bounds an exchange with the shim's io.sock


@dataclasses.dataclass(frozen=True)
class Stdio:
    """A run's stdin pipe (`kind` "stdin": the command's read end, the held write end) or
    terminal ("tty": slave, master), as passed to the shim."""

    kind: str
    given: int
    held: int

    def argv(self) -> list[str]:
        return [f"--{self.kind}", f"{self.given},{self.held}"]


class ShimError(OSError):
    """The shim could not be started."""


class ShimProcess(asyncio.subprocess.Process):
    """A running (or ended) shim, as the process of one container run."""

    def __init__(self, state: Path, pid: int, pidfd: int | None) -> None:
        self.state = state
        self.pid = pid
        self.stdin = self.stdout = self.stderr = None
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self._returncode: int | None = None
        self._pidfd = pidfd
        self.output: int | None = None  # the output FIFO's read side, once opened
        if pidfd is None:
            self._ended()
        else:
            self._loop.add_reader(pidfd, self._ended)

    def __repr__(self) -> str:
        return f"ShimProcess({self.pid}, returncode={self._returncode})"

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def _ended(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._returncode = returncode(self.state)
        self._done.set()

    @property
    def finished_at(self) -> str | None:
        """When the command exited, as the shim recorded it (RFC 3339)."""
        doc = _read(self.state / shim.EXIT)
        return str(doc["finishedAt"]) if doc and "finishedAt" in doc else None

    async def take_stdio(self) -> tuple[str, int] | None:
        """The shim's stdin write end or terminal master (a new fd of this process), with its
        kind; None for a run without one, or whose stdin was closed."""
        if not (self.state / shim.IO_SOCKET).exists():
            return None
        return await asyncio.to_thread(_ask_fds, self.state)

    async def close_stdin(self) -> None:
        """The shim lets go of the run's stdin (the agent's close is then the last)."""
        if (self.state / shim.IO_SOCKET).exists():
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_ask, self.state, b"close-stdin")

    def take_output(self) -> int:
        """The read side of the run's output FIFO (non-blocking), for the log pump, which
        owns it from here on."""
        fd = self.output
        self.output = None
        return fd if fd is not None else _open_output(self.state)

    async def wait(self) -> int:
        await self._done.wait()
        assert self._returncode is not None
        return self._returncode

    def send_signal(self, sig: int) -> None:
        if self._returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)  # the shim's group: runc forwards it

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _read(path: Path) -> dict[str, object] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def returncode(state: Path) -> int:
    """The recorded end of the run in `state`, as asyncio's returncode."""
    doc = _read(state / shim.EXIT)
    status = doc.get("status") if doc else None
    if not isinstance(status, int):
        return -signal.SIGKILL
    return os.waitstatus_to_exitcode(status)


def _is_shim(pid: int, state: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(SHIM_PROGRAM).encode() in cmdline and str(state).encode() in cmdline


def alive(state: Path) -> bool:
    """Whether the shim of `state` is still running."""
    doc = _read(state / shim.SHIM)
    pid = doc.get("pid") if doc else None
    return isinstance(pid, int) and _is_shim(pid, state)


def adopt(state: Path) -> ShimProcess | None:
    """The shim started in `state` (running or ended); None if none was started there."""
    doc = _read(state / shim.SHIM)
    pid = doc.get("pid") if doc else None
    if not isinstance(pid, int):
        return None
    pidfd = None
    with contextlib.suppress(ProcessLookupError):
        pidfd = os.pidfd_open(pid)
    if pidfd is not None and not _is_shim(pid, state):  # the pid was reused: it has ended
        os.close(pidfd)
        pidfd = None
    return ShimProcess(state, pid, pidfd)


def _connect(state: Path) -> socket.socket:
    """A connection to the shim's io.sock (by a directory fd: the path may be too long for
    a socket address)."""
    directory = os.open(state, os.O_PATH | os.O_DIRECTORY)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(IO_TIMEOUT)
    try:
        conn.connect(f"/proc/self/fd/{directory}/{shim.IO_SOCKET}")
    except OSError:
        conn.close()
        raise
    finally:
        os.close(directory)
    return conn


def _ask(state: Path, request: bytes) -> bytes:
    with _connect(state) as conn:
        conn.sendall(request)
        return conn.recv(64)


def _ask_fds(state: Path) -> tuple[str, int] | None:
    try:
        with _connect(state) as conn:
            conn.sendall(b"fds")
            kind, fds, _flags, _addr = socket.recv_fds(conn, 64, 1)
    except OSError:
        return None
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    name = kind.decode(errors="replace")
    if name not in shim.IO_KINDS:
        os.close(fds[0])
        return None
    return name, fds[0]


async def launch(state: Path, argv: list[str], stdio: Stdio | None = None) -> ShimProcess:
    """Start `argv` under a new shim with `state` as its directory (made empty now), with
    `stdio`'s fds passed down (the caller still owns and closes its copies)."""
    shutil.rmtree(state, ignore_errors=True)
    private.make_dir(state)
    os.mkfifo(state / shim.OUTPUT, 0o600)
    output = _open_output(state)
    log = os.open(state / "shim.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(SHIM_PROGRAM), str(state),
            *(stdio.argv() if stdio else ()), "--", *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log,
            pass_fds=(stdio.given, stdio.held) if stdio else ())
    except OSError:
        os.close(output)
        raise
    finally:
        os.close(log)
    try:
        code = await asyncio.wait_for(proc.wait(), LAUNCH_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        code = -1
    found = adopt(state) if code == 0 else None
    if found is None:
        os.close(output)
        text = (state / "shim.log").read_text(errors="replace").strip()
        raise ShimError(f"the container shim did not start: {text or f'exit code {code}'}")
    found.output = output
    return found


def _open_output(state: Path) -> int:
    return os.open(state / shim.OUTPUT, os.O_RDONLY | os.O_NONBLOCK)
