"""The DaemonSet controller's pure decisions: which nodes, which pods, how a rollout proceeds.

Every scenario runs `reconcile` with an injected clock (`NOW`); pods are built ready (or not)
at a given number of seconds before it.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.controllers import daemonset
from tinykube.controllers.daemonset import reconcile

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def ts(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ds(*, strategy: Obj | None = None, node_selector: Obj | None = None,
       tolerations: list[Obj] | None = None, image: str = "busybox:1.36",
       min_ready: int = 0, history: int = 10) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid",
                         "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec},
                     "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {
                         "maxUnavailable": 1, "maxSurge": 0}},
                     "minReadySeconds": min_ready, "revisionHistoryLimit": history}}


def node(name: str, *, labels: Obj | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False) -> Obj:
    spec: Obj = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}}, "spec": spec}


def pod(name: str, on: str, hash_: str, *, ready_for: float | None = 60, created: float = 100,
        terminating: bool = False, phase: str = "Running", bound: bool = True) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "creationTimestamp": ts(created),
                 "labels": {"app": "agent", daemonset.REVISION_LABEL: hash_},
                 "ownerReferences": [{"kind": "DaemonSet", "name": "agent", "uid": "ds-uid",
                                      "controller": True}]}
    if terminating:
        meta["deletionTimestamp"] = ts(0)
    spec: Obj = {"nodeName": on} if bound else daemonset.pin_to_node({}, on)
    status: Obj = {"phase": phase, "conditions": []}
    if ready_for is not None:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": ts(ready_for)}]
    return {"metadata": meta, "spec": spec, "status": status}


NODES = [node("a"), node("b"), node("c")]
NEW = daemonset.revision_hash(ds())
OLD = "oldhash"


def old_everywhere(**kw: Any) -> list[Obj]:
    return [pod(f"p-{n}", n, OLD, **kw) for n in ("a", "b", "c")]


# --- which nodes ------------------------------------------------------------------------------

TAINT_NS = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
TAINT_NE = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
PLACEMENT = [
    ("every-node", ds(), NODES, [], ["a", "b", "c"], []),
    ("node-selector", ds(node_selector={"role": "edge"}),
     [node("a", labels={"role": "edge"}), node("b"), node("c", labels={"role": "edge"})], [],
     ["a", "c"], []),
    ("untolerated-noschedule-gets-no-new-pod", ds(), [node("a"), node("b", taints=[TAINT_NS])],
     [], ["a"], []),
    ("untolerated-noschedule-keeps-a-running-pod", ds(),
     [node("a", taints=[TAINT_NS])], [pod("p-a", "a", NEW)], [], []),
    ("untolerated-noexecute-evicts", ds(), [node("a", taints=[TAINT_NE])],
     [pod("p-a", "a", NEW)], [], ["p-a"]),
    ("tolerated-taint", ds(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
     [node("a", taints=[TAINT_NS, TAINT_NE])], [], ["a"], []),
    ("cordoned-node-still-runs-it", ds(), [node("a", unschedulable=True)], [], ["a"], []),
    ("not-ready-and-pressure-taints-tolerated", ds(), [node("a", taints=[
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule"}])], [], ["a"], []),
    ("network-unavailable-not-tolerated-without-host-network", ds(), [node("a", taints=[
        {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])], [], [], []),
    ("node-added-later", ds(), NODES, [pod("p-a", "a", NEW), pod("p-b", "b", NEW)], ["c"], []),
    ("pod-of-a-removed-node", ds(), [node("a")], [pod("p-a", "a", NEW), pod("p-z", "z", NEW)],
     [], ["p-z"]),
    ("selector-no-longer-matches", ds(node_selector={"role": "edge"}), [node("a")],
     [pod("p-a", "a", NEW)], [], ["p-a"]),
    ("pinned-but-unbound-pod-counts-on-its-node", ds(), [node("a")],
     [pod("p-a", "a", NEW, bound=False, ready_for=None, phase="Pending")], [], []),
    ("duplicate-pods-keep-the-oldest", ds(), [node("a")],
     [pod("p-old", "a", NEW, created=100), pod("p-new", "a", NEW, created=5)], [], ["p-new"]),
    ("failed-pod-replaced", ds(), [node("a")], [pod("p-a", "a", NEW, phase="Failed")], ["a"],
     ["p-a"]),
    ("terminating-pod-does-not-block-the-new-one", ds(), [node("a")],
     [pod("p-a", "a", NEW, terminating=True)], ["a"], []),
]


@pytest.mark.parametrize(("the_ds", "nodes", "pods", "create", "delete"),
                         [p[1:] for p in PLACEMENT], ids=[p[0] for p in PLACEMENT])
def test_placement(the_ds: Obj, nodes: list[Obj], pods: list[Obj], create: list[str],
                   delete: list[str]) -> None:
    plan = reconcile(the_ds, nodes, pods, [], NOW)
    assert (sorted(plan.create_on), sorted(plan.delete_pods)) == (create, delete)


def test_new_pod_is_pinned_with_the_daemon_tolerations_and_labels() -> None:
    the_ds = ds(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                              "effect": "NoSchedule", "tolerationSeconds": 5}])
    the_ds["metadata"]["annotations"] = {daemonset.TEMPLATE_GENERATION_ANNOTATION: "3"}
    new = daemonset.new_pod(the_ds, "b", "h1")
    assert new["metadata"]["generateName"] == "agent-"
    assert new["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": "h1",
                                         "pod-template-generation": "3"}
    assert new["metadata"]["ownerReferences"][0]["controller"] is True
    assert new["spec"]["affinity"] == {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}
    assert "nodeName" not in new["spec"]
    assert [(t["key"], t["effect"]) for t in new["spec"]["tolerations"]] == [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),  # the user's one replaced
    ]
    assert all(t["operator"] == "Exists" and "tolerationSeconds" not in t
               for t in new["spec"]["tolerations"])
    assert daemonset.target_node(new) == "b"


def test_host_network_pods_tolerate_network_unavailable() -> None:
    spec = daemonset.daemon_pod_spec({"hostNetwork": True, "containers": []})
    assert spec["tolerations"][-1] == {"key": "node.kubernetes.io/network-unavailable",
                                       "operator": "Exists", "effect": "NoSchedule"}


def test_existing_node_affinity_is_replaced_by_the_node_pin() -> None:
    the_ds = ds()
    the_ds["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "role", "operator": "In", "values": ["edge"]}]}]}}}
    assert reconcile(the_ds, [node("a", labels={"role": "edge"}), node("b")], [], [],
                     NOW).create_on == ["a"]
    terms = daemonset.new_pod(the_ds, "a", "h")["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                       "values": ["a"]}]}]


# --- rolling update ---------------------------------------------------------------------------

def rolling(unavailable: Any = 1, surge: Any = 0) -> Obj:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": unavailable,
                                                       "maxSurge": surge}}


ROLLOUT = [
    ("one-at-a-time", rolling(), old_everywhere(), [], 1),
    ("two-at-a-time", rolling(2), old_everywhere(), [], 2),
    ("percent-rounds-up", rolling("34%"), old_everywhere(), [], 2),
    ("both-zero-means-one", rolling(0, 0), old_everywhere(), [], 1),
    ("waits-while-one-terminates", rolling(),
     [pod("p-a", "a", OLD, terminating=True), *old_everywhere()[1:]], ["a"], 0),
    ("waits-for-the-new-pod-to-be-ready", rolling(),
     [pod("p-a", "a", NEW, ready_for=None), *old_everywhere()[1:]], [], 0),
    ("next-once-the-new-pod-is-available", rolling(),
     [pod("p-a", "a", NEW), *old_everywhere()[1:]], [], 1),
    ("unavailable-old-pods-go-at-once", rolling(),
     [pod(f"p-{n}", n, OLD, ready_for=None) for n in "abc"], [], 3),
    ("a-node-without-its-pod-counts-unavailable", rolling(), old_everywhere()[1:], ["a"], 0),
    ("on-delete-replaces-nothing", {"type": "OnDelete"}, old_everywhere(), [], 0),
]


@pytest.mark.parametrize(("strategy", "pods", "create", "deletes"),
                         [r[1:] for r in ROLLOUT], ids=[r[0] for r in ROLLOUT])
def test_rolling_update_with_max_unavailable(strategy: Obj, pods: list[Obj], create: list[str],
                                             deletes: int) -> None:
    plan = reconcile(ds(strategy=strategy), NODES, pods, [], NOW)
    assert plan.create_on == create
    assert len(plan.delete_pods) == deletes
    assert all(name.startswith("p-") and not any(
        p["metadata"]["name"] == name and p["metadata"]["labels"][daemonset.REVISION_LABEL]
        == NEW for p in pods) for name in plan.delete_pods)


SURGE = [
    ("surges-one-new-pod-first", old_everywhere(), ["a"], []),
    ("waits-for-the-surged-pod", [pod("n-a", "a", NEW, ready_for=None), *old_everywhere()],
     [], []),
    ("deletes-the-old-pod-once-the-new-is-available",
     [pod("n-a", "a", NEW), *old_everywhere()], ["b"], ["p-a"]),
    ("unavailable-old-pod-replaced-at-once-beside-a-surge",
     [pod("p-a", "a", OLD, ready_for=None), *old_everywhere()[1:]], ["a", "b"], []),
]


@pytest.mark.parametrize(("pods", "create", "delete"), [s[1:] for s in SURGE],
                         ids=[s[0] for s in SURGE])
def test_rolling_update_with_max_surge(pods: list[Obj], create: list[str],
                                       delete: list[str]) -> None:
    plan = reconcile(ds(strategy=rolling(0, 1)), NODES, pods, [], NOW)
    assert (plan.create_on, plan.delete_pods) == (create, delete)


def test_surge_keeps_the_new_and_the_old_pod_on_a_node() -> None:
    pods = [pod("p-a", "a", OLD), pod("n-a", "a", NEW, ready_for=None, created=1)]
    plan = reconcile(ds(strategy=rolling(0, 1)), [node("a")], pods, [], NOW)
    assert plan.delete_pods == []


def test_min_ready_seconds_delays_availability_and_requeues() -> None:
    pods = [pod("p-a", "a", NEW, ready_for=4), *old_everywhere()[1:]]
    plan = reconcile(ds(min_ready=10), NODES, pods, [], NOW)
    assert plan.delete_pods == []  # p-a is ready but not available for 6 more seconds
    assert plan.requeue_after == pytest.approx(6)
    later = NOW + datetime.timedelta(seconds=6)
    assert len(reconcile(ds(min_ready=10), NODES, pods, [], later).delete_pods) == 1


# --- status -----------------------------------------------------------------------------------

def test_status_counts_as_upstream() -> None:
    pods = [pod("p-a", "a", NEW), pod("p-b", "b", OLD), pod("p-c", "c", NEW, ready_for=None),
            pod("p-x", "x-node", NEW)]
    nodes = [*NODES, node("d"), node("x-node", taints=[TAINT_NE])]
    status = reconcile(ds(), nodes, pods, [], NOW).status
    assert status == {"currentNumberScheduled": 3, "numberMisscheduled": 1,
                      "desiredNumberScheduled": 4, "numberReady": 2, "observedGeneration": 1,
                      "updatedNumberScheduled": 2, "numberAvailable": 2,
                      "numberUnavailable": 2}


def test_status_of_an_empty_cluster_omits_zero_optional_counts() -> None:
    assert reconcile(ds(), [], [], [], NOW).status == {
        "currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
        "numberReady": 0, "observedGeneration": 1}


# --- revisions --------------------------------------------------------------------------------

def revision(hash_: str, number: int) -> Obj:
    return {"metadata": {"name": f"agent-{hash_}", "labels": {daemonset.REVISION_LABEL: hash_}},
            "revision": number}


def test_first_revision_records_the_template() -> None:
    plan = reconcile(ds(), NODES, [], [], NOW)
    rev = plan.create_revision
    assert rev is not None and rev["revision"] == 1
    assert rev["metadata"]["name"] == f"agent-{NEW}"
    assert rev["metadata"]["labels"] == {"app": "agent", daemonset.REVISION_LABEL: NEW}
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"


def test_going_back_to_an_old_template_renumbers_its_revision() -> None:
    plan = reconcile(ds(), NODES, [], [revision(NEW, 1), revision("other", 2)], NOW)
    assert plan.create_revision is None
    assert plan.renumber_revision == (f"agent-{NEW}", 3)


def test_history_limit_deletes_the_oldest_unused_revisions() -> None:
    revisions = [revision(f"h{i}", i) for i in range(1, 5)]
    pods = [pod("p-a", "a", "h1")]
    plan = reconcile(ds(history=1), NODES, pods, revisions, NOW)
    assert plan.delete_revisions == ["agent-h2", "agent-h3"]  # h1 is in use, h4 is kept
