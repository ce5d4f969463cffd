"""The HPA's replica calculation and behavior, as tables after upstream's test cases.

Replica cases are upstream's replica_calculator_test.go (TestReplicaCalc*) with one
container per pod (upstream has two, so its expected raw values are twice ours). Pod start
times: `cool` pods started 10 minutes ago, `hot` ones a minute ago and became Ready within
the last metric window (upstream's hot/cool CPU creation times). The behavior cases are
horizontal_test.go's TestScalingWithRules and TestNormalizeDesiredReplicas, then a few of our
own for stabilization windows, selectPolicy and scale-down events.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.controllers import hpa_calc
from tinykube.controllers.hpa_calc import CalcError, PodMetric, Stamped

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def ts(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def pods(count: int, *, requests: list[str] | None = None, ready: str = "",
         phases: str = "", deleted: str = "", hot: str = "") -> list[Obj]:
    """`ready`, `phases`, `deleted`, `hot`: one letter per pod (T/F; R/P/F; y/n; h/c)."""
    out = []
    for i in range(count):
        is_hot = hot[i:i + 1] == "h"
        start, transition = (60, 30) if is_hot else (600, 600)
        resources = {"requests": {"cpu": requests[i]}} if requests and i < len(requests) \
            else {}
        meta: Obj = {"name": f"p{i}", "namespace": "ns"}
        if deleted[i:i + 1] == "y":
            meta["deletionTimestamp"] = ts(0)
        phase = {"R": "Running", "P": "Pending", "F": "Failed"}[phases[i:i + 1] or "R"]
        out.append({"metadata": meta, "spec": {"containers": [{"name": "c",
                                                               "resources": resources}]},
                    "status": {"phase": phase, "startTime": ts(start), "conditions": [
                        {"type": "Ready", "status": "False" if ready[i:i + 1] == "F" else "True",
                         "lastTransitionTime": ts(transition)}]}})
    return out


def levels(values: list[int], names: list[str] | None = None) -> dict[str, PodMetric]:
    return {(names[i] if names else f"p{i}"): PodMetric(v, NOW, 60.0)
            for i, v in enumerate(values)}


ONE = ["1.0"] * 10

RESOURCE_CASES = [
    # id, current, pods, metrics, target %, (replicas, utilization %, raw) or error
    ("scale-up", 3, pods(3, requests=ONE), levels([300, 500, 700]), 30, (5, 50, 500)),
    ("scale-up-unready-less-scale", 3, pods(3, requests=ONE, ready="FTT"),
     levels([300, 500, 700]), 30, (4, 60, 600)),
    ("scale-up-hot-cpu-less-scale", 3, pods(3, requests=ONE, hot="hcc"),
     levels([300, 500, 700]), 30, (4, 60, 600)),
    ("scale-up-unready-no-scale", 3, pods(3, requests=ONE, ready="TFF"),
     levels([400, 500, 700]), 30, (3, 40, 400)),
    ("scale-hot-cpu-no-scale", 3, pods(3, requests=ONE, ready="TFF", hot="chh"),
     levels([400, 500, 700]), 30, (3, 40, 400)),
    ("scale-up-ignores-failed-pods", 2, pods(4, requests=ONE, ready="TTFF", phases="RRFF"),
     levels([500, 700]), 30, (4, 60, 600)),
    ("scale-up-ignores-deletion-pods", 2, pods(4, requests=ONE, ready="TTFF", deleted="nnyy"),
     levels([500, 700]), 30, (4, 60, 600)),
    ("scale-down", 5, pods(5, requests=ONE), levels([100, 300, 500, 250, 250]), 50,
     (3, 28, 280)),
    ("scale-down-include-unready-pods", 5, pods(5, requests=ONE, ready="TTTFF"),
     levels([100, 300, 500, 250, 250]), 50, (2, 30, 300)),
    ("scale-down-exclude-unscheduled-pods", 5, pods(5, requests=ONE, ready="TFFFF",
                                                     phases="RPPPP"),
     levels([100]), 50, (1, 10, 100)),
    ("scale-down-ignore-hot-cpu-pods", 5, pods(5, requests=ONE, hot="ccchh"),
     levels([100, 300, 500, 250, 250]), 50, (2, 30, 300)),
    ("scale-down-ignores-failed-pods", 5, pods(7, requests=ONE, ready="TTTTTFF",
                                                phases="RRRRRFF"),
     levels([100, 300, 500, 250, 250]), 50, (3, 28, 280)),
    ("tolerance", 3, pods(3, requests=["0.9", "1.0", "1.1"]), levels([1010, 1030, 1020]), 100,
     (3, 102, 1020)),
    ("superfluous-metrics", 4, pods(4, requests=ONE),
     levels([4000, 9500, 3000, 7000, 3200, 2000]), 100, (24, 587, 5875)),
    ("missing-metrics", 4, pods(4, requests=ONE), levels([400, 95]), 100, (3, 24, 247)),
    ("empty-metrics", 4, pods(3, requests=ONE), levels([]), 100,
     "unable to get metrics for resource cpu: no metrics returned from resource metrics API"),
    ("empty-cpu-request", 1, pods(1), levels([200]), 100, "missing request for cpu"),
    ("disjoint-resources-metrics", 1, pods(1, requests=ONE), levels([100], ["older"]), 100,
     "no metrics returned matched known pods"),
    ("missing-metrics-no-change-eq", 2, pods(2, requests=ONE), levels([1000]), 100,
     (2, 100, 1000)),
    ("missing-metrics-no-change-gt", 2, pods(2, requests=ONE), levels([1900]), 100,
     (2, 190, 1900)),
    ("missing-metrics-no-change-lt", 2, pods(2, requests=ONE), levels([600]), 100,
     (2, 60, 600)),
    ("missing-metrics-unready-change", 3, pods(3, requests=ONE, ready="FTT"),
     levels([100, 450]), 50, (3, 45, 450)),
    ("missing-metrics-hot-cpu-no-change", 3, pods(3, requests=ONE, hot="hcc"),
     levels([100, 450]), 50, (3, 45, 450)),
    ("missing-metrics-unready-scale-up", 3, pods(3, requests=ONE, ready="FTT"),
     levels([100, 2000]), 50, (4, 200, 2000)),
    ("missing-metrics-hot-cpu-scale-up", 3, pods(3, requests=ONE, ready="FTT", hot="hcc"),
     levels([100, 2000]), 50, (4, 200, 2000)),
    ("missing-metrics-unready-scale-down", 4, pods(4, requests=ONE, ready="FTTT"),
     levels([100, 100, 100]), 50, (3, 10, 100)),
    ("during-rolling-update-with-max-surge", 2, pods(3, requests=ONE), levels([100, 100]), 50,
     (2, 10, 100)),
    ("no-pods", 1, [], levels([100]), 50,
     "no pods returned by selector while calculating replica count"),
    ("all-unready", 2, pods(2, requests=ONE, ready="FF"), levels([100, 100]), 50,
     "did not receive metrics for targeted pods (pods might be unready)"),
]


@pytest.mark.parametrize(("current", "pod_list", "metrics", "target", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in RESOURCE_CASES])
def test_resource_replicas(current: int, pod_list: list[Obj], metrics: dict[str, PodMetric],
                           target: int, expected: tuple[int, int, int] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(CalcError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            hpa_calc.resource_replicas(current, target, "cpu", pod_list, metrics, NOW)
        return
    assert hpa_calc.resource_replicas(current, target, "cpu", pod_list, metrics,
                                      NOW) == expected


RAW_CASES = [
    # upstream's TestReplicaCalc*CM pod-metric cases, with an averageValue target
    ("scale-up", 3, pods(3), levels([20000, 10000, 30000]), 15000, (4, 20000)),
    ("scale-down", 5, pods(5), levels([12000] * 5), 20000, (3, 12000)),
    ("tolerance", 3, pods(3), levels([20000, 21000, 21000]), 20000, (3, 20666)),
    ("unready-hot-cpu-no-less-scale", 3, pods(3, ready="TTF", hot="cch"),
     levels([50000, 10000, 30000]), 15000, (6, 30000)),
    ("unready-hot-cpu-would-scale-down", 3, pods(3, ready="FTF", hot="hch"),
     levels([50000, 15000, 30000]), 15000, (7, 31666)),
]


@pytest.mark.parametrize(("current", "pod_list", "metrics", "target", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in RAW_CASES])
def test_raw_resource_replicas(current: int, pod_list: list[Obj],
                               metrics: dict[str, PodMetric], target: int,
                               expected: tuple[int, int]) -> None:
    # upstream's plain-metric calculation applies no cpu readiness rules: use memory
    assert hpa_calc.raw_resource_replicas(current, target, "memory", pod_list, metrics,
                                          NOW) == expected


GROUP_CASES = [
    # id, pod status, metric, resource, (ready, unready, missing, ignored)
    ("ready-pod-memory", {"phase": "Succeeded"}, PodMetric(1, NOW, 60), "memory", (1, 0, 0, 0)),
    ("no-ready-condition-cpu", {"phase": "Succeeded", "startTime": ts(0)}, PodMetric(1, NOW, 60),
     "cpu", (0, 1, 0, 0)),
    ("fresh-metrics-in-initialization", {"startTime": ts(60), "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": ts(30)}]},
     PodMetric(1, NOW, 30), "cpu", (1, 0, 0, 0)),
    ("stale-metrics-in-initialization", {"startTime": ts(60), "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": ts(30)}]},
     PodMetric(1, NOW, 60), "cpu", (0, 1, 0, 0)),
    ("unready-in-initialization-window", {"startTime": ts(600), "conditions": [
        {"type": "Ready", "status": "False", "lastTransitionTime": ts(594)}]},
     PodMetric(1, NOW, 60), "cpu", (0, 1, 0, 0)),
    ("ready-after-initialization", {"startTime": ts(180), "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": ts(180)}]},
     PodMetric(1, ago(120), 60), "cpu", (1, 0, 0, 0)),
    ("unready-but-was-ready-after-initialization", {"startTime": ts(600), "conditions": [
        {"type": "Ready", "status": "False", "lastTransitionTime": ts(540)}]},
     PodMetric(1, NOW, 60), "cpu", (1, 0, 0, 0)),
    ("missing", {"startTime": ts(180)}, None, "cpu", (0, 0, 1, 0)),
    ("pending", {"phase": "Pending"}, PodMetric(1, NOW, 60), "cpu", (0, 0, 0, 1)),
]


@pytest.mark.parametrize(("status", "metric", "resource", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in GROUP_CASES])
def test_group_pods(status: Obj, metric: PodMetric | None, resource: str,
                    expected: tuple[int, int, int, int]) -> None:
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Running", **status}}
    groups = hpa_calc.group_pods([pod], {"p": metric} if metric else {}, resource, NOW)
    assert (groups.ready, len(groups.unready), len(groups.missing),
            len(groups.ignored)) == expected


def rules(*policies: tuple[str, int, int], select: str = "Max", window: int = 0) -> Obj:
    return {"stabilizationWindowSeconds": window, "selectPolicy": select,
            "policies": [{"type": t, "value": v, "periodSeconds": p} for t, v, p in policies]}


DEFAULT_UP = rules(("Pods", 4, 15), ("Percent", 100, 15))
DEFAULT_DOWN = rules(("Percent", 100, 15), window=300)

def generated(pods: int, pods_period: int, percent: int, percent_period: int,
              window: int) -> Obj:
    """upstream's generateScalingRules (selectPolicy Max)."""
    policies = ([("Pods", pods, pods_period)] if pods else []) + \
        ([("Percent", percent, percent_period)] if percent else [])
    return rules(*policies, window=window)


