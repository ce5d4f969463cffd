"""The node agent ("kubelet") with the `virtual` runtime: pods that get an IP and run nothing.

One `NodeAgent` per node. It registers its Node (labels, addresses, capacity, nodeInfo, Ready
condition, `spec.podCIDR`), renews its Lease in `kube-node-lease`, and watches the pods bound to
it. For each pod, `sync` compares what the pod should look like with what it does:

- a new pod gets an address from the node's pod range and the status of a running pod
  (`status.running_status`); readiness gates are honoured on every change of the pod;
- a deleted pod (deletionTimestamp set) is marked not ready at once, and removed for good
  (a delete with grace period 0) when its grace period has run out, as a kubelet does once the
  containers have stopped; its address is released then, never while the pod still exists.

Virtual containers produce no output; the `process` runtime (a later issue) runs real ones.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import ipaddress
import logging
import platform
from collections.abc import Mapping
from typing import Any

from tinykube import __version__
from tinykube.api import errors, resources
from tinykube.client.informer import Informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import events
from tinykube.controllers.base import Controller
from tinykube.kubelet import status as pod_status

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LEASE_SECONDS = 40
RENEW_EVERY = 10.0


def _res(group: str, version: str, plural: str) -> resources.Resource:
    res = resources.lookup(group, version, plural)
    assert res is not None
    return res


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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


def node_object(name: str, *, pod_cidr: str, host_ip: str, labels: Mapping[str, str]) -> Obj:
    now = _rfc3339(_now())
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    capacity = {"cpu": "2", "memory": "24Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch, **labels}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
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
            ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                  "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                  "lastTransitionTime": now}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-tinykube", "kubeProxyVersion": "",
                "containerRuntimeVersion": f"tinykube://{__version__}",
                "osImage": platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
                if hasattr(platform, "freedesktop_os_release") else "Linux",
                "kernelVersion": platform.release(), "architecture": arch,
                "operatingSystem": "linux", "machineID": "", "systemUUID": "",
                "bootID": ""},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        },
    }


class NodeAgent(Controller):
    """Registers one node and runs the pods bound to it (virtual runtime)."""

    def __init__(self, client: RESTClient, node_name: str, *, pod_cidr: str,
                 host_ip: str = "127.0.0.1", labels: Mapping[str, str] | None = None) -> None:
        self.name = f"kubelet/{node_name}"
        self.node_name = node_name
        self.host_ip = host_ip
        self.labels = dict(labels or {})
        self.pod_cidr = pod_cidr
        self.addresses = PodAddresses(pod_cidr)
        self.pods_res = _res("", "v1", "pods")
        self.pods = Informer(client, self.pods_res, field_selector=f"spec.nodeName={node_name}")
        super().__init__(client, [self.pods])
        self.recorder = events.Recorder(client, "kubelet", node_name)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_delete)

    def _on_pod(self, pod: Mapping[str, Any]) -> None:
        ip = pod.get("status", {}).get("podIP")
        if ip and ipaddress.ip_address(ip) in self.addresses.network:
            self.addresses.claim(ip, pod["metadata"]["uid"])
        self.enqueue(pod)

    def _on_delete(self, pod: Mapping[str, Any]) -> None:
        ip = pod.get("status", {}).get("podIP")
        if ip:
            self.addresses.release(ip)
        timer = self._timers.pop(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}",
                                 None)
        if timer is not None:
            timer.cancel()

    async def register(self) -> None:
        nodes = _res("", "v1", "nodes")
        desired = node_object(self.node_name, pod_cidr=self.pod_cidr, host_ip=self.host_ip,
                              labels=self.labels)
        try:
            current = await self.client.get(nodes, self.node_name)
        except errors.NotFound:
            await self.client.create(nodes, desired)
            current = await self.client.get(nodes, self.node_name)
            await self.recorder.event(current, "Normal", "Starting", "Starting kubelet.")
        labels = {**current["metadata"].get("labels", {}), **desired["metadata"]["labels"]}
        await self.client.patch(nodes, self.node_name, {"metadata": {"labels": labels}},
                                patch_type="merge")
        await self.client.patch(nodes, self.node_name, {"status": desired["status"]},
                                patch_type="merge", subresource="status")

    async def renew_lease_forever(self) -> None:
        leases = _res("coordination.k8s.io", "v1", "leases")
        while True:
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                     "spec": {"holderIdentity": self.node_name,
                              "leaseDurationSeconds": LEASE_SECONDS,
                              "renewTime": _micro(_now())}}
            try:
                await self.client.patch(leases, self.node_name, {"spec": lease["spec"]},
                                        "kube-node-lease", patch_type="merge")
            except errors.NotFound:
                await self.client.create(leases, lease, "kube-node-lease")
            except errors.APIError as exc:
                log.warning("lease renewal for %s failed: %s", self.node_name, exc)
            await asyncio.sleep(RENEW_EVERY)

    async def sync(self, key: str) -> None:
        pod = self.pods.cache.get(key)
        if pod is None:
            return
        meta, status = pod["metadata"], pod.get("status", {})
        if meta.get("deletionTimestamp"):
            await self._terminate(key, pod)
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        ip = status.get("podIP") or self.addresses.allocate(meta["uid"])
        desired = pod_status.running_status(pod, pod_ip=ip, host_ip=self.host_ip,
                                            now=_rfc3339(_now()))
        if status.get("phase") != "Running":
            await self.recorder.event(pod, "Normal", "Pulled",
                                      f'Container image "{_images(pod)}" is not pulled: the '
                                      "virtual runtime runs no process")
            await self.recorder.event(pod, "Normal", "Started", "Started container(s) "
                                      f"{', '.join(c['name'] for c in pod['spec']['containers'])}")
        if _differs(status, desired):
            await self.client.patch(self.pods_res, meta["name"], {"status": desired},
                                    meta["namespace"], patch_type="merge", subresource="status")

    async def _terminate(self, key: str, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        desired = pod_status.terminating_status(pod, now=_rfc3339(_now()))
        if _differs(pod.get("status", {}), desired):
            await self.recorder.event(pod, "Normal", "Killing", "Stopping container(s) "
                                      f"{', '.join(c['name'] for c in pod['spec']['containers'])}")
            await self.client.patch(self.pods_res, meta["name"], {"status": desired},
                                    meta["namespace"], patch_type="merge", subresource="status")
        deadline = datetime.datetime.strptime(meta["deletionTimestamp"], "%Y-%m-%dT%H:%M:%SZ") \
            .replace(tzinfo=datetime.UTC)
        delay = (deadline - _now()).total_seconds()
        if delay > 0:
            if key not in self._timers:
                loop = asyncio.get_running_loop()
                self._timers[key] = loop.call_later(delay, self._expire, key)
            return
        self._timers.pop(key, None)
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(self.pods_res, meta["name"], meta["namespace"],
                                     grace_period_seconds=0)

    def _expire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.queue.add(key)


def _images(pod: Mapping[str, Any]) -> str:
    return ", ".join(c.get("image", "") for c in pod.get("spec", {}).get("containers") or [])


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True when a field we own differs (ignoring lastTransitionTime churn)."""
    return any(current.get(k) != v for k, v in desired.items())
