"""The scheduler's decision, `choose_node`, as a table: filters, spreading and the messages."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from tinykube.controllers.scheduler import choose_node

Obj = dict[str, Any]


def node(name: str, labels: dict[str, str] | None = None, *, taints: list[Obj] | None = None,
         cordoned: bool = False, pods: str | None = "110") -> Obj:
    spec: Obj = {"unschedulable": True} if cordoned else {}
    if taints:
        spec["taints"] = taints
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": {"pods": pods} if pods is not None else {}}}


def pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}


NO_SCHEDULE = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
THREE = [node("kube-node1"), node("kube-node2"), node("kube-node3", {"node": "kube-node3"})]


def affinity(*expressions: Obj) -> Obj:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]}}}


@pytest.mark.parametrize(("the_pod", "nodes", "counts", "expected"), [
    # spreading: least loaded first, ties by name
    (pod(), THREE, {}, "kube-node1"),
    (pod(), THREE, {"kube-node1": 2, "kube-node2": 1, "kube-node3": 1}, "kube-node2"),
    # nodeSelector and required node affinity
    (pod(nodeSelector={"node": "kube-node3"}), THREE, {"kube-node3": 50}, "kube-node3"),
    (pod(affinity=affinity({"key": "node", "operator": "In", "values": ["kube-node3"]})),
     THREE, {}, "kube-node3"),
    (pod(affinity=affinity({"key": "node", "operator": "NotIn", "values": ["kube-node3"]})),
     THREE, {"kube-node1": 1}, "kube-node2"),
    (pod(affinity=affinity({"key": "node", "operator": "Exists"})), THREE, {}, "kube-node3"),
    (pod(affinity=affinity({"key": "node", "operator": "DoesNotExist"})), THREE,
     {"kube-node1": 3}, "kube-node2"),
    # taints, tolerations, cordons, capacity
    (pod(), [node("a", taints=[NO_SCHEDULE]), node("b")], {"b": 9}, "b"),
    (pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]),
     [node("a", taints=[NO_SCHEDULE]), node("b")], {"b": 9}, "a"),
    (pod(tolerations=[{"operator": "Exists"}]), [node("a", taints=[NO_SCHEDULE])], {}, "a"),
    (pod(), [node("a", taints=[{**NO_SCHEDULE, "effect": "PreferNoSchedule"}])], {}, "a"),
    (pod(), [node("a", cordoned=True), node("b")], {"b": 5}, "b"),
    (pod(), [node("a", pods="2"), node("b", pods="10")], {"a": 2, "b": 5}, "b"),
    (pod(), [node("a", pods=None)], {"a": 500}, "a"),
    # a DaemonSet pod: pinned by matchFields, and it tolerates the cordon
    (pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["kube-node2"]}]}]}}}),
     THREE, {"kube-node2": 9}, "kube-node2"),
    (pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                       "effect": "NoSchedule"}]), [node("a", cordoned=True)], {}, "a"),
])
def test_chooses(the_pod: Obj, nodes: list[Obj], counts: dict[str, int], expected: str) -> None:
    assert choose_node(the_pod, nodes, counts) == (expected, "")


@pytest.mark.parametrize(("the_pod", "nodes", "counts", "message"), [
    (pod(nodeSelector={"node": "kube-node3"}), [*THREE[:2], node("kube-node3")], {},
     "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."),
    (pod(nodeSelector={"zone": "a"}),
     [node("a", {"zone": "a"}, cordoned=True), node("b", {"zone": "a"}, taints=[NO_SCHEDULE]),
      node("c", {"zone": "a"}, pods="1"), node("d"), node("e")], {"c": 1},
     "0/5 nodes are available: 1 Too many pods, 1 node(s) had untolerated taint, "
     "1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector."),
    (pod(), [], {}, "no nodes available to schedule pods"),
])
def test_fits_nowhere(the_pod: Obj, nodes: list[Obj], counts: dict[str, int],
                      message: str) -> None:
    assert choose_node(the_pod, nodes, counts) == (None, message)


def sized(name: str, cpu: str, memory: str) -> Obj:
    return {"metadata": {"name": name, "labels": {}}, "spec": {},
            "status": {"allocatable": {"pods": "110", "cpu": cpu, "memory": memory}}}


def asking(**requests: str) -> Obj:
    return pod(containers=[{"name": "c", "resources": {"requests": requests}}])


@pytest.mark.parametrize(("the_pod", "nodes", "requested", "expected"), [
    pytest.param(asking(cpu="500m"), [sized("a", "2", "1Gi")], {"a": {"cpu": 1.5}}, ("a", ""),
                 id="exactly-fits"),
    pytest.param(asking(cpu="501m"), [sized("a", "2", "1Gi")], {"a": {"cpu": 1.5}},
                 (None, "0/1 nodes are available: 1 Insufficient cpu."), id="one-milli-over"),
    pytest.param(asking(cpu="3", memory="2Gi"), [sized("a", "2", "1Gi"), sized("b", "4", "1Gi")],
                 {}, (None, "0/2 nodes are available: 1 Insufficient cpu, "
                            "2 Insufficient memory."), id="every-reason-counted"),
    pytest.param(asking(cpu="1"), [sized("a", "2", "1Gi"), sized("b", "2", "1Gi")],
                 {"a": {"cpu": 1.5}}, ("b", ""), id="skips-the-full-node"),
    pytest.param(asking(**{"example.com/gpu": "1"}), [sized("a", "2", "1Gi")], {},
                 (None, "0/1 nodes are available: 1 Insufficient example.com/gpu."),
                 id="resource-the-node-lacks"),
    pytest.param(pod(), [sized("a", "0", "0")], {"a": {"cpu": 5}}, ("a", ""),
                 id="asks-nothing-fits-anywhere"),
])
def test_node_resources_fit(the_pod: Obj, nodes: list[Obj], requested: dict[str, Any],
                            expected: tuple[str | None, str]) -> None:
    as_fractions = {n: {r: Fraction(v) for r, v in amounts.items()}
                    for n, amounts in requested.items()}
    assert choose_node(the_pod, nodes, {}, None, as_fractions) == expected
