"""Pod phase and status of process pods, computed from container records; and the status
write (`status_patch`) applied with the API server's own strategic merge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tinykube.api.patch import STRATEGIC_MERGE_PATCH, apply_patch
from tinykube.kubelet.status import (
    ContainerRecord,
    pod_phase,
    process_status,
    running_status,
    status_patch,
)

NOW = "2026-01-01T00:00:00Z"
CRASHED = {"exitCode": 1, "reason": "Error"}


def rec(state: str = "running", code: int | None = None, *, ready: bool = False,
        last: dict[str, Any] | None = None) -> ContainerRecord:
    return ContainerRecord("c", state=state, exit_code=code, ready=ready, last_terminated=last)


@pytest.mark.parametrize(("init", "main", "policy", "phase"), [
    pytest.param([], [rec("waiting")], "Always", "Pending", id="creating"),
    pytest.param([rec("running")], [rec("waiting")], "Always", "Pending", id="initializing"),
    pytest.param([rec("terminated", 1)], [rec("waiting")], "Never", "Failed",
                 id="init-failed-never"),
    pytest.param([rec("terminated", 1)], [rec("waiting")], "Always", "Pending",
                 id="init-failed-retrying"),
    pytest.param([rec("terminated", 0)], [rec("running")], "Always", "Running",
                 id="init-done-running"),
    pytest.param([], [rec("running"), rec("waiting")], "Always", "Pending",
                 id="one-still-creating"),
    pytest.param([], [rec("waiting", last=CRASHED)], "Always", "Running",
                 id="crash-loop-stays-running"),
    pytest.param([], [rec("terminated", 0), rec("terminated", 0)], "Never", "Succeeded",
                 id="all-succeeded"),
    pytest.param([], [rec("terminated", 0), rec("terminated", 2)], "Never", "Failed",
                 id="one-failed-never"),
    pytest.param([], [rec("terminated", 2)], "OnFailure", "Running", id="onfailure-retries"),
    pytest.param([], [rec("terminated", 0)], "OnFailure", "Succeeded", id="onfailure-done"),
])
def test_pod_phase(init: list[ContainerRecord], main: list[ContainerRecord], policy: str,
                   phase: str) -> None:
    assert pod_phase(init, main, policy) == phase


@pytest.mark.parametrize(("record", "expected"), [
    pytest.param(ContainerRecord("c", "img", "id1", "running", "", "", NOW, ready=True,
                                 started=True, restart_count=2, last_terminated=CRASHED),
                 {"name": "c", "image": "img", "imageID": "", "containerID": "id1",
                  "ready": True, "started": True, "restartCount": 2,
                  "state": {"running": {"startedAt": NOW}},
                  "lastState": {"terminated": CRASHED}}, id="running-after-restarts"),
    pytest.param(ContainerRecord("c", "img", reason="CrashLoopBackOff", message="back-off 10s"),
                 {"name": "c", "image": "img", "imageID": "", "ready": False,
                  "started": False, "restartCount": 0, "lastState": {},
                  "state": {"waiting": {"reason": "CrashLoopBackOff",
                                        "message": "back-off 10s"}}}, id="waiting"),
    pytest.param(ContainerRecord("c", "img", "id2", "terminated", "Error", "",
                                 NOW, NOW, 143, 15),
                 {"name": "c", "image": "img", "imageID": "", "containerID": "id2",
                  "ready": False, "started": False, "restartCount": 0, "lastState": {},
                  "state": {"terminated": {"exitCode": 143, "signal": 15, "reason": "Error",
                                           "startedAt": NOW, "finishedAt": NOW,
                                           "containerID": "id2"}}}, id="terminated"),
])
def test_container_status(record: ContainerRecord, expected: dict[str, Any]) -> None:
    assert record.to_status() == expected


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


POD = {"metadata": {"name": "p", "uid": "u"}, "spec": {"restartPolicy": "Always"}}


@pytest.mark.parametrize(("pod", "init", "main", "expected"), [
    pytest.param(POD, [], [rec(ready=True)], {"Initialized": "True", "Ready": "True",
                                              "ContainersReady": "True"}, id="ready"),
    pytest.param(POD, [], [rec(ready=True), rec(ready=False)],
                 {"Initialized": "True", "Ready": "False", "ContainersReady": "False"},
                 id="one-not-ready"),
    pytest.param(POD, [rec("running")], [rec("waiting")],
                 {"Initialized": "False", "Ready": "False", "ContainersReady": "False"},
                 id="initializing"),
    pytest.param({**POD, "spec": {"readinessGates": [{"conditionType": "x/gate"}]}}, [],
                 [rec(ready=True)], {"Initialized": "True", "Ready": "False",
                                     "ContainersReady": "True"}, id="gate-holds-ready"),
])
def test_process_status_conditions(pod: dict[str, Any], init: list[ContainerRecord],
                                   main: list[ContainerRecord],
                                   expected: dict[str, str]) -> None:
    status = process_status(pod, init=init, main=main, pod_ip="127.244.0.2",
                            host_ip="127.0.0.1", now=NOW)
    assert {k: v for k, v in conditions(status).items() if k in expected} == expected
    assert status["podIP"] == "127.244.0.2" and status["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert ("initContainerStatuses" in status) == bool(init)


def test_transition_time_kept_while_status_unchanged() -> None:
    earlier = {**POD, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "then"}]}}
    status = process_status(earlier, init=[], main=[rec(ready=True)], pod_ip="i",
                            host_ip="h", now=NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "then"


# --- the status write: a strategic merge patch of the kubelet's own conditions ---------------

GATE = "example.com/gate"


def _pod_with(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "readinessGates": [{"conditionType": GATE}]},
            "status": {"phase": "Running", "conditions": conditions}}


def _cond(type_: str, value: str, reason: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": type_, "status": value, "lastProbeTime": None,
                             "lastTransitionTime": "2026-12-02T00:00:00Z"}
    if reason:
        found["reason"] = reason
    return found


def _written(live: dict[str, Any], stale: dict[str, Any], desired: dict[str, Any]
             ) -> dict[str, dict[str, Any]]:
    """Apply the kubelet's patch (computed from its `stale` copy) to the `live` pod with the
    API server's own strategic merge; the conditions that result, by type."""
    patch = status_patch(stale["status"], desired)
    merged = apply_patch("Pod", live, json.dumps(patch).encode(), STRATEGIC_MERGE_PATCH)
    return {c["type"]: c for c in merged["status"]["conditions"]}


