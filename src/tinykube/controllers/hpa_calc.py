"""The HorizontalPodAutoscaler's arithmetic, pure: replica counts from metrics, then behavior.

As upstream's pkg/controller/podautoscaler (replica_calculator.go, horizontal.go), in the
same units: every figure is in milli-units (`MilliValue`: millicores, milli-bytes).

Replica calculation (`resource_replicas` for a Utilization target, `raw_resource_replicas`
for an AverageValue one):

1. `group_pods` sorts the target's pods: deleted, Failed and Pending pods are ignored; a pod
   without a metric is *missing*; for cpu a pod is *unready* while it is not Ready or its
   sample may predate readiness (within the 5-minute cpu initialization period: unready or
   one metric window not yet passed since it became Ready; after it: never ready since the
   30-second initial readiness delay). Ignored and unready pods' metrics are dropped.
2. The usage ratio (utilization / target, utilization truncated to a whole percent) gives
   `ceil(ratio * ready pods)`, unless it is within the tolerance (0.1) of 1.
3. With missing pods, or unready pods on a scale up, the ratio is computed again assuming
   the missing pods use 100% of their request (the target, if higher) on a scale down and 0
   on a scale up, the unready ones 0; if that flips the direction or lands in the tolerance,
   the count stays, and it never moves against the direction of the new ratio.

Behavior (`with_behavior`; `without_behavior` for an HPA without `spec.behavior`, which
upstream treats apart: a 5-minute downscale window and at most max(2x, 4) at a time):
stabilization keeps, over each direction's window, the lowest recent recommendation for a
scale up and the highest for a scale down; the scaling policies then cap the change by what
the last `periodSeconds` already changed (`Pods`: that many; `Percent`: rounded up for a
scale up, down for a scale down), `selectPolicy` Max/Min/Disabled choosing among them; the
result lies in [minReplicas, maxReplicas]. Each returns the AbleToScale and ScalingLimited
reasons and messages upstream sets.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.api import quantity
from tinykube.controllers.replicaset import parse_time

Obj = Mapping[str, Any]
TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
DOWNSCALE_WINDOW = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
MAX_INT32 = 2**31 - 1


class CalcError(Exception):
    """The replica count cannot be computed; the message is upstream's."""


@dataclasses.dataclass(frozen=True)
class PodMetric:
    value: int  # milli-units
    timestamp: datetime.datetime
    window: float  # seconds


def milli(value: Any) -> int:
    """`Quantity.MilliValue()`: rounded up to a whole milli-unit."""
    parsed = quantity.parse(value)
    return 0 if parsed is None else math.ceil(parsed[0] * 1000)


def milli_text(value: int) -> str:
    """`resource.NewMilliQuantity(value, DecimalSI).String()`."""
    from fractions import Fraction
    return quantity.canonical(Fraction(value, 1000), quantity.DECIMAL)


_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?)(h|ms|m|s|us|µs|ns)")


def go_seconds(text: Any) -> float:
    """A Go duration (`1m0s`, `15s`, `1.002s`) in seconds; 0 if it is not one."""
    if not isinstance(text, str):
        return 0.0
    return sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(text))


