"""The HorizontalPodAutoscaler controller: scale a workload's `scale` to its pods' metrics.

Gather / decide / apply, as upstream's pkg/controller/podautoscaler/horizontal.go:

1. Gather (every `sync_period`, 15 s as `--horizontal-pod-autoscaler-sync-period`, and at
   once when an HPA is created or its spec changes): the target's `scale` subresource
   (Deployment, ReplicaSet, StatefulSet, ReplicationController: any kind that has one), the
   pods its `status.selector` selects (from the pod informer), and their PodMetrics from
   `metrics.k8s.io/v1beta1` listed with the same selector.
2. Decide (pure, `plan`): a zero scale disables autoscaling (`ScalingDisabled`); a scale
   outside [minReplicas, maxReplicas] is brought inside; otherwise each metric proposes a
   count (`hpa_calc`), the largest wins, and the HPA's behavior (or upstream's rules without
   one) stabilizes and limits it. Metrics that fail set ScalingActive False with upstream's
   reason (`FailedGetResourceMetric`) and message and a Warning event; if all fail (or some
   fail and the rest would scale down) nothing is scaled. Only `Resource` and
   `ContainerResource` metrics are computed: this cluster serves no custom or external
   metrics API.
3. Apply: the new `spec.replicas` through the scale subresource (`SuccessfulRescale` /
   `FailedRescale` events, worded as upstream's), then the status (currentReplicas,
   desiredReplicas, currentMetrics, lastScaleTime, the conditions AbleToScale,
   ScalingActive, ScalingLimited) when it changed.

The recommendations and scale events behind stabilization and the rate policies live in
memory per HPA, as upstream's (a restarted controller starts them afresh from the current
scale). Time is injected (`now`), so tests drive windows and periods without sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources, selectors
from tinykube.api.clone import clone
from tinykube.api.meta import rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import namespace_index
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import hpa_calc
from tinykube.controllers.hpa_calc import CalcError, Stamped

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SYNC_PERIOD = 15.0
HPAS = resources.must("autoscaling", "v2", "horizontalpodautoscalers")
PODS = resources.must("", "v1", "pods")
POD_METRICS = resources.must("metrics.k8s.io", "v1beta1", "pods")
CONDITIONS = ("AbleToScale", "ScalingActive", "ScalingLimited")


@dataclasses.dataclass
class History:
    """What stabilization and the rate policies remember of one HPA."""
    recommendations: list[Stamped] = dataclasses.field(default_factory=list)
    up: list[Stamped] = dataclasses.field(default_factory=list)
    down: list[Stamped] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    """What one sync does: the replicas to set (if `rescale`), the status, the events."""
    status: Obj
    rescale: bool = False
    desired: int = 0
    reason: str = ""
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    recommendations: list[Stamped] = dataclasses.field(default_factory=list)


def set_condition(status: Obj, type_: str, value: str, reason: str, message: str,
                  now: str) -> None:
    """Upstream's setCondition: the transition time moves only when the status does."""
    conditions = status.setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now
            cond.update(status=value, reason=reason, message=message)
            return
    conditions.append({"type": type_, "status": value, "lastTransitionTime": now,
                       "reason": reason, "message": message})


@dataclasses.dataclass(frozen=True)
class Failure:
    """A metric that cannot be computed: the condition's reason, upstream's error as the
    event and condition word it (`inner`), and as computeReplicasForMetrics wraps it."""
    reason: str
    inner: str
    outer: str


