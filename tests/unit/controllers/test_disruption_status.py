"""The disruption controller's status of a PodDisruptionBudget, as a table, clock injected."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.controllers.disruption import compute_status

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def ts(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pdb(*, min_available: Any = None, max_unavailable: Any = None, selector: Obj | None = None,
        disrupted: Obj | None = None, generation: int = 1) -> Obj:
    spec: Obj = {"selector": {"matchLabels": {"app": "web"}} if selector is None else selector}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    status: Obj = {"disruptedPods": disrupted} if disrupted else {}
    return {"metadata": {"name": "web", "namespace": "default", "generation": generation},
            "spec": spec, "status": status}


def owner(kind: str, uid: str, replicas: int, parent: Obj | None = None) -> Obj:
    meta: Obj = {"name": uid, "namespace": "default", "uid": uid}
    if parent:
        meta["ownerReferences"] = [{**parent, "controller": True}]
    return {"kind": kind, "metadata": meta, "spec": {"replicas": replicas}}


DEPLOY = owner("Deployment", "d1", 4)
RS = owner("ReplicaSet", "rs1", 4, {"kind": "Deployment", "uid": "d1", "name": "d1"})
CONTROLLERS = {"d1": DEPLOY, "rs1": RS, "sts": owner("StatefulSet", "sts", 5),
               "ds": {"kind": "DaemonSet", "metadata": {"uid": "ds", "name": "ds"}, "spec": {}}}


def pod(name: str, *, ready: bool = True, terminating: bool = False, owner_uid: str = "rs1",
        kind: str = "ReplicaSet") -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if owner_uid:
        meta["ownerReferences"] = [{"kind": kind, "uid": owner_uid, "name": owner_uid,
                                    "controller": True}]
    if terminating:
        meta["deletionTimestamp"] = ts(0)
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


THREE = [pod("p1"), pod("p2"), pod("p3")]

# (id, budget, pods, (expected, desired, current healthy, allowed))
CASES = [
    ("min-available-int", pdb(min_available=2), THREE, (3, 2, 3, 1)),
    ("min-available-int-exhausted", pdb(min_available=3), THREE, (3, 3, 3, 0)),
    ("min-available-percent-of-the-deployment-scale", pdb(min_available="50%"), THREE,
     (4, 2, 3, 1)),
    ("min-available-percent-rounds-up", pdb(min_available="60%"), THREE, (4, 3, 3, 0)),
    ("max-unavailable-int", pdb(max_unavailable=1), THREE, (4, 3, 3, 0)),
    ("max-unavailable-percent", pdb(max_unavailable="50%"), THREE, (4, 2, 3, 1)),
    ("max-unavailable-statefulset", pdb(max_unavailable=2),
     [pod(f"s{i}", owner_uid="sts", kind="StatefulSet") for i in range(5)], (5, 3, 5, 2)),
    ("not-ready-pods-are-not-healthy", pdb(min_available=2),
     [pod("p1"), pod("p2", ready=False), pod("p3")], (3, 2, 2, 0)),
    ("terminating-pods-are-not-healthy", pdb(min_available=1),
     [pod("p1", terminating=True), pod("p2")], (2, 1, 1, 0)),
    ("disrupted-pods-are-not-healthy", pdb(min_available=1, disrupted={"p1": ts(30)}), THREE,
     (3, 1, 2, 1)),
    ("expired-disruption-counts-again", pdb(min_available=1, disrupted={"p1": ts(121)}), THREE,
     (3, 1, 3, 2)),
    ("no-pods", pdb(min_available=1), [], (0, 1, 0, 0)),
    ("empty-selector-selects-nothing-so-nothing-allowed", pdb(max_unavailable=1, selector={}),
     [], (0, 0, 0, 0)),
    ("unmanaged-pods-are-left-out-of-the-scale", pdb(max_unavailable=1),
     [*THREE, pod("bare", owner_uid="")], (4, 3, 4, 1)),
]


@pytest.mark.parametrize(("budget", "pods", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_status(budget: Obj, pods: list[Obj], expected: tuple[int, int, int, int]) -> None:
    status = compute_status(budget, pods, CONTROLLERS, NOW).status
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"],
            status["disruptionsAllowed"]) == expected
    assert status["observedGeneration"] == 1
    [condition] = status["conditions"]
    allowed = expected[3] > 0
    assert condition == {"type": "DisruptionAllowed", "status": str(allowed),
                         "observedGeneration": 1, "lastTransitionTime": ts(0),
                         "reason": "SufficientPods" if allowed else "InsufficientPods",
                         "message": ""}


def test_disrupted_pods_are_kept_until_their_timeout_and_requeued() -> None:
    budget = pdb(min_available=1, disrupted={"p1": ts(30), "p2": ts(200), "gone": ts(1)})
    result = compute_status(budget, [pod("p1"), pod("p2"), pod("p3", terminating=True)],
                            CONTROLLERS, NOW)
    assert result.status["disruptedPods"] == {"p1": ts(30)}
    assert result.recheck_after == pytest.approx(90)


def test_a_pod_of_an_unscalable_controller_fails_safe() -> None:
    budget = pdb(max_unavailable=1)
    budget["status"] = {"disruptionsAllowed": 2, "observedGeneration": 1}
    result = compute_status(budget, [pod("d", owner_uid="ds", kind="DaemonSet")], CONTROLLERS,
                            NOW)
    assert result.status["disruptionsAllowed"] == 0
    assert result.status["conditions"][0]["reason"] == "SyncFailed"
    assert result.status["conditions"][0]["message"] == 'found no controllers for pod "d"'
    assert ("Warning", "CalculateExpectedPodCountFailed",
            'Failed to calculate the number of expected pods: found no controllers for pod "d"'
            ) in result.events


def test_unmanaged_pods_warn() -> None:
    result = compute_status(pdb(max_unavailable=1), [pod("bare", owner_uid="")], CONTROLLERS,
                            NOW)
    assert [e[1] for e in result.events] == ["UnmanagedPods"]


def test_condition_keeps_its_transition_time_while_unchanged() -> None:
    budget = pdb(min_available=2)
    first = compute_status(budget, THREE, CONTROLLERS, NOW).status
    later = NOW + datetime.timedelta(minutes=5)
    again = compute_status({**budget, "status": first}, THREE, CONTROLLERS, later).status
    assert again == first
    flipped = compute_status({**budget, "status": first}, THREE[:2], CONTROLLERS, later).status
    assert flipped["conditions"][0]["lastTransitionTime"] == \
        later.strftime("%Y-%m-%dT%H:%M:%SZ")
