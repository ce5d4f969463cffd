"""Conversion between served versions and the storage version, one table row per pair.

Some resources are served in more than one group-version but stored in one
(`resources.Resource.storage_version` / `storage_group`): the API server converts a body to the
storage version before the registry sees it (`to_storage`) and converts stored objects back to
the version the URL asked for (`from_storage`). `CONVERTERS` is the table, keyed by the served
(apiVersion, kind), of what differs from the storage shape:

- `apps/v1beta1`, `apps/v1beta2` StatefulSet and Deployment (removed upstream in 1.16, still in
  old manifests such as the seed's `web.yaml`), stored as `apps/v1`: v1beta1 defaulted a missing
  `spec.selector` from the template labels (v1 requires it); v1beta1 Deployments had
  `rollbackTo`, which is dropped. We keep the v1 defaults after conversion.
- `autoscaling/v1` HorizontalPodAutoscaler, stored as `autoscaling/v2`:
  `targetCPUUtilizationPercentage` is the v2 `Resource` metric `cpu` with an `Utilization`
  target, `currentCPUUtilizationPercentage` its current value. What v1 cannot hold (other
  metrics, behavior, conditions) rides in the annotations kube's conversion uses
  (`autoscaling.alpha.kubernetes.io/metrics`, ...), so a v2 object read and written back as
  v1 keeps it.
- `events.k8s.io/v1` Event, stored as a core `v1` Event (one storage, as upstream): `regarding`
  is `involvedObject`, `note` is `message`, `reportingController` is `reportingComponent`, and
  the `deprecated*` fields are the core event's legacy ones.

Everything else is the same in both versions: conversion rewrites `apiVersion` and moves the
fields above. `to_storage` returns a new dict; `from_storage` shares structure where it can.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import orjson

Obj = dict[str, Any]
Convert = Callable[[Obj], None]  # rewrites a deep copy in place


@dataclasses.dataclass(frozen=True)
class Converter:
    storage_api_version: str
    to_storage: Convert
    from_storage: Convert


# --- apps/v1beta1, apps/v1beta2 ----------------------------------------------------------------

def _template_labels(spec: Obj) -> Obj | None:
    """`spec.template.metadata.labels` if every step is an object (the type check that follows
    conversion reports the body that is not)."""
    template = spec.get("template")
    metadata = template.get("metadata") if isinstance(template, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else None


def _apps_legacy_in(version: str) -> Convert:
    def convert(obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.pop("rollbackTo", None)
        if version == "v1beta1" and not spec.get("selector"):
            labels = _template_labels(spec)
            if labels:
                spec["selector"] = {"matchLabels": dict(labels)}
    return convert


def _unchanged(obj: Obj) -> None:
    return None


# --- autoscaling/v1 HorizontalPodAutoscaler <-> autoscaling/v2 ---------------------------------

_HPA_ANNOTATIONS = {  # v2 field (spec./status.) -> the annotation v1 keeps it in
    ("spec", "metrics"): "autoscaling.alpha.kubernetes.io/metrics",
    ("spec", "behavior"): "autoscaling.alpha.kubernetes.io/behavior",
    ("status", "currentMetrics"): "autoscaling.alpha.kubernetes.io/current-metrics",
    ("status", "conditions"): "autoscaling.alpha.kubernetes.io/conditions",
}


def _is_cpu_utilization(metric: Any) -> bool:
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return False
    resource = metric.get("resource")
    return (isinstance(resource, dict) and resource.get("name") == "cpu"
            and isinstance(resource.get("target"), dict)
            and resource["target"].get("type") == "Utilization")


def _section(obj: Obj, name: str) -> Obj:
    section = obj.get(name)
    if not isinstance(section, dict):
        section = obj[name] = {}
    return section


def _annotations(obj: Obj) -> Obj:
    meta = _section(obj, "metadata")
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = meta["annotations"] = {}
    return annotations


def _hpa_to_v2(obj: Obj) -> None:
    spec, status = _section(obj, "spec"), obj.get("status")
    annotations = _annotations(obj)
    for (part, field), key in _HPA_ANNOTATIONS.items():
        text = annotations.pop(key, None)
        if isinstance(text, str) and part == "spec":
            try:
                spec[field] = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
        elif isinstance(text, str) and isinstance(status, dict):
            try:
                status[field] = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
    if not annotations:
        del obj["metadata"]["annotations"]
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        others = [m for m in spec.get("metrics") or [] if not _is_cpu_utilization(m)]
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}},
            *others]
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": current}}},
                *(status.get("currentMetrics") or [])]


def _hpa_to_v1(obj: Obj) -> None:
    spec = _section(obj, "spec")
    metrics = spec.pop("metrics", None) or []
    behavior = spec.pop("behavior", None)
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    others = [m for m in metrics if m is not cpu]
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get(
            "averageUtilization")
    keep: dict[tuple[str, str], Any] = {("spec", "metrics"): others,
                                        ("spec", "behavior"): behavior}
    status = obj.get("status")
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        conditions = status.pop("conditions", None)
        others_now = []
        for metric in current:
            utilization = None
            if isinstance(metric, dict) and metric.get("type") == "Resource" and \
                    (metric.get("resource") or {}).get("name") == "cpu":
                utilization = (metric["resource"].get("current") or {}).get(
                    "averageUtilization")
            if utilization is None:
                others_now.append(metric)
            else:
                status["currentCPUUtilizationPercentage"] = utilization
        keep[("status", "currentMetrics")] = others_now
        keep[("status", "conditions")] = conditions
        # v1's replica counts are not omitempty: a zero is written out
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    for where, value in keep.items():
        if value:
            _annotations(obj)[_HPA_ANNOTATIONS[where]] = orjson.dumps(value).decode()


# --- events.k8s.io/v1 Event <-> core v1 Event -------------------------------------------------

# events.k8s.io field -> core field, for the fields whose names differ.
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}


def _rename(obj: Obj, names: dict[str, str]) -> None:
    for old, new in names.items():
        if old in obj:
            value = obj.pop(old)
            if value is not None:
                obj[new] = value


def _event_to_core(obj: Obj) -> None:
    _rename(obj, _EVENT_FIELDS)


def _event_from_core(obj: Obj) -> None:
    _rename(obj, {core: events for events, core in _EVENT_FIELDS.items()})


CONVERTERS: dict[tuple[str, str], Converter] = {
    **{(f"apps/{version}", kind): Converter("apps/v1", _apps_legacy_in(version), _unchanged)
       for version in ("v1beta1", "v1beta2") for kind in ("Deployment", "StatefulSet")},
    ("autoscaling/v1", "HorizontalPodAutoscaler"): Converter("autoscaling/v2", _hpa_to_v2,
                                                             _hpa_to_v1),
    ("events.k8s.io/v1", "Event"): Converter("v1", _event_to_core, _event_from_core),
}


def to_storage(obj: Obj, api_version: str) -> Obj:
    """Convert an object sent in `api_version` into its storage version (a new dict)."""
    converter = CONVERTERS.get((api_version, str(obj.get("kind") or "")))
    if converter is None:
        return obj
    converted = copy.deepcopy(obj)
    converter.to_storage(converted)
    converted["apiVersion"] = converter.storage_api_version
    return converted


def from_storage(obj: Obj, api_version: str) -> Obj:
    """Convert a stored object for serving in `api_version` (shares structure when unchanged)."""
    converter = CONVERTERS.get((api_version, str(obj.get("kind") or "")))
    if converter is None or obj.get("apiVersion") == api_version:
        return obj
    if converter.from_storage is _unchanged:
        served = dict(obj)
    else:
        served = copy.deepcopy(obj)
        converter.from_storage(served)
    served["apiVersion"] = api_version
    return served
