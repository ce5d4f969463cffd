"""The `container` runtime: pods run their images with runc, supervised as process pods are.

A `ContainerWorker` is a `PodWorker` (probes, restarts with CrashLoopBackOff, logs, exec,
attach, graceful stop) whose containers are runc containers instead of host commands. Per run
of a container:

1. **Pull** (`_ensure_image`): `imagePullPolicy` decides (`images.policy`); the pull uses the
   pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson`, read through `secrets`) and the
   node's `~/.docker/config.json`, into the node's shared cache (`images.store`). Events and
   states as the kubelet writes them: `Pulling`, `Pulled` (duration and size) or `already
   present`; a failure is `Failed` with containerd's text, `ErrImagePull`, then
   `ImagePullBackOff` with the kubelet's image back-off (10 s doubling to 300 s, on the
   injected clock), and the pull is retried after it.
2. **Bundle**: a root filesystem of its own (`images.rootfs`: overlay of the cached layers),
   and `config.json` from `oci.config` (command/args against Entrypoint/Cmd, the image's
   Env/User/WorkingDir, the pod's env, hostname, /etc/hosts, /etc/resolv.conf and the service
   account files the pod's `Sandbox` wrote, the volume `Mount`s from `volumes`, the pod's
   network namespace, cgroups inside tinykube's, security context).
3. **Run**: `runc --root R run --keep --bundle B ID` in the foreground under a per-run
   `shim` (as containerd-shim or conmon: its own session, a child subreaper, the run's
   output through a FIFO it holds open, the exit status recorded in `exit.json`), seen by
   the PodWorker as the run's process (`shimhandle.ShimProcess`). A foreground `runc run`
   is one process whose exit status is the container's (128+signal when killed), whose
   stdout/stderr are the container's (terminal false: the fds pass through), and which
   forwards the signals it gets (SIGTERM for a graceful stop) to the container's init; so
   the PodWorker's machinery works unchanged: `proc.wait()`, SIGTERM-then-SIGKILL to the
   group. The cost is a runc and a shim process (about 10 MB RSS each) per running
   container. `--keep` leaves the stopped container (and its cgroups) in place so the OOM
   counter can be read before `runc delete`. A SIGKILL at the end of the grace period kills
   runc; the container's processes are then killed through its memory cgroup
   (`Cgroups.kill_all`), which is runc's cgroup too. A container with `stdin` or `tty`
   gets its stdin pipe or terminal from the agent through the shim, which holds the agent's
   end too (as containerd-shim holds a container's stdin FIFO): it outlives the agent as the
   others do, and a new agent takes that end back from the shim (`ShimProcess.take_stdio`)
   for its attach sessions.
4. **Exec** (`kubectl exec`, exec probes, lifecycle hooks): `runc exec ID ARGV` (runc takes
   the user, env, cwd and capabilities from the container's config). A postStart hook first
   waits for `runc state` to say running (`runc run` creates, then starts).
5. **After the run**: `runc delete --force`, the root filesystem unmounted and removed.

**The agent's restart** (as the kubelet with containerd): each run's record is kept in
`<pod dir>/runs/<container>.json` (runc id, run number, restartCount, startedAt, image) and
its shim's files in `<pod dir>/shims/<id>/`. A new agent's worker for the pod resumes each
container from its record: a live shim is adopted (same container, same processes, its
output read from the FIFO again, probes restarted, no Started event), an ended one gives its
recorded exit code and finishedAt (then the restart policy decides); restartCount goes on
from the record. `live_pods` tells the agent which pods' cgroups and runc containers its
startup cleanup must leave alone; those whose pod object is gone (deleted while no agent ran)
are then killed and removed (`remove_orphan`) once the agent has listed its pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tinykube import private
from tinykube.api.meta import rfc3339
from tinykube.images import auth, policy, reference, rootfs
from tinykube.images.errors import ImageError, NeverPull, event_message
from tinykube.images.pull import Puller, image_config
from tinykube.images.store import Image, Store
from tinykube.kubelet import dnsconfig, oci, sandbox, shimhandle, stdio
from tinykube.kubelet import status as pod_status
from tinykube.kubelet import volumes as pod_volumes
from tinykube.kubelet.cgroups import memory_limit
from tinykube.kubelet.env import EnvError
from tinykube.kubelet.mounts import Mount
from tinykube.kubelet.podnet import PodNetworking
from tinykube.kubelet.process import ProcessRuntime
from tinykube.kubelet.restarts import CrashBackoff
from tinykube.kubelet.runtime import Obj
from tinykube.kubelet.worker import MountsFn, NodeContext, PodWorker

RUNC = "runc"
RUNNING_TIMEOUT = 30.0  # bounds the wait for a started container to be running (postStart)
STATE_POLL = 0.02  # seconds between `runc state` polls while it is being created
ERR_IMAGE_PULL_HOLD = 1.0  # seconds a failed pull shows ErrImagePull before ImagePullBackOff
Keyrings = list[Mapping[str, auth.Credentials]]
SecretsFn = Callable[[Obj], Awaitable[Keyrings]]
_STORES: dict[Path, Store] = {}


def available() -> bool:
    """Whether this node can run containers: runc installed and root, the host's (not root of
    the rootless netns mode's user namespace, where runc would need its rootless mode)."""
    return shutil.which(RUNC) is not None and os.geteuid() == 0 and _host_root()


