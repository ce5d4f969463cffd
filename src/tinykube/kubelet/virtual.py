"""The `virtual` runtime: pods that get an IP and run nothing (a kwok-like pod).

A virtual pod is Running and Ready as soon as it is bound (readiness gates still hold `Ready`
back), with one `Started` event that also says no image was pulled (a kubelet's Pulled, Created
and Started would be three writes per pod for things that did not happen). Deleting it stops
it at once: nothing runs, so there is nothing to signal, no preStop hook to run and no grace
period to wait out (a real container that exits on SIGTERM stops as promptly). The agent then
writes the terminated status and removes the pod with grace period 0, as a kubelet does once
the containers stopped.

Virtual pods run forever, except a Job's: a Job needs its pods to finish, so a virtual pod whose
controller is a Job succeeds `job_pod_seconds` after it started (the node agent's setting,
`tinykube up --virtual-job-seconds`, 1 s by default). Two pod annotations, for tests and demos,
override it on any virtual pod: `tinykube.io/virtual-run-seconds` (how long it runs; a pod not
owned by a Job then finishes too) and `tinykube.io/virtual-exit-code` (its containers' exit
code: non-zero makes the pod Failed, or, with `restartPolicy: OnFailure`, is ignored and the
pod succeeds: nothing would run differently on a restart). Finished, the pod's containers are
`terminated` (`Completed` or `Error`) as a kubelet reports them; the runtime asks the agent to
sync the pod again when its time is up (`requeue`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from tinykube import clock as clocks
from tinykube.api.meta import rfc3339
from tinykube.kubelet import status as pod_status
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.runtime import EventFn, Obj

RUN_SECONDS_ANNOTATION = "tinykube.io/virtual-run-seconds"
EXIT_CODE_ANNOTATION = "tinykube.io/virtual-exit-code"
DEFAULT_JOB_POD_SECONDS = 1.0


def _parse_time(text: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text \
            else None
    except ValueError:
        return None


def run_seconds(pod: Mapping[str, Any], job_pod_seconds: float) -> float | None:
    """How long the virtual pod runs before its containers exit (None: forever)."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    text = annotations.get(RUN_SECONDS_ANNOTATION)
    if text is not None:
        try:
            return max(0.0, float(text))
        except ValueError:
            pass
    owners = pod.get("metadata", {}).get("ownerReferences") or []
    if any(ref.get("kind") == "Job" and ref.get("controller") for ref in owners):
        return job_pod_seconds
    return None


def exit_code(pod: Mapping[str, Any]) -> int:
    text = (pod.get("metadata", {}).get("annotations") or {}).get(EXIT_CODE_ANNOTATION, "0")
    try:
        code = int(text)
    except ValueError:
        return 0
    return 0 if pod.get("spec", {}).get("restartPolicy") == "OnFailure" else code


def finished_status(pod: Mapping[str, Any], *, code: int, pod_ip: str, host_ip: str,
                    now: str) -> dict[str, Any]:
    """The status of a virtual pod whose containers all exited with `code`."""
    started = pod.get("status", {}).get("startTime") or now
    records = [pod_status.ContainerRecord(
        name=c["name"], image=c.get("image", ""), state="terminated",
        reason="Completed" if code == 0 else "Error", started_at=started, finished_at=now,
        exit_code=code, container_id=f"tinykube://{pod['metadata'].get('uid', '')}/{c['name']}")
        for c in pod["spec"]["containers"]]
    return pod_status.process_status(pod, init=[], main=records, pod_ip=pod_ip,
                                     host_ip=host_ip, now=now)


class VirtualRuntime:
    handler = "virtual"

    def __init__(self, *, host_ip: str, event: EventFn,
                 job_pod_seconds: float = DEFAULT_JOB_POD_SECONDS,
                 requeue: Callable[[Mapping[str, Any], float], None] | None = None,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.host_ip = host_ip
        self.event = event
        self.job_pod_seconds = job_pod_seconds
        self.requeue = requeue
        self.now = now or clocks.installed().utcnow

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
        now = self.now()
        seconds = run_seconds(pod, self.job_pod_seconds)
        started = _parse_time(pod.get("status", {}).get("startTime")) or now
        if seconds is not None:
            left = seconds - (now - started).total_seconds()
            if left <= 0:
                return finished_status(pod, code=exit_code(pod), pod_ip=pod_ip,
                                       host_ip=self.host_ip, now=rfc3339(now))
            if self.requeue is not None:
                self.requeue(pod, left)
        return pod_status.running_status(pod, pod_ip=pod_ip, host_ip=self.host_ip,
                                         now=rfc3339(now))

    async def terminate(self, pod: Obj) -> float | None:
        return None  # nothing runs: stopped as soon as asked

    def stopping_status(self, pod: Obj) -> dict[str, Any] | None:
        """Nothing runs: nothing live to report (the agent marks the pod not ready)."""
        return None

    def forget(self, pod: Obj) -> None:
        pass

    def container_log(self, pod: Obj, container: str) -> ContainerLog | None:
        return None  # virtual containers write nothing

    async def close(self) -> None:
        pass
