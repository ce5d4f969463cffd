"""The Node authorizer: a node's requests decided by what is bound to it (upstream's
node_authorizer_test.go cases, on a real store), then RBAC, with kube's 403 message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import resources
from tinykube.apiserver import nodeauthz, rbac, rbac_bootstrap, request_info
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.bootstrap import bootstrap
from tinykube.apiserver.rbac import User
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

N1 = User("system:node:n1", ("system:nodes", "system:authenticated"))
POD_SPEC: dict[str, Any] = {
    "serviceAccountName": "sa1", "imagePullSecrets": [{"name": "pull1"}],
    "containers": [{"name": "c", "image": "busybox",
                    "envFrom": [{"configMapRef": {"name": "env-cm1"}}],
                    "env": [{"name": "X", "valueFrom": {"secretKeyRef": {
                        "name": "env-secret1", "key": "k"}}}]}],
    "volumes": [{"name": "s", "secret": {"secretName": "vol-secret1"}},
                {"name": "c", "configMap": {"name": "vol-cm1"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-secret1"}}]}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "claim1"}}]}


def _pod(name: str, node: str, namespace: str = "ns1") -> dict[str, Any]:
    spec = {**POD_SPEC, "nodeName": node} if node else dict(POD_SPEC)
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    rbac_bootstrap.reconcile(registry)
    registry.create(resources.must("", "v1", "namespaces"), {"metadata": {"name": "ns1"}})
    pods = resources.must("", "v1", "pods")
    registry.create(pods, _pod("pod1", "n1"))
    registry.create(pods, _pod("pod2", "n2"))
    registry.create(pods, _pod("unscheduled", ""))
    registry.create(resources.must("", "v1", "persistentvolumes"), {
        "metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp"},
                 "claimRef": {"namespace": "ns1", "name": "claim1"}}})
    registry.create(resources.must("", "v1", "persistentvolumes"), {
        "metadata": {"name": "pv-other"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp"},
                 "claimRef": {"namespace": "ns1", "name": "claim-other"}}})
    yield store
    store.close()


def _attrs(verb: str, resource: str, name: str = "", namespace: str = "ns1", *,
           group: str = "", subresource: str = "", selector: str = "") -> request_info.Attributes:
    return request_info.Attributes(verb=verb, resource_request=True, api_group=group,
                                   namespace=namespace, resource=resource,
                                   subresource=subresource, name=name, field_selector=selector)


NO_REL = "no relationship found between node 'n1' and this object"
DECISIONS: dict[str, tuple[request_info.Attributes, bool, str]] = {
    # secrets and configmaps: only those of pods bound to the node, one at a time
    "volume secret": (_attrs("get", "secrets", "vol-secret1"), True, ""),
    "env secret": (_attrs("get", "secrets", "env-secret1"), True, ""),
    "projected secret": (_attrs("get", "secrets", "proj-secret1"), True, ""),
    "pull secret": (_attrs("get", "secrets", "pull1"), True, ""),
    "watch of one secret": (_attrs("watch", "secrets", "vol-secret1",
                                   selector="metadata.name=vol-secret1"), True, ""),
    "unrelated secret": (_attrs("get", "secrets", "other"), False, NO_REL),
    "secret of another namespace": (_attrs("get", "secrets", "vol-secret1", "default"),
                                    False, NO_REL),
    "list of secrets": (_attrs("list", "secrets"), False, "No Object name found"),
    "secret update": (_attrs("update", "secrets", "vol-secret1"), False,
                      "can only read resources of this type"),
    "cluster-wide secrets": (_attrs("list", "secrets", namespace=""), False,
                             "can only read namespaced object of this type"),
    "volume configmap": (_attrs("get", "configmaps", "vol-cm1"), True, ""),
    "envFrom configmap": (_attrs("list", "configmaps", "env-cm1"), True, ""),
    # claims, volumes, tokens
    "claim": (_attrs("get", "persistentvolumeclaims", "claim1"), True, ""),
    "claim list": (_attrs("list", "persistentvolumeclaims"), False,
                   "can only get individual resources of this type"),
    "claim status patch": (_attrs("patch", "persistentvolumeclaims", "claim1",
                                  subresource="status"), True, ""),
    "volume of its claim": (_attrs("get", "persistentvolumes", "pv1", ""), True, ""),
    "volume of another claim": (_attrs("get", "persistentvolumes", "pv-other", ""), False,
                                NO_REL),
    "token of its pod's account": (_attrs("create", "serviceaccounts", "sa1",
                                          subresource="token"), True, ""),
    "token of another account": (_attrs("create", "serviceaccounts", "default",
                                        subresource="token"), False, NO_REL),
    "get of an account": (_attrs("get", "serviceaccounts", "sa1"), False,
                          "can only create tokens for individual service accounts"),
    # pods: its own, and lists by spec.nodeName
    "its pod": (_attrs("get", "pods", "pod1"), True, ""),
    "another node's pod": (_attrs("get", "pods", "pod2"), False, NO_REL),
    "list of its pods": (_attrs("list", "pods", namespace="",
                                selector="spec.nodeName=n1"), True, ""),
    "watch of its pods": (_attrs("watch", "pods", namespace="",
                                 selector="spec.nodeName==n1"), True, ""),
    "list of all pods": (_attrs("list", "pods", namespace=""), False,
                         "can only list/watch pods with spec.nodeName field selector"),
    "list of another node's pods": (_attrs("list", "pods", namespace="",
                                           selector="spec.nodeName=n2"), False,
                                    "can only list/watch pods with spec.nodeName field "
                                    "selector"),
    "pod status": (_attrs("patch", "pods", "pod2", subresource="status"), True, ""),
    "mirror pod create": (_attrs("create", "pods"), True, ""),
    "pod update": (_attrs("update", "pods", "pod1"), False, ""),
    "pod exec": (_attrs("create", "pods", "pod1", subresource="exec"), False, ""),
    # nodes: reads of its own only
    "its node": (_attrs("get", "nodes", "n1", ""), True, ""),
    "another node": (_attrs("get", "nodes", "n2", ""), False,
                     "node 'n1' cannot read 'n2', only its own Node object"),
    "all nodes": (_attrs("list", "nodes", namespace=""), False,
                  "node 'n1' cannot read all nodes, only its own Node object"),
    "node status": (_attrs("patch", "nodes", "n1", "", subresource="status"), True, ""),
    "node delete": (_attrs("delete", "nodes", "n1", ""), False, ""),
    # leases
    "its lease": (_attrs("update", "leases", "n1", "kube-node-lease",
                         group="coordination.k8s.io"), True, ""),
    "another lease": (_attrs("get", "leases", "n2", "kube-node-lease",
                             group="coordination.k8s.io"), False,
                      "can only access node lease with the same name as the requesting node"),
    "a lease elsewhere": (_attrs("get", "leases", "n1", "kube-system",
                                 group="coordination.k8s.io"), False,
                          'can only access leases in the "kube-node-lease" system namespace'),
    # the static rules (system:node)
    "services": (_attrs("list", "services", namespace=""), True, ""),
    "events": (_attrs("create", "events"), True, ""),
    "token review": (_attrs("create", "tokenreviews", namespace="",
                            group="authentication.k8s.io"), True, ""),
    "deployments": (_attrs("list", "deployments", group="apps"), False, ""),
}


@pytest.mark.parametrize("case", DECISIONS, ids=list(DECISIONS))
def test_node_decisions(store: Store, case: str) -> None:
    attrs, allowed, reason = DECISIONS[case]
    authorizer = nodeauthz.NodeAuthorizer(store, rbac_bootstrap.node_rules)
    assert authorizer.authorize(N1, attrs) == (allowed, reason)
    authorizer.close()


IDENTITIES = {
    "a node": (N1, ("n1", True)),
    "not in system:nodes": (User("system:node:n1", ("system:authenticated",)), ("", False)),
    "no node prefix": (User("kubelet", ("system:nodes",)), ("", False)),
    "a node of no name": (User("system:node:", ("system:nodes",)), ("", True)),
}


@pytest.mark.parametrize("case", IDENTITIES, ids=list(IDENTITIES))
def test_node_identity(case: str) -> None:
    user, expected = IDENTITIES[case]
    assert nodeauthz.node_identity(user) == expected


def test_the_graph_follows_binding_and_deletion(store: Store) -> None:
    """A pod bound after the first request relates its secret at once; deleted, no more."""
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    authorizer = nodeauthz.NodeAuthorizer(store, rbac_bootstrap.node_rules)
    wanted = _attrs("get", "secrets", "late-secret")
    assert authorizer.authorize(N1, wanted) == (False, NO_REL)
    pods = resources.must("", "v1", "pods")
    late = {"metadata": {"name": "late", "namespace": "ns1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}],
                     "volumes": [{"name": "s", "secret": {"secretName": "late-secret"}}]}}
    registry.create(pods, late)
    assert authorizer.authorize(N1, wanted) == (True, "")
    registry.delete(pods, "ns1", "late", {"gracePeriodSeconds": 0})
    assert authorizer.authorize(N1, wanted) == (False, NO_REL)
    authorizer.close()


def test_kube_forbidden_message_for_a_node(store: Store) -> None:
    """Node, then RBAC: the 403 ends with the Node authorizer's reason."""
    nodes = nodeauthz.NodeAuthorizer(store, rbac_bootstrap.node_rules)
    authorizer = rbac.RBACAuthorizer(store, first=nodes.authorize)
    attrs = _attrs("get", "secrets", "other")
    allowed, reason = authorizer.decide(N1, attrs)
    assert not allowed
    assert rbac.forbidden(N1, attrs, reason).message == (
        'secrets "other" is forbidden: User "system:node:n1" cannot get resource "secrets" in '
        "API group \"\" in the namespace \"ns1\": no relationship found between node 'n1' and "
        "this object")
    assert authorizer.decide(N1, _attrs("get", "secrets", "vol-secret1")) == (True, "")
    assert authorizer.decide(User("bob", ("system:authenticated",)),
                             _attrs("get", "secrets", "vol-secret1")) == (False, "")
    authorizer.close()
    nodes.close()
