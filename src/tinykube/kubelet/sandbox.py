"""Names inside a process pod: its own host name, /etc/resolv.conf and /etc/hosts.

A kubelet gives every pod a UTS namespace (host name = the pod's hostname) and bind-mounts the
resolv.conf and hosts files it wrote for the pod. The process runtime does the same per
container process, with a tiny helper that runs before the container's command:

    python -I .../tinykube/kubelet/sandbox.py --hostname web-0 --resolv F --hosts F -- CMD ARGS...

(run by its path, isolated: it needs only the standard library, and so neither the pod's own
PYTHONPATH nor another installed copy of tinykube can stand in for the node agent's code)

The helper calls unshare(2) for new mount and UTS namespaces, makes every mount private (so
nothing propagates back to the host), bind-mounts the pod's files over /etc/resolv.conf and
/etc/hosts, sets the host name, and execs the command, keeping its pid (and so its process
group and signals; with `--pidns` below, it stays as the command's parent instead); with
`--cgroups` it first joins the container's cgroups, so that everything the command starts is
found again there (see `cgroups`). With `--serviceaccount DIR` it also
mounts a private tmpfs on /run (as a container has its own /run) and binds the pod's service
account files (token, ca.crt, namespace) at /var/run/secrets/kubernetes.io/serviceaccount,
where client-go's in-cluster config looks. With `--netns PATH` (the `netns` network mode) it
first enters the pod's network namespace, so the command has the pod's own address and peers
see it. The host's own files are never written.

With `--pidns` (where `detect_pidns` found the kernel allows it) the container also gets its
own IPC namespace (SysV shared memory, semaphores and queues of its own) and PID namespace.
The helper cannot become PID 1 of a namespace it made (unshare(2) moves only its children), so
it forks the pod's init: the init mounts a /proc of the namespace (`ps` inside sees only the
container), forks the command as PID 2, reaps every orphan, forwards the signals sent to it
from inside the pod, and exits with the command, so the kernel kills what is left (a daemon
that called setsid(2) cannot outlive its container). The helper stays as the process the node
agent started, in the container's process group as before (signals to the group reach the
command directly; the helper ignores them), and ends as the command ended, by the same signal
if it was killed. `--join` with `--pidns` enters the running container's user (when it has its
own), IPC and PID namespaces too and runs the command as a child there, so `kubectl exec` sees
the container's processes. (Kubernetes shares one IPC namespace between a pod's containers; here
each container has its own, as it has its own mount namespace.)

With `--mounts` (the container's volumes, `mounts.Mount`s as JSON) each volume is bound at its
mount path, read-only where asked. Process pods share the host's filesystem, so a mount path
whose directory the host lacks (`/data`, `/usr/share/nginx/html`) cannot be made by mkdir.
Measured (kernel 6.x, root and unprivileged user namespace alike): the deepest existing
ancestor is shadowed by a tmpfs built at `--stage` (a directory of the pod's own) holding one
entry per entry of the ancestor, bound back recursively (so /proc, /dev/pts and the other
mounts below stay) or, for a symlink, copied; the missing directories are made in that tmpfs,
which then replaces the ancestor with MS_MOVE, or for `/` itself becomes the root by
pivot_root (the old root stays attached under /.tinykube-old-root until every volume is bound:
a bind from a detached tree is refused, EINVAL; then it is detached and its directory
removed). A mount point inside a volume bound read-write before it (mounts come parents
first) is made in that volume, as runc makes it. An overlay with a tmpfs upper was not used:
over `/` it would hide every mount below it. What the container itself creates directly in a
shadowed directory lives in the tmpfs and goes with the container.

`detect_mode` decides once per node agent: `root` (mount+UTS namespaces), `userns` (not root,
but the kernel allows an unprivileged user namespace, in which the process is mapped to root),
or `none` (the pod runs with the host's names; the pod's events say so).
`hosts_file` and `resolv_conf` are pure and build the files as a kubelet writes them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import functools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the helper runs with the standard library only
    from tinykube.kubelet.mounts import Mount

Obj = Mapping[str, Any]
CLUSTER_DOMAIN = "cluster.local"
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_MOVE = 8192
MS_RELATIME = 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
ST_RELATIME = 4096
OLD_ROOT = "/.tinykube-old-root"  # where the host's root is while volumes are bound
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
ACCOUNT_TARGET = "/var/run/secrets/kubernetes.io/serviceaccount"
HELPER = (sys.executable, "-I", os.path.abspath(__file__))  # this module, as the helper

_HOSTS_HEADER = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def pod_hostname(pod: Obj) -> str:
    spec = pod.get("spec", {})
    return str(spec.get("hostname") or pod["metadata"]["name"])[:63].rstrip("-.")


def pod_fqdn(pod: Obj) -> str | None:
    """`web-0.nginx.default.svc.cluster.local` for a pod with hostname and subdomain."""
    subdomain = pod.get("spec", {}).get("subdomain")
    if not subdomain:
        return None
    namespace = pod["metadata"].get("namespace", "default")
    return f"{pod_hostname(pod)}.{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}"


def hosts_file(pod: Obj, pod_ip: str) -> str:
    """The pod's /etc/hosts: localhost lines, its own names, then its hostAliases."""
    names = [n for n in (pod_fqdn(pod), pod_hostname(pod)) if n]
    text = _HOSTS_HEADER + f"{pod_ip}\t{chr(9).join(names)}\n"
    aliases = pod.get("spec", {}).get("hostAliases") or []
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        text += "".join(f"{a['ip']}\t{chr(9).join(a.get('hostnames') or [])}\n"
                        for a in aliases)
    return text