def _resource_metric(spec: Obj, current: int, pods: Sequence[Obj], metrics: list[Obj] | str,
                     now: datetime.datetime) -> tuple[int, str, Obj]:
    """One Resource or ContainerResource metric: (proposal, metric name, its status);
    CalcError if it fails."""
    kind = str(spec.get("type"))
    field = "resource" if kind == "Resource" else "containerResource"
    source = spec.get(field) or {}
    name, target = str(source.get("name", "")), source.get("target") or {}
    container = str(source.get("container", "")) if kind == "ContainerResource" else ""
    which = {"container": container} if container else {}
    try:
        if isinstance(metrics, str):
            raise CalcError(f"unable to get metrics for resource {name}: {metrics}")
        found = hpa_calc.pod_metrics(metrics, name, container)
        if target.get("averageValue") is not None:
            replicas, usage = hpa_calc.raw_resource_replicas(
                current, hpa_calc.milli(target["averageValue"]), name, pods, found, now)
            return replicas, f"{name} resource", {"type": kind, field: {
                "name": name, **which, "current": {"averageValue": hpa_calc.milli_text(usage)}}}
        utilization_target = target.get("averageUtilization")
        if utilization_target is None:
            raise CalcError("invalid resource metric source: neither an average utilization "
                            "target nor an average value (usage) target was set")
        replicas, utilization, raw = hpa_calc.resource_replicas(
            current, int(utilization_target), name, pods, found, now, container=container)
    except CalcError as exc:
        what = "usage" if target.get("averageValue") is not None else "utilization"
        raise CalcError(f"failed to get {name} {what}: {exc}") from exc
    return replicas, f"{name} resource utilization (percentage of request)", {
        "type": kind, field: {"name": name, **which, "current": {
            "averageUtilization": utilization, "averageValue": hpa_calc.milli_text(raw)}}}


_CUSTOM_REASONS = {"Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                   "External": "FailedGetExternalMetric"}


def _metric(spec: Obj, current: int, pods: Sequence[Obj], metrics: list[Obj] | str,
            now: datetime.datetime) -> tuple[int, str, Obj] | Failure:
    """A proposal, or (condition reason, error) when the metric cannot be computed."""
    kind = spec.get("type")
    if kind == "Resource":
        try:
            return _resource_metric(spec, current, pods, metrics, now)
        except CalcError as exc:
            name = (spec.get("resource") or {}).get("name")
            return Failure("FailedGetResourceMetric", str(exc),
                           f"failed to get {name} resource metric value: {exc}")
    if kind == "ContainerResource":
        try:
            return _resource_metric(spec, current, pods, metrics, now)
        except CalcError as exc:
            container = (spec.get("containerResource") or {}).get("container")
            return Failure("FailedGetContainerResourceMetric", str(exc),
                           f"failed to get {container} container metric value: {exc}")
    if kind in _CUSTOM_REASONS:
        err = f"unable to get {kind} metric: this cluster serves no custom or external " \
              "metrics API"
        return Failure(_CUSTOM_REASONS[kind], err, err)
    err = f'unknown metric source type "{kind}"'
    return Failure("InvalidMetricSourceType", err, err)


def compute_metrics(hpa: Obj, scale: Obj, pods: Sequence[Obj], metrics: list[Obj] | str,
                    status: Obj, plan: Plan, now: datetime.datetime) -> tuple[int, str] | None:
    """`computeReplicasForMetrics`: (replicas, metric name), or None if they cannot scale."""
    stamp = rfc3339(now)
    specs = (hpa.get("spec") or {}).get("metrics") or []
    current = int((scale.get("spec") or {}).get("replicas") or 0)
    statuses: list[Obj] = []
    replicas, metric, invalid = 0, "", 0
    first: Failure | None = None
    for spec in specs:
        got = _metric(spec, current, pods, metrics, now)
        if isinstance(got, Failure):
            plan.events.append(("Warning", got.reason, got.inner))
            statuses.append({"type": ""})
            invalid += 1
            first = first or got
            continue
        proposal, name, metric_status = got
        statuses.append(metric_status)
        if replicas == 0 or proposal > replicas:
            replicas, metric = proposal, name
    status["currentMetrics"] = statuses or None
    if first is not None and (invalid >= len(specs) or replicas < current):
        set_condition(status, "ScalingActive", "False", first.reason,
                      f"the HPA was unable to compute the replica count: {first.inner}", stamp)
        plan.events.append(("Warning", "FailedComputeMetricsReplicas",
                            f"invalid metrics ({invalid} invalid out of {len(specs)}), first "
                            f"error is: {first.outer}"))
        return None
    set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                  f"the HPA was able to successfully calculate a replica count from {metric}",
                  stamp)
    return replicas, metric


