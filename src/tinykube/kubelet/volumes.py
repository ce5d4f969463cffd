"""A pod's volumes on the host, and each container's list of `Mount`s (the kubelet's volume
manager, for every runtime).

`VolumeManager.setup(pod)` makes each volume's content under the pod's directory, as the kubelet
does under /var/lib/kubelet/pods/UID/volumes/PLUGIN/NAME, and returns volume name -> host path:

- `emptyDir`: a directory (0777); `medium: Memory` a tmpfs there (`sizeLimit` its size) when
  the agent may mount (root), else a directory on disk, which `warnings` says;
- `hostPath`: the path itself, after its `type` check (`hostpath`); with no type, a missing
  path is made as a directory (0755), as containerd and Docker do for a bind source;
- `configMap`, `secret`, `downwardAPI`, `projected`: files built by `payloads`, written by the
  `atomicwriter` (with the pod's `fsGroup` their group, and group-readable, as the kubelet's
  volume ownership does); `setup` is idempotent and runs on every sync of the pod, so a changed
  ConfigMap, Secret or label reaches the files (the node agent enqueues the pods that use an
  object when it changes);
- `persistentVolumeClaim`: the bound PersistentVolume's `spec.hostPath.path` or
  `spec.local.path`; a missing or unbound claim is an error the pod waits on.

A volume that cannot be set up raises `SetupError` with the kubelet's event message
(`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`); the runtime keeps the
pod ContainerCreating and retries. `mounts(pod, container, paths, env)` turns the container's
`volumeMounts` into `Mount`s, parents before children (as containerd sorts them): `subPath` /
`subPathExpr` resolved inside the volume (made if missing, refused when it resolves outside,
with kube's messages); configMap, secret,
downwardAPI and projected volumes are read-only, as the kubelet mounts them. `remove(uid)`
unmounts the pod's tmpfs volumes and deletes its volume directories; hostPath and PV contents
are never touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tinykube.api import quantity
from tinykube.kubelet import atomicwriter, hostpath, payloads
from tinykube.kubelet import env as pod_env
from tinykube.kubelet.mounts import Mount
from tinykube.kubelet.payloads import VolumeError

Obj = Mapping[str, Any]
PLUGINS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
           "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
           "projected": "kubernetes.io~projected"}
API_DATA = ("configMap", "secret", "downwardAPI", "projected")  # always mounted read-only
KINDS = ("emptyDir", "hostPath", *API_DATA, "persistentVolumeClaim")
MNT_DETACH = 2


class SetupError(Exception):
    """A volume of the pod is not ready; the message is the kubelet's FailedMount event's."""


class MountError(pod_env.EnvError):
    """A container's volumeMount cannot be made (CreateContainerConfigError)."""


@dataclasses.dataclass(frozen=True)
class Objects:
    """How the volume manager reads the API (the node agent's informer caches)."""

    configmaps: payloads.Lookup
    secrets: payloads.Lookup
    claims: payloads.Lookup
    persistent_volumes: Callable[[str], Obj | None]
    token: Callable[[Obj, Obj], str | None]  # (pod, serviceAccountToken source) -> token


def references(pod: Obj) -> set[tuple[str, str]]:
    """(resource, name) of each object the pod's volumes read: configmaps, secrets,
    persistentvolumeclaims."""
    found: set[tuple[str, str]] = set()
    for volume in pod.get("spec", {}).get("volumes") or []:
        sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
        for source in sources:
            if "configMap" in source:
                found.add(("configmaps", str(source["configMap"].get("name", ""))))
            if "secret" in source:
                secret = source["secret"]
                found.add(("secrets", str(secret.get("secretName", secret.get("name", "")))))
        if "persistentVolumeClaim" in volume:
            found.add(("persistentvolumeclaims",
                       str(volume["persistentVolumeClaim"].get("claimName", ""))))
    return found


def kind_of(volume: Obj) -> str | None:
    return next((k for k in KINDS if k in volume), None)


def fs_group(pod: Obj) -> int | None:
    group = (pod.get("spec", {}).get("securityContext") or {}).get("fsGroup")
    return None if group is None else int(group)


def memory_size(volume: Obj) -> int | None:
    """A memory emptyDir's size in bytes (its sizeLimit), None when unlimited."""
    limit = volume["emptyDir"].get("sizeLimit")
    parsed = quantity.parse(limit) if limit is not None else None
    return math.ceil(parsed[0]) if parsed is not None else None


