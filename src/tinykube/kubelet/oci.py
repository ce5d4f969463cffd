"""An OCI runtime bundle's `config.json` for one container of a pod (pure functions).

What containerd's CRI plugin writes for runc, from the pod, the container and the image's
config, reduced to what tinykube supports:

- `process.args` by Kubernetes' rules: `command` replaces the image's Entrypoint (and drops
  its Cmd), `args` replaces Cmd; `$(VAR)` references expanded from the container's env.
- `process.env`: the image's Env first (a default PATH if it has none), then the kubelet's.
- `process.cwd`: `workingDir`, else the image's WorkingDir, else `/`.
- `process.user`: `runAsUser`/`runAsGroup`, else the image's User (numeric, or a name
  looked up in the root filesystem's /etc/passwd and /etc/group); `runAsNonRoot` is checked
  against the result with the kubelet's messages.
- capabilities: containerd's default set of 14, with `add`/`drop` (`ALL` allowed) applied;
  all of them for `privileged`. A non-root user gets them only in the bounding set, as
  containerd 2 does.
- `noNewPrivileges` unless `allowPrivilegeEscalation` (or privileged); `root.readonly` for
  `readOnlyRootFilesystem`.
- seccomp: a deny-list (`DENIED_SYSCALLS`, answered EPERM) of the syscalls containerd's
  RuntimeDefault profile refuses to a container without extra capabilities (kernel modules,
  kexec, reboot, swap, clock, keyring, bpf, perf, namespaces of mounts...). containerd's
  profile is an allow-list of about 350 syscalls; this is the smaller, reasonable inverse.
  `Unconfined` or privileged: no filter.
- namespaces: new pid, ipc, uts and mount; the pod's network namespace by path, or the
  host's (no entry) for host-network pods and the host network mode.
- mounts: runc's defaults (proc, dev, devpts, shm, mqueue, sysfs, cgroup), then the pod's
  files and volumes as `mounts.Mount`s (bind, `ro` or `rw`).
- `linux.cgroupsPath` (inside tinykube's cgroups), memory limit, cpu quota from
  `limits.cpu`, cpu shares from `requests.cpu`, and a pids limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinykube.api import quantity
from tinykube.kubelet import env as pod_env
from tinykube.kubelet.mounts import Mount

Obj = Mapping[str, Any]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PIDS_LIMIT = 4096  # per container (the kubelet's podPidsLimit is unset by default)
CPU_PERIOD = 100_000

DEFAULT_CAPABILITIES = (  # containerd's (and Docker's) default set
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")
DENIED_SYSCALLS = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
    "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
    "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "process_vm_readv",
    "process_vm_writev", "query_module", "quotactl", "reboot", "request_key",
    "set_mempolicy", "setns", "settimeofday", "stime", "swapoff", "swapon", "_sysctl",
    "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86",
    "vm86old")
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


class ConfigError(pod_env.EnvError):
    """The container cannot be configured (CreateContainerConfigError)."""


def command(container: Obj, image: Obj, env: Mapping[str, str]) -> list[str]:
    """The process args by Kubernetes' rules (command/args over Entrypoint/Cmd)."""
    entrypoint = list(image.get("Entrypoint") or [])
    cmd = list(image.get("Cmd") or [])
    own_command = [pod_env.expand(str(a), env) for a in container.get("command") or []]
    own_args = [pod_env.expand(str(a), env) for a in container.get("args") or []]
    if own_command:
        argv = own_command + own_args
    else:
        argv = entrypoint + (own_args if container.get("args") else cmd)
    if not argv:
        raise ConfigError("no command specified")
    return argv


def image_env(image: Obj) -> dict[str, str]:
    """The image's Env as a dict, with a default PATH as containerd adds."""
    env: dict[str, str] = {}
    for item in image.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _lookup(rootfs: Path, table: str, name: str) -> tuple[int, int] | None:
    """(id, gid-or-id) of `name` in the rootfs' /etc/passwd or /etc/group."""
    try:
        lines = (rootfs / "etc" / table).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            gid = fields[3] if table == "passwd" and len(fields) > 3 and fields[3].isdigit() \
                else fields[2]
            return int(fields[2]), int(gid)
    return None


def image_user(user: str, rootfs: Path) -> tuple[int | None, int | None, str]:
    """The image's `User` ("name", "uid", "uid:gid", "name:group") -> (uid, gid, raw name);
    uid None when a name cannot be resolved."""
    name, _, group = user.partition(":")
    uid: int | None = 0
    gid: int | None = 0
    if name.isdigit():
        uid = int(name)
        found = _lookup_uid(rootfs, uid)
        gid = found if found is not None else 0
    elif name:
        entry = _lookup(rootfs, "passwd", name)
        uid, gid = (entry[0], entry[1]) if entry else (None, None)
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            entry = _lookup(rootfs, "group", group)
            gid = entry[0] if entry else None
    return uid, gid, name


def _lookup_uid(rootfs: Path, uid: int) -> int | None:
    try:
        lines = (rootfs / "etc/passwd").read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) > 3 and fields[2] == str(uid) and fields[3].isdigit():
            return int(fields[3])
    return None


def _context(pod: Obj, container: Obj, key: str) -> Any:
    own = container.get("securityContext") or {}
    if key in own:
        return own[key]
    return (pod.get("spec", {}).get("securityContext") or {}).get(key)


