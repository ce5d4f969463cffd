"""kube-apiserver's etcd key layout, both ways, and the allocation keys of a Service."""

from __future__ import annotations

import pytest

from tinykube.api import resources
from tinykube.store import etcd_keys

LAYOUT = [  # (storage resource, namespace, name, key as kube-apiserver writes it)
    ("core/pods", "default", "web-0", "/registry/pods/default/web-0"),
    ("core/namespaces", "", "default", "/registry/namespaces/default"),
    ("core/nodes", "", "n1", "/registry/minions/n1"),
    ("core/services", "default", "kubernetes", "/registry/services/specs/default/kubernetes"),
    ("core/endpoints", "default", "kubernetes",
     "/registry/services/endpoints/default/kubernetes"),
    ("core/replicationcontrollers", "ns", "rc", "/registry/controllers/ns/rc"),
    ("core/events", "ns", "e.1", "/registry/events/ns/e.1"),
    ("apps/deployments", "ns", "d", "/registry/deployments/ns/d"),
    ("apps/statefulsets", "ns", "s", "/registry/statefulsets/ns/s"),
    ("networking.k8s.io/ingresses", "ns", "i", "/registry/ingress/ns/i"),
    ("coordination.k8s.io/leases", "kube-system", "l", "/registry/leases/kube-system/l"),
    ("rbac.authorization.k8s.io/clusterroles", "", "admin", "/registry/clusterroles/admin"),
    ("apiextensions.k8s.io/customresourcedefinitions", "", "ws.example.com",
     "/registry/apiextensions.k8s.io/customresourcedefinitions/ws.example.com"),
    ("apiregistration.k8s.io/apiservices", "", "v1.apps",
     "/registry/apiregistration.k8s.io/apiservices/v1.apps"),
    ("example.com/widgets", "ns", "w", "/registry/example.com/widgets/ns/w"),
    ("example.com/clusterwidgets", "", "w", "/registry/example.com/clusterwidgets/w"),
]


@pytest.mark.parametrize(("resource", "namespace", "name", "key"), LAYOUT)
def test_layout_both_ways(resource: str, namespace: str, name: str, key: str) -> None:
    assert etcd_keys.object_key(resource, namespace, name) == key.encode()
    assert etcd_keys.parse(key.encode()) == (resource, namespace, name)


@pytest.mark.parametrize("key", [
    "/registry/ranges/serviceips/10.96.0.5", "/registry/ranges/servicenodeports/30001",
    "compact_rev_key", "/other/pods/a", "/registry/pods", "/registry/pods/a/b/c",
    "/registry/unknownthing/x"])
def test_other_keys_are_not_objects(key: str) -> None:
    assert etcd_keys.parse(key.encode()) is None


def test_every_builtin_resource_has_a_key_of_its_own() -> None:
    stored = {res.storage_key for res in resources.ALL}
    prefixes = {etcd_keys.prefix(key) for key in stored}
    assert len(prefixes) == len(stored)
    for key in stored:
        assert etcd_keys.parse(etcd_keys.object_key(key, "ns", "x")) == (key, "ns", "x")


@pytest.mark.parametrize(("spec", "keys"), [
    ({}, set()),
    ({"clusterIPs": ["None"]}, set()),
    ({"clusterIPs": ["10.96.0.7"], "ports": [{"port": 80}]},
     {b"/registry/ranges/serviceips/10.96.0.7"}),
    ({"clusterIPs": ["10.96.0.7"], "ports": [{"port": 80, "nodePort": 30080}]},
     {b"/registry/ranges/serviceips/10.96.0.7", b"/registry/ranges/servicenodeports/30080"}),
])
def test_allocation_keys(spec: dict[str, object], keys: set[bytes]) -> None:
    assert etcd_keys.allocation_keys(spec) == keys
    assert all(etcd_keys.parse_allocation(k) for k in keys)
