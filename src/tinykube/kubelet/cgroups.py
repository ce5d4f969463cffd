"""Cgroups for process pods: every process of a container is found, limited and killed.

A kubelet puts each container in a cgroup of its pod's. So does the process runtime, in the
cgroup hierarchies it finds (`/proc/self/mounts`, `/proc/self/cgroup`), below its own cgroup:

    <own cgroup>/tinykube-<node id>/<pod uid>/<container name>

- **Tracking**: the sandbox helper writes its pid into the container's cgroups before it execs
  the command, so everything the command starts is in them, daemons that call setsid(2)
  included. When the container stops (its main process exited or was killed), `kill_all`
  kills what is left, with `cgroup.kill` on cgroup v2, else by SIGKILLing `cgroup.procs` until
  it is empty, as runc does for a container without a PID namespace.
- **Usage** (`usage`): cumulative CPU time and the memory working set, what the kubelet's
  `/metrics/resource` reports; on cgroup v2 from `cpu.stat` and `memory.current`/`memory.stat`,
  on v1 from `cpuacct.usage` and `memory.usage_in_bytes`/`memory.stat`. In a hybrid layout
  (v1 controllers, the v2 hierarchy for tracking) CPU comes from v2's `cpu.stat`, which has
  `usage_usec` without the cpu controller; a v1-only host adds its `cpuacct` hierarchy.
- **Memory**: `resources.limits.memory` becomes `memory.max` (v2) or `memory.limit_in_bytes`
  (v1); when the kernel's OOM killer ends a process of the container, its `oom_kill` counter
  (`memory.events` or `memory.oom_control`) goes up, and the runtime reports the container
  `OOMKilled` with exit code 137, as the kubelet does.

Where no hierarchy is writable (not root), `Cgroups.available` is False and pods run as before;
the pod's events say so. The layout is per node agent, and `clear` removes what an earlier run
left (killing its processes first).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from tinykube.api import quantity

KILL_ROUNDS = 50  # v1 kill loop: each round SIGKILLs what cgroup.procs lists


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    root: Path  # where our own cgroup is, e.g. /sys/fs/cgroup/memory/<our path>
    version: int  # 1 or 2
    memory: bool  # limits, OOM counters and the working set live here
    cpu: bool = False  # CPU time is read here (v2 `cpu.stat`, v1 `cpuacct.usage`)
    mount: str = ""  # where the hierarchy is mounted (root is below it)


def _own_paths() -> dict[str, str]:
    """Controller list (v1, e.g. "memory") or "" (v2) -> our cgroup path in it."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        paths[controllers] = path
    return paths


def discover() -> list[Hierarchy]:
    """The hierarchies to use: v2 (unified) for tracking when mounted, v1 memory for limits
    when the memory controller is there; writable ones only."""
    own = _own_paths()
    found: list[Hierarchy] = []
    cpuacct: Hierarchy | None = None
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _dev, mount, kind, options, *_ = line.split()
        controllers = options.split(",")
        if kind == "cgroup2" and "" in own:
            enabled = Path(mount, "cgroup.controllers").read_text().split()
            # cpu.stat's usage_usec is there with or without the cpu controller
            found.append(Hierarchy(Path(mount + own[""]), 2, "memory" in enabled, cpu=True,
                                   mount=mount))
        elif kind == "cgroup" and {"memory", "cpuacct"} & set(controllers):
            path = next((p for c, p in own.items()
                         if {"memory", "cpuacct"} & set(c.split(","))), None)
            if path is None:
                continue
            hierarchy = Hierarchy(Path(mount + path), 1, "memory" in controllers,
                                  cpu="cpuacct" in controllers, mount=mount)
            if hierarchy.memory:
                found.append(hierarchy)
            else:
                cpuacct = hierarchy
    if cpuacct is not None and not any(h.cpu for h in found):  # v1 only: CPU from cpuacct
        found.append(cpuacct)
    return [h for h in found if os.access(h.root, os.W_OK)]