def _host_root() -> bool:
    """True in the initial user namespace (its uid_map maps every id onto itself)."""
    try:
        return Path("/proc/self/uid_map").read_text().split() == ["0", "0", "4294967295"]
    except OSError:  # pragma: no cover - no /proc: trust the uid
        return True


def shared_store(root: Path) -> Store:
    """One `Store` per cache directory in this process (its records live in memory)."""
    root = root.resolve()
    if root not in _STORES:
        private.make_dir(root)  # owner-only, as all of the data directory
        _STORES[root] = Store(root)
        for sub in ("blobs", "blobs/sha256", "layers", "containers", "tmp"):
            (root / sub).chmod(private.DIR_MODE)
    return _STORES[root]


def node_images(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The Node's `status.images`, largest first (the kubelet reports at most 50)."""
    images = sorted(store.images.values(), key=lambda i: -i.content_size)[:limit]
    return [{"names": sorted(i.names, key=lambda n: "@" not in n, reverse=True),
             "sizeBytes": i.content_size} for i in images]


@dataclasses.dataclass
class RunRecord:
    """What a restarted agent needs to resume a container's current run."""

    cid: str  # the runc container id (also the shim's state directory's name)
    run: int
    restart_count: int
    started_at: str
    digest: str  # the image's manifest digest in the store
    image: str  # containerStatuses[].image
    image_id: str


def load_runs(directory: Path) -> dict[str, RunRecord]:
    """Container name -> its last run's record (unreadable records are skipped)."""
    found = {}
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, TypeError):
            found[path.stem] = RunRecord(**json.loads(path.read_text()))
    return found


