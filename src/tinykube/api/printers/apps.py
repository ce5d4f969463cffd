"""Printers for the replicated workloads, their ControllerRevisions and the Scale subresource.

Covers StatefulSet, Deployment, ReplicaSet, DaemonSet, ControllerRevision, the core
ReplicationController (whose selector is a plain label map) and autoscaling/v1 Scale. A
missing `spec.replicas` is shown as 1, the internal-type default. The wide columns list the
template's container names and images.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api import selectors
from tinykube.api.printers.base import (
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    DESC_NAME,
    IMAGES_COLUMN,
    NAME_COLUMN,
    NONE,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    format_label_selector,
    format_labels,
    get_path,
    name_of,
    wide,
)


def _container_cells(template: Any) -> list[Cell]:
    containers = [as_dict(c) for c in as_list(get_path(as_dict(template), "spec", "containers"))]
    return [",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers)]


def _replicas(obj: Mapping[str, Any]) -> int:
    return as_int(get_path(obj, "spec", "replicas"), default=1)


def _status_int(obj: Mapping[str, Any], field: str) -> int:
    return as_int(get_path(obj, "status", field))


def _statefulset_cells(sts: Mapping[str, Any], now: datetime) -> list[Cell]:
    ready = f"{_status_int(sts, 'readyReplicas')}/{_replicas(sts)}"
    return [name_of(sts), ready, age_of(sts, now),
            *_container_cells(get_path(sts, "spec", "template"))]


def _deployment_cells(deploy: Mapping[str, Any], now: datetime) -> list[Cell]:
    ready = f"{_status_int(deploy, 'readyReplicas')}/{_replicas(deploy)}"
    selector = selectors.to_string(as_dict(get_path(deploy, "spec", "selector")))
    return [name_of(deploy), ready, _status_int(deploy, "updatedReplicas"),
            _status_int(deploy, "availableReplicas"), age_of(deploy, now),
            *_container_cells(get_path(deploy, "spec", "template")), selector]


def _replicaset_cells(rs: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(rs), _replicas(rs), _status_int(rs, "replicas"),
            _status_int(rs, "readyReplicas"), age_of(rs, now),
            *_container_cells(get_path(rs, "spec", "template")),
            format_label_selector(get_path(rs, "spec", "selector"))]


def _replication_controller_cells(rc: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(rc), _replicas(rc), _status_int(rc, "replicas"),
            _status_int(rc, "readyReplicas"), age_of(rc, now),
            *_container_cells(get_path(rc, "spec", "template")),
            format_labels(get_path(rc, "spec", "selector"))]


def _daemonset_cells(ds: Mapping[str, Any], now: datetime) -> list[Cell]:
    template = get_path(ds, "spec", "template")
    counts = [_status_int(ds, field) for field in (
        "desiredNumberScheduled", "currentNumberScheduled", "numberReady",
        "updatedNumberScheduled", "numberAvailable")]
    return [name_of(ds), *counts, format_labels(get_path(as_dict(template), "spec",
                                                         "nodeSelector")),
            age_of(ds, now), *_container_cells(template),
            format_label_selector(get_path(ds, "spec", "selector"))]


def _scale_cells(scale: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(scale), as_int(get_path(scale, "spec", "replicas")),
            _status_int(scale, "replicas"), age_of(scale, now)]


def _controller_revision_cells(rev: Mapping[str, Any], now: datetime) -> list[Cell]:
    owners = [as_dict(o) for o in as_list(get_path(rev, "metadata", "ownerReferences"))]
    owner = next((o for o in owners if o.get("controller") is True), None)
    controller = NONE
    if owner is not None:
        group = str(owner.get("apiVersion") or "").rpartition("/")[0]
        kind = str(owner.get("kind") or "")
        group_kind = f"{kind}.{group}" if group else kind
        controller = f"{group_kind.lower()}/{owner.get('name', '')}" if group_kind else \
            str(owner.get("name", ""))
    return [name_of(rev), controller, as_int(rev.get("revision")), age_of(rev, now)]


APPS_PRINTERS: dict[str, Printer] = {
    "StatefulSet": Printer((
        NAME_COLUMN, Column("Ready", "Number of the pod with ready state"), AGE_COLUMN,
        CONTAINERS_COLUMN, IMAGES_COLUMN,
    ), _statefulset_cells),
    "Deployment": Printer((
        NAME_COLUMN, Column("Ready", "Number of the pod with ready state"),
        Column("Up-to-date", "Total number of non-terminated pods targeted by this deployment "
                             "that have the desired template spec."),
        Column("Available", "Total number of available pods (ready for at least minReadySeconds) "
                            "targeted by this deployment."),
        AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN,
        wide("Selector", "Label selector for pods."),
    ), _deployment_cells),
    "ReplicaSet": Printer((
        NAME_COLUMN,
        Column("Desired", "Replicas is the number of desired replicas.", type="integer"),
        Column("Current", "Replicas is the most recently observed number of replicas.",
               type="integer"),
        Column("Ready", "The number of ready replicas for this replica set.", type="integer"),
        AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN,
        wide("Selector", "Selector is a label query over pods that should match the replica "
                         "count."),
    ), _replicaset_cells),
    "DaemonSet": Printer((
        NAME_COLUMN,
        Column("Desired", "The total number of nodes that should be running the daemon pod "
                          "(including nodes correctly running the daemon pod).", type="integer"),
        Column("Current", "The number of nodes that are running at least 1 daemon pod and are "
                          "supposed to run the daemon pod.", type="integer"),
        Column("Ready", "numberReady is the number of nodes that should be running the daemon "
                        "pod and have one or more of the daemon pod running with a Ready "
                        "Condition.", type="integer"),
        Column("Up-to-date", "The total number of nodes that are running updated daemon pod",
               type="integer"),
        Column("Available", "The number of nodes that should be running the daemon pod and "
                            "have one or more of the daemon pod running and available (ready for "
                            "at least spec.minReadySeconds)", type="integer"),
        Column("Node Selector", "NodeSelector is a selector which must be true for the pod to "
                                "fit on a node."),
        AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN,
        wide("Selector", "A label query over pods that are managed by the daemon set."),
    ), _daemonset_cells),
    "ReplicationController": Printer((
        NAME_COLUMN,
        Column("Desired", "Replicas is the number of desired replicas.", type="integer"),
        Column("Current", "Replicas is the most recently observed number of replicas.",
               type="integer"),
        Column("Ready", "The number of ready replicas for this replication controller.",
               type="integer"),
        AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN,
        wide("Selector", "Selector is a label query over pods that should match the Replicas "
                         "count."),
    ), _replication_controller_cells),
    "ControllerRevision": Printer((
        NAME_COLUMN, Column("Controller", "Controller of the object"),
        Column("Revision", "Revision indicates the revision of the state represented by Data."),
        AGE_COLUMN,
    ), _controller_revision_cells),
    "Scale": Printer((
        Column("Name", DESC_NAME),  # upstream gives Scale's NAME no "name" format
        Column("Desired", "replicas is the desired number of instances for the scaled object.",
               type="integer"),
        Column("Available", "replicas is the actual number of observed instances of the scaled "
                            "object.", type="integer"),
        AGE_COLUMN,
    ), _scale_cells),
}
