"""ReplicaSet controller: replica diffs and deletion order as tables, status, expectations, and
one sync against a fake client (the exact writes and events)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from workload_fakes import FakeClient

from tinykube.controllers import replicaset

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def pod(name: str, *, node: bool = True, phase: str = "Running", ready: bool = True,
        created: str = "2024-05-01T11:00:00Z", ready_since: str = "2024-05-01T11:00:00Z",
        labels: dict[str, str] | None = None, terminating: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "creationTimestamp": created,
                 "labels": labels if labels is not None else {"app": "web"},
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web-abc", "uid": "rs-uid", "controller": True}]}
    if terminating:
        meta["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    return {"metadata": meta, "spec": {"nodeName": "n1"} if node else {},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": ready_since}]}}


def rs(replicas: int = 3, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid",
                         "generation": 2, "resourceVersion": "7",
                         "labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"},
                                               "annotations": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                     **spec},
            "status": {"replicas": 0}}


@pytest.mark.parametrize(("replicas", "pods", "expected"), [
    pytest.param(3, [], replicaset.Diff(create=3), id="create-all"),
    pytest.param(2, [pod("a"), pod("b")], replicaset.Diff(), id="steady"),
    pytest.param(1000, [], replicaset.Diff(create=replicaset.BURST), id="burst-capped"),
    pytest.param(1, [pod("old", created="2024-05-01T10:00:00Z"),
                     pod("new", created="2024-05-01T11:00:00Z")],
                 replicaset.Diff(delete=("new",)), id="newest-first"),
    pytest.param(2, [pod("ready"), pod("unready", ready=False, created="2024-01-01T00:00:00Z"),
                     pod("ready2")],
                 replicaset.Diff(delete=("unready",)), id="not-ready-first"),
    pytest.param(1, [pod("running"), pod("pending", phase="Pending", ready=False)],
                 replicaset.Diff(delete=("pending",)), id="pending-first"),
    pytest.param(2, [pod("sched"), pod("unsched", node=False, ready=False),
                     pod("unready", ready=False)],
                 replicaset.Diff(delete=("unsched",)), id="unscheduled-first"),
    pytest.param(0, [pod("a"), pod("b", ready=False)],
                 replicaset.Diff(delete=("b", "a")), id="scale-to-zero"),
])
def test_diff_replicas(replicas: int, pods: list[Obj], expected: replicaset.Diff) -> None:
    assert replicaset.diff_replicas(replicas, pods) == expected


@pytest.mark.parametrize(("pod_obj", "active"), [
    pytest.param(pod("a"), True, id="running"),
    pytest.param(pod("a", terminating=True), False, id="terminating"),
    pytest.param(pod("a", phase="Succeeded"), False, id="succeeded"),
    pytest.param(pod("a", phase="Failed"), False, id="failed"),
    pytest.param(pod("a", phase="Pending", ready=False), True, id="pending"),
])
def test_is_active(pod_obj: Obj, active: bool) -> None:
    assert replicaset.is_active(pod_obj) is active


def test_new_pod_from_template() -> None:
    body = replicaset.new_pod(rs())
    assert body["metadata"] == {
        "generateName": "web-abc-", "namespace": "default",
        "labels": {"app": "web", "pod-template-hash": "abc"}, "annotations": {"a": "b"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                             "uid": "rs-uid", "controller": True, "blockOwnerDeletion": True}]}
    assert body["spec"] == {"containers": [{"name": "c", "image": "nginx"}]}


@pytest.mark.parametrize(("min_ready", "pods", "expected"), [
    pytest.param(0, [pod("a"), pod("b", ready=False), pod("c", labels={"x": "y"})],
                 {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                  "availableReplicas": 2, "observedGeneration": 2}, id="counts"),
    pytest.param(30, [pod("a", ready_since="2024-05-01T11:59:50Z"),
                      pod("b", ready_since="2024-05-01T11:59:00Z")],
                 {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                  "availableReplicas": 1, "observedGeneration": 2}, id="min-ready-seconds"),
])
def test_compute_status(min_ready: int, pods: list[Obj], expected: Obj) -> None:
    assert replicaset.compute_status(rs(minReadySeconds=min_ready), pods, NOW) == expected


def test_next_available_in() -> None:
    pods = [pod("a", ready_since="2024-05-01T11:59:50Z"), pod("b", ready=False)]
    assert replicaset.next_available_in(rs(minReadySeconds=30), pods, NOW) == 20.0
    assert replicaset.next_available_in(rs(), pods, NOW) is None


def test_expectations_wait_for_the_cache() -> None:
    clock = [0.0]
    exp = replicaset.Expectations(clock=lambda: clock[0], ttl=30)
    cache: dict[str, Obj] = {"default/gone": pod("gone")}
    exp.expect("default/web", created=["default/new"], deleted=["default/gone"])
    assert not exp.satisfied("default/web", cache.get)
    cache["default/new"] = pod("new")
    assert not exp.satisfied("default/web", cache.get)
    cache["default/gone"] = pod("gone", terminating=True)
    assert exp.satisfied("default/web", cache.get)
    exp.expect("default/web", created=["default/lost"], deleted=[])
    clock[0] = 31
    assert exp.satisfied("default/web", cache.get), "expired expectations do not block"


def _controller(client: FakeClient, rs_obj: Obj, pods: list[Obj]) -> Any:
    ctl = replicaset.ReplicaSetController(client, now=lambda: NOW)  # type: ignore[arg-type]
    ctl.sets.cache.put("default/web-abc", rs_obj)
    for p in pods:
        ctl.pods.cache.put(f"default/{p['metadata']['name']}", p)
    return ctl


async def test_sync_creates_then_waits_for_cache() -> None:
    client = FakeClient()
    ctl = _controller(client, rs(replicas=3), [pod("web-abc-1")])
    await ctl.sync("default/web-abc")
    creates = [c for c in client.writes() if c[0] == "create"]
    assert [c[2]["metadata"]["name"] for c in creates] == ["web-abc-00001", "web-abc-00002"]
    assert client.events == [("Normal", "SuccessfulCreate", "Created pod: web-abc-00001"),
                             ("Normal", "SuccessfulCreate", "Created pod: web-abc-00002")]
    assert ("patch/status", "replicasets", {"status": {
        "replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "observedGeneration": 2}}) in client.writes()
    client.calls.clear()
    await ctl.sync("default/web-abc")  # the informer has not shown the new pods yet
    assert not [c for c in client.writes() if c[0] == "create"]


async def test_sync_deletes_excess() -> None:
    client = FakeClient([("pods", pod("web-abc-1")), ("pods", pod("web-abc-2", ready=False))])
    ctl = _controller(client, rs(replicas=1), [pod("web-abc-1"), pod("web-abc-2", ready=False)])
    await ctl.sync("default/web-abc")
    assert ("delete", "pods", "web-abc-2") in client.writes()
    assert client.events == [("Normal", "SuccessfulDelete", "Deleted pod: web-abc-2")]


async def test_sync_leaves_a_deleting_replicaset_alone() -> None:
    client = FakeClient()
    doomed = rs(replicas=3)
    doomed["metadata"]["deletionTimestamp"] = "2024-05-01T11:00:00Z"
    ctl = _controller(client, doomed, [])
    await ctl.sync("default/web-abc")
    assert not [c for c in client.writes() if c[0] == "create"]


def rc(replicas: int = 2) -> Obj:
    """A ReplicationController: a ReplicaSet with a plain label map for a selector."""
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid",
                         "generation": 1, "resourceVersion": "7"},
            "spec": {"replicas": replicas, "selector": {"app": "web"},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": 0}}


def rc_pod(name: str, **kwargs: Any) -> Obj:
    owned = pod(name, **kwargs)
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ReplicationController",
                                             "name": "web-abc", "uid": "rs-uid",
                                             "controller": True}]
    return owned


async def test_replication_controller_runs_through_the_same_sync() -> None:
    client = FakeClient()
    ctl = replicaset.ReplicationControllerController(
        client, now=lambda: NOW)  # type: ignore[arg-type]
    ctl.sets.cache.put("default/web-abc", rc(replicas=2))
    for p in (rc_pod("web-abc-1"), rc_pod("other", labels={"app": "db"})):
        ctl.pods.cache.put(f"default/{p['metadata']['name']}", p)
    await ctl.sync("default/web-abc")
    creates = [c for c in client.writes() if c[0] == "create"]
    assert [c[2]["metadata"]["ownerReferences"][0]["kind"] for c in creates] == \
        ["ReplicationController"]
    assert ("patch/status", "replicationcontrollers", {"status": {
        "replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "observedGeneration": 1}}) in client.writes()
    assert client.events == [("Normal", "SuccessfulCreate", "Created pod: web-abc-00001")]


def test_replication_controller_queues_only_its_own_pods() -> None:
    ctl = replicaset.ReplicationControllerController(FakeClient())  # type: ignore[arg-type]
    ctl._on_pod(pod("rs-owned"))
    ctl._on_pod(rc_pod("rc-owned"))
    assert len(ctl.queue) == 1