def memory_limit(container: Mapping[str, Any]) -> int | None:
    """The container's `resources.limits.memory` in bytes, if it has one."""
    limits = (container.get("resources") or {}).get("limits") or {}
    value = limits.get("memory")
    parsed = quantity.parse(value) if value is not None else None
    return math.ceil(parsed[0]) if parsed is not None else None



class Cgroups:
    """The cgroups of one node agent's containers."""

    def __init__(self, node_id: str, hierarchies: Iterable[Hierarchy] | None = None) -> None:
        self.hierarchies = list(discover() if hierarchies is None else hierarchies)
        self.node_id = node_id

    def __repr__(self) -> str:
        return f"Cgroups({self.node_id}, {[str(h.root) for h in self.hierarchies]})"

    @property
    def available(self) -> bool:
        return bool(self.hierarchies)

    def _base(self, hierarchy: Hierarchy) -> Path:
        return hierarchy.root / f"tinykube-{self.node_id}"

    def container(self, pod_uid: str, name: str, memory: int | None) -> list[str]:
        """Make (or empty) the container's cgroups, set its memory limit; their paths."""
        paths = []
        for hierarchy in self.hierarchies:
            path = self._base(hierarchy) / pod_uid / name
            if hierarchy.version == 2 and hierarchy.memory:
                _enable_memory(self._base(hierarchy), path)
            path.mkdir(parents=True, exist_ok=True)
            if hierarchy.memory:
                _set_memory(path, hierarchy.version, memory)
            paths.append(str(path))
        return paths

    def paths(self, pod_uid: str, name: str) -> list[str]:
        """The container's cgroups (for `kubectl exec`, whose command joins them)."""
        return [str(self._base(h) / pod_uid / name) for h in self.hierarchies]

    def relative(self, pod_uid: str, name: str) -> str | None:
        """The container's cgroup as a path from the memory hierarchy's root (an OCI
        `linux.cgroupsPath`, so that runc puts the container where `oom_kills`, `kill_all`
        and `kubectl top` look); None without a memory hierarchy."""
        for hierarchy in self.hierarchies:
            if hierarchy.memory and hierarchy.mount:
                path = self._base(hierarchy) / pod_uid / name
                return "/" + str(path.relative_to(hierarchy.mount))
        return None

    def oom_kills(self, pod_uid: str, name: str) -> int:
        """How many processes of the container the OOM killer has ended so far."""
        total = 0
        for hierarchy in self.hierarchies:
            if hierarchy.memory:
                path = self._base(hierarchy) / pod_uid / name
                total = max(total, _oom_count(path, hierarchy.version))
        return total

    def usage(self, pod_uid: str, name: str) -> tuple[int, int] | None:
        """The container's (cumulative CPU time in ns, memory working set in bytes), or None
        when it has no cgroups to read them from (a virtual pod; not root)."""
        cpu = memory = None
        for hierarchy in self.hierarchies:
            path = self._base(hierarchy) / pod_uid / name
            if hierarchy.cpu and cpu is None:
                cpu = cpu_time(self._runc_placed(hierarchy, path, pod_uid, name),
                               hierarchy.version)
            if hierarchy.memory and memory is None:
                memory = working_set(path, hierarchy.version)
        return None if cpu is None or memory is None else (cpu, memory)

    def _runc_placed(self, hierarchy: Hierarchy, path: Path, pod_uid: str, name: str) -> Path:
        """Where the container's cgroup is in `hierarchy`: ours, or for a runc container (which
        uses its one `cgroupsPath`, the memory hierarchy's relative path, in every hierarchy)
        that path under this hierarchy's mount, when ours does not exist."""
        relative = self.relative(pod_uid, name)
        if path.exists() or relative is None or not hierarchy.mount:
            return path
        placed = Path(hierarchy.mount + relative)
        return placed if placed.exists() else path

    def kill_all(self, pod_uid: str, name: str | None = None) -> None:
        """SIGKILL every process left in the container's (or the whole pod's) cgroups."""
        for hierarchy in self.hierarchies:
            path = self._base(hierarchy) / pod_uid
            for cgroup in [path / name] if name else _children(path):
                _kill(cgroup, hierarchy.version)

    def remove(self, pod_uid: str) -> None:
        """Kill what is left of the pod and remove its cgroups."""
        self.kill_all(pod_uid)
        for hierarchy in self.hierarchies:
            _rmtree(self._base(hierarchy) / pod_uid)

    def clear(self, keep: Collection[str] = ()) -> None:
        """Remove everything under this node's cgroups (an earlier run's leftovers) but the
        pods in `keep` (uids of pods whose containers a restarted agent adopts)."""
        for hierarchy in self.hierarchies:
            base = self._base(hierarchy)
            for pod in _children(base):
                if pod.name in keep:
                    continue
                for cgroup in _children(pod):
                    _kill(cgroup, hierarchy.version)
                _rmtree(pod)
            if not keep:
                _rmtree(base)


