"""The node agent ("kubelet"): registers a Node and runs the pods bound to it in a runtime.

One `NodeAgent` per node. It registers its Node (labels, addresses, capacity, nodeInfo, Ready
condition, `spec.podCIDR`, and the port of its log endpoint in
`status.daemonEndpoints.kubeletEndpoint`), renews its Lease in `kube-node-lease`, and watches the
pods bound to it (and Services, for the containers' environment, and RuntimeClasses); as
`system:node:<name>` under the Node authorizer it reads no other object than its pods' own:
their ConfigMaps and Secrets watched one by one, their claims fetched (`podobjects`). Each pod
is served by the runtime its RuntimeClass handler names (`virtual`, `process`; `netns` runs as
`process` for now), or by the agent's default runtime. For each pod, `sync` compares what the
pod should look like with what it does:

- a new pod gets an address from the node's pod range; the runtime starts it and says what its
  status is now (`Runtime.sync`); the agent writes the status when it differs. Runtimes call
  back (`enqueue`) whenever something changed, so `sync` runs again;
- a deleted pod (deletionTimestamp set): the runtime stops it (`Runtime.terminate`: preStop
  hooks, SIGTERM, SIGKILL at the end of the grace period) while its status keeps what the
  runtime sees (`Runtime.stopping_status`: readiness is still probed, as the kubelet does, so
  its endpoints stay `serving` and `terminating` until it stops; a runtime with nothing live to
  report marks it not ready at once), and then the pod is removed for good (a delete with
  grace period 0), as a kubelet does once the containers have stopped; its address is
  released then, never while the pod still exists.

In the `netns` network mode (`network` given) the node is a network namespace: its InternalIP
is its underlay address, pods get addresses from its bridge's range (the gateway, .1, is never
handed out) and process pods each get a namespace of their own (`podnet`); the kubelet endpoint
stays on the host's loopback, where the API server reaches it, and the Node says where in its
`tinykube.io/kubelet-address` annotation.

The `KubeletServer` serves container logs (`kubectl logs`), exec and attach sessions (`kubectl
exec`, `kubectl attach`, `kubectl run -i`) and forwarded connections to pods' ports (`kubectl
port-forward`) to the API server, which authenticates with the cluster's kubelet token, and
the node's resource metrics (`/metrics/resource`, `kubelet.resourcemetrics`) that the API server
scrapes for `kubectl top`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import platform
import random
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from tinykube import __version__
from tinykube import clock as clocks
from tinykube.api import errors, resources
from tinykube.api.meta import KUBELET_ADDRESS_ANNOTATION, rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.images import auth
from tinykube.images import gc as image_gc
from tinykube.kubelet import container as container_runtime
from tinykube.kubelet import dnsconfig, portforward, resourcemetrics
from tinykube.kubelet import status as pod_status
from tinykube.kubelet import volumes as pod_volumes
from tinykube.kubelet.cgroups import Cgroups
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.podnet import PodNetworking
from tinykube.kubelet.podobjects import PodObjects
from tinykube.kubelet.process import ProcessRuntime
from tinykube.kubelet.restarts import Clock
from tinykube.kubelet.runtime import HANDLERS, Runtime
from tinykube.kubelet.server import KubeletServer
from tinykube.kubelet.stdio import ContainerIO
from tinykube.kubelet.tokens import TokenManager
from tinykube.kubelet.virtual import DEFAULT_JOB_POD_SECONDS, VirtualRuntime
from tinykube.kubelet.webhookauth import WebhookAuth
from tinykube.kubelet.worker import NodeContext

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LEASE_SECONDS = 40
RENEW_EVERY = 10.0
RENEW_JITTER = 0.04  # as the kubelet's: each period is stretched by up to 4 %



def _now() -> datetime.datetime:
    return clocks.installed().utcnow()  # the test clock's under `--test-clock`


def _micro(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PodAddresses:
    """Hands out pod IPs from a node's range; an address in use is never handed out twice.

    Fresh addresses are used in order first; released ones are reused oldest-first after that,
    so a deleted pod's address is not immediately given to its replacement.
    """

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self._next = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - 1
        self._released: collections.deque[str] = collections.deque()
        self._owner: dict[str, str] = {}  # ip -> pod uid

    def __repr__(self) -> str:
        return f"PodAddresses({self.network}, used={len(self._owner)})"

    def claim(self, ip: str, uid: str) -> None:
        self._owner[ip] = uid

    def allocate(self, uid: str) -> str:
        while self._next <= self._last:
            ip = str(ipaddress.ip_address(self._next))
            self._next += 1
            if ip not in self._owner:
                self._owner[ip] = uid
                return ip
        while self._released:
            ip = self._released.popleft()
            if ip not in self._owner:
                self._owner[ip] = uid
                return ip
        raise RuntimeError(f"pod range {self.network} is full")

    def release(self, ip: str) -> None:
        if self._owner.pop(ip, None) is not None:
            self._released.append(ip)


def machine_capacity(meminfo: str = "/proc/meminfo", root: str = "/") -> dict[str, str]:
    """What this machine has, as a kubelet reports it: the CPUs this process may run on, the
    memory in `/proc/meminfo`, the size of the root file system, and the kubelet's default pod
    limit. Every virtual node reports the whole machine, as each node of a kind cluster does."""
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    disk = os.statvfs(root)
    return {"cpu": str(len(os.sched_getaffinity(0))), "memory": f"{memory_kib}Ki",
            "pods": "110", "ephemeral-storage": f"{disk.f_blocks * disk.f_frsize // 1024}Ki"}


def node_object(name: str, *, pod_cidr: str | None, host_ip: str, labels: Mapping[str, str],
                kubelet_port: int = 0, kubelet_host: str | None = None) -> Obj:
    """The Node this agent registers. Without `pod_cidr` (a joining node waiting for node
    IPAM's range) it is not Ready, as a kubelet whose network is not configured yet."""
    now = rfc3339()
    ready = ("True", "KubeletReady", "kubelet is posting ready status") if pod_cidr else \
        ("False", "KubeletNotReady", "container runtime network not ready: the node has no "
         "pod range (spec.podCIDR) yet")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    capacity = machine_capacity()
    annotations = {KUBELET_ADDRESS_ANNOTATION: kubelet_host} \
        if kubelet_host not in (None, host_ip) else {}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": annotations, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch, **labels}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": host_ip},
                          {"type": "Hostname", "address": name}],
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                {"type": t, "status": "False", "reason": r, "message": m,
                 "lastHeartbeatTime": now, "lastTransitionTime": now}
                for t, r, m in (
                    ("MemoryPressure", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"))
            ] + [{"type": "Ready", "status": ready[0], "reason": ready[1],
                  "message": ready[2], "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-tinykube", "kubeProxyVersion": "",
                "containerRuntimeVersion": f"tinykube://{__version__}",
                "osImage": platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
                if hasattr(platform, "freedesktop_os_release") else "Linux",
                "kernelVersion": platform.release(), "architecture": arch,
                "operatingSystem": "linux", "machineID": "", "systemUUID": "",
                "bootID": ""},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        },
    }