def test_a_gate_set_after_the_kubelets_copy_survives_its_write() -> None:
    """The lost update the merge patch had: the kubelet's copy predates the gate's release,
    and its status write must not put the old gate condition back."""
    stale = _pod_with([_cond("Ready", "False", "ContainersNotReady"), _cond(GATE, "False")])
    live = _pod_with([_cond("Ready", "False", "ContainersNotReady"), _cond(GATE, "True")])
    desired = running_status(stale, pod_ip="127.244.0.2", host_ip="127.0.0.1", now=NOW)
    written = _written(live, stale, desired)
    assert written[GATE]["status"] == "True"
    assert written["Ready"]["status"] == "False"  # the gate was False in its copy: next sync
    assert written["Ready"]["reason"] == "ReadinessGatesNotReady"


def test_a_reason_the_condition_lost_is_removed() -> None:
    stale = _pod_with([_cond("Ready", "False", "ReadinessGatesNotReady"), _cond(GATE, "True")])
    desired = running_status(stale, pod_ip="127.244.0.2", host_ip="127.0.0.1", now=NOW)
    written = _written(stale, stale, desired)
    assert written["Ready"]["status"] == "True" and "reason" not in written["Ready"]
    assert set(written) == {"PodReadyToStartContainers", "Initialized", "Ready",
                            "ContainersReady", "PodScheduled", GATE}