def spread(changes: list[int], period: int) -> list[Stamped]:
    """upstream's generateEventsUniformDistribution: each event mid-way in its segment."""
    segment = period / len(changes)
    return [Stamped(c, ago(period - segment * (i + 1) + segment / 2))
            for i, c in enumerate(changes)]


EVENTS = spread([1, 5, 9], 120)  # 100 s, 60 s and 20 s ago

# upstream's TestScalingWithRules: id, min, max, current, desired, up, down, up events,
# (replicas, ScalingLimited's reason); rules not given are the defaults
SCALING_WITH_RULES = [
    ("within-range", 3, 8, 5, 7, None, None, [], (7, "DesiredWithinRange")),
    ("below-min-replicas", 2, 8, 3, 1, None, None, [], (2, "TooFewReplicas")),
    ("within-range-min-replicas-0", 0, 10, 1, 0, None, None, [], (0, "DesiredWithinRange")),
    ("max-replicas-below-scale-up-limit", 1, 10, 20, 1000, None, None, [],
     (10, "TooManyReplicas")),
    ("more-than-max-replicas", 100, 150, 100, 1000, None, None, [], (150, "TooManyReplicas")),
    ("scale-up-limit-with-user-policies", 1, 2000, 3, 1000, generated(0, 0, 1, 60, 0), None,
     [], (4, "ScaleUpLimit")),
    ("scale-down-limit-with-user-policies", 3, 2000, 1000, 3, None, generated(20, 60, 0, 0, 0),
     [], (980, "ScaleDownLimit")),
    ("scale-up-default-behavior", 1, 1000, 10, 50, None, None, [], (20, "ScaleUpLimit")),
    ("scale-up-pods-policy-larger-than-percent", 1, 1000, 10, 500,
     generated(100, 60, 100, 60, 0), None, [], (110, "ScaleUpLimit")),
    ("scale-up-percent-policy-larger-than-pods", 1, 1000, 10, 500,
     generated(2, 60, 100, 60, 0), None, [], (20, "ScaleUpLimit")),
    ("scale-up-max-replicas-with-large-pods-policy", 1, 1000, 10, 50,
     generated(100, 60, 0, 0, 0), None, [], (50, "DesiredWithinRange")),
    ("scale-up-max-replicas-with-large-percent-policy", 1, 1000, 10, 50,
     generated(10000, 60, 0, 0, 0), None, [], (50, "DesiredWithinRange")),
    ("scale-up-pods-policy-limitation", 1, 1000, 10, 50, generated(30, 60, 0, 0, 0), None, [],
     (40, "ScaleUpLimit")),
    ("scale-up-percent-policy-limitation", 1, 1000, 10, 50, generated(0, 0, 200, 60, 0), None,
     [], (30, "ScaleUpLimit")),
    ("scale-down-percent-policy-larger-than-pods", 1, 1000, 100, 2, None,
     generated(20, 60, 1, 60, 300), [], (80, "ScaleDownLimit")),
    ("scale-down-pods-policy-larger-than-percent", 1, 1000, 100, 2, None,
     generated(2, 60, 1, 60, 300), [], (98, "ScaleDownLimit")),
    ("scale-down-min-replicas-with-large-pods-policy", 1, 1000, 10, 0, None,
     generated(100, 60, 0, 0, 300), [], (1, "TooFewReplicas")),
    ("scale-down-min-replicas-with-large-percent-policy", 5, 1000, 10, 2, None,
     generated(0, 0, 100, 60, 300), [], (5, "TooFewReplicas")),
    ("scale-down-pods-policy-limitation", 1, 1000, 10, 2, None, generated(5, 60, 0, 0, 300), [],
     (5, "ScaleDownLimit")),
    ("scale-down-percent-policy-limitation", 1, 1000, 10, 5, None,
     generated(0, 0, 50, 60, 300), [], (5, "DesiredWithinRange")),
    ("scale-up-max-replicas-with-large-pods-policy-and-events", 1, 200, 100, 500,
     generated(300, 60, 0, 0, 0), None, EVENTS, (200, "TooManyReplicas")),
    ("scale-up-max-replicas-with-large-percent-policy-and-events", 1, 200, 100, 500,
     generated(0, 0, 10000, 60, 0), None, EVENTS, (200, "TooManyReplicas")),
    ("scale-up-current-replicas-after-many-recent-events", 1, 1000, 100, 500,
     generated(5, 120, 0, 0, 0), None, EVENTS, (100, "ScaleUpLimit")),
    ("scale-up-pods-policy-and-previous-events", 1, 1000, 100, 500,
     generated(150, 120, 0, 0, 0), None, EVENTS, (235, "ScaleUpLimit")),
]