def resolv_conf(pod: Obj, nameserver: str | None) -> str | None:
    """The pod's /etc/resolv.conf from the cluster's side alone (no host file: `explain`), or
    None where the kubelet would build it from the node's resolver file (see `dnsconfig`)."""
    from tinykube.kubelet import dnsconfig  # here: the helper runs with the standard library
    kind = dnsconfig.dns_type(pod.get("spec", {}))
    if kind == "host" or (kind == "cluster" and nameserver is None):
        return None
    config, _events = dnsconfig.pod_dns(pod, nameserver, dnsconfig.HostResolver())
    return config.render()


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a container's processes run as (`securityContext` runAsUser/runAsGroup, with the
    pod's supplementalGroups and fsGroup)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def option(self) -> str:
        return f"{self.uid}:{self.gid}:{','.join(map(str, self.groups))}"


def identity(pod: Obj, container: Obj, *, uid: int, gid: int) -> Identity | None:
    """The container's identity when its security context names one (None: the agent's own).
    Container fields win over the pod's, as the kubelet applies them; `uid`/`gid` are what an
    unset field means (the agent's, as the image's user is for a container runtime)."""
    pod_context = pod.get("spec", {}).get("securityContext") or {}
    own = container.get("securityContext") or {}
    user = own.get("runAsUser", pod_context.get("runAsUser"))
    group = own.get("runAsGroup", pod_context.get("runAsGroup"))
    groups = [*(pod_context.get("supplementalGroups") or [])]
    if pod_context.get("fsGroup") is not None:
        groups.append(pod_context["fsGroup"])
    if user is None and group is None and not groups:
        return None
    return Identity(uid if user is None else int(user), gid if group is None else int(group),
                    tuple(dict.fromkeys(int(g) for g in groups)))


def runs_as_root_refused(pod: Obj, container: Obj, *, uid: int) -> str | None:
    """The kubelet's refusal of a `runAsNonRoot` container that would run as root, or None."""
    pod_context = pod.get("spec", {}).get("securityContext") or {}
    own = container.get("securityContext") or {}
    if not own.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
        return None
    user = own.get("runAsUser", pod_context.get("runAsUser"))
    if (uid if user is None else int(user)) != 0:
        return None
    meta = pod["metadata"]
    return (f'container has runAsNonRoot and image will run as root (pod: "{meta["name"]}_'
            f'{meta.get("namespace", "default")}({meta.get("uid", "")})", container: '
            f'{container["name"]})')


