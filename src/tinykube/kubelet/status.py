"""Pod status as a kubelet writes it, computed purely from the pod and what the runtime did.

`running_status` is the status of a pod whose containers all started: phase Running, pod IP,
host IP, start time, one running container status per container, and the five conditions.
`Ready` and `ContainersReady` follow the containers' readiness, and `Ready` additionally waits
for every `readinessGates` condition to be True (so a test can hold a pod not ready by never
setting its gate). `terminating_status` marks containers not ready once deletion has begun.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


def _condition(type_: str, ok: bool, now: str, old: Mapping[str, Mapping[str, Any]],
               reason: str = "") -> Obj:
    status = "True" if ok else "False"
    previous = old.get(type_)
    changed_at = previous.get("lastTransitionTime", now) if previous and \
        previous.get("status") == status else now
    cond: Obj = {"type": type_, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": changed_at}
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