@pytest.mark.parametrize(("low", "high", "current", "desired", "up", "down", "up_events",
                          "expected"), [pytest.param(*c[1:], id=c[0]) for c in SCALING_WITH_RULES])
def test_scaling_with_rules(low: int, high: int, current: int, desired: int, up: Obj | None,
                            down: Obj | None, up_events: list[Stamped],
                            expected: tuple[int, str]) -> None:
    out = hpa_calc.with_behavior(current=current, desired=desired, min_replicas=low,
                                 max_replicas=high, behavior={"scaleUp": up or DEFAULT_UP,
                                                              "scaleDown": down or DEFAULT_DOWN},
                                 recommendations=[], up_events=up_events, down_events=[],
                                 now=NOW)
    assert (out.replicas, out.limited_reason) == expected
    assert out.limited == (out.replicas != desired)


# upstream's TestNormalizeDesiredReplicas (no behavior: the 5-minute downscale window)
NORMALIZE_CASES = [
    ("empty-log", [], 5, 5),
    ("stabilize", [Stamped(4, ago(120)), Stamped(5, ago(60))], 3, 5),
    ("no-stabilize", [Stamped(1, ago(120)), Stamped(2, ago(60))], 3, 3),
    ("no-stabilize-old-recommendations", [Stamped(10, ago(600)), Stamped(9, ago(540))], 3, 3),
    ("stabilize-old-recommendations", [Stamped(10, ago(600)), Stamped(4, ago(60)),
                                       Stamped(5, ago(120)), Stamped(9, ago(540))], 3, 5),
]


