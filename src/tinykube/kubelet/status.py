"""Pod status as a kubelet writes it, computed purely from the pod and what the runtime did.

`running_status` is the status of a pod whose containers all started: phase Running, pod IP,
host IP, start time, one running container status per container, and the five conditions.
`Ready` and `ContainersReady` follow the containers' readiness, and `Ready` additionally waits
for every `readinessGates` condition to be True (so a test can hold a pod not ready by never
setting its gate). `terminating_status` marks containers not ready once deletion has begun.

The process runtime reports what its containers do as `ContainerRecord`s (one per init and app
container); `process_status` turns them into the pod status: `pod_phase` is the kubelet's
getPhase (a waiting container that has run before counts as stopped, so a pod in
CrashLoopBackOff stays Running), `Initialized` waits for every init container to exit 0, and
`ContainersReady` for every app container's readiness.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

Obj = dict[str, Any]


def _condition(type_: str, ok: bool, now: str, old: Mapping[str, Mapping[str, Any]],
               reason: str = "") -> Obj:
    status = "True" if ok else "False"
    previous = old.get(type_)
    changed_at = previous.get("lastTransitionTime", now) if previous and \
        previous.get("status") == status else now
    # No `lastProbeTime: null` (kube's kubelet sends it): the API server stores no null
    # fields, so with it the stored status never equalled this one and every sync rewrote it.
    cond: Obj = {"type": type_, "status": status, "lastTransitionTime": changed_at}
    if reason and not ok:
        cond["reason"] = reason
    return cond


def gates_pass(pod: Mapping[str, Any]) -> bool:
    gates = [g.get("conditionType") for g in pod.get("spec", {}).get("readinessGates") or []]
    conditions = {c.get("type"): c.get("status") for c in
                  pod.get("status", {}).get("conditions") or []}
    return all(conditions.get(g) == "True" for g in gates)


def running_status(pod: Mapping[str, Any], *, pod_ip: str, host_ip: str, now: str,
                   ready: Mapping[str, bool] | None = None) -> Obj:
    """Status of a pod whose containers run; `ready` maps container name to readiness."""
    status = pod.get("status", {})
    old = {c.get("type"): c for c in status.get("conditions") or []}
    containers = pod.get("spec", {}).get("containers") or []
    started = status.get("startTime") or now
    statuses = []
    for container in containers:
        name = container["name"]
        is_ready = True if ready is None else ready.get(name, False)
        statuses.append({
            "name": name, "image": container.get("image", ""), "imageID": "",
            "containerID": f"tinykube://{pod['metadata'].get('uid', '')}/{name}",
            "ready": is_ready, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": started}},
        })
    containers_ready = all(s["ready"] for s in statuses)
    extra = [c for t, c in old.items() if t not in _OWN_CONDITIONS]
    conditions = [
        _condition("PodReadyToStartContainers", True, now, old),
        _condition("Initialized", True, now, old),
        _condition("Ready", containers_ready and gates_pass(pod), now, old,
                   "ReadinessGatesNotReady" if containers_ready else "ContainersNotReady"),
        _condition("ContainersReady", containers_ready, now, old, "ContainersNotReady"),
        _condition("PodScheduled", True, now, old),
        *extra,
    ]
    return {
        "phase": "Running", "conditions": conditions, "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": started, "containerStatuses": statuses,
        "qosClass": status.get("qosClass", "BestEffort"),
    }


_OWN_CONDITIONS = {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                   "PodScheduled"}


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj:
    """The strategic merge patch from the `current` status to `desired`, as the kubelet's
    status manager writes it: conditions merge by type, and only those the kubelet owns are
    in it (a key a condition lost is null), so a condition someone else set, a readiness
    gate's, is never written back from a stale copy."""
    status = dict(desired)
    if "conditions" in status:
        before = {c.get("type"): c for c in current.get("conditions") or []}
        status["conditions"] = [
            {**{key: None for key in before.get(c.get("type"), {}) if key not in c}, **c}
            for c in status["conditions"] or [] if c.get("type") in _OWN_CONDITIONS]
    return {"status": status}


