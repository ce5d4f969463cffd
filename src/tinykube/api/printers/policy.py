"""Printers for workload policy objects: PodDisruptionBudget, HorizontalPodAutoscaler,
ResourceQuota, LimitRange, PodTemplate and ComponentStatus.

As `printers.go`: a PDB shows its budget as given (`N/A` for the side it does not set); an HPA
its target as `Kind/name` and each metric as `current/target` (`cpu: <unknown>/80%`, at most two
and `+ N more...`), printed from the autoscaling/v2 shape that both versions are stored in; a
quota one `resource: used/hard` list for requests and one for `limits.*`. LimitRange has no
printer upstream (the default NAME / CREATED AT table).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api import quantity
from tinykube.api.printers.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    UNSET,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    format_labels,
    get_path,
    name_of,
)

UNKNOWN_METRIC = "<unknown>"


def _int_or_string(value: Any) -> str:
    return "N/A" if value is None else str(value)


def _pdb_cells(pdb: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(pdb.get("spec"))
    return [name_of(pdb), _int_or_string(spec.get("minAvailable")),
            _int_or_string(spec.get("maxUnavailable")),
            as_int(get_path(pdb, "status", "disruptionsAllowed")), age_of(pdb, now)]


def _qty(value: Any) -> str:
    """resource.Quantity's String(): the canonical form ("0" when unset)."""
    return quantity.text(value) or ("0" if value in (None, "") else str(value))


def _target(target: Mapping[str, Any], current: Mapping[str, Any] | None,
            name: str = "") -> str:
    """One metric as formatHPAMetrics prints it."""
    prefix = f"{name}: " if name else ""
    if target.get("averageValue") is not None:
        now = _qty(current.get("averageValue")) if current is not None else UNKNOWN_METRIC
        suffix = "" if name else " (avg)"
        return f"{prefix}{now}/{_qty(target['averageValue'])}{suffix}"
    if name:  # resource metrics: utilization
        now = UNKNOWN_METRIC
        if current is not None and current.get("averageUtilization") is not None:
            now = f"{current['averageUtilization']}%"
        goal = f"{target['averageUtilization']}%" if target.get(
            "averageUtilization") is not None else "<auto>"
        return f"{prefix}{now}/{goal}"
    now = _qty(current.get("value")) if current is not None else UNKNOWN_METRIC
    return f"{now}/{_qty(target.get('value'))}"


_SOURCES = {"Resource": "resource", "ContainerResource": "containerResource",
            "Pods": "pods", "Object": "object", "External": "external"}


def _metric(spec: Mapping[str, Any], status: Mapping[str, Any] | None) -> str:
    kind = str(spec.get("type") or "")
    field = _SOURCES.get(kind)
    if field is None:
        return "<unknown type>"
    source = as_dict(spec.get(field))
    observed = as_dict(status.get(field)) if status is not None else {}
    current = as_dict(observed.get("current")) if status is not None and field in status \
        else None
    target = as_dict(source.get("target"))
    if kind == "Pods":
        now = _qty(current.get("averageValue")) if current is not None else UNKNOWN_METRIC
        return f"{now}/{_qty(target.get('averageValue'))}"
    name = str(source.get("name") or "") if kind in ("Resource", "ContainerResource") else ""
    return _target(target, current, name)


def format_hpa_metrics(specs: list[Any], statuses: list[Any], limit: int = 2) -> str:
    if not specs:
        return "<none>"
    shown = [_metric(as_dict(spec), as_dict(statuses[i]) if i < len(statuses) else None)
             for i, spec in enumerate(specs)]
    text = ", ".join(shown[:limit])
    return f"{text} + {len(shown) - limit} more..." if len(shown) > limit else text


def _hpa_cells(hpa: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = as_dict(hpa.get("spec")), as_dict(hpa.get("status"))
    ref = as_dict(spec.get("scaleTargetRef"))
    minimum = spec.get("minReplicas")
    return [name_of(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_hpa_metrics(as_list(spec.get("metrics")), as_list(status.get("currentMetrics"))),
            UNSET if minimum is None else str(minimum), as_int(spec.get("maxReplicas")),
            as_int(status.get("currentReplicas")), age_of(hpa, now)]


def _quota_cells(quota: Mapping[str, Any], now: datetime) -> list[Cell]:
    hard = as_dict(get_path(quota, "status", "hard"))
    used = as_dict(get_path(quota, "status", "used"))
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        pieces = resource.split(".")
        column = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        column.append(f"{resource}: {_qty(used.get(resource))}/{_qty(hard[resource])}")
    return [name_of(quota), age_of(quota, now), ", ".join(requests), ", ".join(limits)]


def _pod_template_cells(template: Mapping[str, Any], now: datetime) -> list[Cell]:
    pod = as_dict(template.get("template"))
    containers = [as_dict(c) for c in as_list(get_path(pod, "spec", "containers"))]
    return [name_of(template), ",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers),
            format_labels(get_path(pod, "metadata", "labels"))]


def _component_cells(component: Mapping[str, Any], now: datetime) -> list[Cell]:
    status, message, error = "Unknown", "", ""
    for condition in as_list(component.get("conditions")):
        condition = as_dict(condition)
        if condition.get("type") == "Healthy":
            status = "Healthy" if condition.get("status") == "True" else "Unhealthy"
            message, error = str(condition.get("message") or ""), str(condition.get("error") or "")
            break
    return [name_of(component), status, message, error]


POLICY_PRINTERS: dict[str, Printer] = {
    "PodDisruptionBudget": Printer((
        NAME_COLUMN,
        Column("Min Available", "The minimum number of pods that must be available."),
        Column("Max Unavailable", "The maximum number of pods that may be unavailable."),
        Column("Allowed Disruptions", "Calculated number of pods that may be disrupted at this "
                                      "time.", type="integer"),
        AGE_COLUMN,
    ), _pdb_cells),
    "HorizontalPodAutoscaler": Printer((
        NAME_COLUMN,
        Column("Reference", "scaleTargetRef points to the target resource to scale."),
        Column("Targets", "metrics contains the specifications for which to use to calculate "
                          "the desired replica count."),
        Column("MinPods", "minReplicas is the lower limit for the number of replicas to which "
                          "the autoscaler can scale down."),
        Column("MaxPods", "maxReplicas is the upper limit for the number of replicas to which "
                          "the autoscaler can scale up."),
        Column("Replicas", "currentReplicas is current number of replicas of pods managed by "
                           "this autoscaler."),
        AGE_COLUMN,
    ), _hpa_cells),
    "ResourceQuota": Printer((
        NAME_COLUMN, AGE_COLUMN,
        Column("Request", "Request represents a minimum amount of cpu/memory that a container "
                          "may consume."),
        Column("Limit", "Limits control the maximum amount of cpu/memory that a container may "
                        "use independent of contention on the node."),
    ), _quota_cells),
    "PodTemplate": Printer((
        NAME_COLUMN,
        Column("Containers", "Names of each container in the template."),
        Column("Images", "Images referenced by each container in the template."),
        Column("Pod Labels", "The labels for the pod template."),
    ), _pod_template_cells),
    "ComponentStatus": Printer((
        NAME_COLUMN,
        Column("Status", "Status of the component conditions"),
        Column("Message", "Message of the component conditions"),
        Column("Error", "Error of the component conditions"),
    ), _component_cells),
}