@pytest.mark.parametrize(("recs", "desired", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in NORMALIZE_CASES])
def test_normalize_desired_replicas(recs: list[Stamped], desired: int, expected: int) -> None:
    out = hpa_calc.without_behavior(current=5, desired=desired, min_replicas=1,
                                    max_replicas=100, recommendations=recs, now=NOW)
    assert out.replicas == expected


# stabilization windows, and scale-down events, with a behavior
BEHAVIOR_CASES = [
    # id, min, max, current, desired, up, down, recommendations, up events, down events,
    # (replicas, AbleToScale reason, ScalingLimited, its reason)
    ("scale-up-min-change-select", 1, 1000, 10, 500,
     rules(("Pods", 2, 60), ("Percent", 100, 60), select="Min"), DEFAULT_DOWN, [], [], [],
     (12, "ReadyForNewScale", True, "ScaleUpLimit")),
    ("scale-up-disabled", 1, 1000, 10, 500, rules(("Pods", 2, 60), select="Disabled"),
     DEFAULT_DOWN, [], [], [], (10, "ReadyForNewScale", True, "ScaleUpLimit")),
    ("scale-up-forgets-events-before-the-period", 1, 1000, 10, 50, DEFAULT_UP, DEFAULT_DOWN,
     [], [Stamped(6, ago(20))], [], (20, "ReadyForNewScale", True, "ScaleUpLimit")),
    ("scale-up-stabilized", 1, 1000, 3, 5, rules(("Pods", 4, 15), window=300), DEFAULT_DOWN,
     [Stamped(3, ago(60))], [], [], (3, "ScaleUpStabilized", False, "DesiredWithinRange")),
    ("scale-down-stabilized", 1, 1000, 5, 3, DEFAULT_UP, DEFAULT_DOWN, [Stamped(5, ago(60))],
     [], [], (5, "ScaleDownStabilized", False, "DesiredWithinRange")),
    ("scale-down-after-the-window", 1, 1000, 5, 3, DEFAULT_UP, DEFAULT_DOWN,
     [Stamped(5, ago(301))], [], [], (3, "ReadyForNewScale", False, "DesiredWithinRange")),
    ("scale-down-counts-earlier-events-of-the-period", 1, 1000, 8, 1, DEFAULT_UP,
     rules(("Pods", 4, 60)), [], [], [Stamped(2, ago(30))],
     (6, "ReadyForNewScale", True, "ScaleDownLimit")),
]


