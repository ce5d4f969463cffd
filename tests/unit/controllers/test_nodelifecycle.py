"""The node lifecycle controller's decisions, as tables, the clock injected."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.controllers import nodelifecycle
from tinykube.controllers.nodelifecycle import NOT_READY, UNREACHABLE

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def ts(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(ready: str | None = "True", heartbeat: float = 600, taints: list[Obj] | None = None,
         others: bool = True) -> Obj:
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady",
                           "lastHeartbeatTime": ts(heartbeat), "lastTransitionTime": ts(900)})
    if others:
        conditions += [{"type": t, "status": "False", "lastHeartbeatTime": ts(heartbeat),
                        "lastTransitionTime": ts(900)}
                       for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
    return {"metadata": {"name": "n1", "creationTimestamp": ts(1000)},
            "spec": {"taints": taints or []}, "status": {"conditions": conditions}}


def lease(renewed: float) -> Obj:
    return {"spec": {"renewTime": ts(renewed)}}


def taint(key: str, effect: str, added: float = 60) -> Obj:
    return {"key": key, "effect": effect, "timeAdded": ts(added)}


def statuses(conditions: list[Obj] | None) -> dict[str, tuple[str, str]] | None:
    if conditions is None:
        return None
    return {c["type"]: (c["status"], c.get("reason", "")) for c in conditions}


HEALTH_CASES = [
    ("lease-fresh", node(), lease(10), None, 30.001),
    ("heartbeat-fresh-no-lease", node(heartbeat=5), None, None, 35.001),
    ("lease-stale", node(), lease(41), {t: ("Unknown", "NodeStatusUnknown") for t in
                                        nodelifecycle.KUBELET_CONDITIONS}, 40),
    ("already-unknown", node("Unknown"), lease(100), {
        "Ready": ("Unknown", "KubeletReady"), **{t: ("Unknown", "NodeStatusUnknown") for t in
                                                 ("MemoryPressure", "DiskPressure",
                                                  "PIDPressure")}}, 40),
    ("never-posted", node(None, others=False), None, {t: ("Unknown", "NodeStatusNeverUpdated")
                                                      for t in nodelifecycle.KUBELET_CONDITIONS},
     40),
]


@pytest.mark.parametrize(("obj", "lease_obj", "expected", "recheck"),
                         [pytest.param(*c[1:], id=c[0]) for c in HEALTH_CASES])
def test_node_health(obj: Obj, lease_obj: Obj | None,
                     expected: dict[str, tuple[str, str]] | None, recheck: float) -> None:
    conditions, again = nodelifecycle.node_health(obj, lease_obj, NOW, 40.0)
    assert statuses(conditions) == expected
    assert again == pytest.approx(recheck)
    if conditions is not None:  # the message is upstream's
        unknown = next(c for c in conditions if c["type"] == "MemoryPressure")
        assert unknown["message"] in ("Kubelet stopped posting node status.",
                                      "Kubelet never posted node status.")


TAINT_CASES = [
    ("ready-no-taints", "True", [], None),
    ("unknown-gets-unreachable", "Unknown", [], [(UNREACHABLE, "NoSchedule"),
                                                 (UNREACHABLE, "NoExecute")]),
    ("false-gets-not-ready", "False", [], [(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]),
    ("not-ready-swapped-for-unreachable", "Unknown",
     [taint(NOT_READY, "NoSchedule"), taint(NOT_READY, "NoExecute")],
     [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]),
    ("ready-again-drops-them", "True",
     [taint("other", "NoSchedule"), taint(UNREACHABLE, "NoSchedule"),
      taint(UNREACHABLE, "NoExecute")], [("other", "NoSchedule")]),
    ("already-tainted", "Unknown", [taint(UNREACHABLE, "NoSchedule"),
                                    taint(UNREACHABLE, "NoExecute")], None),
]


@pytest.mark.parametrize(("ready", "current", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in TAINT_CASES])
def test_node_taints(ready: str, current: list[Obj],
                     expected: list[tuple[str, str]] | None) -> None:
    obj = node(ready, taints=current)
    got = nodelifecycle.node_taints(obj, obj["status"]["conditions"], NOW)
    assert (None if got is None else [(t["key"], t["effect"]) for t in got]) == expected
    for t in got or []:
        assert t["timeAdded"]


def test_node_without_ready_condition_keeps_its_taints() -> None:
    obj = node(None, others=False)
    assert nodelifecycle.node_taints(obj, [], NOW) is None


def tol(key: str | None, seconds: int | None = None, effect: str = "NoExecute",
        operator: str = "Exists") -> Obj:
    out: Obj = {"operator": operator, "effect": effect}
    if key:
        out["key"] = key
    if seconds is not None:
        out["tolerationSeconds"] = seconds
    return out


EVICTION_CASES = [
    ("no-no-execute-taint", [], [taint(UNREACHABLE, "NoSchedule")], None),
    ("not-tolerated-at-once", [], [taint(UNREACHABLE, "NoExecute")], 0.0),
    ("tolerated-forever", [tol(UNREACHABLE)], [taint(UNREACHABLE, "NoExecute")], None),
    ("tolerated-for-300s-added-60s-ago", [tol(UNREACHABLE, 300)],
     [taint(UNREACHABLE, "NoExecute", 60)], 240.0),
    ("tolerated-for-30s-added-60s-ago", [tol(UNREACHABLE, 30)],
     [taint(UNREACHABLE, "NoExecute", 60)], -30.0),
    ("negative-seconds-mean-now", [tol(UNREACHABLE, -5)], [taint(UNREACHABLE, "NoExecute", 0)],
     0.0),
    ("smallest-of-the-taints", [tol(UNREACHABLE, 300), tol("other", 100)],
     [taint(UNREACHABLE, "NoExecute", 0), taint("other", "NoExecute", 0)], 100.0),
    ("one-taint-not-tolerated", [tol(UNREACHABLE, 300)],
     [taint(UNREACHABLE, "NoExecute"), taint("other", "NoExecute")], 0.0),
    ("wildcard-toleration", [tol(None, effect="")], [taint(UNREACHABLE, "NoExecute")], None),
    ("noschedule-toleration-does-not-count", [tol(UNREACHABLE, effect="NoSchedule")],
     [taint(UNREACHABLE, "NoExecute")], 0.0),
]


@pytest.mark.parametrize(("tolerations", "taints", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in EVICTION_CASES])
def test_eviction(tolerations: list[Obj], taints: list[Obj], expected: float | None) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"tolerations": tolerations}}
    assert nodelifecycle.eviction(pod, taints, NOW) == expected


def pod(name: str, ready: str = "True", tolerations: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "n1", "tolerations": tolerations or []},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_plan_for_a_silent_node() -> None:
    pods = [pod("now"), pod("later", tolerations=[tol(UNREACHABLE, 5)]),
            pod("never", "False", [tol(UNREACHABLE)])]
    decided = nodelifecycle.plan(node(), lease(50), pods, NOW, 40.0)
    assert decided.ready == "Unknown"
    assert [p["metadata"]["name"] for p in decided.evict] == ["now"]
    assert [p["metadata"]["name"] for p in decided.not_ready] == ["now", "later"]
    assert decided.recheck == pytest.approx(5.001)  # the tolerating pod's eviction


def test_plan_for_a_healthy_node_does_nothing() -> None:
    decided = nodelifecycle.plan(node(), lease(1), [pod("a")], NOW, 40.0)
    assert (decided.conditions, decided.taints, decided.evict, decided.not_ready) == (
        None, None, [], [])
