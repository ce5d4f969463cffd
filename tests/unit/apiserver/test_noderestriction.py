"""NodeRestriction: what a node may not write, with upstream's refusals (its admission_test.go
cases), and nothing for other users."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import errors
from tinykube.apiserver import noderestriction as nr
from tinykube.apiserver.rbac import User

N1 = User("system:node:n1", ("system:nodes", "system:authenticated"))
STORED: dict[tuple[str, str, str], dict[str, Any]] = {
    ("core/nodes", "", "n1"): {"metadata": {"name": "n1", "uid": "uid-n1"}},
    ("core/pods", "ns", "mine"): {"metadata": {"name": "mine", "uid": "u-mine"},
                                  "spec": {"nodeName": "n1"}},
    ("core/pods", "ns", "theirs"): {"metadata": {"name": "theirs", "uid": "u-theirs"},
                                    "spec": {"nodeName": "n2"}},
}
OWNER = {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-n1", "controller": True}


def _lookup(key: str, namespace: str, name: str) -> dict[str, Any] | None:
    return STORED.get((key, namespace, name))


def _mirror(**changes: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"name": "static", "annotations": {nr.MIRROR_ANNOTATION: "x"},
                     "ownerReferences": [OWNER]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        pod[section][field] = value
    return pod


def _node(labels: dict[str, str] | None = None, taints: list[Any] | None = None,
          name: str = "n1") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints} if taints is not None else {}}


def _w(op: str, resource: str, name: str = "", obj: Any = None, old: Any = None, *,
       group: str = "", sub: str = "", ns: str = "ns") -> nr.Write:
    return nr.Write(op, group, resource, sub, ns, name, obj, old)


C, U, D = nr.CREATE, nr.UPDATE, nr.DELETE
REFUSALS: dict[str, tuple[nr.Write, str | None]] = {
    # pods: mirror pods only, bound to and owned by the node, naming nothing
    "mirror pod": (_w(C, "pods", obj=_mirror()), None),
    "not a mirror pod": (_w(C, "pods", obj=_mirror(metadata__annotations={})),
                         'pods "static" is forbidden: pod does not have '
                         '"kubernetes.io/config.mirror" annotation, node "n1" can only create '
                         "mirror pods"),
    "bound elsewhere": (_w(C, "pods", obj=_mirror(spec__nodeName="n2")),
                        'pods "static" is forbidden: node "n1" can only create pods with '
                        "spec.nodeName set to itself"),
    "no owner": (_w(C, "pods", obj=_mirror(metadata__ownerReferences=[])),
                 'pods "static" is forbidden: node "n1" can only create pods with an owner '
                 "reference set to itself"),
    "not a controller": (_w(C, "pods", obj=_mirror(metadata__ownerReferences=[
        {**OWNER, "controller": False}])), 'pods "static" is forbidden: node "n1" can only '
                                           "create pods with a controller owner reference set "
                                           "to itself"),
    "another uid": (_w(C, "pods", obj=_mirror(metadata__ownerReferences=[
        {**OWNER, "uid": "x"}])), 'pods "static" is forbidden: node n1 UID mismatch: '
                                  "expected x got uid-n1"),
    "with a service account": (_w(C, "pods", obj=_mirror(spec__serviceAccountName="default")),
                               'pods "static" is forbidden: node "n1" can not create pods '
                               "that reference a service account"),
    "with a secret": (_w(C, "pods", obj=_mirror(spec__volumes=[
        {"name": "s", "secret": {"secretName": "s"}}])),
                      'pods "static" is forbidden: node "n1" can not create pods that '
                      "reference secrets"),
    "with a configmap": (_w(C, "pods", obj=_mirror(spec__volumes=[
        {"name": "c", "configMap": {"name": "c"}}])),
                         'pods "static" is forbidden: node "n1" can not create pods that '
                         "reference configmaps"),
    "with a claim": (_w(C, "pods", obj=_mirror(spec__volumes=[
        {"name": "c", "persistentVolumeClaim": {"claimName": "c"}}])),
                     'pods "static" is forbidden: node "n1" can not create pods that '
                     "reference persistentvolumeclaims"),
    "delete its pod": (_w(D, "pods", "mine", old=STORED[("core/pods", "ns", "mine")]), None),
    "delete another's pod": (_w(D, "pods", "theirs", old=STORED[("core/pods", "ns", "theirs")]),
                             'pods "theirs" is forbidden: node "n1" can only delete pods with '
                             "spec.nodeName set to itself"),
    "update a pod": (_w(U, "pods", "mine", obj=STORED[("core/pods", "ns", "mine")],
                        old=STORED[("core/pods", "ns", "mine")]),
                     'pods "mine" is forbidden: unexpected operation "UPDATE", node "n1" can '
                     "only create and delete mirror pods"),
    "status of its pod": (_w(U, "pods", "mine", STORED[("core/pods", "ns", "mine")],
                             STORED[("core/pods", "ns", "mine")], sub="status"), None),
    "status of another's pod": (_w(U, "pods", "theirs", STORED[("core/pods", "ns", "theirs")],
                                   STORED[("core/pods", "ns", "theirs")], sub="status"),
                                'pods "theirs" is forbidden: node "n1" can only update pod '
                                "status for pods with spec.nodeName set to itself"),
    "labels through status": (_w(U, "pods", "mine", {"metadata": {"labels": {"a": "b"}}},
                                 STORED[("core/pods", "ns", "mine")], sub="status"),
                              'pods "mine" is forbidden: node "n1" cannot update labels '
                              "through pod status"),
    "evict another's pod": (_w(C, "pods", "theirs", sub="eviction"),
                            'pods "theirs" is forbidden: node n1 can only evict pods with '
                            "spec.nodeName set to itself"),
    "pod exec": (_w(C, "pods", "mine", sub="exec"),
                 "pods \"mine\" is forbidden: unexpected pod subresource \"exec\", only "
                 "'status' and 'eviction' are allowed"),
    # nodes: its own only, no restricted labels, no taints
    "register itself": (_w(C, "nodes", obj=_node({"kubernetes.io/hostname": "n1",
                                                  "node.kubernetes.io/x": "y", "mine": "1"}),
                           ns=""), None),
    "register another": (_w(C, "nodes", obj=_node(name="n2"), ns=""),
                         'nodes "n2" is forbidden: node "n1" is not allowed to modify node '
                         '"n2"'),
    "modify another": (_w(U, "nodes", "n2", _node(name="n2"), _node(name="n2"), ns=""),
                       'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'),
    "status of another": (_w(U, "nodes", "n2", _node(name="n2"), _node(name="n2"), ns="",
                             sub="status"),
                          'nodes "n2" is forbidden: node "n1" is not allowed to modify node '
                          '"n2"'),
    "restricted label": (_w(C, "nodes", obj=_node(
        {"node-restriction.kubernetes.io/pool": "a", "foo.node-restriction.kubernetes.io/b": ""}),
        ns=""), 'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
                "foo.node-restriction.kubernetes.io/b, node-restriction.kubernetes.io/pool"),
    "node-role label": (_w(C, "nodes", obj=_node({"node-role.kubernetes.io/worker": ""}), ns=""),
                        'nodes "n1" is forbidden: node "n1" is not allowed to set the following '
                        "labels: node-role.kubernetes.io/worker"),
    "change a restricted label": (_w(U, "nodes", "n1", _node(
        {"node-restriction.kubernetes.io/pool": "b"}), _node(
        {"node-restriction.kubernetes.io/pool": "a"}), ns=""),
        'nodes "n1" is forbidden: is not allowed to modify labels: '
        "node-restriction.kubernetes.io/pool"),
    "keep a restricted label": (_w(U, "nodes", "n1", _node(
        {"node-restriction.kubernetes.io/pool": "a", "x": "1"}), _node(
        {"node-restriction.kubernetes.io/pool": "a"}), ns=""), None),
    "taints": (_w(U, "nodes", "n1", _node(taints=[]), _node(taints=[
        {"key": "k", "effect": "NoSchedule"}]), ns=""),
        'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'),
    # claims, tokens, leases
    "claim spec": (_w(U, "persistentvolumeclaims", "c", {"spec": {"a": 1}}, {"spec": {}}),
                   'persistentvolumeclaims "c" is forbidden: may only update PVC status'),
    "claim capacity": (_w(U, "persistentvolumeclaims", "c",
                          {"status": {"capacity": {"storage": "2Gi"}}},
                          {"status": {"capacity": {"storage": "1Gi"}}}, sub="status"), None),
    "claim phase": (_w(U, "persistentvolumeclaims", "c", {"status": {"phase": "Lost"}},
                       {"status": {"phase": "Bound"}}, sub="status"),
                    'persistentvolumeclaims "c" is forbidden: node "n1" is not allowed to '
                    "update fields other than status.capacity and status.conditions: status"),
    "token for its pod": (_w(C, "serviceaccounts", "sa", {"spec": {"boundObjectRef": {
        "apiVersion": "v1", "kind": "Pod", "name": "mine", "uid": "u-mine"}}}, sub="token"),
        None),
    "unbound token": (_w(C, "serviceaccounts", "sa", {"spec": {}}, sub="token"),
                      'serviceaccounts "sa" is forbidden: node requested token not bound to a '
                      "pod"),
    "token for another's pod": (_w(C, "serviceaccounts", "sa", {"spec": {"boundObjectRef": {
        "apiVersion": "v1", "kind": "Pod", "name": "theirs", "uid": "u-theirs"}}},
        sub="token"), 'serviceaccounts "sa" is forbidden: node requested token bound to a pod '
                      "scheduled on a different node"),
    "its lease": (_w(C, "leases", obj={"metadata": {"name": "n1"}}, group="coordination.k8s.io",
                     ns="kube-node-lease"), None),
    "another lease": (_w(U, "leases", "n2", {}, {}, group="coordination.k8s.io",
                         ns="kube-node-lease"),
                      'leases.coordination.k8s.io "n2" is forbidden: can only access node lease '
                      "with the same name as the requesting node"),
    "configmaps are not its business": (_w(U, "configmaps", "c", {}, {}), None),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_node_writes(case: str) -> None:
    write, refusal = REFUSALS[case]
    if refusal is None:
        nr.check(N1, write, _lookup)
        return
    with pytest.raises(errors.Forbidden) as raised:
        nr.check(N1, write, _lookup)
    assert raised.value.message == refusal


def test_other_users_are_not_restricted() -> None:
    nr.check(User("bob", ("system:authenticated",)),
             _w(U, "nodes", "n2", _node(name="n2"), _node(name="n2", taints=[{}]), ns=""),
             _lookup)


def test_a_node_of_no_name() -> None:
    with pytest.raises(errors.Forbidden, match='could not determine node from user '
                                               '"system:node:"'):
        nr.check(User("system:node:", ("system:nodes",)), _w(C, "pods", obj=_mirror()), _lookup)