class Sandbox:
    """Writes a pod's name files (and service account files) and wraps its commands in the
    namespace helper.

    The files are owner-only (0600) like everything in the data directory; when a container
    runs as another user (`shared=True`) they get the modes a kubelet gives them (0644), still
    inside the pod's 0700 directory, so only the pod's own mounts reach them."""

    def __init__(self, mode: str, directory: Path, *, hostname: str, hosts: str,
                 resolv: str | None, account: Mapping[str, str] | None = None,
                 netns: str | None = None, shared: bool = False, pidns: bool = False) -> None:
        from tinykube import private  # not at the top: the helper itself is stdlib-only

        self.mode = mode
        self.pidns = pidns and mode != "none"  # own PID and IPC namespaces, with an init
        self.netns = netns  # the pod's network namespace (path), in the netns network mode
        self.directory = directory = directory.resolve()  # the helper runs in another cwd
        self.hostname = hostname
        private.make_dir(directory)  # under the data directory: 0700, its files 0600
        self.hosts_path = directory / "hosts"
        private.write(self.hosts_path, hosts)
        self.resolv_path: Path | None = None
        if resolv is not None:
            self.resolv_path = directory / "resolv.conf"
            private.write(self.resolv_path, resolv)
        self.stage = directory / "stage"  # where the helper builds a shadow tmpfs (volumes)
        private.make_dir(self.stage)
        self.account_path: Path | None = None
        if account is not None:
            self.account_path = directory / "serviceaccount"
            private.make_dir(self.account_path)
            for name, content in account.items():
                private.write(self.account_path / name, content)
        if shared:  # readable by the container's user, as the kubelet's files are
            for path in (self.directory, self.account_path):
                if path is not None:
                    os.chmod(path, 0o755)
            for path in (self.hosts_path, self.resolv_path, *(
                    self.account_path.iterdir() if self.account_path else ())):
                if path is not None:
                    os.chmod(path, 0o644)

    def __repr__(self) -> str:
        return f"Sandbox({self.mode}, {self.hostname})"

    def wrap(self, argv: Sequence[str], cgroups: Sequence[str] = (), *,
             user: Identity | None = None, join: int | None = None,
             mounts: Sequence[Mount] = (), ready: int | None = None) -> list[str]:
        """The command line that runs `argv` inside the pod's namespaces: new ones, or with
        `join` those of that running process (a `kubectl exec` into its container); given
        their paths, in a container's cgroups; given `user`, as that identity (root only);
        with `mounts`, the container's volumes bound in its mount namespace; `ready`, a pipe's
        write end the helper keeps open until it execs the command (or fails), so the caller
        knows when the container's mounts are in place (as runc's exec fifo tells)."""
        if self.mode == "none":
            return list(argv)
        helper = [*HELPER, "--mode", self.mode,
                  "--hostname", self.hostname, "--hosts", str(self.hosts_path)]
        if join is not None and (self.mode == "root" or self.pidns):
            helper += ["--join", str(join)]  # (a user namespace is joined with its PID one)
        if self.pidns:
            helper += ["--pidns", "1"]
        if user is not None and self.mode == "root":
            helper += ["--user", user.option()]
        if self.resolv_path is not None:
            helper += ["--resolv", str(self.resolv_path)]
        if self.account_path is not None:
            helper += ["--serviceaccount", str(self.account_path)]
        if self.netns is not None:
            helper += ["--netns", self.netns]
        if cgroups:
            helper += ["--cgroups", ",".join(cgroups)]
        if mounts and join is None:
            helper += ["--stage", str(self.stage), "--mounts", json.dumps(
                [[str(m.source), m.target, m.read_only] for m in mounts])]
        if ready is not None:
            helper += ["--ready", str(ready)]
        return [*helper, "--", *argv]