class ContainerWorker(PodWorker):
    """One pod's containers as runc containers."""

    def __init__(self, pod: Obj, pod_ip: str, *, runtime: ContainerRuntime,
                 box: sandbox.Sandbox, log_dir: Path, mounts: MountsFn) -> None:
        super().__init__(pod, pod_ip, node=runtime.node, box=box, log_dir=log_dir,
                         mounts=mounts)
        self.runtime = runtime
        self.images: dict[str, Image] = {}  # container name -> its pulled image
        self.ids: dict[str, str] = {}  # container name -> the runc id of its current run
        self._runs: dict[str, int] = {}
        self._bundles: dict[str, Path] = {}
        self.hostname_path = box.directory / "hostname"  # bound at /etc/hostname, as CRI does
        self.hostname_path.write_text(box.hostname + "\n")
        self.hostname_path.chmod(0o644)
        self.runs_dir = box.directory / "runs"
        self.shims_dir = box.directory / "shims"
        self._resume = {name: saved for name, saved in load_runs(self.runs_dir).items()
                        if name in self.logs}
        for name, saved in self._resume.items():
            self._runs[name] = saved.run
            self.logs[name].runs = saved.run
            (self.init.get(name) or self.main[name]).restart_count = saved.restart_count

    async def _announce(self) -> None:
        return

    async def _run_once(self, container: Obj, record: pod_status.ContainerRecord, *,
                        probing: bool) -> int | None:
        saved = self._resume.pop(container["name"], None)
        if saved is not None:
            code = await self._resume_run(container, record, saved, probing=probing)
            if code is not None:
                return code
        if not await self._ensure_image(container, record):
            return None
        return await super()._run_once(container, record, probing=probing)

    # --- after the agent's restart --------------------------------------------------------

    async def _resume_run(self, container: Obj, record: pod_status.ContainerRecord,
                          saved: RunRecord, *, probing: bool) -> int | None:
        """Follow the run an earlier agent started (its exit code), or None when there is
        nothing to follow (then it runs again)."""
        name = container["name"]
        image = self.runtime.store.images.get(saved.digest)
        proc = shimhandle.adopt(self.shims_dir / saved.cid) if image is not None else None
        if image is None or proc is None:
            await asyncio.to_thread(self.runtime.delete, saved.cid)
            shutil.rmtree(self.shims_dir / saved.cid, ignore_errors=True)
            return None
        self.images[name] = image
        record.image, record.image_id = saved.image, saved.image_id
        self.ids[name] = saved.cid
        log = self.logs[name]
        log.resume_run(saved.run)
        io = stdio.ContainerIO(container)
        held = await proc.take_stdio()
        if held is not None and held[0] == "tty":
            io.streams.use_terminal(held[1])
        elif held is not None:
            io.streams.use_stdin(held[1])
        _use_shim_io(io, proc, held[0] if held else None)
        try:
            env = self._env(container)
        except EnvError:
            env = {}
        return await self._follow(container, record, proc, io, env, log, probing=probing,
                                  resumed=saved.started_at)

    def _started(self, container: Obj, record: pod_status.ContainerRecord,
                 proc: asyncio.subprocess.Process) -> None:
        """A shim's run started: record it for a later agent to resume."""
        if not isinstance(proc, shimhandle.ShimProcess):
            return
        name = container["name"]
        image = self.images[name]
        saved = RunRecord(cid=self.ids[name], run=self._runs[name],
                          restart_count=record.restart_count,
                          started_at=record.started_at or rfc3339(),
                          digest=image.digest, image=record.image, image_id=record.image_id)
        private.make_dir(self.runs_dir)
        private.write(self.runs_dir / f"{name}.json", json.dumps(dataclasses.asdict(saved)))

    def _finished_at(self, proc: asyncio.subprocess.Process) -> str | None:
        return proc.finished_at if isinstance(proc, shimhandle.ShimProcess) else None

    # --- pulling --------------------------------------------------------------------------

    async def _ensure_image(self, container: Obj, record: pod_status.ContainerRecord) -> bool:
        """Pull (as the policy says) until the image is there; False when stopping."""
        name, image = container["name"], str(container.get("image", ""))
        key = f"{self.uid}/{name}/{image}"
        clock, backoff = self.node.clock, self.runtime.pull_backoff
        while not self.stopping:
            try:
                found = await self._pull(container, image)
            except ImageError as exc:
                backoff.restarted(key, clock.now())
                await self._pull_failed(record, image, exc)
                # the kubelet's next sync (about a second later) finds the back-off running
                await clock.sleep(min(ERR_IMAGE_PULL_HOLD, backoff.remaining(key, clock.now())))
                if self.stopping:
                    return False
                record.reason, record.message = "ImagePullBackOff", \
                    f'Back-off pulling image "{image}"'
                self._changed()
                await self._event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                await self._event("Warning", "Failed", "Error: ImagePullBackOff")
                await clock.sleep(backoff.remaining(key, clock.now()))
                continue
            backoff.forget(key)
            self.images[name] = found
            record.image = found.names[0] if "@" not in found.names[0] else image
            record.image_id = next((n for n in found.names if "@" in n), found.digest)
            return True
        return False

    async def _pull(self, container: Obj, image: str) -> Image:
        ref = reference.parse(image)
        store = self.runtime.store
        present = store.find(str(ref))
        wanted = container.get("imagePullPolicy") or policy.default_policy(image)
        if not policy.should_pull(wanted, image, present is not None):
            assert present is not None
            await self._event("Normal", "Pulled",
                              f'Container image "{image}" already present on machine')
            return present
        await self._event("Normal", "Pulling", f'Pulling image "{image}"')
        keyrings = [*await self.runtime.secrets(self.pod), self.runtime.docker_config()]
        store.pulling += 1  # image GC waits for no pull but skips its turn during one
        try:
            pulled = await self.runtime.puller.pull(image, creds=auth.lookup(keyrings, ref))
        finally:
            store.pulling -= 1
        took = f"{pulled.seconds:.3g}s"
        await self._event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took} '
                          f"({took} including waiting). Image size: "
                          f"{pulled.image.content_size} bytes.")
        self.runtime.images_changed()
        return pulled.image

    async def _pull_failed(self, record: pod_status.ContainerRecord, image: str,
                           exc: ImageError) -> None:
        message = event_message(image, exc)
        record.state, record.reason = "waiting", exc.reason
        record.message = message if isinstance(exc, NeverPull) else \
            message.removeprefix(f'Failed to pull image "{image}": ')
        self._changed()
        if isinstance(exc, NeverPull):
            await self._event("Warning", "ErrImageNeverPull", message)
        else:
            await self._event("Warning", "Failed", message)
        await self._event("Warning", "Failed", f"Error: {exc.reason}")

    # --- one run --------------------------------------------------------------------------

    def _image_config(self, container: Obj) -> dict[str, Any]:
        return image_config(self.runtime.store, self.images[container["name"]])

    def _base_env(self, container: Obj) -> dict[str, str]:
        """The image's Env (a default PATH if it has none), HOME, the pod's HOSTNAME."""
        env = oci.image_env(self._image_config(container))
        env.setdefault("HOME", "/root")
        return {**env, "HOSTNAME": self.box.hostname}

    def _prepare(self, container: Obj) -> tuple[list[str], dict[str, str], Sequence[Mount]]:
        """The run's argv, env and volume mounts, and its bundle made now (EnvError: it cannot
        run)."""
        name = container["name"]
        image = self._image_config(container)
        env = self._env(container)
        argv = oci.command(container, image, env)
        volumes = self.mounts(container, env)
        self._runs[name] = self._runs.get(name, 0) + 1
        cid = f"{self.uid}-{name}-{self._runs[name]}"
        self._bundles[name] = self._bundle(container, cid, argv, env, volumes)
        self.ids[name] = cid
        return argv, env, volumes

    def _binds_mounts(self, mounts: Sequence[Mount]) -> bool:
        return False  # runc binds them before the command starts

    def _mounts(self, container: Obj, volumes: Sequence[Mount]) -> list[Mount]:
        box = self.box
        own = [Mount(box.hosts_path, "/etc/hosts"), Mount(self.hostname_path, "/etc/hostname")]
        if box.resolv_path is not None:
            own.append(Mount(box.resolv_path, "/etc/resolv.conf"))
        if box.account_path is not None and not any(
                (m.get("mountPath") == sandbox.ACCOUNT_TARGET)
                for m in container.get("volumeMounts") or []):
            own.append(Mount(box.account_path, sandbox.ACCOUNT_TARGET, read_only=True))
        return [*own, *volumes]

    def _bundle(self, container: Obj, cid: str, argv: list[str], env: Mapping[str, str],
                volumes: Sequence[Mount]) -> Path:
        store = self.runtime.store
        self.runtime.delete(cid)  # a leftover of an earlier agent with this pod
        root = rootfs.create(store, cid, self.images[container["name"]])
        cgroups = self.node.cgroups
        try:
            body = oci.config(
                self.pod, container, self._image_config(container), rootfs=root, env=env,
                argv=argv, hostname=self.box.hostname,
                netns=None if self.pod.get("spec", {}).get("hostNetwork") else self.box.netns,
                mounts=self._mounts(container, volumes),
                cgroups_path=cgroups.relative(self.uid, container["name"]) if cgroups else None,
                memory=memory_limit(container))
        except oci.ConfigError:
            rootfs.remove(store, cid)
            raise
        (root.parent / "config.json").write_text(json.dumps(body))
        return root.parent

    async def _spawn(self, container: Obj, argv: list[str], env: Mapping[str, str],
                     io: stdio.ContainerIO, cgroups: list[str], mounts: Sequence[Mount],
                     ready: int | None) -> asyncio.subprocess.Process:
        name = container["name"]
        await self._event("Normal", "Created", f"Created container {name}")
        argv = self.runtime.runc("run", "--keep", "--bundle", str(self._bundles[name]),
                                 self.ids[name])
        earlier = f"{self.uid}-{name}-{self._runs[name] - 1}"
        shutil.rmtree(self.shims_dir / earlier, ignore_errors=True)  # its last run's shim
        fds = io.streams.shim_stdio()
        stdin = shimhandle.Stdio(*fds) if fds else None
        proc = await shimhandle.launch(self.shims_dir / self.ids[name], argv, stdin)
        _use_shim_io(io, proc, "tty" if stdin and stdin.kind == "tty" else None)
        return proc

    async def _until_running(self, container: Obj, proc: asyncio.subprocess.Process) -> None:
        """`runc run` creates, then starts: a postStart hook's `runc exec` needs the container
        running (`runc state`), which it is within RUNNING_TIMEOUT or it has exited."""
        cid = self.ids.get(container["name"], "")
        deadline = asyncio.get_running_loop().time() + RUNNING_TIMEOUT
        while proc.returncode is None and asyncio.get_running_loop().time() < deadline:
            state = await asyncio.create_subprocess_exec(
                *self.runtime.runc("state", cid), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
            out, _ = await state.communicate()
            with contextlib.suppress(ValueError):
                if json.loads(out or b"{}").get("status") == "running":
                    return
            with contextlib.suppress(TimeoutError):  # wakes early if the run ended
                await asyncio.wait_for(asyncio.shield(proc.wait()), STATE_POLL)

    async def _cleanup(self, container: Obj) -> None:
        cid = self.ids.pop(container["name"], None)
        if cid is not None:
            await asyncio.to_thread(self.runtime.delete, cid)

    def _container_id(self, name: str, run: int) -> str:
        return f"runc://{self.ids.get(name, '')}"

    # --- commands in the running container ------------------------------------------------

    def _in_container(self, container: Obj) -> Callable[[list[str]], list[str]]:
        cid = self.ids.get(container["name"], "")
        return lambda argv: self.runtime.runc("exec", cid, *argv)

    def _exec_cwd(self, container: Obj) -> str | None:
        return None  # runc exec starts in the container's cwd

    def exec_command(self, container_name: str, command: Sequence[str],
                     ) -> tuple[list[str], dict[str, str], str | None]:
        argv, _env, cwd = super().exec_command(container_name, command)
        return argv, dict(os.environ), cwd


def _use_shim_io(io: stdio.ContainerIO, proc: shimhandle.ShimProcess, kind: str | None) -> None:
    """The run's output: the terminal's (`kind` "tty"), else the shim's FIFO. Closing stdin
    also asks the shim to close its copy."""
    output = proc.take_output()
    if kind == "tty":
        os.close(output)  # the terminal carries the output; nothing writes the FIFO
    else:
        io.streams.use_output(output)
    io.streams.set_release(proc.close_stdin)


class ContainerRuntime(ProcessRuntime):
    """Pods whose containers run their images with runc (see the module docstring)."""

    handler = "container"

    def __init__(self, node: NodeContext, *, root: Path, store: Store,
                 cluster_dns: Callable[[], tuple[str, int] | None],
                 account: Callable[[Obj], Mapping[str, str] | None] = lambda _pod: None,
                 network: PodNetworking | None = None,
                 secrets: SecretsFn | None = None,
                 volumes: pod_volumes.VolumeManager | None = None,
                 insecure: Sequence[str] = (), mirrors: Mapping[str, Sequence[str]] | None = None,
                 on_images: Callable[[list[dict[str, Any]]], None] = lambda _images: None,
                 docker_config: Path | None = None,
                 resolver: dnsconfig.HostResolver | None = None) -> None:
        super().__init__(node, root=root, cluster_dns=cluster_dns, sandbox_mode="root",
                         account=account, network=network, volumes=volumes, resolver=resolver)
        self.store = store
        self.puller = Puller(store, insecure=insecure, mirrors=mirrors)
        self.pull_backoff = CrashBackoff()  # the kubelet's image back-off: 10 s .. 300 s
        self.runc_root = root.parent / "runc"
        self.secrets: SecretsFn = secrets or _no_secrets
        self.on_images = on_images
        self.docker_config_path = docker_config or Path.home() / ".docker" / "config.json"

    def __repr__(self) -> str:
        return f"ContainerRuntime({self.root}, pods={len(self.workers)})"

    def runc(self, *args: str) -> list[str]:
        return [RUNC, "--root", str(self.runc_root), *args]

    def docker_config(self) -> Mapping[str, auth.Credentials]:
        try:
            return auth.from_file(self.docker_config_path)
        except auth.CredentialError:
            return {}

    def images_changed(self) -> None:
        self.on_images(node_images(self.store))

    def images_in_use(self) -> set[str]:
        """Manifest digests of the images this runtime's pods were given (image GC keeps
        them, with those their containers' root filesystems name)."""
        return {image.digest for worker in self.workers.values()
                if isinstance(worker, ContainerWorker) for image in worker.images.values()}

    def delete(self, cid: str) -> None:
        """Remove a run's container and root filesystem (blocking)."""
        subprocess.run(self.runc("delete", "--force", cid), capture_output=True, check=False,
                       timeout=30)
        rootfs.remove(self.store, cid)

    async def _start(self, pod: Obj, pod_ip: str) -> PodWorker:
        uid = str(pod["metadata"]["uid"])
        directory = self.root / uid
        pod_netns = await self._attach(pod, pod_ip)
        box = sandbox.Sandbox("root", directory, hostname=sandbox.pod_hostname(pod),
                              hosts=sandbox.hosts_file(pod, pod_ip),
                              resolv=await self._resolv_conf(pod),
                              account=self.account(pod), netns=pod_netns, shared=True)
        worker = ContainerWorker(pod, pod_ip, runtime=self, box=box, log_dir=directory / "logs",
                                 mounts=lambda c, env: pod_volumes.mounts(
                                     worker.pod, c, worker.volume_paths, env))
        self.workers[uid] = worker
        await self._explain_names(pod, box)
        return worker  # started by `sync` once its volumes are set up

    def forget(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        worker = self.workers.get(uid)
        super().forget(pod)
        if isinstance(worker, ContainerWorker):
            for cid in list(worker.ids.values()):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    self.delete(cid)
        if self.node.cgroups is not None:
            _remove_runc_cgroups(self.node.cgroups.relative(uid, "x"))

    def leftovers(self) -> list[str]:
        """The runc containers still known under this runtime's root (tests, shutdown)."""
        done = subprocess.run(self.runc("list", "-q"), capture_output=True, text=True,
                              check=False)
        return done.stdout.split()

    def live_pods(self) -> set[str]:
        """Uids of the pods with a container whose shim still runs (an earlier agent's, to be
        adopted: the startup cleanup leaves them alone)."""
        if not self.root.exists():
            return set()
        return {state.parent.parent.name for state in self.root.glob("*/shims/*")
                if shimhandle.alive(state)}

    def remove_orphan(self, uid: str) -> None:
        """A pod whose containers were adopted but whose object is gone (deleted while no
        agent ran): kill its containers and remove what it left (blocking)."""
        for cid in self.leftovers():
            if cid.startswith(f"{uid}-"):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    self.delete(cid)
        if self.node.cgroups is not None:
            self.node.cgroups.remove(uid)
            _remove_runc_cgroups(self.node.cgroups.relative(uid, "x"))
        if self.volumes is not None:
            self.volumes.remove(uid)
        shutil.rmtree(self.root / uid, ignore_errors=True)

    async def clear(self, keep: set[str] | None = None) -> None:
        """Delete every runc container (and root filesystem) left under this runtime's root:
        an earlier agent's, whose processes its cgroup cleanup killed; but those of the pods
        in `keep` (adopted, see `live_pods`)."""
        for cid in await asyncio.to_thread(self.leftovers):
            if not any(cid.startswith(f"{uid}-") for uid in keep or ()):
                await asyncio.to_thread(self.delete, cid)

    async def close(self) -> None:
        await super().close()
        await self.clear()


async def _no_secrets(_pod: Obj) -> Keyrings:
    return []


def _remove_runc_cgroups(relative: str | None) -> None:
    """runc made the container's cgroup in every v1 controller at the memory one's path;
    remove the pod's directories it left there (empty once its containers are deleted)."""
    if relative is None:
        return
    pod_dir = relative.rsplit("/", 1)[0]
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _dev, mount, kind, *_ = line.split()
        if kind != "cgroup":
            continue
        path = Path(mount + pod_dir)
        for directory in [*(p for p in path.glob("*") if p.is_dir()), path]:
            with contextlib.suppress(OSError):
                directory.rmdir()