def pod_metrics(items: Sequence[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
    """PodMetrics objects -> pod name -> summed usage (of `container` only, if given); a pod
    with a container lacking the resource (or with no containers) is left out, as upstream's
    metrics client does."""
    found: dict[str, PodMetric] = {}
    for item in items:
        containers = [c for c in item.get("containers") or []
                      if not container or c.get("name") == container]
        usages = [(c.get("usage") or {}).get(resource) for c in containers]
        if not usages or any(u is None for u in usages):
            continue
        at = parse_time(item.get("timestamp")) or datetime.datetime.min.replace(
            tzinfo=datetime.UTC)
        found[item["metadata"]["name"]] = PodMetric(sum(milli(u) for u in usages), at,
                                                    go_seconds(item.get("window")))
    return found


def pod_requests(pods: Sequence[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Pod name -> summed requests of its containers (and restartable init containers)."""
    requests: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or []) + [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise CalcError(f"missing request for {resource} in container {c.get('name')} "
                                f"of Pod {pod['metadata']['name']}")
            total += milli(request)
        requests[pod["metadata"]["name"]] = total
    return requests


def _ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def _unready_cpu(pod: Obj, metric: PodMetric, now: datetime.datetime, init_period: float,
                 readiness_delay: float) -> bool:
    cond = _ready_condition(pod)
    start = parse_time((pod.get("status") or {}).get("startTime"))
    if cond is None or start is None:
        return True
    transition = parse_time(cond.get("lastTransitionTime")) or start
    if start + datetime.timedelta(seconds=init_period) > now:
        return cond.get("status") == "False" or \
            metric.timestamp < transition + datetime.timedelta(seconds=metric.window)
    return cond.get("status") == "False" and \
        start + datetime.timedelta(seconds=readiness_delay) > transition


@dataclasses.dataclass
class Groups:
    ready: int = 0
    unready: set[str] = dataclasses.field(default_factory=set)
    missing: set[str] = dataclasses.field(default_factory=set)
    ignored: set[str] = dataclasses.field(default_factory=set)


def group_pods(pods: Sequence[Obj], metrics: Mapping[str, PodMetric], resource: str,
               now: datetime.datetime, *, init_period: float = CPU_INITIALIZATION_PERIOD,
               readiness_delay: float = INITIAL_READINESS_DELAY) -> Groups:
    groups = Groups()
    for pod in pods:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase in ("Failed", "Pending"):
            groups.ignored.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            groups.missing.add(name)
            continue
        if resource == "cpu" and _unready_cpu(pod, metric, now, init_period, readiness_delay):
            groups.unready.add(name)
            continue
        groups.ready += 1
    return groups


def utilization_ratio(metrics: Mapping[str, PodMetric], requests: Mapping[str, int],
                      target: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, average raw value) over the pods with a request."""
    used = requested = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue
        used += metric.value
        requested += requests[name]
        entries += 1
    if requested == 0:
        raise CalcError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // entries


def _usage_ratio(metrics: Mapping[str, PodMetric], target: int) -> tuple[float, int]:
    usage = sum(m.value for m in metrics.values()) // len(metrics)
    return usage / target, usage


def _prepare(pods: Sequence[Obj], metrics: Mapping[str, PodMetric], resource: str,
             now: datetime.datetime) -> tuple[dict[str, PodMetric], Groups]:
    if not metrics:
        raise CalcError(f"unable to get metrics for resource {resource}: no metrics returned "
                        "from resource metrics API")
    if not pods:
        raise CalcError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now)
    kept = {n: m for n, m in metrics.items()
            if n not in groups.ignored and n not in groups.unready}
    if not kept:
        raise CalcError("did not receive metrics for targeted pods (pods might be unready)")
    return kept, groups


def _settle(current: int, ratio: float, new_ratio: float, count: int,
            tolerance: float) -> int:
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or \
            (ratio > 1.0 > new_ratio):
        return current
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def resource_replicas(current: int, target: int, resource: str, pods: Sequence[Obj],
                      metrics: Mapping[str, PodMetric], now: datetime.datetime, *,
                      tolerance: float = TOLERANCE,
                      container: str = "") -> tuple[int, int, int]:
    """(replicas, utilization %, average raw milli-value) for an averageUtilization target
    (of one container of each pod, if `container` is given)."""
    kept, groups = _prepare(pods, metrics, resource, now)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(kept, requests, target)
    with_unready = bool(groups.unready) and ratio > 1.0
    if not with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, utilization, raw
        return math.ceil(ratio * groups.ready), utilization, raw
    if groups.missing and ratio != 1.0:
        fallback = max(100, target)
        for name in groups.missing:
            value = requests[name] * fallback // 100 if ratio < 1.0 else 0
            kept[name] = PodMetric(value, now, 0.0)
    if with_unready:
        for name in groups.unready:
            kept[name] = PodMetric(0, now, 0.0)
    new_ratio, _, _ = utilization_ratio(kept, requests, target)
    return _settle(current, ratio, new_ratio, len(kept), tolerance), utilization, raw


def raw_resource_replicas(current: int, target: int, resource: str, pods: Sequence[Obj],
                          metrics: Mapping[str, PodMetric], now: datetime.datetime, *,
                          tolerance: float = TOLERANCE) -> tuple[int, int]:
    """(replicas, average milli-value) for an averageValue target (`target` in milli)."""
    kept, groups = _prepare(pods, metrics, resource, now)
    ratio, usage = _usage_ratio(kept, target)
    with_unready = bool(groups.unready) and ratio > 1.0
    if not with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, usage
        return math.ceil(ratio * groups.ready), usage
    for name in groups.missing:
        kept[name] = PodMetric(target if ratio < 1.0 else 0, now, 0.0)
    if with_unready:
        for name in groups.unready:
            kept[name] = PodMetric(0, now, 0.0)
    new_ratio, _ = _usage_ratio(kept, target)
    return _settle(current, ratio, new_ratio, len(kept), tolerance), usage


# --- behavior ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Stamped:
    """A past recommendation, or a past scale event (`value` = the replicas it changed)."""
    value: int
    at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Outcome:
    replicas: int
    able_reason: str  # AbleToScale (True)
    able_message: str
    limited: bool  # ScalingLimited
    limited_reason: str
    limited_message: str


_WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")
_READY = ("ReadyForNewScale", "recommended size matches current size")
_DOWN_STABILIZED = ("ScaleDownStabilized", "recent recommendations were higher than current "
                    "one, applying the highest recent recommendation")
_UP_STABILIZED = ("ScaleUpStabilized", "recent recommendations were lower than current one, "
                  "applying the lowest recent recommendation")


def _ago(now: datetime.datetime, seconds: float) -> datetime.datetime:
    return now - datetime.timedelta(seconds=seconds)


def changed_in(events: Sequence[Stamped], period: float, now: datetime.datetime) -> int:
    """The replicas the events of the last `period` seconds added (or removed)."""
    cutoff = _ago(now, period)
    return sum(e.value for e in events if e.at > cutoff)


def scale_up_limit(current: int, events: Sequence[Stamped], rules: Obj,
                   now: datetime.datetime) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in rules.get("policies") or []:
        start = current - changed_in(events, policy.get("periodSeconds", 0), now)
        if policy.get("type") == "Pods":
            proposals.append(start + int(policy.get("value", 0)))
        else:
            proposals.append(math.ceil(start * (1 + int(policy.get("value", 0)) / 100)))
    if not proposals:
        return -MAX_INT32 if select != "Min" else MAX_INT32
    return min(proposals) if select == "Min" else max(proposals)


def scale_down_limit(current: int, events: Sequence[Stamped], rules: Obj,
                     now: datetime.datetime) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in rules.get("policies") or []:
        start = current + changed_in(events, policy.get("periodSeconds", 0), now)
        if policy.get("type") == "Pods":
            proposals.append(start - int(policy.get("value", 0)))
        else:
            proposals.append(int(start * (1 - int(policy.get("value", 0)) / 100)))
    if not proposals:
        return -MAX_INT32 if select == "Min" else MAX_INT32
    return max(proposals) if select == "Min" else min(proposals)


def stabilize(current: int, desired: int, recommendations: Sequence[Stamped], *,
              up_window: float, down_window: float,
              now: datetime.datetime) -> tuple[int, tuple[str, str]]:
    """The stabilized recommendation, and AbleToScale's reason and message for it."""
    up = down = desired
    up_cutoff, down_cutoff = _ago(now, up_window), _ago(now, down_window)
    for rec in recommendations:
        if rec.at > up_cutoff:
            up = min(rec.value, up)
        if rec.at > down_cutoff:
            down = max(rec.value, down)
    recommendation = min(max(current, up), down)
    why = _UP_STABILIZED if desired >= current else _DOWN_STABILIZED
    return recommendation, (why if recommendation != desired else _READY)


def remember(recommendations: Sequence[Stamped], value: int, now: datetime.datetime,
             keep: float) -> list[Stamped]:
    """The recommendations to keep: those of the last `keep` seconds and the new one."""
    cutoff = _ago(now, keep)
    return [r for r in recommendations if r.at >= cutoff] + [Stamped(value, now)]


def with_behavior(*, current: int, desired: int, min_replicas: int, max_replicas: int,
                  behavior: Obj, recommendations: Sequence[Stamped],
                  up_events: Sequence[Stamped], down_events: Sequence[Stamped],
                  now: datetime.datetime) -> Outcome:
    """`normalizeDesiredReplicasWithBehaviors`: stabilize, then the policies' rate."""
    up_rules, down_rules = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
    stable, able = stabilize(current, desired, recommendations,
                             up_window=up_rules.get("stabilizationWindowSeconds") or 0,
                             down_window=down_rules.get("stabilizationWindowSeconds") or 0,
                             now=now)
    replicas, limit = stable, _WITHIN
    if stable > current:
        up_limit = max(scale_up_limit(current, up_events, up_rules, now), current)
        if max_replicas > up_limit:
            ceiling, why = up_limit, ("ScaleUpLimit", "the desired replica count is "
                                      "increasing faster than the maximum scale rate")
        else:
            ceiling, why = max_replicas, ("TooManyReplicas", "the desired replica count is "
                                          "more than the maximum replica count")
        if stable > ceiling:
            replicas, limit = ceiling, why
    elif stable < current:
        down_limit = min(scale_down_limit(current, down_events, down_rules, now), current)
        if min_replicas < down_limit:
            floor, why = down_limit, ("ScaleDownLimit", "the desired replica count is "
                                      "decreasing faster than the maximum scale rate")
        else:
            floor, why = min_replicas, ("TooFewReplicas", "the desired replica count is less "
                                        "than the minimum replica count")
        if stable < floor:
            replicas, limit = floor, why
    return Outcome(replicas, *able, replicas != stable, *limit)


def without_behavior(*, current: int, desired: int, min_replicas: int, max_replicas: int,
                     recommendations: Sequence[Stamped], now: datetime.datetime,
                     window: float = DOWNSCALE_WINDOW) -> Outcome:
    """`normalizeDesiredReplicas`: the highest recommendation of the downscale window, then
    [minReplicas, min(maxReplicas, max(2 * current, 4))]."""
    cutoff = _ago(now, window)
    stable = max([desired] + [r.value for r in recommendations if r.at >= cutoff])
    able = _DOWN_STABILIZED if stable != desired else _READY
    up_limit = max(2 * current, 4)
    if max_replicas > up_limit:
        ceiling, limit = up_limit, ("ScaleUpLimit", "the desired replica count is increasing "
                                    "faster than the maximum scale rate")
    else:
        ceiling, limit = max_replicas, ("TooManyReplicas", "the desired replica count is more "
                                        "than the maximum replica count")
    if stable < min_replicas:
        replicas, limit = min_replicas, ("TooFewReplicas", "the desired replica count is less "
                                         "than the minimum replica count")
    elif stable > ceiling:
        replicas = ceiling
    else:
        replicas, limit = stable, _WITHIN
    return Outcome(replicas, *able, replicas != stable, *limit)


def longest_period(rules: Obj) -> float:
    return float(max([p.get("periodSeconds", 0) for p in rules.get("policies") or []] or [0]))
