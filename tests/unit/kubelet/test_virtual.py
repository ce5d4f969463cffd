"""Virtual pods: Running at once; a Job's (or an annotated one) finishes after its run time."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.api.meta import rfc3339
from tinykube.kubelet import virtual

Obj = dict[str, Any]
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
JOB_OWNER = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u", "controller": True}
RS_OWNER = {**JOB_OWNER, "kind": "ReplicaSet"}


def make_pod(*, owner: Obj | None = None, annotations: dict[str, str] | None = None,
             restart: str = "Never") -> Obj:
    meta: Obj = {"name": "p", "namespace": "ns", "uid": "pod-uid",
                 "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [owner]
    return {"metadata": meta, "spec": {"restartPolicy": restart, "containers": [
        {"name": "c", "image": "busybox"}]}, "status": {}}


# owner, annotations, restart policy, default seconds -> run seconds, exit code
RUNS = [
    ("replicaset-pod-runs-forever", RS_OWNER, {}, "Always", 1.0, None, 0),
    ("job-pod-default", JOB_OWNER, {}, "Never", 1.0, 1.0, 0),
    ("job-pod-node-setting", JOB_OWNER, {}, "Never", 7.5, 7.5, 0),
    ("annotation-overrides", JOB_OWNER, {virtual.RUN_SECONDS_ANNOTATION: "3"}, "Never", 1.0,
     3.0, 0),
    ("annotation-on-a-bare-pod", None, {virtual.RUN_SECONDS_ANNOTATION: "0"}, "Never", 1.0,
     0.0, 0),
    ("exit-code", JOB_OWNER, {virtual.EXIT_CODE_ANNOTATION: "3"}, "Never", 1.0, 1.0, 3),
    ("on-failure-succeeds", JOB_OWNER, {virtual.EXIT_CODE_ANNOTATION: "3"}, "OnFailure", 1.0,
     1.0, 0),
    ("garbage-annotations", JOB_OWNER, {virtual.RUN_SECONDS_ANNOTATION: "x",
                                        virtual.EXIT_CODE_ANNOTATION: "y"}, "Never", 2.0,
     2.0, 0),
]


@pytest.mark.parametrize(("owner", "annotations", "restart", "default", "seconds", "code"),
                         [r[1:] for r in RUNS], ids=[r[0] for r in RUNS])
def test_run_seconds_and_exit_code(owner: Obj | None, annotations: dict[str, str], restart: str,
                                   default: float, seconds: float | None, code: int) -> None:
    pod = make_pod(owner=owner, annotations=annotations, restart=restart)
    assert virtual.run_seconds(pod, default) == seconds
    assert virtual.exit_code(pod) == code


async def _noop_event(*_: Any) -> None:
    return None


@pytest.mark.parametrize(("code", "phase", "reason"), [(0, "Succeeded", "Completed"),
                                                       (2, "Failed", "Error")],
                         ids=["succeeds", "fails"])
async def test_a_job_pod_runs_then_finishes(code: int, phase: str, reason: str) -> None:
    clock = [T0]
    requeued: list[float] = []
    runtime = virtual.VirtualRuntime(host_ip="127.0.0.1", event=_noop_event,
                                     job_pod_seconds=2.0, now=lambda: clock[0],
                                     requeue=lambda _pod, delay: requeued.append(delay))
    pod = make_pod(owner=JOB_OWNER, annotations={virtual.EXIT_CODE_ANNOTATION: str(code)})
    pod["status"] = await runtime.sync(pod, pod_ip="10.0.0.1")
    assert pod["status"]["phase"] == "Running" and requeued == [2.0]
    clock[0] = T0 + datetime.timedelta(seconds=2)
    status = await runtime.sync(pod, pod_ip="10.0.0.1")
    assert status["phase"] == phase
    (container,) = status["containerStatuses"]
    assert container["state"]["terminated"] == {
        "exitCode": code, "reason": reason, "startedAt": rfc3339(T0),
        "finishedAt": rfc3339(clock[0]), "containerID": "tinykube://pod-uid/c"}
    ready = {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}["Ready"]
    assert ready == ("False", "PodCompleted")


async def test_other_virtual_pods_keep_running() -> None:
    clock = [T0]
    runtime = virtual.VirtualRuntime(host_ip="127.0.0.1", event=_noop_event,
                                     now=lambda: clock[0])
    pod = make_pod(owner=RS_OWNER, restart="Always")
    pod["status"] = await runtime.sync(pod, pod_ip="10.0.0.1")
    clock[0] = T0 + datetime.timedelta(days=1)
    assert (await runtime.sync(pod, pod_ip="10.0.0.1"))["phase"] == "Running"
