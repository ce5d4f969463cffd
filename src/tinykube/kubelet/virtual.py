"""The `virtual` runtime: pods that get an IP and run nothing (a kwok-like pod).

A virtual pod is Running and Ready as soon as it is bound (readiness gates still hold `Ready`
back), with one `Started` event that also says no image was pulled (a kubelet's Pulled, Created
and Started would be three writes per pod for things that did not happen). Deleting it stops
it at once: nothing runs, so there is nothing to signal, no preStop hook to run and no grace
period to wait out (a real container that exits on SIGTERM stops as promptly). The agent then
writes the terminated status and removes the pod with grace period 0, as a kubelet does once
the containers stopped.
"""

from __future__ import annotations

from typing import Any

from tinykube.api.meta import rfc3339
from tinykube.kubelet import status as pod_status
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.runtime import EventFn, Obj


class VirtualRuntime:
    handler = "virtual"

    def __init__(self, *, host_ip: str, event: EventFn) -> None:
        self.host_ip = host_ip
        self.event = event

    def __repr__(self) -> str:
        return f"VirtualRuntime({self.host_ip})"

    async def sync(self, pod: Obj, *, pod_ip: str) -> dict[str, Any]:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return dict(pod["status"])
        if pod.get("status", {}).get("phase") != "Running":
            names = ", ".join(c["name"] for c in pod["spec"]["containers"])
            images = ", ".join(c.get("image", "") for c in pod["spec"]["containers"])
            await self.event(pod, "Normal", "Started",
                             f'Started container(s) {names} (virtual: image "{images}" not '
                             "pulled, no process runs)")
        return pod_status.running_status(pod, pod_ip=pod_ip, host_ip=self.host_ip,
                                         now=rfc3339())

    async def terminate(self, pod: Obj) -> float | None:
        return None  # nothing runs: stopped as soon as asked

    def forget(self, pod: Obj) -> None:
        pass

    def container_log(self, pod: Obj, container: str) -> ContainerLog | None:
        return None  # virtual containers write nothing

    async def close(self) -> None:
        pass