class NodeAgent(Controller):
    """Registers one node and runs the pods bound to it."""

    def __init__(self, client: RESTClient, node_name: str, *, pod_cidr: str,
                 host_ip: str = "127.0.0.1", labels: Mapping[str, str] | None = None,
                 default_runtime: str = "virtual", root_dir: Path | None = None,
                 cluster_dns: tuple[str, int] | None = None, clock: Clock | None = None,
                 sandbox_mode: str | None = None, kubelet_token: str,
                 network: PodNetworking | None = None,
                 virtual_job_seconds: float = DEFAULT_JOB_POD_SECONDS,
                 insecure_registries: Sequence[str] = (),
                 registry_mirrors: Mapping[str, Sequence[str]] | None = None,
                 listen_socket: Callable[[int, int, tuple[str, int]], socket.socket] | None
                 = None, image_gc_policy: image_gc.Policy | None = None,
                 resolv_conf: str = dnsconfig.DEFAULT_RESOLV_CONF,
                 shared_reads: RESTClient | None = None) -> None:
        self.name = f"kubelet/{node_name}"
        self.node_name = node_name
        self.kubelet_host = host_ip  # the kubelet endpoint, on the host's loopback
        self.host_ip = host_ip = network.node.address if network else host_ip
        self.labels = dict(labels or {})
        self.pod_cidr = pod_cidr
        self.addresses = PodAddresses(pod_cidr)
        if network is not None:
            self.addresses.claim(network.gateway, "gateway")
        self.pods_res = resources.must("", "v1", "pods")
        self.pods = shared_informer(client, self.pods_res,
                                    field_selector=f"spec.nodeName={node_name}")
        # what every node may read whole: one watch for the agents of a process, through
        # `shared_reads` (another node's client), as N kubelets would each watch them
        reads = shared_reads or client
        self.services = shared_informer(reads, resources.must("", "v1", "services"))
        self.runtime_classes = shared_informer(
            reads, resources.must("node.k8s.io", "v1", "runtimeclasses"))
        # what pods' volumes read: ConfigMaps and Secrets watched one by one, claims and
        # their PersistentVolumes fetched (a node may read only its pods' objects)
        self.objects = PodObjects(client, self._volume_source_changed)
        super().__init__(client, [self.pods, self.services, self.runtime_classes])
        self.recorder = events.Recorder(client, "kubelet", node_name)
        self.cluster_dns = cluster_dns  # set by the cluster once its DNS listens
        self.default_runtime = default_runtime
        self.root_dir = root_dir or Path(tempfile.gettempdir()) / \
            f"tinykube-kubelet-{os.getpid()}-{node_name}"
        # Containers' cgroups, below this process's own (root only; named after the node's
        # directory, so a restarted agent finds and clears what it left)
        self.cgroups = Cgroups(hashlib.sha256(str(self.root_dir).encode()).hexdigest()[:8],
                               hierarchies=None if os.geteuid() == 0 else [])
        # the kubelet's own connections to pods (probes; port-forward in host mode), from the node
        connect = network.open_connection if network else asyncio.open_connection
        context = NodeContext(host_ip=host_ip, event=self.recorder.event, notify=self.enqueue,
                              services=self.services.cache.list, clock=clock,
                              connect=connect, cgroups=self.cgroups)
        self.tokens = TokenManager(client, clocks.installed().utcnow)
        self.volumes = pod_volumes.VolumeManager(self.root_dir / "pods", self._volume_objects())
        resolver = dnsconfig.read_host(resolv_conf)  # the kubelet's `--resolv-conf`
        self.runtimes: dict[str, Runtime] = {
            "virtual": VirtualRuntime(host_ip=host_ip, event=self.recorder.event,
                                      job_pod_seconds=virtual_job_seconds,
                                      requeue=lambda pod, delay: self.queue.add_after(
                                          object_key(pod), delay)),
            "process": ProcessRuntime(context, root=self.root_dir / "pods",
                                      cluster_dns=lambda: self.cluster_dns,
                                      sandbox_mode=sandbox_mode,
                                      account=self._service_account_files, network=network,
                                      volumes=self.volumes, resolver=resolver),
        }
        if container_runtime.available():
            self.runtimes["container"] = container_runtime.ContainerRuntime(
                context, root=self.root_dir / "containers",
                store=container_runtime.shared_store(self.root_dir.parent / "images"),
                cluster_dns=lambda: self.cluster_dns, account=self._service_account_files,
                network=network, secrets=self._pull_secrets, insecure=insecure_registries,
                mirrors=registry_mirrors, on_images=self._publish_images,
                volumes=self.volumes, resolver=resolver)
        self.image_gc: image_gc.ImageGC | None = None
        self._adopted: set[str] = set()  # pods whose running containers `register` kept
        containers = self.runtimes.get("container")
        if isinstance(containers, container_runtime.ContainerRuntime):
            node_ref = {"apiVersion": "v1", "kind": "Node",  # the kubelet's nodeRef: uid = name
                        "metadata": {"name": node_name, "uid": node_name}}
            self.image_gc = image_gc.ImageGC(
                containers.store, image_gc_policy or image_gc.Policy(),
                clock=containers.store.clock, in_use=containers.images_in_use,
                event=lambda type_, reason, message: self.recorder.event(
                    node_ref, type_, reason, message),
                on_change=containers.images_changed)
        self._images_task: asyncio.Task[None] | None = None
        self._images: list[dict[str, Any]] = []
        self.server = KubeletServer(self._container_log, self._exec_command,
                                    self._attach_target, token=kubelet_token,
                                    host=self.kubelet_host, forward_lookup=self._forward_target,
                                    metrics=self._resource_metrics,
                                    listen_socket=listen_socket,
                                    webhook=WebhookAuth(client, node_name))
        self.network = network
        self.connect = connect
        self._timers: dict[str, clocks.Cancellable] = {}
        self._stopping: set[str] = set()  # pods whose Killing event was recorded
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_delete)

    # --- volumes --------------------------------------------------------------------------------

    def _volume_objects(self) -> pod_volumes.Objects:
        objects = self.objects
        return pod_volumes.Objects(
            configmaps=lambda namespace, name: objects.get("configmaps", namespace, name),
            secrets=lambda namespace, name: objects.get("secrets", namespace, name),
            claims=objects.claim, persistent_volumes=objects.volume, token=self.tokens.get)

    def _volume_source_changed(self, plural: str, obj: Mapping[str, Any]) -> None:
        """Enqueue this node's pods whose volumes read `obj` (a ConfigMap or Secret), so that
        their files are updated or their setup retried at once."""
        meta = obj.get("metadata", {})
        for pod in self.pods.cache.list():
            if pod["metadata"].get("namespace") == meta.get("namespace") and \
                    (plural, meta.get("name")) in pod_volumes.references(pod):
                self.enqueue(pod)

    def _on_pod(self, pod: Mapping[str, Any]) -> None:
        ip = pod.get("status", {}).get("podIP")
        if ip and ipaddress.ip_address(ip) in self.addresses.network:
            self.addresses.claim(ip, pod["metadata"]["uid"])
        self.objects.track(pod)
        self.enqueue(pod)

    def _on_delete(self, pod: Mapping[str, Any]) -> None:
        ip = pod.get("status", {}).get("podIP")
        if ip:
            self.addresses.release(ip)
        self.tokens.forget(str(pod["metadata"].get("uid", "")))
        self.objects.forget(pod)
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        self._stopping.discard(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        for runtime in self.runtimes.values():
            runtime.forget(pod)

    # --- the node -----------------------------------------------------------------------------

    async def register(self) -> None:
        """Clear an earlier run's cgroups, runc containers and tmpfs volumes, start the log
        endpoint, create or update the Node."""
        containers = self.runtimes.get("container")
        adopted = containers.live_pods() \
            if isinstance(containers, container_runtime.ContainerRuntime) else set()
        self._adopted = adopted
        await asyncio.to_thread(self.cgroups.clear, adopted)  # adopted pods' containers run on
        if isinstance(containers, container_runtime.ContainerRuntime):
            await containers.clear(adopted)
        if self.volumes.can_mount:  # tmpfs volumes a killed run left mounted
            await asyncio.to_thread(self.volumes.clear)
        if not self.server.port:
            await self.server.start()
        nodes = resources.must("", "v1", "nodes")
        desired = node_object(self.node_name, pod_cidr=self.pod_cidr, host_ip=self.host_ip,
                              labels=self.labels, kubelet_port=self.server.port,
                              kubelet_host=self.kubelet_host)
        try:
            current = await self.client.get(nodes, self.node_name)
        except errors.NotFound:
            await self.client.create(nodes, desired)
            current = await self.client.get(nodes, self.node_name)
            await self.recorder.event(current, "Normal", "Starting", "Starting kubelet.")
        labels = {**current["metadata"].get("labels", {}), **desired["metadata"]["labels"]}
        # the kubelet address annotation: set, or (None) removed
        address = desired["metadata"]["annotations"].get(KUBELET_ADDRESS_ANNOTATION)
        metadata = {"labels": labels, "annotations": {KUBELET_ADDRESS_ANNOTATION: address}}
        await self.client.patch(nodes, self.node_name, {"metadata": metadata},
                                patch_type="merge")
        await self.client.patch(nodes, self.node_name, {"status": desired["status"]},
                                patch_type="merge", subresource="status")

    def start(self, *, workers: int = 1) -> list[asyncio.Task[None]]:
        tasks = super().start(workers=workers)
        tasks.append(asyncio.create_task(self._stop_on_cancel(), name=f"{self.name}/runtimes"))
        if self.image_gc is not None:
            tasks.append(asyncio.create_task(self.image_gc.run_forever(),
                                             name=f"{self.name}/image-gc"))
        if self._adopted:
            tasks.append(asyncio.create_task(self._remove_orphans(),
                                             name=f"{self.name}/orphans"))
        return tasks

    async def _remove_orphans(self) -> None:
        """Once the pods are listed: the adopted pods that are gone (deleted while no agent
        ran) are stopped and removed, as the kubelet's housekeeping removes them. Then it waits
        to be cancelled: the agent's tasks are components' (`components.run_until` stops the
        node when one ends)."""
        await self.pods.wait_synced()
        present = {str(p["metadata"].get("uid")) for p in self.pods.cache.list()}
        containers = self.runtimes.get("container")
        if isinstance(containers, container_runtime.ContainerRuntime):
            for uid in sorted(self._adopted - present):
                log.info("removing the containers of pod %s: its object is gone", uid)
                await asyncio.to_thread(containers.remove_orphan, uid)
        await asyncio.Event().wait()

    async def _stop_on_cancel(self) -> None:
        """Wait until cancelled; then stop every pod's processes (and remove their cgroups)
        and the log endpoint."""
        try:
            await asyncio.Event().wait()
        finally:
            self.objects.close()
            for runtime in self.runtimes.values():
                await runtime.close()
            await asyncio.to_thread(self.cgroups.clear)
            if self.network is not None:
                self.network.close()
            await self.server.close()

    async def renew_lease_forever(self) -> None:
        """Renew the node's Lease every RENEW_EVERY seconds (jittered). After the first renewal
        each node waits a random part of a period once: virtual nodes all start together, and
        in step a hundred of them would renew in one burst every period, stalling everything
        else for a moment (real nodes are spread by their boot times)."""
        leases = resources.must("coordination.k8s.io", "v1", "leases")
        delay = RENEW_EVERY * random.random()  # the first wait: a random phase
        while True:
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                     "spec": {"holderIdentity": self.node_name,
                              "leaseDurationSeconds": LEASE_SECONDS,
                              "renewTime": _micro(_now())}}
            try:
                await self._renew(leases, lease)
                await self._repost_conditions()
            except (errors.APIError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                # A missed renewal is retried at the next beat; it must never stop the node.
                log.warning("lease renewal for %s failed: %r", self.node_name, exc)
            await clocks.installed().sleep(delay)
            delay = RENEW_EVERY * (1 + RENEW_JITTER * random.random())

    async def _repost_conditions(self) -> None:
        """Post the node's conditions again when they are not what this agent reports (the
        node lifecycle controller marked them Unknown while it was silent), as the kubelet
        posts its node status when it changed."""
        nodes = resources.must("", "v1", "nodes")
        node = await self.client.get(nodes, self.node_name)
        ours = node_object(self.node_name, pod_cidr=self.pod_cidr, host_ip=self.host_ip,
                           labels=self.labels)["status"]["conditions"]
        theirs = {c.get("type"): c.get("status") for c in
                  (node.get("status") or {}).get("conditions") or []}
        if all(theirs.get(c["type"]) == c["status"] for c in ours):
            return
        log.info("node %s: posting its conditions again", self.node_name)
        await self.client.patch(nodes, self.node_name, {"status": {"conditions": ours}},
                                patch_type="merge", subresource="status")

    async def _renew(self, leases: resources.Resource, lease: Obj) -> None:
        try:
            await self.client.patch(leases, self.node_name, {"spec": lease["spec"]},
                                    "kube-node-lease", patch_type="merge")
        except errors.NotFound:
            await self.client.create(leases, lease, "kube-node-lease")

    # --- pods -----------------------------------------------------------------------------------

    def handler_of(self, pod: Mapping[str, Any]) -> str | None:
        """The runtime handler for the pod (None: its RuntimeClass is unknown)."""
        class_name = pod.get("spec", {}).get("runtimeClassName")
        if not class_name:
            return self.default_runtime
        runtime_class = self.runtime_classes.cache.get(class_name)
        handler = runtime_class.get("handler") if runtime_class else None
        return str(handler) if handler in HANDLERS else None

    async def _runtime_for(self, pod: Mapping[str, Any]) -> Runtime | None:
        handler = self.handler_of(pod)
        first_sync = not pod.get("status", {}).get("podIP")
        if handler is None:
            if first_sync:
                await self.recorder.event(
                    pod, "Warning", "FailedCreatePodSandBox", "Failed to create pod sandbox: "
                    f'RuntimeHandler for RuntimeClass "{pod["spec"]["runtimeClassName"]}" is '
                    f"not supported (this node runs {', '.join(HANDLERS)})")
            return None
        if handler == "container" and handler not in self.runtimes:
            if first_sync:
                await self.recorder.event(
                    pod, "Warning", "FailedCreatePodSandBox", "Failed to create pod sandbox: "
                    "the container runtime needs runc (install the runc package) and root "
                    "(it does not run in rootless --network netns)")
            return None
        if handler == "netns":
            if first_sync:
                await self.recorder.event(pod, "Warning", "RuntimeHandlerFallback",
                                          "the netns runtime is not available on this node: "
                                          "the pod runs with the process runtime")
            handler = "process"
        return self.runtimes[handler]

    async def sync(self, key: str) -> None:
        pod = self.pods.cache.get(key)
        if pod is None:
            return
        runtime = await self._runtime_for(pod)
        if runtime is None:
            return
        meta, status = pod["metadata"], pod.get("status", {})
        if meta.get("deletionTimestamp"):
            await self._terminate(key, pod, runtime)
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        ip = status.get("podIP") or self.addresses.allocate(meta["uid"])
        if runtime.handler != "virtual":  # a virtual pod mounts nothing, so it needs no token
            await self.tokens.ensure(pod)  # the pod's own bound tokens, requested or refreshed
        if pod.get("spec", {}).get("volumes"):
            await self.objects.wait_synced(pod)
            await self.objects.fetch_claims(pod)
        await self._write_status(pod, await runtime.sync(pod, pod_ip=ip))

    async def _write_status(self, pod: Mapping[str, Any], desired: Mapping[str, Any]) -> None:
        """Patch the pod's status to `desired` when a field the agent owns differs."""
        current, meta = pod.get("status", {}), pod["metadata"]
        if _differs(current, desired):
            await self.client.patch(self.pods_res, meta["name"],
                                    pod_status.status_patch(current, desired),
                                    meta["namespace"], patch_type="strategic",
                                    subresource="status")

    async def _terminate(self, key: str, pod: Mapping[str, Any], runtime: Runtime) -> None:
        meta = pod["metadata"]
        if key not in self._stopping:
            self._stopping.add(key)
            await self.recorder.event(pod, "Normal", "Killing", "Stopping container(s) "
                                      f"{', '.join(c['name'] for c in pod['spec']['containers'])}")
        delay = await runtime.terminate(pod)
        live = runtime.stopping_status(pod)
        await self._write_status(pod, live if live is not None else
                                 pod_status.terminating_status(pod, now=rfc3339()))
        if delay is not None:
            if key not in self._timers:
                self._timers[key] = clocks.installed().call_later(
                    delay, lambda: self._expire(key))
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(self.pods_res, meta["name"], meta["namespace"],
                                     grace_period_seconds=0)

    def _expire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.queue.add(key)

    def _container_log(self, namespace: str, name: str, container: str) -> ContainerLog | None:
        pod = self.pods.cache.get(f"{namespace}/{name}")
        if pod is None:
            raise errors.NotFound.for_object("pods", "", name)
        return self._runtime_of(pod).container_log(pod, container)

    def _runtime_of(self, pod: Mapping[str, Any]) -> Runtime:
        """The runtime serving a pod now (without events): virtual when none fits."""
        handler = self.handler_of(pod)
        handler = "process" if handler == "netns" else handler
        return self.runtimes.get(handler or "virtual", self.runtimes["virtual"])

    async def _pull_secrets(self, pod: Mapping[str, Any]) -> list[Mapping[str, auth.Credentials]]:
        """The keyrings of the pod's `imagePullSecrets`, in order (missing or bad ones
        skipped, as the kubelet does)."""
        secrets = resources.must("", "v1", "secrets")
        rings: list[Mapping[str, auth.Credentials]] = []
        for ref in pod.get("spec", {}).get("imagePullSecrets") or []:
            try:
                secret = await self.client.get(secrets, ref.get("name", ""),
                                               pod["metadata"].get("namespace", "default"))
                rings.append(auth.from_secret(secret.get("data") or {}))
            except (errors.APIError, auth.CredentialError) as exc:
                log.warning("image pull secret %s: %s", ref.get("name"), exc)
        return rings

    def _publish_images(self, images: list[dict[str, Any]]) -> None:
        """Write the node's `status.images` (the latest list wins; one patch at a time)."""
        self._images = images
        if self._images_task is None or self._images_task.done():
            self._images_task = asyncio.create_task(self._patch_images())

    async def _patch_images(self) -> None:
        nodes = resources.must("", "v1", "nodes")
        sent: list[dict[str, Any]] | None = None
        while sent is not self._images:
            sent = self._images
            try:
                await self.client.patch(nodes, self.node_name, {"status": {"images": sent}},
                                        patch_type="merge", subresource="status")
            except (errors.APIError, aiohttp.ClientError, OSError) as exc:
                log.warning("node images of %s: %r", self.node_name, exc)

    async def _resource_metrics(self) -> bytes:
        """`/metrics/resource`: the running containers, from the pods' statuses here on the
        loop; their cgroups and the node's /proc, read in a thread."""
        running = [p for p in self.pods.cache.list() if self.handler_of(p) != "virtual"]
        containers = resourcemetrics.running_containers(running)  # virtual ones have none
        return await asyncio.to_thread(resourcemetrics.render, containers, self.cgroups)

    def _service_account_files(self, pod: Mapping[str, Any]) -> dict[str, str] | None:
        """What a kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount: a token,
        the cluster CA, the namespace. The token is the pod's own, a bound token of its
        ServiceAccount (`tokens`); `automountServiceAccountToken: false` mounts nothing."""
        config = self.client.config
        token = self.tokens.get(pod)
        if pod.get("spec", {}).get("automountServiceAccountToken") is False or not token:
            return None
        return {"token": token, "ca.crt": (config.ca_data or b"").decode(),
                "namespace": str(pod["metadata"].get("namespace", "default"))}

    def _exec_command(self, namespace: str, name: str, container: str, command: list[str],
                      ) -> tuple[list[str], dict[str, str], str | None]:
        pod, runtime = self._process_pod(namespace, name, "exec into")
        return runtime.exec_command(pod, container, command)

    def _attach_target(self, namespace: str, name: str, container: str) -> ContainerIO:
        pod, runtime = self._process_pod(namespace, name, "attach to")
        return runtime.attach_target(pod, container)

    def _forward_target(self, namespace: str, name: str) -> tuple[str, str, portforward.Dial]:
        """(name_namespace, uid, how to reach its ports) of a process pod, for port-forward:
        localhost in its own network namespace if it has one, else its address."""
        pod, _ = self._process_pod(namespace, name, "forward ports to")
        uid = str(pod["metadata"]["uid"])
        network = self.network
        pod_netns = network.netns_of(uid) if network is not None else None
        if network is not None and pod_netns is not None:
            return f"{name}_{namespace}", uid, portforward.localhost_dial(
                lambda host, port: network.open_in_pod(uid, host, port), pod_netns)
        address = pod.get("status", {}).get("podIP")
        if not address:
            raise errors.BadRequest(f'pod "{name}" has no address yet')
        return f"{name}_{namespace}", uid, portforward.address_dial(self.connect, str(address))

    def _process_pod(self, namespace: str, name: str,
                     action: str) -> tuple[Mapping[str, Any], ProcessRuntime]:
        pod = self.pods.cache.get(f"{namespace}/{name}")
        if pod is None:
            raise errors.NotFound.for_object("pods", "", name)
        runtime = self._runtime_of(pod)
        if not isinstance(runtime, ProcessRuntime):
            raise errors.BadRequest(
                f'pod "{name}" runs in the virtual runtime, which runs no process to {action}: '
                'give it runtimeClassName "process"')
        return pod, runtime


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True when a field we own differs (ignoring lastTransitionTime churn)."""
    return any(current.get(k) != v for k, v in desired.items())
