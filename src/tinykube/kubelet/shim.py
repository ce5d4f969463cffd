"""The per-container shim: keeps a container's exit status when the node agent dies.

containerd runs one `containerd-shim` per container (per pod with the v2 shim), CRI-O one
`conmon`: a small process that is the parent of the OCI runtime, reaps the container and keeps
its exit status and its output pipes, so that the daemon can be restarted. This is that
process for tinykube, a few stdlib modules only (it starts in about 20 ms and keeps about
10 MB RSS: no `site`, no pathlib or datetime), run as

    python3 -I -S shim.py STATE_DIR [--stdin R,W | --tty SLAVE,MASTER] -- \
        runc --root R run --keep --bundle B ID

1. The launcher forks; the child makes itself a session leader (a signal to the agent's
   group does not reach it), a child subreaper (`PR_SET_CHILD_SUBREAPER`, so that the
   container's init is reparented to it, not to PID 1, if runc dies first), and opens
   `STATE_DIR/output`, a FIFO the agent made, read-write: the shim is then always one of its
   readers, so the container never gets EPIPE while the agent is gone; its output waits in
   the FIFO (64 KiB, then its writes block, as with containerd's FIFOs) until an agent reads
   it again. The run's stdin is /dev/null, stdout and stderr the FIFO (one stream, as CRI
   merges them into one log).
2. It starts the command as its child, writes `STATE_DIR/shim.json` (`{"pid", "child"}`),
   then tells the launcher, which exits 0 (1 if the setup failed). The agent waits for the
   launcher, then for the shim through a pidfd (`shimhandle`), which also works for a shim an
   earlier agent started.
3. The agent signals the shim's process group (the command is in it): `runc run` forwards
   SIGTERM and the like to the container's init; the shim catches them and carries on (a
   caught signal's handler is reset by exec, an ignored one would be inherited). A SIGKILL
   to the group kills the shim and runc; then there is no exit status to keep and the agent
   reports 137, as for a killed process.
4. When the command exits, its wait status and the time go to `STATE_DIR/exit.json` (written
   to a temporary file, fsynced and renamed: a reader sees all of it or nothing), and the shim
   exits, closing its end of the FIFO: the agent's reader then sees the end of the output.

A container with `stdin` or `tty` (`--stdin R,W` or `--tty SLAVE,MASTER`, fds the agent made and
passes down): the command's stdin is the pipe's read end, or all three of its streams are the
terminal, which the shim makes its session's controlling terminal (so the run is in the
terminal's foreground group and a typed ^C reaches it). The shim holds the agent's side too,
the pipe's write end or the terminal's master, as containerd-shim holds a container's stdin
FIFO: when the agent dies the container's stdin does not end and its terminal does not hang
up. A new agent gets that fd again from `STATE_DIR/io.sock` (a unix socket served by a thread;
request `fds`: the answer carries the fd with SCM_RIGHTS, or none once stdin is closed;
request `close-stdin`: the shim closes its copy, for `stdinOnce`, so that the agent's close is
the last one).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
SURVIVED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)
OUTPUT, SHIM, EXIT, IO_SOCKET = "output", "shim.json", "exit.json", "io.sock"
IO_KINDS = ("stdin", "tty")


def _write_atomic(path: str, doc: dict[str, object]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _survive(_sig: int, _frame: object) -> None:
    """The group's signals are runc's to forward; the shim stays to record the exit."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Stdio:
    """The run's stdin or terminal: `kind` "stdin" or "tty", the fd the command gets (the
    pipe's read end or the terminal's slave) and the one the shim holds (write end or
    master; None once stdin was closed)."""

    def __init__(self, kind: str, given: int, held: int) -> None:
        self.kind, self.given = kind, given
        self.held: int | None = held


def _spawn(argv: list[str], output: int, stdio: Stdio | None) -> int:
    devnull = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        try:
            streams = (devnull, output, output)
            if stdio is not None:
                streams = (stdio.given,) * 3 if stdio.kind == "tty" else \
                    (stdio.given, output, output)
                assert stdio.held is not None
                os.close(stdio.held)  # the command must not hold its own stdin open
            for fd, target in enumerate(streams):
                os.dup2(target, fd)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    os.close(devnull)
    return pid


def _serve_io(state: str, stdio: Stdio) -> None:
    """Hand the held fd to an agent that asks (`io.sock`), from a thread of its own."""
    import socket
    import threading

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    os.chdir(state)  # the socket's full path may pass the 108 bytes a sun_path holds
    try:
        server.bind(IO_SOCKET)
    finally:
        os.fchdir(here)
        os.close(here)
    server.listen(4)

    def answer(conn: socket.socket) -> None:
        request = conn.recv(64).strip()
        if request == b"close-stdin" and stdio.held is not None:
            os.close(stdio.held)
            stdio.held = None
        if request == b"fds" and stdio.held is not None:
            socket.send_fds(conn, [stdio.kind.encode()], [stdio.held])
        else:
            conn.sendall(b"none" if request == b"fds" else b"ok")

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                try:
                    answer(conn)
                except OSError:
                    continue

    threading.Thread(target=loop, daemon=True).start()


def _serve(state: str, argv: list[str], ready: int, stdio: Stdio | None) -> int:
    """The shim proper (in its own session): start, tell, wait, record."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    output = os.open(os.path.join(state, OUTPUT), os.O_RDWR)
    for sig in SURVIVED:
        signal.signal(sig, _survive)
    if stdio is not None and stdio.kind == "tty":
        import fcntl
        import termios
        fcntl.ioctl(stdio.given, termios.TIOCSCTTY, 0)
    child = _spawn(argv, output, stdio)
    if stdio is not None:
        os.close(stdio.given)
        _serve_io(state, stdio)
    _write_atomic(os.path.join(state, SHIM), {"pid": os.getpid(), "child": child})
    os.write(ready, b"ok")
    os.close(ready)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # hold nothing of the agent's
        os.dup2(devnull, fd)
    while True:
        pid, status = os.waitpid(-1, 0)  # orphans of the container are reaped too
        if pid == child:
            break
    _write_atomic(os.path.join(state, EXIT), {"status": status, "finishedAt": _now()})
    return 0


def _parse(args: list[str]) -> tuple[str, Stdio | None, list[str]] | None:
    """STATE_DIR [--stdin R,W | --tty SLAVE,MASTER] -- COMMAND..."""
    if len(args) < 3:
        return None
    state, rest, stdio = args[0], args[1:], None
    if rest[0] in ("--stdin", "--tty") and len(rest) > 3:
        given, _, held = rest[1].partition(",")
        if not (given.isdigit() and held.isdigit()):
            return None
        stdio = Stdio(rest[0][2:], int(given), int(held))
        rest = rest[2:]
    if rest[0] != "--" or len(rest) < 2:
        return None
    return state, stdio, rest[1:]


def main(args: list[str]) -> int:
    parsed = _parse(args)
    if parsed is None:
        sys.stderr.write("usage: shim.py STATE_DIR [--stdin R,W | --tty SLAVE,MASTER] -- "
                         "COMMAND...\n")
        return 2
    state, stdio, argv = parsed
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        code = 1
        try:
            code = _serve(state, argv, write_end, stdio)
        finally:
            os._exit(code)
    os.close(write_end)
    told = os.read(read_end, 16)
    return 0 if told == b"ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