class VolumeManager:
    """The volumes of the pods of one node agent, under `root/<uid>/volumes`."""

    def __init__(self, root: Path, objects: Objects, *, can_mount: bool | None = None,
                 now: atomicwriter.Now | None = None) -> None:
        self.root = root
        self.objects = objects
        self.can_mount = os.geteuid() == 0 if can_mount is None else can_mount
        self.now = now
        self.tmpfs: dict[str, set[Path]] = {}  # pod uid -> its mounted tmpfs volumes
        self.warnings: dict[str, list[str]] = {}  # pod uid -> what it gets instead (events)

    def __repr__(self) -> str:
        return f"VolumeManager({self.root}, pods={len(self.tmpfs)})"

    def directory(self, pod: Obj) -> Path:
        return self.root / str(pod["metadata"]["uid"]) / "volumes"

    def setup(self, pod: Obj) -> dict[str, Path]:
        """Make every volume of the pod; volume name -> its host path. Raises SetupError."""
        paths: dict[str, Path] = {}
        volumes = pod.get("spec", {}).get("volumes") or []
        for volume in volumes:
            name = str(volume["name"])
            try:
                paths[name] = self._one(pod, volume)
            except VolumeError as exc:
                raise SetupError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') \
                    from exc
            except ClaimError as exc:
                every = " ".join(str(v["name"]) for v in volumes)
                raise SetupError(f"Unable to attach or mount volumes: unmounted volumes=[{name}],"
                                 f" unattached volumes=[{every}]: {exc}") from exc
        return paths

    def _one(self, pod: Obj, volume: Obj) -> Path:
        kind = kind_of(volume)
        if kind is None:
            other = next((k for k in volume if k != "name"), "unknown")
            raise VolumeError(f"tinykube cannot mount {other} volumes")
        if kind == "hostPath":
            path = Path(volume["hostPath"]["path"])
            hostpath.check(path, volume["hostPath"].get("type"))
            if not volume["hostPath"].get("type") and not os.path.lexists(path):
                hostpath.check(path, "DirectoryOrCreate")
            return path
        if kind == "persistentVolumeClaim":
            return self._claim(pod, volume["persistentVolumeClaim"])
        directory = self.directory(pod) / PLUGINS[kind] / str(volume["name"])
        if kind == "emptyDir":
            return self._empty_dir(pod, volume, directory)
        sources = payloads.Sources(self.objects.configmaps, self.objects.secrets,
                                   self.objects.token)
        payload = payloads.content(volume, pod, sources)
        assert payload is not None
        group = fs_group(pod)
        if group is not None:
            payload = {p: payloads.File(f.data, f.mode | 0o440) for p, f in payload.items()}
        if self.now is None:
            atomicwriter.write(directory, payload, group=group)
        else:
            atomicwriter.write(directory, payload, now=self.now, group=group)
        return directory

    def _empty_dir(self, pod: Obj, volume: Obj, directory: Path) -> Path:
        uid = str(pod["metadata"]["uid"])
        memory = volume["emptyDir"].get("medium") == "Memory"
        if directory.is_dir() and (not memory or not self.can_mount
                                   or directory in self.tmpfs.get(uid, set())):
            return directory  # made by an earlier sync
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o777)
        if memory and not self.can_mount:
            self.warnings.setdefault(uid, []).append(
                f'emptyDir "{volume["name"]}" has medium Memory, but only a node agent '
                "running as root may mount a tmpfs: it is a directory on disk")
        elif memory:
            size = memory_size(volume)
            options = "mode=777" + (f",size={size}" if size is not None else "")
            _mount_tmpfs(directory, options)
            self.tmpfs.setdefault(uid, set()).add(directory)
        group = fs_group(pod)
        if group is not None:  # new files get the group (setgid), as the kubelet sets it up
            os.chown(directory, -1, group)
            os.chmod(directory, 0o2777)
        return directory

    def _claim(self, pod: Obj, source: Obj) -> Path:
        namespace = str(pod["metadata"].get("namespace", "default"))
        claim_name = str(source.get("claimName", ""))
        where = f"error processing PVC {namespace}/{claim_name}"
        claim = self.objects.claims(namespace, claim_name)
        if claim is None:
            raise ClaimError(f"{where}: failed to fetch PVC from API server: "
                             f'persistentvolumeclaims "{claim_name}" not found')
        phase = claim.get("status", {}).get("phase", "")
        volume_name = claim.get("spec", {}).get("volumeName", "")
        if phase != "Bound" or not volume_name:
            raise ClaimError(f'{where}: PVC {namespace}/{claim_name} has non-bound phase '
                             f'("{phase}") or empty pvc.Spec.VolumeName ("{volume_name}")')
        pv = self.objects.persistent_volumes(volume_name)
        if pv is None:
            raise ClaimError(f"{where}: failed to fetch PV {volume_name} from API server: "
                             f'persistentvolumes "{volume_name}" not found')
        spec = pv.get("spec", {})
        if "hostPath" in spec:
            path = Path(spec["hostPath"]["path"])
            hostpath.check(path, spec["hostPath"].get("type"))
        elif "local" in spec:
            path = Path(spec["local"]["path"])
        else:
            raise VolumeError(f"PersistentVolume {volume_name}: tinykube mounts only hostPath "
                              "and local PersistentVolumes")
        if not path.exists():
            raise VolumeError(f'path "{path}" does not exist')
        return path

    def remove(self, uid: str) -> None:
        """The pod is gone: unmount its tmpfs volumes, delete its volume directories."""
        self.warnings.pop(uid, None)
        for directory in self.tmpfs.pop(uid, set()):
            _umount(directory)
        shutil.rmtree(self.root / uid / "volumes", ignore_errors=True)

    def close(self) -> None:
        for uid in list(self.tmpfs):
            self.remove(uid)

    def clear(self, mounts_table: Path = Path("/proc/self/mounts")) -> list[str]:
        """Unmount what an earlier run of this agent left mounted under its directory (it was
        killed before it could); the mount points unmounted."""
        base = str(self.root.resolve()) + "/"
        try:
            lines = mounts_table.read_text().splitlines()
        except OSError:
            return []
        stale = [_unescape(line.split()[1]) for line in lines if len(line.split()) > 1]
        stale = sorted((m for m in stale if m.startswith(base)), key=len, reverse=True)
        for point in stale:
            _umount(Path(point))
        return stale