def _normalize(hpa: Obj, current: int, desired: int, history: History, status: Obj,
               now: datetime.datetime) -> tuple[int, list[Stamped]]:
    spec = hpa.get("spec") or {}
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
    behavior = spec.get("behavior")
    if isinstance(behavior, Mapping):
        outcome = hpa_calc.with_behavior(
            current=current, desired=desired, min_replicas=low, max_replicas=high,
            behavior=behavior, recommendations=history.recommendations, up_events=history.up,
            down_events=history.down, now=now)
        keep = max((behavior.get(d) or {}).get("stabilizationWindowSeconds") or 0
                   for d in ("scaleUp", "scaleDown"))
    else:
        outcome = hpa_calc.without_behavior(current=current, desired=desired, min_replicas=low,
                                            max_replicas=high,
                                            recommendations=history.recommendations, now=now)
        keep = hpa_calc.DOWNSCALE_WINDOW
    stamp = rfc3339(now)
    set_condition(status, "AbleToScale", "True", outcome.able_reason, outcome.able_message,
                  stamp)
    set_condition(status, "ScalingLimited", "True" if outcome.limited else "False",
                  outcome.limited_reason, outcome.limited_message, stamp)
    return outcome.replicas, hpa_calc.remember(history.recommendations, desired, now, keep)


