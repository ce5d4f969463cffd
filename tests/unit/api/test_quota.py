"""api.quota: what objects cost, which quotas count them, and admission's decision, as tables."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.api import quota

Obj = dict[str, Any]
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def container(name: str = "c", **resources: Obj) -> Obj:
    return {"name": name, "image": "nginx", **({"resources": resources} if resources else {})}


def pod(*containers: Obj, name: str = "p", init: tuple[Obj, ...] = (), phase: str = "Running",
        meta: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"containers": list(containers) or [container()], **spec}
    if init:
        body["initContainers"] = list(init)
    return {"metadata": {"name": name, **(meta or {})}, "spec": body, "status": {"phase": phase}}


def strings(usage: quota.Usage) -> dict[str, str]:
    return quota.to_strings(usage)


@pytest.mark.parametrize(("obj", "usage"), [
    pytest.param(pod(), {"count/pods": "1", "pods": "1"}, id="best-effort"),
    pytest.param(pod(container("a", requests={"cpu": "250m", "memory": "64Mi"},
                               limits={"cpu": "1", "memory": "128Mi"}),
                     container("b", requests={"cpu": "250m", "memory": "64Mi"})),
                 {"count/pods": "1", "pods": "1", "cpu": "500m", "requests.cpu": "500m",
                  "memory": "128Mi", "requests.memory": "128Mi", "limits.cpu": "1",
                  "limits.memory": "128Mi"}, id="sums-containers"),
    pytest.param(pod(container(requests={"cpu": "100m"}),
                     init=(container("i", requests={"cpu": "2"}),)),
                 {"count/pods": "1", "pods": "1", "cpu": "2", "requests.cpu": "2"},
                 id="init-container-peak"),
    pytest.param(pod(container(requests={"cpu": "100m"}),
                     init=(container("s", requests={"cpu": "100m"}) | {"restartPolicy": "Always"},
                           container("i", requests={"cpu": "150m"}))),
                 {"count/pods": "1", "pods": "1", "cpu": "250m", "requests.cpu": "250m"},
                 id="sidecar-adds-and-runs-beside-later-init"),
    pytest.param(pod(container(requests={"ephemeral-storage": "1Gi", "hugepages-2Mi": "4Mi",
                                         "example.com/gpu": "1"})),
                 {"count/pods": "1", "pods": "1", "ephemeral-storage": "1Gi",
                  "requests.ephemeral-storage": "1Gi", "hugepages-2Mi": "4Mi",
                  "requests.hugepages-2Mi": "4Mi", "requests.example.com/gpu": "1"},
                 id="storage-hugepages-extended"),
    pytest.param(pod(container(requests={"cpu": "1"}), phase="Succeeded"), {"count/pods": "1"},
                 id="terminal-counts-only-as-object"),
    pytest.param(pod(meta={"deletionTimestamp": "2026-12-01T11:00:00Z",
                           "deletionGracePeriodSeconds": 30}), {"count/pods": "1"},
                 id="past-its-grace-period"),
    pytest.param(pod(meta={"deletionTimestamp": "2026-12-01T12:00:10Z",
                           "deletionGracePeriodSeconds": 30}),
                 {"count/pods": "1", "pods": "1"}, id="still-terminating"),
])
def test_pod_usage(obj: Obj, usage: dict[str, str]) -> None:
    assert strings(quota.pod_usage(obj, NOW)) == usage


@pytest.mark.parametrize(("spec", "usage"), [
    pytest.param({"ports": [{"port": 80}]}, {"services": "1", "count/services": "1"},
                 id="cluster-ip"),
    pytest.param({"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]},
                 {"services": "1", "count/services": "1", "services.nodeports": "2"},
                 id="node-port"),
    pytest.param({"type": "LoadBalancer", "ports": [{"port": 80}]},
                 {"services": "1", "count/services": "1", "services.nodeports": "1",
                  "services.loadbalancers": "1"}, id="load-balancer"),
    pytest.param({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
                  "ports": [{"port": 80}, {"port": 81, "nodePort": 30001}]},
                 {"services": "1", "count/services": "1", "services.nodeports": "1",
                  "services.loadbalancers": "1"}, id="load-balancer-explicit-ports-only"),
])
def test_service_usage(spec: Obj, usage: dict[str, str]) -> None:
    assert strings(quota.service_usage({"spec": spec}, NOW)) == usage


@pytest.mark.parametrize(("claim", "usage"), [
    pytest.param({"spec": {"resources": {"requests": {"storage": "1Gi"}}}},
                 {"persistentvolumeclaims": "1", "count/persistentvolumeclaims": "1",
                  "requests.storage": "1Gi"}, id="no-class"),
    pytest.param({"spec": {"storageClassName": "gold",
                           "resources": {"requests": {"storage": "1Gi"}}}},
                 {"persistentvolumeclaims": "1", "count/persistentvolumeclaims": "1",
                  "requests.storage": "1Gi",
                  "gold.storageclass.storage.k8s.io/requests.storage": "1Gi",
                  "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1"}, id="class"),
    pytest.param({"metadata": {"annotations": {quota.BETA_CLASS_ANNOTATION: "old"}},
                  "spec": {"storageClassName": "gold"}},
                 {"persistentvolumeclaims": "1", "count/persistentvolumeclaims": "1",
                  "old.storageclass.storage.k8s.io/persistentvolumeclaims": "1"},
                 id="beta-annotation-wins"),
])
def test_claim_usage(claim: Obj, usage: dict[str, str]) -> None:
    assert strings(quota.claim_usage(claim, NOW)) == usage


@pytest.mark.parametrize(("group", "resource", "names"), [
    pytest.param("", "pods", ["cpu", "count/pods", "limits.memory", "pods",
                              "requests.example.com/gpu", "requests.hugepages-2Mi"], id="pods"),
    pytest.param("", "services", ["count/services", "services", "services.nodeports"],
                 id="services"),
    pytest.param("", "configmaps", ["configmaps", "count/configmaps"], id="legacy-alias"),
    pytest.param("apps", "deployments", ["count/deployments.apps"], id="object-count"),
    pytest.param("", "persistentvolumeclaims",
                 ["gold.storageclass.storage.k8s.io/requests.storage", "requests.storage"],
                 id="claims"),
])
def test_evaluator_names(group: str, resource: str, names: list[str]) -> None:
    everything = ["cpu", "count/pods", "limits.memory", "pods", "requests.example.com/gpu",
                  "requests.hugepages-2Mi", "count/services", "services", "services.nodeports",
                  "configmaps", "count/configmaps", "count/deployments.apps", "requests.storage",
                  "gold.storageclass.storage.k8s.io/requests.storage", "secrets"]
    assert quota.evaluator_for(group, resource).matching(everything) == sorted(names)


def test_tracked_kinds() -> None:
    assert quota.tracked(["pods", "requests.cpu", "secrets", "count/deployments.apps",
                          "count/services", "requests.storage"]) == {
        ("", "pods"), ("", "secrets"), ("apps", "deployments"), ("", "services"),
        ("", "persistentvolumeclaims")}


def scoped(*scopes: str, expressions: list[Obj] | None = None) -> Obj:
    spec: Obj = {"hard": {"pods": "10"}, "scopes": list(scopes)}
    if expressions:
        spec["scopeSelector"] = {"matchExpressions": expressions}
    return {"metadata": {"name": "q"}, "spec": spec}


BURSTABLE = pod(container(requests={"cpu": "1"}), name="burstable")
JOB = pod(name="job", activeDeadlineSeconds=60)
HIGH = pod(name="high", priorityClassName="high")


@pytest.mark.parametrize(("quota_obj", "counted"), [
    pytest.param(scoped(), ["burstable", "high", "job"], id="unscoped"),
    pytest.param(scoped("Terminating"), ["job"], id="terminating"),
    pytest.param(scoped("NotTerminating"), ["burstable", "high"], id="not-terminating"),
    pytest.param(scoped("BestEffort"), ["high", "job"], id="best-effort"),
    pytest.param(scoped("NotBestEffort"), ["burstable"], id="not-best-effort"),
    pytest.param(scoped("BestEffort", "NotTerminating"), ["high"], id="both"),
    pytest.param(scoped(expressions=[{"scopeName": "PriorityClass", "operator": "In",
                                      "values": ["high"]}]), ["high"], id="priority-in"),
    pytest.param(scoped(expressions=[{"scopeName": "PriorityClass", "operator": "NotIn",
                                      "values": ["high"]}]), ["burstable", "job"],
                 id="priority-not-in"),
    pytest.param(scoped(expressions=[{"scopeName": "PriorityClass", "operator": "Exists"}]),
                 ["high"], id="priority-exists"),
])
def test_scopes_select_pods(quota_obj: Obj, counted: list[str]) -> None:
    evaluator = quota.evaluator_for("", "pods")
    assert [p["metadata"]["name"] for p in (BURSTABLE, HIGH, JOB)
            if quota.in_scope(evaluator, quota_obj, p)] == counted


def test_scoped_quota_never_counts_other_objects() -> None:
    assert not quota.in_scope(quota.evaluator_for("", "services"), scoped("BestEffort"), {})


@pytest.mark.parametrize(("hard", "objects", "used"), [
    pytest.param({"pods": "2", "count/pods": "5"},
                 {("", "pods"): [pod(name="a"), pod(name="b", phase="Failed")]},
                 {"pods": "1", "count/pods": "2"}, id="terminal-pods"),
    pytest.param({"requests.memory": "1Gi", "limits.cpu": "2"},
                 {("", "pods"): [pod(container(requests={"memory": "512Mi"})),
                                 pod(container(requests={"memory": "256Mi"}))]},
                 {"requests.memory": "768Mi", "limits.cpu": "0"}, id="compute-and-zero"),
    pytest.param({"configmaps": "3", "count/configmaps": "3", "secrets": "1"},
                 {("", "configmaps"): [{}, {}], ("", "secrets"): []},
                 {"configmaps": "2", "count/configmaps": "2", "secrets": "0"}, id="counts"),
    pytest.param({"count/deployments.apps": "1", "widgets": "3"},
                 {("apps", "deployments"): [{}]}, {"count/deployments.apps": "1"},
                 id="unmeasured-name-has-no-used"),
])
def test_quota_status(hard: dict[str, str], objects: dict[tuple[str, str], list[Obj]],
                      used: dict[str, str]) -> None:
    status = quota.quota_status({"metadata": {"name": "q"}, "spec": {"hard": hard}}, objects,
                                NOW)
    assert status == {"hard": dict(sorted(hard.items())), "used": dict(sorted(used.items()))}


def synced(name: str, hard: dict[str, str], used: dict[str, str] | None, **spec: Any) -> Obj:
    status: Obj = {"hard": hard}
    if used is not None:
        status["used"] = used
    return {"metadata": {"name": name}, "spec": {"hard": hard, **spec}, "status": status}


@pytest.mark.parametrize(("quotas", "operation", "resource", "obj", "old", "decision"), [
    pytest.param([synced("q", {"pods": "2"}, {"pods": "1"})], "CREATE", "pods", pod(), None,
                 quota.Decision(used={"q": {"pods": "2"}}), id="fits"),
    pytest.param([synced("q", {"pods": "2"}, {"pods": "2"})], "CREATE", "pods", pod(), None,
                 quota.Decision("exceeded quota: q, requested: pods=1, used: pods=2, "
                                "limited: pods=2"), id="exceeded"),
    pytest.param([synced("q", {"pods": "2"}, None)], "CREATE", "pods", pod(), None,
                 quota.Decision("status unknown for quota: q, resources: pods"),
                 id="usage-unknown"),
    pytest.param([{"metadata": {"name": "q"}, "spec": {"hard": {"pods": "0"}}}], "CREATE",
                 "pods", pod(), None, quota.Decision(), id="not-synced-yet"),
    pytest.param([synced("q", {"cpu": "1", "limits.memory": "1Gi"}, {"cpu": "0"})],
                 "CREATE", "pods", pod(container("a"), container("b", requests={"cpu": "1"})),
                 None, quota.Decision("failed quota: q: must specify cpu for: a; "
                                      "limits.memory for: a,b"), id="constraints"),
    pytest.param([synced("a", {"pods": "5"}, {"pods": "0"}),
                  synced("b", {"pods": "1"}, {"pods": "1"})], "CREATE", "pods", pod(), None,
                 quota.Decision("exceeded quota: b, requested: pods=1, used: pods=1, "
                                "limited: pods=1"), id="any-quota-refuses"),
    pytest.param([synced("q", {"pods": "1"}, {"pods": "1"}, scopes=["Terminating"])],
                 "CREATE", "pods", pod(), None, quota.Decision(), id="out-of-scope"),
    pytest.param([synced("q", {"pods": "1"}, {"pods": "1"})], "UPDATE", "pods", pod(), pod(),
                 quota.Decision(), id="pod-updates-are-free"),
    pytest.param([synced("q", {"services.nodeports": "2"}, {"services.nodeports": "1"})],
                 "UPDATE", "services",
                 {"spec": {"type": "NodePort", "ports": [{"port": 80}]}},
                 {"metadata": {"resourceVersion": "5"},
                  "spec": {"type": "NodePort", "ports": [{"port": 80}]}},
                 quota.Decision(), id="unchanged-update"),
    pytest.param([synced("q", {"secrets": "1", "configmaps": "1"},
                         {"secrets": "1", "configmaps": "0"})], "CREATE", "configmaps", {},
                 None, quota.Decision(used={"q": {"configmaps": "1", "secrets": "1"}}),
                 id="other-names-untouched"),
    pytest.param([synced("q", {"count/deployments.apps": "1"},
                         {"count/deployments.apps": "1"})], "CREATE", "deployments", {}, None,
                 quota.Decision("exceeded quota: q, requested: count/deployments.apps=1, "
                                "used: count/deployments.apps=1, "
                                "limited: count/deployments.apps=1"), id="object-count"),
])
def test_charge(quotas: list[Obj], operation: str, resource: str, obj: Obj, old: Obj | None,
                decision: quota.Decision) -> None:
    group = "apps" if resource == "deployments" else ""
    assert quota.charge(quotas, operation, group, resource, obj, old, NOW) == decision


def test_quantities_keep_the_first_nonzero_format() -> None:
    total = quota.add({"memory": quota.ZERO}, quota.parse_list({"memory": "512Mi"}))
    total = quota.add(total, quota.parse_list({"memory": "512Mi"}))
    assert strings(total) == {"memory": "1Gi"}
    assert strings(quota.add(quota.parse_list({"cpu": "500m"}),
                             quota.parse_list({"cpu": "0.5"}))) == {"cpu": "1"}
