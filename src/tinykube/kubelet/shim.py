"""The per-container shim: keeps a container's exit status when the node agent dies.

containerd runs one `containerd-shim` per container (per pod with the v2 shim), CRI-O one
`conmon`: a small process that is the parent of the OCI runtime, reaps the container and keeps
its exit status and its output pipes, so that the daemon can be restarted. This is that
process for tinykube, a few stdlib modules only (it starts in about 20 ms and keeps about
10 MB RSS: no `site`, no pathlib or datetime), run as

    python3 -I -S shim.py STATE_DIR -- runc --root R run --keep --bundle B ID

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
OUTPUT, SHIM, EXIT = "output", "shim.json", "exit.json"


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


def _spawn(argv: list[str], output: int) -> int:
    devnull = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(devnull, 0)
            os.dup2(output, 1)
            os.dup2(output, 2)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    os.close(devnull)
    return pid


def _serve(state: str, argv: list[str], ready: int) -> int:
    """The shim proper (in its own session): start, tell, wait, record."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    output = os.open(os.path.join(state, OUTPUT), os.O_RDWR)
    for sig in SURVIVED:
        signal.signal(sig, _survive)
    child = _spawn(argv, output)
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


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: shim.py STATE_DIR -- COMMAND...\n")
        return 2
    state, argv = args[0], args[2:]
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        code = 1
        try:
            code = _serve(state, argv, write_end)
        finally:
            os._exit(code)
    os.close(write_end)
    told = os.read(read_end, 16)
    return 0 if told == b"ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
