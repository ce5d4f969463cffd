"""LimitRange: the defaults it gives containers and the bounds it sets (kube's LimitRanger).

The pure half of the LimitRanger admission plugin (`plugin/pkg/admission/limitranger`):

- `apply_defaults(pod, limit_range)` gives each container (and init container) the
  LimitRange's Container `default` as limits and `defaultRequest` as requests for every
  resource it does not name, and records what it set in the pod annotation
  `kubernetes.io/limit-ranger` (`LimitRanger plugin set: cpu, memory request for container c;
  cpu limit for container c`). Only pod creates are defaulted.
- `pod_violations` / `claim_violations` list what breaks the range: per Container `min`,
  `max` and `maxLimitRequestRatio` against each container's requests and limits; per Pod the
  same against the pod's sums; per PersistentVolumeClaim `min` and `max` of the requested
  storage. The texts are upstream's (`maximum cpu usage per Container is 1, but limit is 2`);
  `message` joins several as Go's aggregate error does (`[a, b]`, duplicates once).
  Resources are visited in name order (upstream iterates a Go map, so its order varies).

Comparisons are in milli-units rounded up, as `requestLimitEnforcedValues` does for values
that fit; the ratio is compared in thousandths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from tinykube.api.quota import Qty, Usage, add, parse_list

Obj = dict[str, Any]

ANNOTATION = "kubernetes.io/limit-ranger"
CONTAINER, POD, CLAIM = "Container", "Pod", "PersistentVolumeClaim"


def _items(limit_range: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    limits = (limit_range.get("spec") or {}).get("limits") or []
    return [item for item in limits if isinstance(item, Mapping) and item.get("type") == kind]


def container_defaults(limit_range: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(requests, limits) a container gets by default: every Container item's
    `defaultRequest` and `default`, later items winning."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in _items(limit_range, CONTAINER):
        requests.update(item.get("defaultRequest") or {})
        limits.update(item.get("default") or {})
    return requests, limits


def _merge(container: Obj, requests: Mapping[str, Any], limits: Mapping[str, Any],
           label: str) -> list[str]:
    resources = container.get("resources")
    if not isinstance(resources, dict):
        resources = container["resources"] = {}
    notes = []
    for field, wanted, word in (("requests", requests, "request"), ("limits", limits, "limit")):
        current = resources.get(field)
        if not isinstance(current, dict):
            current = {}
        added = sorted(name for name in wanted if name not in current)
        if added:
            resources[field] = {**current, **{name: wanted[name] for name in added}}
            notes.append(f"{', '.join(added)} {word} for {label} {container.get('name', '')}")
    return notes


def _requests_from_limits(container: Obj) -> None:
    """What API defaulting does before admission upstream: a limited resource that is not
    requested is requested at its limit (so a LimitRange default does not take its place)."""
    resources = container.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict) \
            and resources["limits"]:
        requests = resources.get("requests")
        requests = dict(requests) if isinstance(requests, dict) else {}
        for name, limit in resources["limits"].items():
            requests.setdefault(name, limit)
        resources["requests"] = requests


def apply_defaults(pod: Obj, limit_range: Mapping[str, Any]) -> None:
    """`PodMutateLimitFunc`, in place."""
    requests, limits = container_defaults(limit_range)
    if not requests and not limits:
        return
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for field, label in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                _requests_from_limits(container)
                notes += _merge(container, requests, limits, label)
    if notes:
        meta = pod.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               ANNOTATION: "LimitRanger plugin set: " + "; ".join(notes)}


# --- bounds ----------------------------------------------------------------------------------

def _milli(qty: Qty | None) -> int:
    return 0 if qty is None else math.ceil(qty.value * 1000)


def _minimum(kind: str, name: str, bound: Qty, requests: Usage, limits: Usage) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None:
        return f"minimum {name} usage per {kind} is {bound}.  No request is specified"
    if _milli(req) < _milli(bound):
        return f"minimum {name} usage per {kind} is {bound}, but request is {req}"
    if lim is not None and _milli(lim) < _milli(bound):
        return f"minimum {name} usage per {kind} is {bound}, but limit is {lim}"
    return None


def _maximum(kind: str, name: str, bound: Qty, requests: Usage, limits: Usage) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if lim is None:
        return f"maximum {name} usage per {kind} is {bound}.  No limit is specified"
    if _milli(lim) > _milli(bound):
        return f"maximum {name} usage per {kind} is {bound}, but limit is {lim}"
    if req is not None and _milli(req) > _milli(bound):
        return f"maximum {name} usage per {kind} is {bound}, but request is {req}"
    return None


def _maximum_request(kind: str, name: str, bound: Qty, requests: Usage) -> str | None:
    req = requests.get(name)
    if req is None:
        return f"maximum {name} usage per {kind} is {bound}.  No request is specified"
    if _milli(req) > _milli(bound):
        return f"maximum {name} usage per {kind} is {bound}, but request is {req}"
    return None


def _ratio(kind: str, name: str, bound: Qty, requests: Usage, limits: Usage) -> str | None:
    req, lim = _milli(requests.get(name)), _milli(limits.get(name))
    head = f"{name} max limit to request ratio per {kind} is {bound}"
    if req == 0:
        return f"{head}, but no request is specified or request is 0"
    if lim == 0:
        return f"{head}, but no limit is specified or limit is 0"
    observed = Fraction(lim, req)
    if observed * 1000 > _milli(bound):
        return f"{head}, but provided ratio is {float(observed):f}"
    return None


def _bounds(item: Mapping[str, Any], kind: str, requests: Usage, limits: Usage) -> list[str]:
    found: list[str | None] = []
    for name, bound in sorted(parse_list(item.get("min")).items()):
        found.append(_minimum(kind, name, bound, requests, limits))
    for name, bound in sorted(parse_list(item.get("max")).items()):
        found.append(_maximum(kind, name, bound, requests, limits))
    for name, bound in sorted(parse_list(item.get("maxLimitRequestRatio")).items()):
        found.append(_ratio(kind, name, bound, requests, limits))
    return [text for text in found if text is not None]


def _resources(container: Mapping[str, Any], field: str) -> Usage:
    resources = container.get("resources")
    return parse_list(resources.get(field) if isinstance(resources, Mapping) else None)


def _pod_sum(containers: Iterable[Mapping[str, Any]], field: str) -> Usage:
    total: Usage = {}
    for container in containers:
        total = add(total, _resources(container, field))
    return total


def _pod_total(spec: Mapping[str, Any], field: str) -> Usage:
    """LimitRanger's `podRequests`/`podLimits`: the containers' sum, raised to any init
    container's own value where that is larger."""
    total = _pod_sum(spec.get("containers") or [], field)
    for container in spec.get("initContainers") or []:
        for name, qty in _resources(container, field).items():
            if name not in total or qty.value > total[name].value:
                total[name] = qty
    return total