@pytest.mark.parametrize(("low", "high", "current", "desired", "up", "down", "recs",
                          "up_events", "down_events", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in BEHAVIOR_CASES])
def test_with_behavior(low: int, high: int, current: int, desired: int, up: Obj, down: Obj,
                       recs: list[Stamped], up_events: list[Stamped],
                       down_events: list[Stamped],
                       expected: tuple[int, str, bool, str]) -> None:
    out = hpa_calc.with_behavior(current=current, desired=desired, min_replicas=low,
                                 max_replicas=high, behavior={"scaleUp": up, "scaleDown": down},
                                 recommendations=recs, up_events=up_events,
                                 down_events=down_events, now=NOW)
    assert (out.replicas, out.able_reason, out.limited, out.limited_reason) == expected


WITHOUT_BEHAVIOR_CASES = [
    ("scale-up-limited-to-double", 1, 100, 3, 10, [], (6, "ReadyForNewScale", True,
                                                       "ScaleUpLimit")),
    ("scale-up-at-least-four", 1, 100, 1, 10, [], (4, "ReadyForNewScale", True,
                                                   "ScaleUpLimit")),
    ("scale-up-max-replicas", 1, 5, 3, 10, [], (5, "ReadyForNewScale", True, "TooManyReplicas")),
    ("scale-down-min-replicas", 2, 5, 3, 1, [], (2, "ReadyForNewScale", True, "TooFewReplicas")),
    ("scale-down-stabilized", 1, 10, 5, 2, [Stamped(5, ago(100))],
     (5, "ScaleDownStabilized", False, "DesiredWithinRange")),
    ("scale-down-after-window", 1, 10, 5, 2, [Stamped(5, ago(301))],
     (2, "ReadyForNewScale", False, "DesiredWithinRange")),
]


