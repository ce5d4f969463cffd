"""Starting the child process of `tinykube up` (nodes, controllers, DNS, proxy), and the words
of its line protocol (see `components`), and the process settings every long-running tinykube
process starts with (open-file limit, GC). Light on purpose: `tinykube up` imports this before
anything heavy, so that the child's start-up overlaps its own; and `run_until`, which both
processes wait on, here so that the API server's process never imports `components` (that
import, a third of a second of the API server's event loop, would hold up the child's first
lists right after start)."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

READY = "READY"  # the child's line once every component runs
FAILED = "FAILED "  # the child's last line when it cannot start: FAILED <reason>
CLOCK = "CLOCK "  # test clock: `CLOCK {"to": t}` in, `CLOCK {"next": t | null}` out


# `python -m tinykube.components`, with the cyclic GC off until `tune_gc` (see there)
CHILD_COMMAND = [sys.executable, "-c", "import gc; gc.disable(); import runpy; "
                 "runpy.run_module('tinykube.components', run_name='__main__', alter_sys=True)"]


def spawn_components() -> subprocess.Popen[bytes]:
    """Start the child now; it imports its modules, then waits for its options on stdin."""
    return subprocess.Popen(CHILD_COMMAND,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)


# the child `spawn_early` started, until `up` takes it (`take_early`)
_early: subprocess.Popen[bytes] | None = None
# `up` arguments after which the child is started otherwise, or not at all
_NOT_EARLY = ("--detach", "--single-process", "netns", "--network=netns", "--help")


def spawn_early(argv: list[str]) -> None:
    """Start `tinykube up`'s child before the command line is parsed (before even `click` is
    imported): the child's imports are the longer half of the start (issue 18's cold start),
    and each millisecond they start earlier is one off the time to ready. Not for arguments
    that start no child or another one (`_NOT_EARLY`); `up` takes it with `take_early`, and a
    child `up` never took (a usage error, say) is killed at exit."""
    global _early
    if _early is not None or any(a in _NOT_EARLY for a in argv):
        return
    import atexit

    raise_open_files_limit()  # the child inherits the limit
    _early = spawn_components()
    atexit.register(_kill_early)


def take_early() -> subprocess.Popen[bytes] | None:
    """The child `spawn_early` started, if it did (once)."""
    global _early
    process, _early = _early, None
    return process


def _kill_early() -> None:
    process = take_early()
    if process is not None:
        process.kill()
        process.wait()


def spawn_rootless_components() -> tuple[subprocess.Popen[bytes], int]:
    """Start the child inside new user, network, mount and PID namespaces (`network.userns`,
    rootless `--network netns`), with one end of `network.hostsockets` served by this process;
    (the child, that end's file descriptor number in it)."""
    import os

    from tinykube.network import hostsockets, userns

    server, child_end = hostsockets.pair()
    env = {**os.environ, "PATH": userns.tool_path(os.environ.get("PATH", ""))}
    try:
        process = subprocess.Popen(userns.command(CHILD_COMMAND),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   start_new_session=True, pass_fds=(child_end.fileno(),),
                                   env=env)
    except BaseException:
        server.close()
        raise
    finally:
        fd = child_end.fileno()
        child_end.close()
    hostsockets.serve(server)
    return process, fd


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit, as Go programs (kube-apiserver, the
    kubelet, CoreDNS) do at start, and return the soft limit now in force.

    A shell's default soft limit (1024) is far below what a node agent's pods, a DNS server's
    TCP clients and a proxy's listeners need together, while the hard limit is usually much
    higher. Children (the components process, process pods) inherit the raised limit, as
    containers inherit containerd's. Where the hard limit is unlimited (macOS), the kernel's
    per-process cap refuses it: the soft limit is then left as it was."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


def tune_gc() -> None:
    """Collect cycles less often in the long-running processes of `tinykube up`.

    Python starts a young-generation collection every 700 net allocations; serving the API and
    decoding watch events allocate thousands of short-lived (acyclic, refcount-freed) objects per
    request, so the default spends a noticeable share of the CPU walking young objects that die
    anyway, and the full collections walk every cached object. Start-up objects are frozen out
    of collection altogether (`gc.freeze`, as long-lived servers do).

    Until then `tinykube up`'s two processes run with the collector off (`CHILD_COMMAND`,
    `tinykube.__main__`): importing ~160 modules (classes, functions, dataclasses: cycles that
    live as long as the process) set off ~110 collections, ~40 ms of each start for nothing.
    This turns it back on."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    gc.enable()


async def run_until(tasks: list[asyncio.Task[Any]], stop: asyncio.Event) -> str | None:
    """Wait until `stop` is set or one of `tasks` ends; what failed, if one did (logged)."""
    import asyncio  # here: this module is imported before anything heavy
    import logging

    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    for task in done:
        if task is not waiter:
            failure = task.exception() if not task.cancelled() else None
            reason = f"{task.get_name()} failed: {failure}" if failure is not None \
                else f"{task.get_name()} ended"
            logging.getLogger(__name__).error("component %s", reason)
            return reason
    return None
