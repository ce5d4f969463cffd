"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` renders.

kubectl has no client-side printers for built-in kinds any more; it shows exactly the columns and
cells the server sends (kubectl-compat.md §0.3-0.5, §4 "Server-side printing", §7). This module
computes them the way kube-apiserver's `pkg/printers/internalversion/printers.go` does:

- one `_Printer` per kind: its column definitions and a function (object, now) -> row cells;
- wide (priority 1) cells are always filled, as kube-apiserver prints with `Wide: true`;
- kinds without a printer get the default NAME / CREATED AT table (`rest.DefaultTableConvertor`);
- ages use `human_duration`, a port of apimachinery's `duration.HumanDuration`.

Objects are plain JSON dicts in their served (v1) shape. Internal-type defaults the Go printers rely
on (`replicas: 1`, `type: ClusterIP`, `protocol: TCP`, `clusterIPs` from `clusterIP`) are applied
here when a field is missing. Time is passed in (`now`); nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tinykube.api import selectors

Obj = dict[str, Any]
Cell = str | int | bool | None
RowFn = Callable[[Mapping[str, Any], datetime], list[Cell]]

NONE = "<none>"
UNKNOWN = "<unknown>"
UNSET = "<unset>"
_MAX_LISTED = 3  # endpoints / ports shown before " + N more..."

# --- descriptions (ObjectMeta swagger docs; the rest are short free text) ----------------------

_DESC_NAME = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_DESC_CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\n"
    "Populated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_DESC_CONTAINERS = "Names of each container in the template."
_DESC_IMAGES = "Images referenced by each container in the template."


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    description: str
    type: str = "string"
    format: str = ""
    priority: int = 0

    def definition(self) -> Obj:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


NAME_COLUMN = Column("Name", _DESC_NAME, format="name")
AGE_COLUMN = Column("Age", _DESC_CREATED)


@dataclasses.dataclass(frozen=True)
class _Printer:
    columns: tuple[Column, ...]
    cells: RowFn


# --- time ------------------------------------------------------------------------------------

