"""The Pod printer: READY, STATUS, RESTARTS as `kubectl get pods` shows them.

STATUS follows printers.go's `printPod`: the pod's reason or phase, overridden by the first init
container that has not finished (`Init:N/M`, `Init:<reason>`), then by the last container with a
waiting or terminated reason, then by `Terminating` / `Unknown` while the pod is deleted.
Restartable init containers (sidecars) count towards READY and their restarts show only while
the pod is initializing. `pod_conditions` gives the row's `Completed` condition for finished
pods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api.printers.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    NONE,
    Cell,
    Column,
    Obj,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    get_path,
    name_of,
    wide,
)
from tinykube.api.printers.duration import human_duration, parse_timestamp


@dataclasses.dataclass
class _PodSummary:
    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None


def _later(current: datetime | None, status: Mapping[str, Any]) -> datetime | None:
    finished = parse_timestamp(get_path(status, "lastState", "terminated", "finishedAt"))
    if get_path(status, "lastState", "terminated") is None or finished is None:
        return current
    return finished if current is None or current < finished else current


def _is_restartable(container: Mapping[str, Any] | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: Any, kind: str) -> bool:
    return any(as_dict(c).get("type") == kind and as_dict(c).get("status") == "True"
               for c in as_list(conditions))


def _init_reason(status: Mapping[str, Any], index: int, total: int,
                 spec: Mapping[str, Any] | None) -> str | None:
    """The STATUS an init container imposes, or None if it is done (or a running sidecar)."""
    state = as_dict(status.get("state"))
    terminated = state.get("terminated")
    waiting = as_dict(state.get("waiting"))
    if terminated is not None and as_int(as_dict(terminated).get("exitCode")) == 0:
        return None
    if _is_restartable(spec) and status.get("started") is True:
        return None
    if terminated is not None:
        term = as_dict(terminated)
        if term.get("reason"):
            return f"Init:{term['reason']}"
        if as_int(term.get("signal")):
            return f"Init:Signal:{as_int(term.get('signal'))}"
        return f"Init:ExitCode:{as_int(term.get('exitCode'))}"
    if waiting.get("reason") and waiting.get("reason") != "PodInitializing":
        return f"Init:{waiting['reason']}"
    return f"Init:{index}/{total}"


def _container_reason(status: Mapping[str, Any]) -> str | None:
    state = as_dict(status.get("state"))
    waiting = as_dict(state.get("waiting"))
    if waiting.get("reason"):
        return str(waiting["reason"])
    if state.get("terminated") is None:
        return None
    term = as_dict(state.get("terminated"))
    if term.get("reason"):
        return str(term["reason"])
    if as_int(term.get("signal")):
        return f"Signal:{as_int(term.get('signal'))}"
    return f"ExitCode:{as_int(term.get('exitCode'))}"


def _is_sidecar_counted(status: Mapping[str, Any], spec: Mapping[str, Any] | None) -> bool:
    """A started, ready sidecar that has not exited cleanly counts towards READY."""
    terminated = get_path(status, "state", "terminated")
    if terminated is not None and as_int(as_dict(terminated).get("exitCode")) == 0:
        return False
    return _is_restartable(spec) and status.get("started") is True and bool(status.get("ready"))


def _summarize_init(pod: Mapping[str, Any],
                    summary: _PodSummary) -> tuple[bool, int, datetime | None]:
    """Walk init containers; returns (initializing, sidecar restarts, sidecar last restart)."""
    specs = {str(as_dict(c).get("name")): as_dict(c)
             for c in as_list(get_path(pod, "spec", "initContainers"))}
    total = len(as_list(get_path(pod, "spec", "initContainers")))
    sidecar_restarts, sidecar_last = 0, None
    for index, raw in enumerate(as_list(get_path(pod, "status", "initContainerStatuses"))):
        status = as_dict(raw)
        spec = specs.get(str(status.get("name")))
        summary.restarts += as_int(status.get("restartCount"))
        summary.last_restart = _later(summary.last_restart, status)
        if _is_restartable(spec):
            sidecar_restarts += as_int(status.get("restartCount"))
            sidecar_last = _later(sidecar_last, status)
        reason = _init_reason(status, index, total, spec)
        if reason is None:
            if _is_sidecar_counted(status, spec):
                summary.ready += 1
            continue
        summary.reason = reason
        return True, sidecar_restarts, sidecar_last
    return False, sidecar_restarts, sidecar_last


def _summarize_containers(pod: Mapping[str, Any], summary: _PodSummary) -> None:
    has_running = False
    for raw in reversed(as_list(get_path(pod, "status", "containerStatuses"))):
        status = as_dict(raw)
        summary.restarts += as_int(status.get("restartCount"))
        summary.last_restart = _later(summary.last_restart, status)
        reason = _container_reason(status)
        if reason is not None:
            summary.reason = reason
        elif status.get("ready") and get_path(status, "state", "running") is not None:
            has_running = True
            summary.ready += 1
    if summary.reason == "Completed" and has_running:
        ready = _condition_true(get_path(pod, "status", "conditions"), "Ready")
        summary.reason = "Running" if ready else "NotReady"


def _pod_summary(pod: Mapping[str, Any]) -> _PodSummary:
    status = as_dict(pod.get("status"))
    summary = _PodSummary(reason=str(status.get("reason") or status.get("phase") or ""))
    for cond in as_list(status.get("conditions")):
        if as_dict(cond).get("type") == "PodScheduled" and \
                as_dict(cond).get("reason") == "SchedulingGated":
            summary.reason = "SchedulingGated"
    initializing, sidecar_restarts, sidecar_last = _summarize_init(pod, summary)
    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        summary.restarts, summary.last_restart = sidecar_restarts, sidecar_last
        _summarize_containers(pod, summary)
    deleting = get_path(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        summary.reason = "Unknown"
    elif deleting and status.get("phase") not in ("Succeeded", "Failed"):
        summary.reason = "Terminating"
    return summary


def _pod_total_containers(pod: Mapping[str, Any]) -> int:
    regular = len(as_list(get_path(pod, "spec", "containers")))
    init_containers = as_list(get_path(pod, "spec", "initContainers"))
    sidecars = sum(1 for c in init_containers if _is_restartable(as_dict(c)))
    return regular + sidecars


def _readiness_gates(pod: Mapping[str, Any]) -> str:
    gates = as_list(get_path(pod, "spec", "readinessGates"))
    if not gates:
        return NONE
    conditions = [as_dict(c) for c in as_list(get_path(pod, "status", "conditions"))]
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == as_dict(gate).get("conditionType")),
                     None)
        passed += 1 if match is not None and match.get("status") == "True" else 0
    return f"{passed}/{len(gates)}"


def _pod_cells(pod: Mapping[str, Any], now: datetime) -> list[Cell]:
    summary = _pod_summary(pod)
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts = f"{summary.restarts} ({human_duration(now - summary.last_restart)} ago)"
    pod_ips = as_list(get_path(pod, "status", "podIPs"))
    pod_ip = str(as_dict(pod_ips[0]).get("ip") or "") if pod_ips else ""
    return [
        name_of(pod), f"{summary.ready}/{_pod_total_containers(pod)}", summary.reason, restarts,
        age_of(pod, now), pod_ip or NONE, get_path(pod, "spec", "nodeName") or NONE,
        get_path(pod, "status", "nominatedNodeName") or NONE, _readiness_gates(pod),
    ]


def pod_conditions(pod: Mapping[str, Any]) -> list[Obj] | None:
    phase = get_path(pod, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


POD_PRINTERS: dict[str, Printer] = {
    "Pod": Printer((
        NAME_COLUMN,
        Column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", "The aggregate status of the containers in this pod."),
        Column("Restarts", "The number of times the containers in this pod have been restarted "
                           "and when the last container in this pod has restarted."),
        AGE_COLUMN,
        wide("IP", "podIP address allocated to the pod. Routable at least within the cluster."),
        wide("Node", "NodeName indicates in which node this pod is scheduled."),
        wide("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods "
                               "on the node."),
        wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod "
                                "readiness."),
    ), _pod_cells),
}