def detect_pidns(mode: str) -> bool:
    """Whether pods may also get PID and IPC namespaces (with /proc mounted for them) in
    `mode`: a kernel may refuse a new PID namespace or a proc mount in a user namespace (a
    /proc with masked entries, as in some containers)."""
    if mode == "none":
        return False
    try:
        probe = subprocess.run([*HELPER, "--mode", mode, "--hostname", "probe", "--pidns", "1",
                                "--", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def detect_mode() -> str:
    """`root`, `userns` or `none`: what this process may do for pods' names."""
    if os.geteuid() == 0:
        return "root"
    try:
        probe = subprocess.run([*HELPER, "--mode", "userns", "--hostname", "probe", "--", "true"],
                               capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return "userns" if probe.returncode == 0 else "none"


# --- the helper, run as `python -m tinykube.kubelet.sandbox` -----------------------------------

@functools.cache
def _libc() -> ctypes.CDLL:  # (find_library runs ldconfig: once)
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enter_netns(libc: ctypes.CDLL, path: str) -> None:
    """Join the network namespace at `path` (this process is single-threaded here)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(libc.setns(fd, CLONE_NEWNET), f"enter network namespace {path}")
    finally:
        os.close(fd)


def _join(libc: ctypes.CDLL, pid: str, pidns: bool = False) -> None:
    """Enter the network, UTS and mount namespaces of process `pid` (a running container);
    with `pidns` also its IPC namespace, the PID namespace of its children (the pod's: `pid` is
    the helper that started the pod's init) and, when it has its own, its user namespace
    first (its owner, this user, has every capability in it)."""
    kinds: tuple[tuple[str, int], ...] = (
        ("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("mnt", CLONE_NEWNS))
    if pidns:
        kinds = (("ipc", CLONE_NEWIPC), ("pid_for_children", CLONE_NEWPID), *kinds)
        kinds = (("user", CLONE_NEWUSER), *kinds)
    # Only the namespaces it does not share with this process (the host's network namespace
    # of a pod in its own user namespace cannot be entered from inside that one)
    kinds = tuple((name, flag) for name, flag in kinds
                  if os.stat(f"/proc/{pid}/ns/{name}").st_ino !=
                  os.stat(f"/proc/self/ns/{name}").st_ino)
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY), flag) for name, flag in kinds]
    cwd = os.getcwd()  # entering a mount namespace moves this process to its root
    try:
        for fd, flag in fds:  # all opened first: after the mount namespace, /proc may differ
            _check(libc.setns(fd, flag), f"enter the {flag:#x} namespace of process {pid}")
    finally:
        for fd, _flag in fds:
            os.close(fd)
    os.chdir(cwd)


def _become(option: str) -> None:
    """Switch to `UID:GID:G1,G2` (groups first, the user last, as a runtime does)."""
    uid, gid, groups = option.split(":", 2)
    os.setgroups([int(g) for g in groups.split(",") if g])
    os.setgid(int(gid))
    os.setuid(int(uid))


def _enter(mode: str, hostname: str, binds: Mapping[str, str],
           account: str | None = None, netns: str | None = None,
           volumes: Sequence[tuple[str, str, bool]] = (), stage: str | None = None,
           pidns: bool = False) -> None:
    """New mount and UTS namespaces with the pod's files bound in place. With `account`, a
    private tmpfs on /run (as a container has its own) holds it at `ACCOUNT_TARGET`; with
    `netns`, the pod's network namespace is joined first; `volumes` are then bound (see
    `_bind_volumes`); with `pidns`, new IPC and PID namespaces too (the PID one is for the
    children: see `_pod_init`)."""
    libc = _libc()
    if netns is not None:
        _enter_netns(libc, netns)
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWUTS | (CLONE_NEWUSER if mode == "userns" else 0)
    flags |= (CLONE_NEWIPC | CLONE_NEWPID) if pidns else 0
    _check(libc.unshare(flags), "unshare")
    if mode == "userns":
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    # Sources by file descriptor, opened in the new namespace (a bind from another one is
    # refused) before the tmpfs below may hide where they live; targets as the host resolves
    # them (/etc/resolv.conf may be a link into /run).
    sources = {target: os.open(source, os.O_PATH) for source, target in binds.items()}
    if account is not None:
        sources[ACCOUNT_TARGET] = os.open(account, os.O_PATH | os.O_DIRECTORY)
    volume_fds = [(os.open(source, os.O_PATH), target, read_only)
                  for source, target, read_only in volumes]
    targets = {target: os.path.realpath(target) for target in sources}
    run = os.path.realpath("/var/run")
    ours: set[int] = set()  # devices of the tmpfs mounts made here: writable, not the host's
    if account is not None:
        _check(libc.mount(b"tmpfs", run.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                          b"mode=755"), f"tmpfs on {run}")
        ours.add(os.stat(run).st_dev)
    for target, fd in sources.items():
        real = targets[target]
        if account is not None and real.startswith(run + "/") and not os.path.exists(real):
            # On the private tmpfs: the mount point is made there, never on the host.
            Path(real).parent.mkdir(parents=True, exist_ok=True)
            if target == ACCOUNT_TARGET:
                Path(real).mkdir(exist_ok=True)
            else:
                Path(real).touch()
        _check(libc.mount(f"/proc/self/fd/{fd}".encode(), real.encode(), None, MS_BIND, None),
               f"bind over {target}")
        os.close(fd)
    if volume_fds:
        if stage is None:
            raise OSError(22, "volumes need --stage")
        _bind_volumes(libc, volume_fds, stage, ours)
    socket.sethostname(hostname)


def _bind_volumes(libc: ctypes.CDLL, volumes: Sequence[tuple[int, str, bool]], stage: str,
                  ours: set[int]) -> None:
    """Bind each volume (an O_PATH descriptor) at its target, read-only if asked.

    A target that does not exist cannot be made on the host. Its deepest existing ancestor
    is shadowed instead: a tmpfs (built at `stage`) gets one entry per entry of the ancestor,
    each bound back from the host (recursively, so mounts below stay) or, for a symlink,
    copied; the missing directories (and an empty file for a file volume) are made in that
    tmpfs, which then replaces the ancestor (MS_MOVE; for `/` itself, pivot_root into it).
    The host's files are only ever bind-mounted, never written; in the container, new entries
    made directly in a shadowed directory live in the tmpfs and are gone with the container.
    """
    old_roots: list[str] = []  # the host's root after a pivot, detached once all are bound
    writable: list[str] = []  # volumes bound read-write: a mount point in one is made there
    for fd, target, read_only in volumes:
        real = os.path.realpath(target)
        source = f"/proc/self/fd/{fd}"
        if not os.path.lexists(real):
            inside = any(within(real, w) for w in writable)
            _make_target(libc, real, os.path.isdir(source), stage, ours, old_roots, inside)
        _check(libc.mount(source.encode(), real.encode(), None, MS_BIND | MS_REC, None),
               f"bind volume at {target}")
        if read_only:
            _remount_read_only(libc, real)
        else:
            writable.append(real)
        os.close(fd)
    for old_root in old_roots:  # sources bound from a detached tree would be refused: last
        _check(libc.umount2(old_root.encode(), MNT_DETACH), "detach the old root")
        os.rmdir(old_root)


def _make_target(libc: ctypes.CDLL, real: str, directory: bool, stage: str,
                 ours: set[int], old_roots: list[str], in_volume: bool) -> None:
    """Make the missing mount point `real`: in a tmpfs of ours or (`in_volume`) in a volume
    bound read-write before it, as runc makes it there; else in a shadow of its ancestor."""
    missing = []
    ancestor = real
    while not os.path.lexists(ancestor):
        missing.append(ancestor)
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise OSError(20, f"mount point {real}: {ancestor} is not a directory")
    if os.stat(ancestor).st_dev not in ours and not in_volume:
        _shadow(libc, ancestor, stage, old_roots)
        ours.add(os.stat(ancestor).st_dev)
    for path in reversed(missing[1:]):
        os.mkdir(path, 0o755)
    if directory:
        os.mkdir(real, 0o755)
    else:
        os.close(os.open(real, os.O_CREAT | os.O_WRONLY, 0o644))


def _shadow(libc: ctypes.CDLL, ancestor: str, stage: str, old_roots: list[str]) -> None:
    """Replace directory `ancestor` by a tmpfs that shows the same entries (bound from it)."""
    original = os.open(ancestor, os.O_PATH | os.O_DIRECTORY)
    info = os.stat(ancestor)
    _check(libc.mount(b"tmpfs", stage.encode(), b"tmpfs", 0,
                      f"mode={info.st_mode & 0o7777:o}".encode()), f"tmpfs on {stage}")
    os.chown(stage, info.st_uid, info.st_gid)
    for entry in os.listdir(f"/proc/self/fd/{original}"):
        _mirror(libc, f"/proc/self/fd/{original}/{entry}", os.path.join(stage, entry))
    os.close(original)
    cwd = os.getcwd()
    if ancestor == "/":
        put_old = os.path.join(stage, OLD_ROOT.lstrip("/"))
        os.mkdir(put_old, 0o700)
        _check(libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], stage.encode(),
                            put_old.encode()), "pivot_root")
        old_roots.append(OLD_ROOT)
    else:
        _check(libc.mount(stage.encode(), ancestor.encode(), None, MS_MOVE, None),
               f"move the shadow of {ancestor}")
    if within(stage, ancestor):  # its copy, bound back in with the entries: not wanted
        libc.umount2(stage.encode(), MNT_DETACH)
    if os.path.isdir(cwd):
        os.chdir(cwd)


def _mirror(libc: ctypes.CDLL, source: str, copy: str) -> None:
    """One entry of a shadowed directory: a symlink copied, anything else bound."""
    info = os.lstat(source)
    if os.path.islink(source):
        os.symlink(os.readlink(source), copy)
        return
    if os.path.isdir(source):
        os.mkdir(copy, info.st_mode & 0o7777)
    else:
        os.close(os.open(copy, os.O_CREAT | os.O_WRONLY, 0o600))
    _check(libc.mount(source.encode(), copy.encode(), None, MS_BIND | MS_REC, None),
           f"bind {copy}")


def _remount_read_only(libc: ctypes.CDLL, real: str) -> None:
    """Make the bind at `real` read-only, keeping the flags its mount has (a user namespace
    may not clear them)."""
    flags = os.statvfs(real).f_flag
    keep = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    if flags & ST_RELATIME:
        keep |= MS_RELATIME
    _check(libc.mount(None, real.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, None),
           f"read-only {real}")


def within(path: str, base: str) -> bool:
    return base == "/" or path == base or path.startswith(base.rstrip("/") + "/")


# --- the pod's init (PID and IPC namespaces) ----------------------------------------------------

# Every signal a process may catch: blocked in the helpers, reset in the command.
_SIGNALS = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def _pod_init(command: Sequence[str], user: str | None, ready: int | None) -> int:
    """Run `command` as PID 2 of the new PID namespace, under an init (PID 1) forked here.

    This process (the one the node agent started, in the host's PID namespace) stays as the
    container's process: it ignores the signals it gets (the pod's process group gets them
    too) and ends as the container's command ended, signal included, reported by the init on
    a pipe. The init mounts /proc for the namespace, forks the command, reaps every orphan
    (the zombies of the pod), forwards to the command the signals sent to it from inside the
    pod, and exits when the command exits: the kernel then kills whatever is left in the
    namespace (a daemon that called setsid(2) included)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    report_r, report_w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(report_r)
        os._exit(_init(command, user, ready, report_w))
    os.close(report_w)
    if ready is not None:
        os.close(ready)  # the init and the command hold it until the command's exec
    for sig in _SIGNALS - {signal.SIGCHLD}:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    _pid, status = os.waitpid(init, 0)
    with os.fdopen(report_r, "rb") as report:
        killed_by = report.read().decode()
    if os.WIFSIGNALED(status):  # the init itself was killed (SIGKILL)
        return _mirror_signal(os.WTERMSIG(status))
    if killed_by:
        return _mirror_signal(int(killed_by))
    return os.WEXITSTATUS(status)


def _mirror_signal(sig: int) -> int:
    """End this process by `sig` (as the command ended), or return 128 + sig."""
    if sig in _SIGNALS:  # (SIGKILL has no handler to reset)
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    return 128 + sig


def _init(command: Sequence[str], user: str | None, ready: int | None, report: int) -> int:
    """PID 1 of the pod (see `_pod_init`); its exit code is the command's."""
    libc = _libc()
    try:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the helper gone: all go
        _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
               "mount /proc for the PID namespace")
        child = os.fork()
    except OSError as exc:
        print(f"tinykube sandbox: {exc}", file=sys.stderr, flush=True)
        return 125
    if child == 0:
        os.close(report)
        os._exit(_exec(command, user))
    if ready is not None:
        os.close(ready)
    status: int | None = None
    while status is None:
        info = signal.sigwaitinfo(_SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            if info.si_pid != 0:  # from inside the pod (the kubelet's reach the group)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, info.si_signo)
            continue
        status = _reap(child)
    if os.WIFSIGNALED(status):
        os.write(report, str(os.WTERMSIG(status)).encode())
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _reap(child: int) -> int | None:
    """Reap every exited process; the wait status of `child` if it is one of them."""
    found = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        if pid == child:
            found = status


def _exec(command: Sequence[str], user: str | None, *, reset: bool = True) -> int:
    """Become `user` (if given) and exec `command`; with `reset`, with default signal
    handling (after the helpers' blocked and ignored signals)."""
    try:
        for sig in _SIGNALS if reset else ():
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
        if reset:
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if user is not None:
            _become(user)
    except OSError as exc:
        print(f"tinykube sandbox: {exc}", file=sys.stderr, flush=True)
        return 125
    try:
        os.execvp(command[0], list(command))
    except OSError as exc:
        print(f"tinykube sandbox: exec {command[0]}: {exc.strerror}", file=sys.stderr,
              flush=True)
    return 127


def _run_joined(command: Sequence[str], user: str | None) -> int:
    """After joining a pod's PID namespace (for children): run `command` as a child there and
    end as it ends (`kubectl exec`, exec probes, hooks)."""
    child = os.fork()
    if child == 0:
        os._exit(_exec(command, user))
    _pid, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return _mirror_signal(os.WTERMSIG(status))
    return os.WEXITSTATUS(status)


def main(argv: Sequence[str]) -> int:
    """Parse `--mode M --hostname H [--hosts F] [--resolv F] [--serviceaccount D] [--netns P]
    [--cgroups DIR,DIR] [--join PID] [--user UID:GID:GROUPS] [--stage DIR --mounts JSON]
    [--ready FD] [--pidns 1] -- CMD...`, join the cgroups, enter (or join PID's namespaces),
    become the user, exec (with `--pidns`, under the pod's init or as a child in its PID
    namespace)."""
    split = list(argv).index("--")
    options = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
    command = list(argv[split + 1:])
    ready = int(options["--ready"]) if "--ready" in options else None
    if ready is not None:  # closed by the exec below, or by the exit on a failure
        os.set_inheritable(ready, False)
    pidns = "--pidns" in options
    binds = {options[k]: t for k, t in (("--hosts", "/etc/hosts"),
                                         ("--resolv", "/etc/resolv.conf")) if k in options}
    try:
        for cgroup in filter(None, options.get("--cgroups", "").split(",")):
            Path(cgroup, "cgroup.procs").write_text(str(os.getpid()))  # before any child
        if "--join" in options:
            _join(_libc(), options["--join"], pidns)
        else:
            volumes = [(str(s), str(t), bool(r))
                       for s, t, r in json.loads(options.get("--mounts", "[]"))]
            _enter(options["--mode"], options["--hostname"], binds,
                   options.get("--serviceaccount"), options.get("--netns"),
                   volumes, options.get("--stage"), pidns)
        if pidns:
            if "--join" in options:
                return _run_joined(command, options.get("--user"))
            return _pod_init(command, options.get("--user"), ready)
        if "--user" in options:
            _become(options["--user"])
    except OSError as exc:
        print(f"tinykube sandbox: {exc}", file=sys.stderr, flush=True)
        return 125
    return _exec(command, None, reset=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