def pod_violations(pod: Mapping[str, Any], limit_range: Mapping[str, Any]) -> list[str]:
    """`PodValidateLimitFunc`: what the pod breaks, item by item."""
    spec = pod.get("spec") or {}
    containers = [c for c in [*(spec.get("containers") or []),
                              *(spec.get("initContainers") or [])] if isinstance(c, Mapping)]
    found: list[str] = []
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == CONTAINER:
            for container in containers:
                found += _bounds(item, CONTAINER, _resources(container, "requests"),
                                 _resources(container, "limits"))
        elif item.get("type") == POD:
            found += _bounds(item, POD, _pod_total(spec, "requests"), _pod_total(spec, "limits"))
    return found


def claim_violations(pvc: Mapping[str, Any], limit_range: Mapping[str, Any]) -> list[str]:
    """`PersistentVolumeClaimValidateLimitFunc`: the requested storage against min and max."""
    resources = (pvc.get("spec") or {}).get("resources") or {}
    requests = parse_list(resources.get("requests") if isinstance(resources, Mapping) else None)
    found: list[str | None] = []
    for item in _items(limit_range, CLAIM):
        for name, bound in sorted(parse_list(item.get("min")).items()):
            found.append(_minimum(CLAIM, name, bound, requests, {}))
        for name, bound in sorted(parse_list(item.get("max")).items()):
            found.append(_maximum_request(CLAIM, name, bound, requests))
    return [text for text in found if text is not None]


def message(violations: list[str]) -> str:
    """Go's `utilerrors.NewAggregate(...).Error()`: one text alone, several in brackets."""
    unique = list(dict.fromkeys(violations))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