def human_duration(delta: timedelta) -> str:
    """apimachinery `duration.HumanDuration`: a short, rounded-down age (`5m30s`, `3d4h`)."""
    seconds = math.trunc(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d" if rest == 0 else f"{days}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC3339 (or MicroTime) string as an aware datetime; None if missing or Go's zero time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed


def translate_timestamp(value: Any, now: datetime) -> str:
    """The age of a timestamp string (`translateTimestampSince`); `<unknown>` when unset."""
    moment = parse_timestamp(value)
    if moment is None:
        return UNKNOWN
    return human_duration(now - moment)


# --- small helpers ---------------------------------------------------------------------------

def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _name(obj: Mapping[str, Any]) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    return translate_timestamp(_get(obj, "metadata", "creationTimestamp"), now)


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _format_labels(labels: Any) -> str:
    """labels.FormatLabels: `k=v` sorted by key, `<none>` when empty."""
    pairs = sorted(_dict(labels).items())
    return ",".join(f"{k}={v}" for k, v in pairs) or NONE


def _format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: the selector string, `<none>` when it selects everything."""
    return selectors.to_string(_dict(selector)) or NONE


def _container_cells(template: Any) -> list[Cell]:
    containers = [_dict(c) for c in _list(_get(_dict(template), "spec", "containers"))]
    return [",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers)]


def _list_with_more(items: list[str], total: int) -> str:
    shown = ",".join(items)
    if total > _MAX_LISTED:
        return f"{shown} + {total - _MAX_LISTED} more..."
    return shown or UNSET


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- Pod -------------------------------------------------------------------------------------

@dataclasses.dataclass
class _PodSummary:
    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None


def _later(current: datetime | None, status: Mapping[str, Any]) -> datetime | None:
    finished = parse_timestamp(_get(status, "lastState", "terminated", "finishedAt"))
    if _get(status, "lastState", "terminated") is None or finished is None:
        return current
    return finished if current is None or current < finished else current


def _is_restartable(container: Mapping[str, Any] | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: Any, kind: str) -> bool:
    return any(_dict(c).get("type") == kind and _dict(c).get("status") == "True"
               for c in _list(conditions))


def _init_reason(status: Mapping[str, Any], index: int, total: int,
                 spec: Mapping[str, Any] | None) -> str | None:
    """The STATUS an init container imposes, or None if it is done (or a running sidecar)."""
    state = _dict(status.get("state"))
    terminated = state.get("terminated")
    waiting = _dict(state.get("waiting"))
    if terminated is not None and _int(_dict(terminated).get("exitCode")) == 0:
        return None
    if _is_restartable(spec) and status.get("started") is True:
        return None
    if terminated is not None:
        term = _dict(terminated)
        if term.get("reason"):
            return f"Init:{term['reason']}"
        if _int(term.get("signal")):
            return f"Init:Signal:{_int(term.get('signal'))}"
        return f"Init:ExitCode:{_int(term.get('exitCode'))}"
    if waiting.get("reason") and waiting.get("reason") != "PodInitializing":
        return f"Init:{waiting['reason']}"
    return f"Init:{index}/{total}"


def _container_reason(status: Mapping[str, Any]) -> str | None:
    state = _dict(status.get("state"))
    waiting = _dict(state.get("waiting"))
    if waiting.get("reason"):
        return str(waiting["reason"])
    if state.get("terminated") is None:
        return None
    term = _dict(state.get("terminated"))
    if term.get("reason"):
        return str(term["reason"])
    if _int(term.get("signal")):
        return f"Signal:{_int(term.get('signal'))}"
    return f"ExitCode:{_int(term.get('exitCode'))}"


def _is_sidecar_counted(status: Mapping[str, Any], spec: Mapping[str, Any] | None) -> bool:
    """A started, ready sidecar that has not exited cleanly counts towards READY."""
    terminated = _get(status, "state", "terminated")
    if terminated is not None and _int(_dict(terminated).get("exitCode")) == 0:
        return False
    return _is_restartable(spec) and status.get("started") is True and bool(status.get("ready"))


def _summarize_init(pod: Mapping[str, Any],
                    summary: _PodSummary) -> tuple[bool, int, datetime | None]:
    """Walk init containers; returns (initializing, sidecar restarts, sidecar last restart)."""
    specs = {str(_dict(c).get("name")): _dict(c)
             for c in _list(_get(pod, "spec", "initContainers"))}
    total = len(_list(_get(pod, "spec", "initContainers")))
    sidecar_restarts, sidecar_last = 0, None
    for index, raw in enumerate(_list(_get(pod, "status", "initContainerStatuses"))):
        status = _dict(raw)
        spec = specs.get(str(status.get("name")))
        summary.restarts += _int(status.get("restartCount"))
        summary.last_restart = _later(summary.last_restart, status)
        if _is_restartable(spec):
            sidecar_restarts += _int(status.get("restartCount"))
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
    for raw in reversed(_list(_get(pod, "status", "containerStatuses"))):
        status = _dict(raw)
        summary.restarts += _int(status.get("restartCount"))
        summary.last_restart = _later(summary.last_restart, status)
        reason = _container_reason(status)
        if reason is not None:
            summary.reason = reason
        elif status.get("ready") and _get(status, "state", "running") is not None:
            has_running = True
            summary.ready += 1
    if summary.reason == "Completed" and has_running:
        ready = _condition_true(_get(pod, "status", "conditions"), "Ready")
        summary.reason = "Running" if ready else "NotReady"


def _pod_summary(pod: Mapping[str, Any]) -> _PodSummary:
    status = _dict(pod.get("status"))
    summary = _PodSummary(reason=str(status.get("reason") or status.get("phase") or ""))
    for cond in _list(status.get("conditions")):
        if _dict(cond).get("type") == "PodScheduled" and \
                _dict(cond).get("reason") == "SchedulingGated":
            summary.reason = "SchedulingGated"
    initializing, sidecar_restarts, sidecar_last = _summarize_init(pod, summary)
    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        summary.restarts, summary.last_restart = sidecar_restarts, sidecar_last
        _summarize_containers(pod, summary)
    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        summary.reason = "Unknown"
    elif deleting and status.get("phase") not in ("Succeeded", "Failed"):
        summary.reason = "Terminating"
    return summary


def _pod_total_containers(pod: Mapping[str, Any]) -> int:
    regular = len(_list(_get(pod, "spec", "containers")))
    init_containers = _list(_get(pod, "spec", "initContainers"))
    sidecars = sum(1 for c in init_containers if _is_restartable(_dict(c)))
    return regular + sidecars


def _readiness_gates(pod: Mapping[str, Any]) -> str:
    gates = _list(_get(pod, "spec", "readinessGates"))
    if not gates:
        return NONE
    conditions = [_dict(c) for c in _list(_get(pod, "status", "conditions"))]
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == _dict(gate).get("conditionType")),
                     None)
        passed += 1 if match is not None and match.get("status") == "True" else 0
    return f"{passed}/{len(gates)}"


def _pod_cells(pod: Mapping[str, Any], now: datetime) -> list[Cell]:
    summary = _pod_summary(pod)
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts = f"{summary.restarts} ({human_duration(now - summary.last_restart)} ago)"
    pod_ips = _list(_get(pod, "status", "podIPs"))
    pod_ip = str(_dict(pod_ips[0]).get("ip") or "") if pod_ips else ""
    return [
        _name(pod), f"{summary.ready}/{_pod_total_containers(pod)}", summary.reason, restarts,
        _age(pod, now), pod_ip or NONE, _get(pod, "spec", "nodeName") or NONE,
        _get(pod, "status", "nominatedNodeName") or NONE, _readiness_gates(pod),
    ]


def _pod_conditions(pod: Mapping[str, Any]) -> list[Obj] | None:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# --- Service ---------------------------------------------------------------------------------

def _load_balancer_ips(svc: Mapping[str, Any]) -> list[str]:
    found: set[str] = set()
    for ingress in _list(_get(svc, "status", "loadBalancer", "ingress")):
        entry = _dict(ingress)
        if entry.get("ip"):
            found.add(str(entry["ip"]))
        elif entry.get("hostname"):
            found.add(str(entry["hostname"]))
    return sorted(found)


def _service_external_ip(svc: Mapping[str, Any], svc_type: str) -> str:
    external = [str(ip) for ip in _list(_get(svc, "spec", "externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if svc_type == "LoadBalancer":
        return ",".join(_load_balancer_ips(svc) + external) or "<pending>"
    if svc_type == "ExternalName":
        return str(_get(svc, "spec", "externalName") or "")
    return UNKNOWN


def _service_ports(svc: Mapping[str, Any]) -> str:
    pieces = []
    for raw in _list(_get(svc, "spec", "ports")):
        port = _dict(raw)
        protocol = port.get("protocol") or "TCP"
        node_port = _int(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{_int(port.get('port'))}{middle}/{protocol}")
    return ",".join(pieces) or NONE


def _service_cells(svc: Mapping[str, Any], now: datetime) -> list[Cell]:
    svc_type = str(_get(svc, "spec", "type") or "ClusterIP")
    cluster_ips = _list(_get(svc, "spec", "clusterIPs"))
    if not cluster_ips and _get(svc, "spec", "clusterIP"):
        cluster_ips = [_get(svc, "spec", "clusterIP")]
    cluster_ip = str(cluster_ips[0]) if cluster_ips else NONE
    return [_name(svc), svc_type, cluster_ip, _service_external_ip(svc, svc_type),
            _service_ports(svc), _age(svc, now), _format_labels(_get(svc, "spec", "selector"))]


# --- workloads -------------------------------------------------------------------------------

def _replicas(obj: Mapping[str, Any]) -> int:
    return _int(_get(obj, "spec", "replicas"), default=1)


def _status_int(obj: Mapping[str, Any], field: str) -> int:
    return _int(_get(obj, "status", field))


def _statefulset_cells(sts: Mapping[str, Any], now: datetime) -> list[Cell]:
    ready = f"{_status_int(sts, 'readyReplicas')}/{_replicas(sts)}"
    return [_name(sts), ready, _age(sts, now), *_container_cells(_get(sts, "spec", "template"))]


def _deployment_cells(deploy: Mapping[str, Any], now: datetime) -> list[Cell]:
    ready = f"{_status_int(deploy, 'readyReplicas')}/{_replicas(deploy)}"
    selector = selectors.to_string(_dict(_get(deploy, "spec", "selector")))
    return [_name(deploy), ready, _status_int(deploy, "updatedReplicas"),
            _status_int(deploy, "availableReplicas"), _age(deploy, now),
            *_container_cells(_get(deploy, "spec", "template")), selector]


def _replicaset_cells(rs: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(rs), _replicas(rs), _status_int(rs, "replicas"), _status_int(rs, "readyReplicas"),
            _age(rs, now), *_container_cells(_get(rs, "spec", "template")),
            _format_label_selector(_get(rs, "spec", "selector"))]


def _scale_cells(scale: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(scale), _int(_get(scale, "spec", "replicas")), _status_int(scale, "replicas"),
            _age(scale, now)]


def _controller_revision_cells(rev: Mapping[str, Any], now: datetime) -> list[Cell]:
    owners = [_dict(o) for o in _list(_get(rev, "metadata", "ownerReferences"))]
    owner = next((o for o in owners if o.get("controller") is True), None)
    controller = NONE
    if owner is not None:
        group = str(owner.get("apiVersion") or "").rpartition("/")[0]
        kind = str(owner.get("kind") or "")
        group_kind = f"{kind}.{group}" if group else kind
        controller = f"{group_kind.lower()}/{owner.get('name', '')}" if group_kind else \
            str(owner.get("name", ""))
    return [_name(rev), controller, _int(rev.get("revision")), _age(rev, now)]


# --- endpoints -------------------------------------------------------------------------------

def _endpoints_summary(ep: Mapping[str, Any]) -> str:
    subsets = [_dict(s) for s in _list(ep.get("subsets"))]
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for subset in subsets:
        ips = [str(_dict(a).get("ip", "")) for a in _list(subset.get("addresses"))]
        ports = [_int(_dict(p).get("port")) for p in _list(subset.get("ports"))]
        entries = ips if not ports else [_join_host_port(ip, port) for port in ports for ip in ips]
        total += len(entries)
        shown.extend(entries[: _MAX_LISTED - len(shown)])
    return _list_with_more(shown, total) if total > _MAX_LISTED else ",".join(shown)


def _endpoints_cells(ep: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(ep), _endpoints_summary(ep), _age(ep, now)]


def _slice_port(port: Mapping[str, Any]) -> str:
    if port.get("port") is not None:
        return str(_int(port.get("port")))
    if port.get("name") is not None:
        return str(port["name"])
    return "*"


def _endpointslice_cells(eps: Mapping[str, Any], now: datetime) -> list[Cell]:
    ports = [_slice_port(_dict(p)) for p in _list(eps.get("ports"))]
    endpoints = [_dict(e) for e in _list(eps.get("endpoints"))]
    addresses = [str(a) for e in endpoints for a in _list(e.get("addresses"))]
    return [_name(eps), str(eps.get("addressType") or ""),
            _list_with_more(ports[:_MAX_LISTED], len(ports)),
            _list_with_more(addresses[:_MAX_LISTED], len(addresses)), _age(eps, now)]


# --- cluster objects -------------------------------------------------------------------------

def _node_status(node: Mapping[str, Any]) -> str:
    ready = None
    for cond in _list(_get(node, "status", "conditions")):
        if _dict(cond).get("type") == "Ready":
            ready = _dict(cond)
    states = ["Unknown" if ready is None else ("Ready" if ready.get("status") == "True"
                                                else "NotReady")]
    if _get(node, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_roles(node: Mapping[str, Any]) -> str:
    roles: set[str] = set()
    for key, value in _dict(_get(node, "metadata", "labels")).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or NONE


def _node_address(node: Mapping[str, Any], kind: str) -> str:
    for address in _list(_get(node, "status", "addresses")):
        if _dict(address).get("type") == kind:
            return str(_dict(address).get("address", ""))
    return NONE


def _node_cells(node: Mapping[str, Any], now: datetime) -> list[Cell]:
    info = _dict(_get(node, "status", "nodeInfo"))
    return [
        _name(node), _node_status(node), _node_roles(node), _age(node, now),
        str(info.get("kubeletVersion") or ""), _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"), info.get("osImage") or UNKNOWN,
        info.get("kernelVersion") or UNKNOWN, info.get("containerRuntimeVersion") or UNKNOWN,
    ]


def _namespace_cells(ns: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(ns), str(_get(ns, "status", "phase") or ""), _age(ns, now)]


def _event_source(event: Mapping[str, Any]) -> str:
    component = _get(event, "source", "component") or event.get("reportingComponent") or ""
    host = _get(event, "source", "host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def _event_cells(event: Mapping[str, Any], now: datetime) -> list[Cell]:
    first = translate_timestamp(event.get("firstTimestamp"), now)
    if parse_timestamp(event.get("firstTimestamp")) is None:
        first = translate_timestamp(event.get("eventTime"), now)
    last = translate_timestamp(event.get("lastTimestamp"), now)
    if parse_timestamp(event.get("lastTimestamp")) is None:
        last = first
    count = _int(event.get("count"))
    series = event.get("series")
    if isinstance(series, Mapping):
        last = translate_timestamp(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = _dict(event.get("involvedObject"))
    target = str(involved.get("kind") or "").lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    return [last, str(event.get("type") or ""), str(event.get("reason") or ""), target,
            str(involved.get("fieldPath") or ""), _event_source(event),
            str(event.get("message") or "").strip(), first, count, _name(event)]


def _configmap_cells(cm: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(cm), len(_dict(cm.get("data"))) + len(_dict(cm.get("binaryData"))), _age(cm, now)]


def _secret_cells(secret: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(secret), str(secret.get("type") or ""), len(_dict(secret.get("data"))),
            _age(secret, now)]


def _service_account_cells(sa: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(sa), len(_list(sa.get("secrets"))), _age(sa, now)]


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: Iterable[Any]) -> str:
    present = set(modes)
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _pvc_cells(pvc: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = _dict(pvc.get("spec"))
    phase = str(_get(pvc, "status", "phase") or "")
    if _get(pvc, "metadata", "deletionTimestamp") is not None:
        phase = "Terminating"
    capacity = access = ""
    if spec.get("volumeName"):
        access = _access_modes(_list(_get(pvc, "status", "accessModes")))
        capacity = str(_get(pvc, "status", "capacity", "storage") or "0")
    annotations = _dict(_get(pvc, "metadata", "annotations"))
    storage_class = annotations.get("volume.beta.kubernetes.io/storage-class",
                                    spec.get("storageClassName") or "")
    return [_name(pvc), phase, str(spec.get("volumeName") or ""), capacity, access,
            str(storage_class), spec.get("volumeAttributesClassName") or UNSET, _age(pvc, now),
            spec.get("volumeMode") or UNSET]


def _lease_cells(lease: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(lease), str(_get(lease, "spec", "holderIdentity") or ""), _age(lease, now)]


def _runtime_class_cells(rc: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(rc), str(rc.get("handler") or ""), _age(rc, now)]


def _default_cells(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    created = parse_timestamp(_get(obj, "metadata", "creationTimestamp"))
    if created is None:
        return [_name(obj), "0001-01-01T00:00:00Z"]
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_name(obj), stamp]


# --- the column tables -----------------------------------------------------------------------

def _wide(name: str, description: str) -> Column:
    return Column(name, description, priority=1)


_CONTAINERS = _wide("Containers", _DESC_CONTAINERS)
_IMAGES = _wide("Images", _DESC_IMAGES)

PRINTERS: dict[str, _Printer] = {
    "Pod": _Printer((
        NAME_COLUMN,
        Column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", "The aggregate status of the containers in this pod."),
        Column("Restarts", "The number of times the containers in this pod have been restarted "
                           "and when the last container in this pod has restarted."),
        AGE_COLUMN,
        _wide("IP", "podIP address allocated to the pod. Routable at least within the cluster."),
        _wide("Node", "NodeName indicates in which node this pod is scheduled."),
        _wide("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods "
                                "on the node."),
        _wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod "
                                 "readiness."),
    ), _pod_cells),
    "Service": _Printer((
        NAME_COLUMN,
        Column("Type", "type determines how the Service is exposed."),
        Column("Cluster-IP", "clusterIP is the IP address of the service."),
        Column("External-IP", "externalIPs is a list of IP addresses for which nodes in the "
                              "cluster will also accept traffic for this service."),
        Column("Port(s)", "The list of ports that are exposed by this service."),
        AGE_COLUMN,
        _wide("Selector", "Route service traffic to pods with label keys and values matching "
                          "this selector."),
    ), _service_cells),
    "StatefulSet": _Printer((
        NAME_COLUMN, Column("Ready", "Number of the pod with ready state"), AGE_COLUMN,
        _CONTAINERS, _IMAGES,
    ), _statefulset_cells),
    "Deployment": _Printer((
        NAME_COLUMN, Column("Ready", "Number of the pod with ready state"),
        Column("Up-to-date", "Total number of non-terminated pods targeted by this deployment "
                             "that have the desired template spec."),
        Column("Available", "Total number of available pods (ready for at least minReadySeconds) "
                            "targeted by this deployment."),
        AGE_COLUMN, _CONTAINERS, _IMAGES,
        _wide("Selector", "Label selector for pods."),
    ), _deployment_cells),
    "ReplicaSet": _Printer((
        NAME_COLUMN,
        Column("Desired", "Replicas is the number of desired replicas.", type="integer"),
        Column("Current", "Replicas is the most recently observed number of replicas.",
               type="integer"),
        Column("Ready", "The number of ready replicas for this replica set.", type="integer"),
        AGE_COLUMN, _CONTAINERS, _IMAGES,
        _wide("Selector", "Selector is a label query over pods that should match the replica "
                          "count."),
    ), _replicaset_cells),
    "Endpoints": _Printer((
        NAME_COLUMN,
        Column("Endpoints", "The set of all endpoints is the union of all subsets."), AGE_COLUMN,
    ), _endpoints_cells),
    "EndpointSlice": _Printer((
        NAME_COLUMN,
        Column("AddressType", "addressType specifies the type of address carried by this "
                              "EndpointSlice."),
        Column("Ports", "ports specifies the list of network ports exposed by each endpoint in "
                        "this slice."),
        Column("Endpoints", "endpoints is a list of unique endpoints in this slice."), AGE_COLUMN,
    ), _endpointslice_cells),
    "Node": _Printer((
        NAME_COLUMN, Column("Status", "The status of the node"),
        Column("Roles", "The roles of the node"), AGE_COLUMN,
        Column("Version", "Kubelet Version reported by the node."),
        _wide("Internal-IP", "List of addresses reachable to the node."),
        _wide("External-IP", "List of addresses reachable to the node."),
        _wide("OS-Image", "OS Image reported by the node from /etc/os-release."),
        _wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r'."),
        _wide("Container-Runtime", "ContainerRuntime Version reported by the node through "
                                   "runtime remote API."),
    ), _node_cells),
    "Namespace": _Printer((
        NAME_COLUMN, Column("Status", "The status of the namespace"), AGE_COLUMN,
    ), _namespace_cells),
    "Event": _Printer((
        Column("Last Seen", "The time at which the most recent occurrence of this event was "
                            "recorded."),
        Column("Type", "Type of this event (Normal, Warning), new types could be added in the "
                       "future"),
        Column("Reason", "This should be a short, machine understandable string that gives the "
                         "reason for the transition into the object's current status."),
        Column("Object", "The object that this event is about."),
        _wide("Subobject", "If referring to a piece of an object instead of an entire object, "
                           "this string should contain a valid JSON/Go field access statement."),
        _wide("Source", "The component reporting this event."),
        Column("Message", "A human-readable description of the status of this operation."),
        _wide("First Seen", "The time at which the event was first recorded."),
        _wide("Count", "The number of times this event has occurred."),
        Column("Name", _DESC_NAME, format="name", priority=1),
    ), _event_cells),
    "ConfigMap": _Printer((
        NAME_COLUMN, Column("Data", "Data contains the configuration data."), AGE_COLUMN,
    ), _configmap_cells),
    "Secret": _Printer((
        NAME_COLUMN, Column("Type", "Used to facilitate programmatic handling of secret data."),
        Column("Data", "Data contains the secret data."), AGE_COLUMN,
    ), _secret_cells),
    "ServiceAccount": _Printer((
        NAME_COLUMN,
        Column("Secrets", "Secrets is a list of the secrets in the same namespace that pods "
                          "running using this ServiceAccount are allowed to use."),
        AGE_COLUMN,
    ), _service_account_cells),
    "PersistentVolumeClaim": _Printer((
        NAME_COLUMN,
        Column("Status", "phase represents the current phase of PersistentVolumeClaim."),
        Column("Volume", "volumeName is the binding reference to the PersistentVolume backing "
                         "this claim."),
        Column("Capacity", "capacity represents the actual resources of the underlying volume."),
        Column("Access Modes", "accessModes contains the actual access modes the volume backing "
                               "the PVC has."),
        Column("StorageClass", "StorageClass of the pvc"),
        Column("VolumeAttributesClass", "VolumeAttributesClass of the pvc"), AGE_COLUMN,
        _wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
    ), _pvc_cells),
    "ControllerRevision": _Printer((
        NAME_COLUMN, Column("Controller", "Controller of the object"),
        Column("Revision", "Revision indicates the revision of the state represented by Data."),
        AGE_COLUMN,
    ), _controller_revision_cells),
    "Lease": _Printer((
        NAME_COLUMN,
        Column("Holder", "holderIdentity contains the identity of the holder of a current "
                         "lease."),
        AGE_COLUMN,
    ), _lease_cells),
    "RuntimeClass": _Printer((
        NAME_COLUMN,
        Column("Handler", "handler specifies the underlying runtime and configuration that the "
                          "CRI implementation will use to handle pods of this class."),
        AGE_COLUMN,
    ), _runtime_class_cells),
    "Scale": _Printer((
        Column("Name", _DESC_NAME),  # upstream gives Scale's NAME no "name" format
        Column("Desired", "replicas is the desired number of instances for the scaled object.",
               type="integer"),
        Column("Available", "replicas is the actual number of observed instances of the scaled "
                            "object.", type="integer"),
        AGE_COLUMN,
    ), _scale_cells),
}

DEFAULT_PRINTER = _Printer(
    (NAME_COLUMN, Column("Created At", _DESC_CREATED, type="date")), _default_cells)


# --- the Table -------------------------------------------------------------------------------

def columns(kind: str) -> list[Obj]:
    """The column definitions kube-apiserver sends for `kind` (the default ones if it has none)."""
    return [col.definition() for col in PRINTERS.get(kind, DEFAULT_PRINTER).columns]


def row_cells(kind: str, obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    """One row's cells for `obj`, wide cells included."""
    return PRINTERS.get(kind, DEFAULT_PRINTER).cells(obj, now)


def _row_object(obj: Mapping[str, Any], kind: str, include_object: str,
                object_api_version: str | None) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        full = copy.deepcopy(dict(obj))
        if object_api_version:
            full["apiVersion"] = object_api_version
        full.setdefault("kind", kind)
        return full
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": copy.deepcopy(_dict(obj.get("metadata")))}


def _row(kind: str, obj: Mapping[str, Any], now: datetime, include_object: str,
         object_api_version: str | None) -> Obj:
    row: Obj = {"cells": row_cells(kind, obj, now)}
    conditions = _pod_conditions(obj) if kind == "Pod" else None
    if conditions:
        row["conditions"] = conditions
    row_object = _row_object(obj, kind, include_object, object_api_version)
    if row_object is not None:
        row["object"] = row_object
    return row


def table(kind: str, objects: list[Obj], *, now: datetime, include_object: str = "Metadata",
          resource_version: str = "", continue_token: str = "", with_headers: bool = True,
          object_api_version: str | None = None) -> Obj:
    """A `meta.k8s.io/v1` Table of `objects` (all of `kind`), rows in the given order.

    `include_object` is the request's `includeObject` (`None`, `Metadata` or `Object`);
    `with_headers=False` leaves `columnDefinitions` empty, as watch events after the first do.
    """
    metadata: Obj = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(kind) if with_headers else [],
        "rows": [_row(kind, obj, now, include_object, object_api_version) for obj in objects],
    }
