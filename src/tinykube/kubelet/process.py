"""The `process` runtime: a `PodWorker` per pod, its sandbox, its logs, its stop.

`sync` starts a worker the first time it sees a pod (by uid) and returns the status computed
from the worker's container records; a pod that already ended (Succeeded/Failed) before this
agent started is left as it is. `terminate` starts the worker's graceful stop once and reports
when it is over; `forget` kills whatever is left when the pod object is gone.

Each pod gets a directory `<root>/<uid>/` holding its `hosts` and `resolv.conf` (see `sandbox`)
and `logs/<container>/`. How pods get their names is decided once (`sandbox.detect_mode`), and
whether their containers also get PID and IPC namespaces under a small init
(`sandbox.detect_pidns`: where the kernel allows a new PID namespace and a /proc for it); when
they cannot (not root, no user namespaces) or the cluster DNS is not on port 53 (which
resolv.conf cannot name), the pod's events say so. In the `netns` network mode each pod also
gets its own network namespace (`podnet.PodNetworking`), made before its first container runs
and removed once the pod object is gone.

Volumes (`volumes.VolumeManager`): every sync sets up the pod's volumes (idempotent, so
ConfigMap, Secret and downward API changes reach the files); the worker starts only once all
are there. Until then the pod stays ContainerCreating, each failure is a `FailedMount` event
and the setup is retried with a back-off (0.5 s doubling to 32 s, on the node's clock) and at
once when an object it reads changes (the agent enqueues the pod). Without mount namespaces
(sandbox mode `none`) volumes cannot be mounted: the pod waits with an event saying so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tinykube.api import errors
from tinykube.api.meta import rfc3339
from tinykube.kubelet import dnsconfig, sandbox
from tinykube.kubelet import volumes as pod_volumes
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.podnet import PodNetworking
from tinykube.kubelet.runtime import Obj, grace_seconds
from tinykube.kubelet.stdio import ContainerIO
from tinykube.kubelet.worker import NodeContext, PodWorker
from tinykube.network.netns import NetworkError

SHUTDOWN_GRACE = 2.0
MOUNT_RETRY_FIRST, MOUNT_RETRY_MAX = 0.5, 32.0


class ProcessRuntime:
    handler = "process"

    def __init__(self, node: NodeContext, *, root: Path,
                 cluster_dns: Callable[[], tuple[str, int] | None],
                 sandbox_mode: str | None = None,
                 account: Callable[[Obj], Mapping[str, str] | None] = lambda _pod: None,
                 network: PodNetworking | None = None,
                 volumes: pod_volumes.VolumeManager | None = None,
                 resolver: dnsconfig.HostResolver | None = None) -> None:
        self.node = node
        # the node's resolver file (`--resolv-conf`), the base of every pod's resolv.conf
        self.resolver = resolver or dnsconfig.HostResolver()
        self.volumes = volumes  # the pods' volumes (None: pods with volumes do not start)
        self._mount_retries: dict[str, asyncio.Task[None]] = {}
        self._mount_attempts: dict[str, int] = {}
        self._mount_errors: dict[str, str] = {}
        self.network = network  # the netns network mode's pod namespaces, else None
        self.root = root
        self.cluster_dns = cluster_dns
        self.account = account  # a pod's service account files (token, ca.crt, namespace)
        self.sandbox_mode = sandbox_mode  # detected on first use unless given (tests)
        self.pidns: bool | None = None  # PID+IPC namespaces too: detected with the mode
        self.workers: dict[str, PodWorker] = {}
        self._detaching: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"ProcessRuntime({self.root}, pods={len(self.workers)}, {self.sandbox_mode})"

    async def sync(self, pod: Obj, *, pod_ip: str) -> dict[str, Any]:
        uid = str(pod["metadata"]["uid"])
        worker = self.workers.get(uid)
        if worker is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return dict(pod["status"])
            worker = await self._start(pod, pod_ip)
        worker.pod = pod
        await self._mount(worker, pod)
        return worker.status(pod, rfc3339())

    async def _start(self, pod: Obj, pod_ip: str) -> PodWorker:
        if self.sandbox_mode is None:
            self.sandbox_mode = await asyncio.to_thread(sandbox.detect_mode)
        if self.pidns is None:
            self.pidns = await asyncio.to_thread(sandbox.detect_pidns, self.sandbox_mode)
        uid = str(pod["metadata"]["uid"])
        directory = self.root / uid
        pod_netns = await self._attach(pod, pod_ip)
        box = sandbox.Sandbox(self.sandbox_mode, directory, hostname=sandbox.pod_hostname(pod),
                              hosts=sandbox.hosts_file(pod, pod_ip),
                              resolv=await self._resolv_conf(pod),
                              account=self.account(pod), netns=pod_netns,
                              shared=self._runs_as_others(pod), pidns=self.pidns)
        worker = PodWorker(pod, pod_ip, node=self.node, box=box, log_dir=directory / "logs",
                           mounts=lambda c, env: pod_volumes.mounts(worker.pod, c,
                                                                    worker.volume_paths, env))
        self.workers[str(pod["metadata"]["uid"])] = worker
        await self._explain_names(pod, box)
        return worker

    async def _mount(self, worker: PodWorker, pod: Obj) -> None:
        """Set up (or refresh) the pod's volumes; start its worker once they are there."""
        uid = str(pod["metadata"]["uid"])
        if not (pod.get("spec", {}).get("volumes") or []):
            if worker.task is None:
                worker.start()
            return
        try:
            if self.volumes is None or (worker.box.mode == "none" and _mounts_any(pod)):
                raise pod_volumes.SetupError(self._cannot_mount(pod))
            paths = await asyncio.to_thread(self.volumes.setup, pod)
        except pod_volumes.SetupError as exc:
            if worker.task is None or self._mount_errors.get(uid) != str(exc):
                await self.node.event(pod, "Warning", "FailedMount", str(exc))
            self._mount_errors[uid] = str(exc)
            if worker.task is None:
                self._retry_mount(pod)
            return
        self._mount_errors.pop(uid, None)
        self._mount_attempts.pop(uid, None)
        worker.volume_paths = paths
        if worker.task is None:
            for warning in self.volumes.warnings.pop(uid, []) if self.volumes else []:
                await self.node.event(pod, "Warning", "VolumeMedium", warning)
            worker.start()

    def _cannot_mount(self, pod: Obj) -> str:
        name = next(v["name"] for v in pod["spec"]["volumes"])
        return (f'MountVolume.SetUp failed for volume "{name}" : this node cannot mount volumes:'
                " tinykube runs without root and this kernel allows no unprivileged user "
                "namespace, so a process pod has no mount namespace of its own")

    def _retry_mount(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        if uid in self._mount_retries:
            return
        attempt = self._mount_attempts.get(uid, 0)
        self._mount_attempts[uid] = attempt + 1
        delay = min(MOUNT_RETRY_FIRST * 2 ** attempt, MOUNT_RETRY_MAX)

        async def later() -> None:
            try:
                await self.node.clock.sleep(delay)
            finally:
                self._mount_retries.pop(uid, None)
            self.node.notify(pod)
        self._mount_retries[uid] = asyncio.create_task(later(), name=f"mount-retry/{uid}")

    async def _attach(self, pod: Obj, pod_ip: str) -> str | None:
        """The pod's network namespace (netns mode), made now; None in host mode."""
        if self.network is None:
            return None
        try:
            return await self.network.attach(str(pod["metadata"]["uid"]), pod_ip)
        except NetworkError as exc:
            await self.node.event(pod, "Warning", "FailedCreatePodSandBox",
                                  f"Failed to create pod sandbox: {exc}")
            raise

    @staticmethod
    def _runs_as_others(pod: Obj) -> bool:
        """True when a container of the pod runs as a user other than the agent's."""
        spec = pod.get("spec", {})
        every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        return any(sandbox.identity(pod, c, uid=os.geteuid(), gid=os.getegid()) is not None
                   for c in every)

    def _nameserver(self) -> str | None:
        address = self.cluster_dns()
        return address[0] if address is not None and address[1] == 53 else None

    async def _resolv_conf(self, pod: Obj) -> str:
        """The pod's resolv.conf as the kubelet forms it, its warnings recorded as events."""
        config, events = dnsconfig.pod_dns(pod, self._nameserver(), self.resolver)
        for reason, message in events:
            if reason == "MissingClusterDNS" and (address := self.cluster_dns()):
                message += (f" (the cluster DNS listens on {address[0]}:{address[1]}, which "
                            "resolv.conf cannot name: port 53 only)")
            await self.node.event(pod, "Warning", reason, message)
        return config.render()

    async def _explain_names(self, pod: Obj, box: sandbox.Sandbox) -> None:
        if box.mode == "none":
            await self.node.event(pod, "Warning", "NoPodNamespaces", "tinykube runs without "
                                  "root and this kernel allows no unprivileged user namespace: "
                                  "the pod sees the host's hostname, /etc/hosts and "
                                  "/etc/resolv.conf")

    async def terminate(self, pod: Obj) -> float | None:
        worker = self.workers.get(str(pod["metadata"]["uid"]))
        if worker is None:
            return None
        if worker.stop_task is None:
            grace = grace_seconds(pod)
            worker.pod = pod
            worker.stop_task = asyncio.create_task(worker.stop(grace))
            worker.stop_task.add_done_callback(lambda _t: self.node.notify(pod))
        return None if worker.stop_task.done() else grace_seconds(pod) + 5

    def stopping_status(self, pod: Obj) -> dict[str, Any] | None:
        """The worker's status of a pod that is stopping: probes run until each container
        has stopped, so readiness is live (None: no worker)."""
        worker = self.workers.get(str(pod["metadata"]["uid"]))
        return None if worker is None else worker.status(pod, rfc3339())

    def forget(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        worker = self.workers.pop(uid, None)
        if worker is not None:
            worker.kill()
        if self.node.cgroups is not None:
            self.node.cgroups.remove(uid)
        retry = self._mount_retries.pop(uid, None)
        if retry is not None:
            retry.cancel()
        self._mount_attempts.pop(uid, None)
        self._mount_errors.pop(uid, None)
        if self.volumes is not None:
            self.volumes.remove(uid)  # tmpfs unmounted before the directory goes
        shutil.rmtree(self.root / uid, ignore_errors=True)
        if self.network is not None and self.network.attached(uid):
            task = asyncio.create_task(self.network.detach(uid), name=f"detach/{uid}")
            self._detaching.add(task)
            task.add_done_callback(self._detaching.discard)

    def container_log(self, pod: Obj, container: str) -> ContainerLog | None:
        worker = self.workers.get(str(pod["metadata"]["uid"]))
        name = pod["metadata"]["name"]
        if worker is None or container not in worker.logs:
            raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to '
                                    "start: ContainerCreating")
        log = worker.logs[container]
        if log.runs == 0:
            record = worker.init.get(container) or worker.main[container]
            raise errors.BadRequest(f'container "{container}" in pod "{name}" is waiting to '
                                    f"start: {record.reason}")
        return log

    def exec_command(self, pod: Obj, container: str, command: list[str],
                     ) -> tuple[list[str], dict[str, str], str | None]:
        """(argv, env, cwd) for `kubectl exec` in a running container (see PodWorker)."""
        worker = self.workers.get(str(pod["metadata"]["uid"]))
        if worker is None:
            raise errors.BadRequest(f'pod "{pod["metadata"]["name"]}" has no running '
                                    "containers on this node")
        return worker.exec_command(container, command)

    def attach_target(self, pod: Obj, container: str) -> ContainerIO:
        """A running container's streams, for `kubectl attach` (see PodWorker)."""
        worker = self.workers.get(str(pod["metadata"]["uid"]))
        if worker is None:
            raise errors.BadRequest(f'pod "{pod["metadata"]["name"]}" has no running '
                                    "containers on this node")
        return worker.attach_target(container)

    async def close(self) -> None:
        workers = list(self.workers.values())
        await asyncio.gather(*(w.stop(SHUTDOWN_GRACE) for w in workers),
                             return_exceptions=True)
        for worker in workers:
            worker.kill()
        for retry in list(self._mount_retries.values()):
            retry.cancel()
        if self.volumes is not None:
            self.volumes.close()


def _mounts_any(pod: Obj) -> bool:
    spec = pod.get("spec", {})
    return any(c.get("volumeMounts") for c in [*(spec.get("initContainers") or []),
                                               *(spec.get("containers") or [])])