@pytest.mark.parametrize(("low", "high", "current", "desired", "recs", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in WITHOUT_BEHAVIOR_CASES])
def test_without_behavior(low: int, high: int, current: int, desired: int,
                          recs: list[Stamped], expected: tuple[int, str, bool, str]) -> None:
    out = hpa_calc.without_behavior(current=current, desired=desired, min_replicas=low,
                                    max_replicas=high, recommendations=recs, now=NOW)
    assert (out.replicas, out.able_reason, out.limited, out.limited_reason) == expected


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15.0), ("1m0s", 60.0),
                                               ("1.002s", 1.002), ("500ms", 0.5), ("", 0.0)])
def test_go_seconds(text: str, seconds: float) -> None:
    assert hpa_calc.go_seconds(text) == pytest.approx(seconds)


def test_pod_metrics_sum_containers_and_skip_incomplete() -> None:
    items = [{"metadata": {"name": "a"}, "timestamp": ts(0), "window": "15s",
              "containers": [{"usage": {"cpu": "100m"}}, {"usage": {"cpu": "50m"}}]},
             {"metadata": {"name": "b"}, "timestamp": ts(0), "window": "15s",
              "containers": [{"usage": {"cpu": "100m"}}, {"usage": {"memory": "1Mi"}}]},
             {"metadata": {"name": "c"}, "timestamp": ts(0), "window": "15s", "containers": []}]
    assert hpa_calc.pod_metrics(items, "cpu") == {"a": PodMetric(150, NOW, 15.0)}


# --- the controller's decision: plan() -----------------------------------------------------

def hpa(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
        **spec}, "status": {}}


SCALE = {"spec": {"replicas": 1}, "status": {"replicas": 1, "selector": "app=web"}}


def pod_metrics_items(*millicores: int) -> list[Obj]:
    return [{"metadata": {"name": f"p{i}"}, "timestamp": ts(0), "window": "15s",
             "containers": [{"name": "c", "usage": {"cpu": f"{m}m"}}]}
            for i, m in enumerate(millicores)]


