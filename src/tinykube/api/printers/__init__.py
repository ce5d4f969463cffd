"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` renders.

kubectl has no client-side printers for built-in kinds any more; it shows exactly the columns and
cells the server sends (kubectl-compat.md §0.3-0.5, §4 "Server-side printing", §7). This package
computes them the way kube-apiserver's `pkg/printers/internalversion/printers.go` does:

- one `Printer` per kind: its column definitions and a function (object, now) -> row cells,
  grouped by API group in `core_workloads` (Pod), `core_network` (Service, Endpoints,
  EndpointSlice, Ingress, NetworkPolicy), `apps` (with ReplicationController), `batch` (Job,
  CronJob), `cluster` (Node, Namespace, Event, Lease, RuntimeClass), `config` (ConfigMap, Secret,
  ServiceAccount, PersistentVolumeClaim, PersistentVolume), `policy` (PodDisruptionBudget,
  HorizontalPodAutoscaler, ResourceQuota, PodTemplate, ComponentStatus) and `control` (RBAC
  bindings, CSR, admission configuration, APIService, flow control, PriorityClass,
  IngressClass, CSI kinds), `metrics` (NodeMetrics, PodMetrics); `base` has the shared pieces;
- wide (priority 1) cells are always filled, as kube-apiserver prints with `Wide: true`;
- kinds without a printer get the default NAME / CREATED AT table (`rest.DefaultTableConvertor`);
- ages use `human_duration` (in `duration`), a port of apimachinery's `duration.HumanDuration`.

This module assembles `PRINTERS` and builds the Table envelope (`table`): column definitions,
rows with their cells, the pod row conditions and the `includeObject` row object. Time is passed
in (`now`); nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from tinykube.api.printers.apps import APPS_PRINTERS
from tinykube.api.printers.base import (
    AGE_COLUMN,
    DESC_CREATED,
    NAME_COLUMN,
    NONE,
    UNSET,
    Cell,
    Column,
    Obj,
    Printer,
    RowFn,
    as_dict,
    get_path,
    name_of,
)
from tinykube.api.printers.batch import BATCH_PRINTERS
from tinykube.api.printers.cluster import CLUSTER_PRINTERS
from tinykube.api.printers.config import CONFIG_PRINTERS
from tinykube.api.printers.control import CONTROL_PRINTERS
from tinykube.api.printers.core_network import NETWORK_PRINTERS
from tinykube.api.printers.core_workloads import POD_PRINTERS, pod_conditions
from tinykube.api.printers.duration import (
    UNKNOWN,
    human_duration,
    parse_timestamp,
    translate_timestamp,
)
from tinykube.api.printers.metrics import METRICS_PRINTERS
from tinykube.api.printers.policy import POLICY_PRINTERS

__all__ = [
    "AGE_COLUMN",
    "DEFAULT_PRINTER",
    "NAME_COLUMN",
    "NONE",
    "PRINTERS",
    "UNKNOWN",
    "UNSET",
    "Cell",
    "Column",
    "Obj",
    "Printer",
    "RowFn",
    "columns",
    "human_duration",
    "parse_timestamp",
    "row_cells",
    "table",
    "translate_timestamp",
]

PRINTERS: dict[str, Printer] = {
    **POD_PRINTERS, **NETWORK_PRINTERS, **APPS_PRINTERS, **BATCH_PRINTERS, **CLUSTER_PRINTERS,
    **CONFIG_PRINTERS, **METRICS_PRINTERS, **POLICY_PRINTERS, **CONTROL_PRINTERS,
}


def _default_cells(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    created = parse_timestamp(get_path(obj, "metadata", "creationTimestamp"))
    if created is None:
        return [name_of(obj), "0001-01-01T00:00:00Z"]
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [name_of(obj), stamp]


Serve = Callable[[Obj], Obj]

DEFAULT_PRINTER = Printer(
    (NAME_COLUMN, Column("Created At", DESC_CREATED, type="date")), _default_cells)


# --- the Table -------------------------------------------------------------------------------

def columns(kind: str) -> list[Obj]:
    """The column definitions kube-apiserver sends for `kind` (the default ones if it has none)."""
    return [col.definition() for col in PRINTERS.get(kind, DEFAULT_PRINTER).columns]


def row_cells(kind: str, obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    """One row's cells for `obj`, wide cells included."""
    return PRINTERS.get(kind, DEFAULT_PRINTER).cells(obj, now)


def _row_object(obj: Mapping[str, Any], kind: str, include_object: str,
                object_api_version: str | None, serve: Serve | None) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        full = copy.deepcopy(serve(dict(obj)) if serve is not None else dict(obj))
        if object_api_version:
            full["apiVersion"] = object_api_version
        full.setdefault("kind", kind)
        return full
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": copy.deepcopy(as_dict(obj.get("metadata")))}


def _row(kind: str, obj: Mapping[str, Any], now: datetime, include_object: str,
         object_api_version: str | None, serve: Serve | None,
         printer: Printer | None = None) -> Obj:
    row: Obj = {"cells": printer.cells(obj, now) if printer else row_cells(kind, obj, now)}
    conditions = pod_conditions(obj) if kind == "Pod" else None
    if conditions:
        row["conditions"] = conditions
    row_object = _row_object(obj, kind, include_object, object_api_version, serve)
    if row_object is not None:
        row["object"] = row_object
    return row


def table(kind: str, objects: list[Obj], *, now: datetime, include_object: str = "Metadata",
          resource_version: str = "", continue_token: str = "", with_headers: bool = True,
          object_api_version: str | None = None, serve: Serve | None = None,
          printer: Printer | None = None) -> Obj:
    """A `meta.k8s.io/v1` Table of `objects` (all of `kind`), rows in the given order.

    Cells are printed from `objects` as given; `serve`, if set, converts each row's `Object`
    to the version the client asked for.

    `include_object` is the request's `includeObject` (`None`, `Metadata` or `Object`);
    `with_headers=False` leaves `columnDefinitions` empty, as watch events after the first do.
    `printer` replaces the kind's (a custom resource's printer columns).
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
        "columnDefinitions": ([c.definition() for c in printer.columns] if printer
                              else columns(kind)) if with_headers else [],
        "rows": [_row(kind, obj, now, include_object, object_api_version, serve, printer)
                 for obj in objects],
    }