def terminating_status(pod: Mapping[str, Any], *, now: str) -> Obj:
    """The status once deletion started: containers no longer ready."""
    status = dict(pod.get("status", {}))
    old = {c.get("type"): c for c in status.get("conditions") or []}
    status["conditions"] = [
        _condition(t, False, now, old, "PodCompleted") if t in ("Ready", "ContainersReady")
        else c for t, c in old.items()]
    status["containerStatuses"] = [{**s, "ready": False}
                                   for s in status.get("containerStatuses") or []]
    return status


@dataclasses.dataclass
class ContainerRecord:
    """What one container of a process pod is doing, as the runtime last saw it."""

    name: str
    image: str = ""
    container_id: str = ""
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    last_terminated: Obj | None = None
    image_id: str = ""  # repo@sha256:digest once pulled (container runtime)

    def terminated(self) -> Obj:
        """The `terminated` state of the run that just ended."""
        body: Obj = {"exitCode": self.exit_code, "reason": self.reason,
                     "startedAt": self.started_at, "finishedAt": self.finished_at,
                     "containerID": self.container_id}
        if self.signal:
            body["signal"] = self.signal
        if self.message:
            body["message"] = self.message
        return body

    def to_status(self) -> Obj:
        if self.state == "running":
            state: Obj = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated()}
        else:
            state = {"waiting": {"reason": self.reason, **(
                {"message": self.message} if self.message else {})}}
        status: Obj = {
            "name": self.name, "image": self.image, "imageID": self.image_id, "ready": self.ready,
            "started": self.started, "restartCount": self.restart_count, "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def pod_phase(init: Sequence[ContainerRecord], main: Sequence[ContainerRecord],
              restart_policy: str) -> str:
    """The pod phase from its containers (kubelet getPhase)."""
    for record in init:
        if record.state == "terminated" and record.exit_code != 0 and restart_policy == "Never":
            return "Failed"
    if any(r.state != "terminated" or r.exit_code != 0 for r in init):
        return "Pending"
    running = sum(r.state == "running" for r in main)
    stopped = sum(r.state == "terminated" or (r.state == "waiting" and bool(r.last_terminated))
                  for r in main)
    succeeded = sum(r.state == "terminated" and r.exit_code == 0 for r in main)
    if len(main) - running - stopped > 0:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Running" if restart_policy == "OnFailure" else "Failed"


def process_status(pod: Mapping[str, Any], *, init: Sequence[ContainerRecord],
                   main: Sequence[ContainerRecord], pod_ip: str, host_ip: str,
                   now: str) -> Obj:
    """The status of a process pod from its container records."""
    status = pod.get("status", {})
    old = {c.get("type"): c for c in status.get("conditions") or []}
    phase = pod_phase(init, main, pod.get("spec", {}).get("restartPolicy", "Always"))
    initialized = all(r.state == "terminated" and r.exit_code == 0 for r in init)
    done = phase in ("Succeeded", "Failed")
    containers_ready = bool(main) and all(r.ready for r in main) and not done
    ready_reason = "PodCompleted" if done else (
        "ReadinessGatesNotReady" if containers_ready else "ContainersNotReady")
    extra = [c for t, c in old.items() if t not in _OWN_CONDITIONS]
    conditions = [
        _condition("PodReadyToStartContainers", not done, now, old),
        _condition("Initialized", initialized, now, old, "ContainersNotInitialized"),
        _condition("Ready", containers_ready and gates_pass(pod), now, old, ready_reason),
        _condition("ContainersReady", containers_ready, now, old,
                   "PodCompleted" if done else "ContainersNotReady"),
        _condition("PodScheduled", True, now, old),
        *extra,
    ]
    result: Obj = {
        "phase": phase, "conditions": conditions, "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": status.get("startTime") or now,
        "containerStatuses": [r.to_status() for r in main],
        "qosClass": status.get("qosClass", "BestEffort"),
    }
    if init:
        result["initContainerStatuses"] = [r.to_status() for r in init]
    return result