def conditions(status: Obj) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_plan_scales_up_on_cpu() -> None:
    from tinykube.controllers.hpa import History, plan
    out = plan(hpa(), SCALE, pods(1, requests=["100m"]), pod_metrics_items(250),
               History(), NOW)
    assert (out.rescale, out.desired) == (True, 4)  # 250% of 50% -> 5, limited to 4 (2x or 4)
    assert out.reason == "cpu resource utilization (percentage of request) above target"
    assert out.status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 250, "averageValue": "250m"}}}]
    assert conditions(out.status)["ScalingActive"] == (
        "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica "
        "count from cpu resource utilization (percentage of request)")
    assert conditions(out.status)["ScalingLimited"][:2] == ("True", "ScaleUpLimit")


def test_plan_without_metrics_is_not_active() -> None:
    from tinykube.controllers.hpa import History, plan
    out = plan(hpa(), SCALE, pods(1, requests=["100m"]),
               "no metrics returned from resource metrics API", History(), NOW)
    assert not out.rescale
    err = "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics " \
          "returned from resource metrics API"
    assert conditions(out.status)["ScalingActive"] == (
        "False", "FailedGetResourceMetric", f"the HPA was unable to compute the replica "
        f"count: {err}")
    assert out.events == [("Warning", "FailedGetResourceMetric", err), (
        "Warning", "FailedComputeMetricsReplicas", "invalid metrics (1 invalid out of 1), "
        f"first error is: failed to get cpu resource metric value: {err}")]
    assert out.status["currentMetrics"] == [{"type": ""}]


@pytest.mark.parametrize(("scale", "reason", "desired"), [
    ({"spec": {"replicas": 9}, "status": {"selector": "app=web"}},
     "Current number of replicas above Spec.MaxReplicas", 5),
    ({"spec": {"replicas": 0}, "status": {"selector": "app=web"}}, "", 0),
])
def test_plan_outside_the_range(scale: Obj, reason: str, desired: int) -> None:
    from tinykube.controllers.hpa import History, plan
    out = plan(hpa(), scale, [], [], History(), NOW)
    assert (out.reason, out.status["desiredReplicas"]) == (reason, desired)
    if not desired:
        assert conditions(out.status)["ScalingActive"][1] == "ScalingDisabled"


def test_plan_failed_get_scale() -> None:
    from tinykube.controllers.hpa import History, plan
    out = plan(hpa(), 'deployments.apps "web" not found', [], [], History(), NOW)
    assert conditions(out.status)["AbleToScale"] == (
        "False", "FailedGetScale", "the HPA controller was unable to get the target's current "
        'scale: deployments.apps "web" not found')


def test_plan_container_resource() -> None:
    from tinykube.controllers.hpa import History, plan
    spec = hpa(metrics=[{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "target": {"type": "Utilization",
                                                      "averageUtilization": 50}}}])
    pod = pods(1)[0]
    pod["spec"]["containers"] = [{"name": "app", "resources": {"requests": {"cpu": "100m"}}},
                                 {"name": "sidecar"}]  # no request: not counted
    items = [{"metadata": {"name": "p0"}, "timestamp": ts(0), "window": "15s", "containers": [
        {"name": "app", "usage": {"cpu": "100m"}}, {"name": "sidecar", "usage": {"cpu": "1"}}]}]
    out = plan(spec, SCALE, [pod], items, History(), NOW)
    assert (out.rescale, out.desired) == (True, 2)
    assert out.status["currentMetrics"] == [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "current": {"averageUtilization": 100,
                                                       "averageValue": "100m"}}}]


@pytest.mark.parametrize(("api_version", "kind"), [
    ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("apps/v1", "StatefulSet"),
    ("v1", "ReplicationController")])
def test_every_scalable_kind_has_a_scale_subresource(api_version: str, kind: str) -> None:
    from tinykube.api import resources
    res = resources.by_api_version(api_version, kind)
    assert res is not None and res.subresource("scale") is not None