def user(pod: Obj, container: Obj, image: Obj, rootfs: Path) -> dict[str, Any]:
    """`process.user`, after the kubelet's runAsNonRoot check (ConfigError on refusal)."""
    uid, gid, name = image_user(str(image.get("User") or ""), rootfs)
    run_as, run_group = _context(pod, container, "runAsUser"), _context(pod, container,
                                                                       "runAsGroup")
    if run_as is not None:
        uid = int(run_as)
        gid = gid if gid is not None and run_group is None and name.isdigit() else 0
    if run_group is not None:
        gid = int(run_group)
    meta = pod["metadata"]
    where = (f'(pod: "{meta["name"]}_{meta.get("namespace", "default")}({meta.get("uid", "")})",'
             f' container: {container["name"]})')
    if _context(pod, container, "runAsNonRoot"):
        if uid is None or (run_as is None and name and not name.isdigit()):
            raise ConfigError(f"container has runAsNonRoot and image has non-numeric user "
                              f"({name}), cannot verify user is non-root {where}")
        if uid == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
    if uid is None or gid is None:
        raise ConfigError(f'unable to find user {name}: no matching entries in passwd file')
    groups = [int(g) for g in (pod.get("spec", {}).get("securityContext") or {})
              .get("supplementalGroups") or []]
    fs_group = (pod.get("spec", {}).get("securityContext") or {}).get("fsGroup")
    if fs_group is not None:
        groups.append(int(fs_group))
    body: dict[str, Any] = {"uid": uid, "gid": gid}
    if groups:
        body["additionalGids"] = list(dict.fromkeys(groups))
    return body


def capabilities(container: Obj, *, privileged: bool, root: bool) -> dict[str, list[str]]:
    """The capability sets: the default set with add/drop applied, or all when privileged."""
    if privileged:
        caps = list(ALL_CAPABILITIES)
    else:
        spec = (container.get("securityContext") or {}).get("capabilities") or {}
        norm = [f"CAP_{c.upper().removeprefix('CAP_')}" for c in spec.get("add") or []]
        drop = {f"CAP_{c.upper().removeprefix('CAP_')}" for c in spec.get("drop") or []}
        base = [] if "CAP_ALL" in drop else list(DEFAULT_CAPABILITIES)
        added = list(ALL_CAPABILITIES) if "CAP_ALL" in norm else norm
        caps = [c for c in dict.fromkeys([*base, *added])
                if c not in drop or c in norm]
    granted = caps if root else []
    return {"bounding": caps, "effective": granted, "permitted": granted}


def seccomp(pod: Obj, container: Obj, *, privileged: bool) -> dict[str, Any] | None:
    """The default deny-list, unless Unconfined or privileged."""
    profile = _context(pod, container, "seccompProfile") or {}
    if privileged or profile.get("type") == "Unconfined":
        return None
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": list(DENIED_SYSCALLS), "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]}


def resources(container: Obj, memory: int | None) -> dict[str, Any]:
    """`linux.resources`: memory limit, cpu quota/shares, pids."""
    body: dict[str, Any] = {"pids": {"limit": PIDS_LIMIT}}
    if memory is not None:
        body["memory"] = {"limit": memory}
    spec = container.get("resources") or {}
    cpu: dict[str, int] = {}
    limit = (spec.get("limits") or {}).get("cpu")
    parsed = quantity.parse(limit) if limit is not None else None
    if parsed is not None:
        cpu["quota"], cpu["period"] = max(1000, math.ceil(parsed[0] * CPU_PERIOD)), CPU_PERIOD
    request = (spec.get("requests") or {}).get("cpu")
    parsed = quantity.parse(request) if request is not None else None
    if parsed is not None:
        cpu["shares"] = max(2, math.ceil(parsed[0] * 1024))
    if cpu:
        body["cpu"] = cpu
    return body


def _default_mounts(readonly_sys: bool) -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro" if readonly_sys else "rw"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]


def bind(mount: Mount) -> dict[str, Any]:
    return {"destination": mount.target, "type": "bind", "source": str(mount.source),
            "options": ["rbind", "rprivate", "ro" if mount.read_only else "rw"]}


def config(pod: Obj, container: Obj, image: Obj, *, rootfs: Path, env: Mapping[str, str],
           argv: Sequence[str], hostname: str, netns: str | None,
           mounts: Sequence[Mount], cgroups_path: str | None,
           memory: int | None) -> dict[str, Any]:
    """The whole `config.json` (ConfigError when the container cannot run as asked)."""
    context = container.get("securityContext") or {}
    privileged = bool(context.get("privileged"))
    process_user = user(pod, container, image, rootfs)
    escalation = context.get("allowPrivilegeEscalation")
    cwd = container.get("workingDir") or image.get("WorkingDir") or "/"
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns is not None:
        namespaces.append({"type": "network", "path": netns})
    linux: dict[str, Any] = {"namespaces": namespaces,
                             "resources": resources(container, memory)}
    if cgroups_path is not None:
        linux["cgroupsPath"] = cgroups_path
    if not privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    profile = seccomp(pod, container, privileged=privileged)
    if profile is not None:
        linux["seccomp"] = profile
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(container.get("tty")), "user": process_user, "args": list(argv),
            "env": [f"{k}={v}" for k, v in env.items()], "cwd": str(cwd),
            "capabilities": capabilities(container, privileged=privileged,
                                         root=process_user["uid"] == 0),
            "noNewPrivileges": not privileged and escalation is False,
        },
        "root": {"path": str(rootfs), "readonly": bool(context.get("readOnlyRootFilesystem"))},
        "hostname": hostname,
        "mounts": [*_default_mounts(not privileged), *(bind(m) for m in mounts)],
        "linux": linux,
    }
