"""Rootless `--network netns`: the namespaces an unprivileged user's cluster network lives in.

The trial (runtime-network-trial.md, B.5) measured that an unprivileged user gets network
namespaces, bridges, veths, nftables NAT and cluster IPs inside a user namespace of its own
(`unshare -Urnm` with a tmpfs on /run). So `tinykube up --network netns`, when not root, starts
its components process (node agents, controllers, DNS, nftables proxy) through this launcher:

    python -m tinykube.network.userns -- python -m tinykube.components

The launcher is the "holder": it unshares new user, network, mount, PID, IPC and UTS
namespaces in one call (so the user namespace owns the others), maps root in it to the
calling user (one uid and one gid: no newuidmap or /etc/subuid needed, and none other exists
inside), makes every mount private, puts a tmpfs on /run (so `ip netns add` makes its
`/run/netns` names there, never on the host) and forks the command as PID 1 of the new PID
namespace, with /proc mounted for it. Inside, the command is root: it makes the node and pod
namespaces as root mode does, and pods' sandboxes nest their own namespaces in this one.
The API server stays in `tinykube up`, on the host's loopback; the components reach it by its
unix socket, and the sockets they need in the host's namespace come from `up`
(`network.hostsockets`).

The launcher stays in the host's PID namespace as the process `up` started: it forwards
SIGTERM, SIGINT and SIGHUP to the command and ends as the command ended. When the command
exits, the kernel kills everything left in its PID namespace, and the namespaces, their links,
rules and `/run/netns` names go with their last process: nothing is left on the host, even
after a SIGKILL of `up` (the command sees its stdin close and stops; a SIGKILL of the launcher
kills the command, PR_SET_PDEATHSIG).

`missing()` says, before anything starts, what keeps this user from it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # where ip and nft live, off many users' PATH


def command(argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` inside new namespaces (see above)."""
    return [sys.executable, "-m", "tinykube.network.userns", "--", *argv]


def tool_path(path: str) -> str:
    """`path` (a PATH value) with the sbin directories, where iproute2 and nftables live."""
    parts = path.split(os.pathsep) if path else []
    return os.pathsep.join([*parts, *(d for d in SBIN if d not in parts)])


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def missing(proxy: bool = True) -> str | None:
    """What this kernel or host lacks for the rootless netns mode (None: nothing)."""
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return ("user namespaces are disabled: the sysctl user.max_user_namespaces is 0 "
                "(an administrator can raise it)")
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return ("unprivileged user namespaces are disabled: the sysctl "
                "kernel.unprivileged_userns_clone is 0")
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor refuses unprivileged user namespaces (the sysctl "
                "kernel.apparmor_restrict_unprivileged_userns is 1)")
    path = tool_path(os.environ.get("PATH", ""))
    for tool, package, needed in (("ip", "iproute2", True), ("nft", "nftables", proxy)):
        if needed and shutil.which(tool, path=path) is None:
            return f"`{tool}` is not installed: install the {package} package"
    try:
        probe = subprocess.run(command(["ip", "link", "add", "probe0", "type", "bridge"]),
                               capture_output=True, text=True, timeout=20, check=False,
                               env={**os.environ, "PATH": path})
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"a user namespace could not be made: {error}"
    if probe.returncode != 0:
        why = probe.stderr.strip().splitlines()
        return ("a user namespace with its own network could not be made: "
                f"{why[-1] if why else f'exit code {probe.returncode}'}")
    return None


# --- the launcher, run as `python -m tinykube.network.userns -- CMD...` ------------------------

def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enter(libc: ctypes.CDLL) -> None:
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID |
                        CLONE_NEWIPC | CLONE_NEWUTS), "unshare user, network, mount and PID "
                                                      "namespaces")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    run = os.path.realpath("/run").encode()
    _check(libc.mount(b"tmpfs", run, b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=755"),
           "tmpfs on /run")
    os.mkdir("/run/netns", 0o755)


def _start(libc: ctypes.CDLL, argv: Sequence[str]) -> int:
    """Fork the command as PID 1 of the new PID namespace; its pid (here)."""
    child = os.fork()
    if child != 0:
        return child
    try:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
               "mount /proc")
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.execvp(argv[0], list(argv))
    except OSError as error:
        print(f"tinykube userns: {error}", file=sys.stderr, flush=True)
    os._exit(127)


def main(argv: Sequence[str]) -> int:
    command_argv = list(argv[list(argv).index("--") + 1:])
    libc = _libc()
    try:
        _enter(libc)
    except OSError as error:
        print(f"tinykube userns: {error}", file=sys.stderr, flush=True)
        return 125
    waited = {*FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    child = _start(libc, command_argv)
    while True:
        info = signal.sigwaitinfo(waited)
        if info.si_signo != signal.SIGCHLD:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, info.si_signo)
            continue
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