def _children(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []


def _enable_memory(base: Path, leaf: Path) -> None:
    """cgroup v2: the memory controller must be enabled in every ancestor's subtree_control
    below our own cgroup (best effort: a cgroup with processes of its own refuses)."""
    for directory in [base.parent, base, leaf.parent]:
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            (directory / "cgroup.subtree_control").write_text("+memory")


def _set_memory(path: Path, version: int, limit: int | None) -> None:
    if version == 2:
        target, value = path / "memory.max", "max" if limit is None else str(limit)
    else:
        target, value = path / "memory.limit_in_bytes", "-1" if limit is None else str(limit)
    with contextlib.suppress(FileNotFoundError):
        target.write_text(value)


def _oom_count(path: Path, version: int) -> int:
    name = "memory.events" if version == 2 else "memory.oom_control"
    try:
        for line in (path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (FileNotFoundError, ValueError):
        pass
    return 0


def flat_keyed(text: str) -> dict[str, int]:
    """A cgroup flat-keyed file (`cpu.stat`, `memory.stat`): `key value` lines."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            values[key] = int(value)
    return values


def cpu_time(path: Path, version: int) -> int | None:
    """Cumulative CPU time of the cgroup at `path` in ns (v2 `cpu.stat` usage_usec, v1
    `cpuacct.usage`), None if it is not there."""
    try:
        if version == 2:
            usec = flat_keyed((path / "cpu.stat").read_text()).get("usage_usec")
            return None if usec is None else usec * 1000
        return int((path / "cpuacct.usage").read_text())
    except (OSError, ValueError):
        return None


def working_set(path: Path, version: int) -> int | None:
    """The cgroup's working set as cAdvisor computes it: memory in use less the inactive
    file pages the kernel can drop at once (v2 `memory.current` - `inactive_file`, v1
    `memory.usage_in_bytes` - `total_inactive_file`), never below 0."""
    usage_file, inactive_key = ("memory.current", "inactive_file") if version == 2 else \
        ("memory.usage_in_bytes", "total_inactive_file")
    try:
        usage = int((path / usage_file).read_text())
        stat = flat_keyed((path / "memory.stat").read_text())
    except (OSError, ValueError):
        return None
    return max(0, usage - stat.get(inactive_key, 0))


def _procs(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def _kill(path: Path, version: int) -> None:
    if version == 2 and (path / "cgroup.kill").exists():
        with contextlib.suppress(FileNotFoundError):
            (path / "cgroup.kill").write_text("1")
        return
    for _ in range(KILL_ROUNDS):  # a forking process may add members while we kill
        pids = _procs(path)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)


def _rmtree(path: Path) -> None:
    """rmdir a cgroup tree bottom-up (cgroup directories are removed with rmdir only); a
    cgroup whose last process is still exiting refuses for a moment, so retry briefly."""
    for child in _children(path):
        _rmtree(child)
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)