def plan(hpa: Obj, scale: Obj | str, pods: Sequence[Obj], metrics: list[Obj] | str,
         history: History, now: datetime.datetime) -> Plan:
    """`reconcileAutoscaler` up to the scale update: what to set, the status, the events."""
    status = clone(hpa.get("status") or {})
    result = Plan(status, recommendations=list(history.recommendations))
    stamp = rfc3339(now)
    if isinstance(scale, str):
        result.events.append(("Warning", "FailedGetScale", scale))
        set_condition(status, "AbleToScale", "False", "FailedGetScale",
                      "the HPA controller was unable to get the target's current scale: "
                      f"{scale}", stamp)
        return result
    set_condition(status, "AbleToScale", "True", "SucceededGetScale",
                  "the HPA controller was able to get the target's current scale", stamp)
    spec = hpa.get("spec") or {}
    current = int((scale.get("spec") or {}).get("replicas") or 0)
    if not result.recommendations:
        result.recommendations = [Stamped(current, now)]
    history = dataclasses.replace(history, recommendations=result.recommendations)
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
    status["currentReplicas"] = current
    desired, rescale = current, True
    if current == 0 and low != 0:
        desired, rescale = 0, False
        set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                      "scaling is disabled since the replica count of the target is zero", stamp)
    elif current > high:
        desired, result.reason = high, "Current number of replicas above Spec.MaxReplicas"
    elif current < low:
        desired, result.reason = low, "Current number of replicas below Spec.MinReplicas"
    else:
        selector = (scale.get("status") or {}).get("selector")
        if not selector:
            result.events.append(("Warning", "SelectorRequired", "selector is required"))
            set_condition(status, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", stamp)
            return result
        computed = compute_metrics(hpa, scale, pods, metrics, status, result, now)
        if computed is None:
            return result
        proposal, metric = computed
        if proposal > current:
            result.reason = f"{metric} above target"
        elif proposal < current:
            result.reason = "All metrics below target"
        desired, result.recommendations = _normalize(hpa, current, proposal, history,
                                                     status, now)
        rescale = desired != current
    result.rescale, result.desired = rescale, desired
    status["desiredReplicas"] = desired if rescale else current
    return result


def select_pods(pods: Sequence[Obj], namespace: str, selector: str) -> list[Obj]:
    parsed = selectors.parse_labels(selector)
    return [p for p in pods if p["metadata"].get("namespace") == namespace
            and selectors.match_labels(parsed, p["metadata"].get("labels"))]


def record_scale(history: History, behavior: Any, previous: int, new: int,
                 now: datetime.datetime) -> None:
    """`storeScaleEvent`: only an HPA with a behavior keeps them (its rate policies)."""
    if not isinstance(behavior, Mapping):
        return
    direction = "scaleUp" if new > previous else "scaleDown"
    keep = hpa_calc.longest_period(behavior.get(direction) or {})
    cutoff = now - datetime.timedelta(seconds=keep)
    kept = history.up if new > previous else history.down
    kept[:] = [e for e in kept if e.at > cutoff] + [Stamped(abs(new - previous), now)]


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(self, client: RESTClient, *, sync_period: float = SYNC_PERIOD,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.hpas = shared_informer(client, HPAS)
        self.pods = shared_informer(client, PODS)
        super().__init__(client, [self.hpas, self.pods])
        self.pods.cache.add_index("namespace", namespace_index)
        self.sync_period = sync_period
        self.now = now or clocks.installed().utcnow
        self.recorder = events.Recorder(client, self.name)
        self.history: dict[str, History] = {}
        self._next: dict[str, float] = {}  # loop time of each HPA's next periodic sync
        self.hpas.add_handlers(on_add=self.enqueue, on_update=self._on_update,
                               on_delete=self.enqueue)

    def _on_update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        if old.get("spec") != new.get("spec"):  # not our own status writes
            self.enqueue(new)

    def _schedule(self, key: str) -> None:
        loop_now = asyncio.get_running_loop().time()
        if self._next.get(key, 0.0) <= loop_now:
            self._next[key] = loop_now + self.sync_period
            self.queue.add_after(key, self.sync_period)

    async def sync(self, key: str) -> None:
        hpa = self.hpas.cache.get(key)
        if hpa is None:
            self.history.pop(key, None)
            self._next.pop(key, None)
            return
        self._schedule(key)
        scale, res = await self._scale(hpa)
        pods: list[Obj] = []
        metrics: list[Obj] | str = []
        if isinstance(scale, dict):
            selector = (scale.get("status") or {}).get("selector") or ""
            pods = select_pods(self.pods.cache.by_index("namespace", hpa["metadata"][
                "namespace"]), hpa["metadata"]["namespace"], selector)
            metrics = await self._metrics(hpa["metadata"]["namespace"], selector)
        history = self.history.setdefault(key, History())
        now = self.now()
        result = plan(hpa, scale, pods, metrics, history, now)
        history.recommendations = result.recommendations
        if result.rescale and isinstance(scale, dict) and res is not None:
            await self._rescale(hpa, scale, res, result, history, now)
        for type_, reason, message in result.events:
            await self.recorder.event(hpa, type_, reason, message)
        await self._write_status(hpa, result.status)

    async def _scale(self, hpa: Obj) -> tuple[Obj | str, resources.Resource | None]:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        api_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        res = resources.by_api_version(api_version, kind)
        if res is None or res.subresource("scale") is None:
            group = api_version.rpartition("/")[0]
            return (f"unable to determine resource for scale target reference: no matches "
                    f'for kind "{kind}" in group "{group}"'), None
        try:
            scale = await self.client.get(res, str(ref.get("name", "")),
                                          hpa["metadata"]["namespace"], subresource="scale")
        except errors.APIError as exc:
            return exc.message, None
        return scale, res

    async def _metrics(self, namespace: str, selector: str) -> list[Obj] | str:
        try:
            listed = await self.client.list(POD_METRICS, namespace, label_selector=selector)
        except errors.APIError as exc:
            return f"unable to fetch metrics from resource metrics API: {exc.message}"
        items = list(listed.get("items") or [])
        return items or "no metrics returned from resource metrics API"

    async def _rescale(self, hpa: Obj, scale: Obj, res: resources.Resource, result: Plan,
                       history: History, now: datetime.datetime) -> None:
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        status, stamp = result.status, rfc3339(now)
        desired = result.desired
        try:
            await self.client.update(res, {**scale, "spec": {"replicas": desired}},
                                     hpa["metadata"]["namespace"], subresource="scale")
        except errors.APIError as exc:
            result.events.append(("Warning", "FailedRescale", f"New size: {desired}; reason: "
                                  f"{result.reason}; error: {exc.message}"))
            set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                          f"the HPA controller was unable to update the target scale: "
                          f"{exc.message}", stamp)
            status["desiredReplicas"] = (hpa.get("status") or {}).get("desiredReplicas", 0)
            return
        set_condition(status, "AbleToScale", "True", "SucceededRescale",
                      f"the HPA controller was able to update the target scale to {desired}",
                      stamp)
        result.events.append(("Normal", "SuccessfulRescale",
                              f"New size: {desired}; reason: {result.reason}"))
        record_scale(history, (hpa.get("spec") or {}).get("behavior"), current, desired, now)
        status["lastScaleTime"] = stamp

    async def _write_status(self, hpa: Obj, status: Obj) -> None:
        status = {k: v for k, v in status.items() if v is not None}
        if status == (hpa.get("status") or {}):
            return
        body = {**hpa, "status": status}
        try:
            await self.client.update(HPAS, body, hpa["metadata"]["namespace"],
                                     subresource="status")
        except errors.NotFound:
            return
