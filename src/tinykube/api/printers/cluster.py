"""Printers for cluster-level objects: Node, Namespace, Event, Lease and RuntimeClass.

A node's STATUS is its Ready condition (plus `SchedulingDisabled`), its ROLES come from the
`node-role.kubernetes.io/*` labels. An Event shows its legacy (`firstTimestamp`, `count`) or
series fields, whichever it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api.printers.base import (
    AGE_COLUMN,
    DESC_NAME,
    NAME_COLUMN,
    NONE,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    get_path,
    name_of,
    wide,
)
from tinykube.api.printers.duration import UNKNOWN, parse_timestamp, translate_timestamp


def _node_status(node: Mapping[str, Any]) -> str:
    ready = None
    for cond in as_list(get_path(node, "status", "conditions")):
        if as_dict(cond).get("type") == "Ready":
            ready = as_dict(cond)
    states = ["Unknown" if ready is None else ("Ready" if ready.get("status") == "True"
                                                else "NotReady")]
    if get_path(node, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_roles(node: Mapping[str, Any]) -> str:
    roles: set[str] = set()
    for key, value in as_dict(get_path(node, "metadata", "labels")).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or NONE


def _node_address(node: Mapping[str, Any], kind: str) -> str:
    for address in as_list(get_path(node, "status", "addresses")):
        if as_dict(address).get("type") == kind:
            return str(as_dict(address).get("address", ""))
    return NONE


def _node_cells(node: Mapping[str, Any], now: datetime) -> list[Cell]:
    info = as_dict(get_path(node, "status", "nodeInfo"))
    return [
        name_of(node), _node_status(node), _node_roles(node), age_of(node, now),
        str(info.get("kubeletVersion") or ""), _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"), info.get("osImage") or UNKNOWN,
        info.get("kernelVersion") or UNKNOWN, info.get("containerRuntimeVersion") or UNKNOWN,
    ]


def _namespace_cells(ns: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(ns), str(get_path(ns, "status", "phase") or ""), age_of(ns, now)]


def _event_source(event: Mapping[str, Any]) -> str:
    component = get_path(event, "source", "component") or event.get("reportingComponent") or ""
    host = get_path(event, "source", "host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def _event_cells(event: Mapping[str, Any], now: datetime) -> list[Cell]:
    first = translate_timestamp(event.get("firstTimestamp"), now)
    if parse_timestamp(event.get("firstTimestamp")) is None:
        first = translate_timestamp(event.get("eventTime"), now)
    last = translate_timestamp(event.get("lastTimestamp"), now)
    if parse_timestamp(event.get("lastTimestamp")) is None:
        last = first
    count = as_int(event.get("count"))
    series = event.get("series")
    if isinstance(series, Mapping):
        last = translate_timestamp(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1
    involved = as_dict(event.get("involvedObject"))
    target = str(involved.get("kind") or "").lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    return [last, str(event.get("type") or ""), str(event.get("reason") or ""), target,
            str(involved.get("fieldPath") or ""), _event_source(event),
            str(event.get("message") or "").strip(), first, count, name_of(event)]


def _lease_cells(lease: Mapping[str, Any], now: datetime) -> list[Cell]:
    holder = get_path(lease, "spec", "holderIdentity")
    return [name_of(lease), str(holder or ""), age_of(lease, now)]


def _runtime_class_cells(rc: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(rc), str(rc.get("handler") or ""), age_of(rc, now)]


CLUSTER_PRINTERS: dict[str, Printer] = {
    "Node": Printer((
        NAME_COLUMN, Column("Status", "The status of the node"),
        Column("Roles", "The roles of the node"), AGE_COLUMN,
        Column("Version", "Kubelet Version reported by the node."),
        wide("Internal-IP", "List of addresses reachable to the node."),
        wide("External-IP", "List of addresses reachable to the node."),
        wide("OS-Image", "OS Image reported by the node from /etc/os-release."),
        wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r'."),
        wide("Container-Runtime", "ContainerRuntime Version reported by the node through "
                                  "runtime remote API."),
    ), _node_cells),
    "Namespace": Printer((
        NAME_COLUMN, Column("Status", "The status of the namespace"), AGE_COLUMN,
    ), _namespace_cells),
    "Event": Printer((
        Column("Last Seen", "The time at which the most recent occurrence of this event was "
                            "recorded."),
        Column("Type", "Type of this event (Normal, Warning), new types could be added in the "
                       "future"),
        Column("Reason", "This should be a short, machine understandable string that gives the "
                         "reason for the transition into the object's current status."),
        Column("Object", "The object that this event is about."),
        wide("Subobject", "If referring to a piece of an object instead of an entire object, "
                          "this string should contain a valid JSON/Go field access statement."),
        wide("Source", "The component reporting this event."),
        Column("Message", "A human-readable description of the status of this operation."),
        wide("First Seen", "The time at which the event was first recorded."),
        wide("Count", "The number of times this event has occurred."),
        Column("Name", DESC_NAME, format="name", priority=1),
    ), _event_cells),
    "Lease": Printer((
        NAME_COLUMN,
        Column("Holder", "holderIdentity contains the identity of the holder of a current "
                         "lease."),
        AGE_COLUMN,
    ), _lease_cells),
    "RuntimeClass": Printer((
        NAME_COLUMN,
        Column("Handler", "handler specifies the underlying runtime and configuration that the "
                          "CRI implementation will use to handle pods of this class."),
        AGE_COLUMN,
    ), _runtime_class_cells),
}