class ClaimError(Exception):
    """A claim that is missing or not bound (the kubelet's "Unable to attach or mount")."""


def _unescape(field: str) -> str:
    """A /proc/self/mounts field: spaces and the like are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _mount_tmpfs(directory: Path, options: str) -> None:
    if _libc().mount(b"tmpfs", str(directory).encode(), b"tmpfs", 2 | 4,
                     options.encode()) != 0:
        errno = ctypes.get_errno()
        raise VolumeError(f"mount tmpfs on {directory}: {os.strerror(errno)}")


def _umount(directory: Path) -> None:
    _libc().umount2(str(directory).encode(), MNT_DETACH)


# --- a container's mounts ----------------------------------------------------------------------

def within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def sub_path(mount: Obj, env: Mapping[str, str]) -> str:
    """The mount's subPath, or its subPathExpr expanded with the container's environment."""
    if mount.get("subPathExpr"):
        sub = pod_env.expand(str(mount["subPathExpr"]), env)
    else:
        sub = str(mount.get("subPath") or "")
    if os.path.isabs(sub):
        raise ValueError(f"error SubPath `{sub}` must not be an absolute path")
    if ".." in sub.split("/"):
        raise ValueError(f"error SubPath `{sub}` must not contain '..'")
    return sub


def resolve_sub_path(volume_path: Path, sub: str) -> Path:
    """`volume_path/sub`, made (as a directory) if missing; refused when it resolves outside
    the volume (a symlink in it pointing away)."""
    base = os.path.realpath(volume_path)
    candidate = os.path.join(base, sub)
    resolved = os.path.realpath(candidate)
    if not within(resolved, base):
        raise ValueError(f'subpath "{resolved}" not within volume path "{base}"')
    if not os.path.lexists(candidate):
        mode = os.stat(base).st_mode & 0o7777
        os.makedirs(candidate, mode=mode, exist_ok=True)
        os.chmod(candidate, mode)
        resolved = os.path.realpath(candidate)
        if not within(resolved, base):
            raise ValueError(f'subpath "{resolved}" not within volume path "{base}"')
    return Path(resolved)


def mounts(pod: Obj, container: Obj, paths: Mapping[str, Path],
           env: Mapping[str, str]) -> list[Mount]:
    """The container's `volumeMounts` as Mounts; MountError when one cannot be made."""
    kinds = {str(v["name"]): kind_of(v) for v in pod.get("spec", {}).get("volumes") or []}
    claims = {str(v["name"]): bool(v["persistentVolumeClaim"].get("readOnly"))
              for v in pod.get("spec", {}).get("volumes") or [] if "persistentVolumeClaim" in v}
    found = []
    for mount in container.get("volumeMounts") or []:
        name = str(mount["name"])
        if name not in paths:
            raise MountError(f'volume "{name}" of volumeMount is not set up')
        source = paths[name]
        if mount.get("subPath") or mount.get("subPathExpr"):
            try:
                sub = sub_path(mount, env)
                resolved = resolve_sub_path(source, sub)
            except (ValueError, OSError) as exc:
                raise MountError(f'failed to prepare subPath for volumeMount "{name}" of '
                                 f'container "{container["name"]}": {exc}') from exc
            # In a volume only tinykube writes, the path through its `..data` link: the
            # runtime opens it when the container starts, so an update between now and then
            # cannot remove what it binds (the bind then keeps that version, as kube's does).
            source = source / sub if kinds.get(name) in API_DATA else resolved
        elif not source.exists():
            raise MountError(f'failed to mount volume "{name}": {source}: no such file or '
                             "directory")
        read_only = bool(mount.get("readOnly")) or kinds.get(name) in API_DATA \
            or claims.get(name, False)
        found.append(Mount(source, str(mount["mountPath"]), read_only))
    # parents before children, as containerd orders a container's mounts (stable otherwise)
    return sorted(found, key=lambda m: len(Path(os.path.normpath(m.target)).parts))
