"""The kinds of issue 12 item 1 below the HTTP layer: conversion (autoscaling/v1 HPA over v2
storage, events.k8s.io over core Events), printers, validation and defaults."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.api import conversion, defaults, printers, validation

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
Obj = dict[str, Any]

HPA_V1: Obj = {
    "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
             "targetCPUUtilizationPercentage": 50},
    "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 40},
}


def test_hpa_v1_converts_to_v2_and_back() -> None:
    stored = conversion.to_storage(HPA_V1, "autoscaling/v1")
    assert stored["apiVersion"] == "autoscaling/v2"
    assert stored["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    assert stored["status"]["currentMetrics"][0]["resource"]["current"] == {
        "averageUtilization": 40}
    assert "metadata" in stored and "annotations" not in stored["metadata"]
    back = conversion.from_storage(stored, "autoscaling/v1")
    assert back["spec"] == HPA_V1["spec"]
    assert back["status"] == HPA_V1["status"]
    assert "annotations" not in back["metadata"]


def test_hpa_v2_only_fields_ride_in_annotations_through_v1() -> None:
    pods = {"type": "Pods", "pods": {"metric": {"name": "qps"},
                                     "target": {"type": "AverageValue", "averageValue": "10"}}}
    v2: Obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web"},
               "spec": {"maxReplicas": 3, "metrics": [pods],
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}
    v1 = conversion.from_storage(v2, "autoscaling/v1")
    assert "targetCPUUtilizationPercentage" not in v1["spec"]
    assert set(v1["metadata"]["annotations"]) == {"autoscaling.alpha.kubernetes.io/metrics",
                                                  "autoscaling.alpha.kubernetes.io/behavior"}
    again = conversion.to_storage(v1, "autoscaling/v1")
    assert again["spec"] == v2["spec"] and "annotations" not in again["metadata"]


def test_events_k8s_io_event_is_a_core_event() -> None:
    event: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                  "note": "hi", "regarding": {"kind": "Pod", "name": "p"},
                  "reportingController": "c", "deprecatedCount": 3, "reason": "R"}
    core = conversion.to_storage(event, "events.k8s.io/v1")
    assert core == {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                    "message": "hi", "involvedObject": {"kind": "Pod", "name": "p"},
                    "reportingComponent": "c", "count": 3, "reason": "R"}
    assert conversion.from_storage(core, "events.k8s.io/v1") == event
    assert conversion.from_storage(core, "v1") is core


def _hpa(metrics: list[Obj], current: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "h", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4,
                     "metrics": metrics},
            "status": {"currentMetrics": current or [], "currentReplicas": 1}}


CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {
    "type": "Utilization", "averageUtilization": 80}}}
MEMORY = {"type": "Resource", "resource": {"name": "memory", "target": {
    "type": "AverageValue", "averageValue": "1024Mi"}}}
PODS = {"type": "Pods", "pods": {"metric": {"name": "qps"},
                                 "target": {"type": "AverageValue", "averageValue": "1k"}}}
OBJECT = {"type": "Object", "object": {"metric": {"name": "hits"},
                                       "target": {"type": "Value", "value": "100"}}}

HPA_TARGETS = [
    ("none", [], None, "<none>"),
    ("cpu-unknown", [CPU], None, "cpu: <unknown>/80%"),
    ("cpu-current", [CPU], [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 12}}}], "cpu: 12%/80%"),
    ("memory-canonical", [MEMORY], None, "memory: <unknown>/1Gi"),
    ("pods", [PODS], None, "<unknown>/1k"),
    ("object-value", [OBJECT], None, "<unknown>/100"),
    ("more", [CPU, MEMORY, PODS], None,
     "cpu: <unknown>/80%, memory: <unknown>/1Gi + 1 more..."),
]


@pytest.mark.parametrize(("metrics", "current", "targets"), [c[1:] for c in HPA_TARGETS],
                         ids=[c[0] for c in HPA_TARGETS])
def test_hpa_targets_column(metrics: list[Obj], current: list[Obj] | None,
                            targets: str) -> None:
    cells = printers.row_cells("HorizontalPodAutoscaler", _hpa(metrics, current), NOW)
    assert cells[:6] == ["h", "Deployment/web", targets, "<unset>", 4, 1]


CSR_CONDITIONS = [
    ("pending", [], None, "Pending"),
    ("approved", [{"type": "Approved"}], None, "Approved"),
    ("issued", [{"type": "Approved"}], "Y2VydA==", "Approved,Issued"),
    ("denied-wins", [{"type": "Approved"}, {"type": "Denied"}], None, "Denied"),
    ("failed", [{"type": "Approved"}, {"type": "Failed"}], None, "Approved,Failed"),
]


@pytest.mark.parametrize(("conditions", "certificate", "shown"),
                         [c[1:] for c in CSR_CONDITIONS], ids=[c[0] for c in CSR_CONDITIONS])
def test_csr_condition_column(conditions: list[Obj], certificate: str | None,
                              shown: str) -> None:
    status: Obj = {"conditions": conditions}
    if certificate:
        status["certificate"] = certificate
    csr = {"metadata": {"name": "c"}, "spec": {"signerName": "s", "username": "u",
                                               "expirationSeconds": 7200}, "status": status}
    # duration.HumanDuration: minutes up to three hours
    assert printers.row_cells("CertificateSigningRequest", csr, NOW)[2:] == ["s", "u", "120m",
                                                                             shown]


def test_quota_columns_split_requests_and_limits() -> None:
    quota = {"metadata": {"name": "q"}, "status": {
        "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1024Mi"},
        "used": {"pods": "1", "limits.cpu": "500m"}}}
    assert printers.row_cells("ResourceQuota", quota, NOW)[2:] == [
        "pods: 1/10, requests.memory: 0/1Gi", "limits.cpu: 500m/2"]


def test_binding_wide_columns_split_subjects() -> None:
    binding = {"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "g"},
                            {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"},
                            {"kind": "User", "name": "bob"}]}
    cells = printers.row_cells("RoleBinding", binding, NOW)
    assert cells[1] == "ClusterRole/view" and cells[3:] == ["alice, bob", "g", "ns:sa"]


RBAC_GROUP = "rbac.authorization.k8s.io"
INVALID = [
    ("role-without-verbs", "Role",
     {"rules": [{"apiGroups": [""], "resources": ["pods"]}]},
     "rules[0].verbs: Required value: verbs must contain at least one value"),
    ("role-without-api-group", "Role", {"rules": [{"resources": ["pods"], "verbs": ["get"]}]},
     "rules[0].apiGroups: Required value: resource rules must supply at least one api group"),
    ("role-with-url", "Role", {"rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]},
     "namespaced rules cannot apply to non-resource URLs"),
    ("binding-to-a-secret", "RoleBinding",
     {"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Secret", "name": "x"}},
     'roleRef.kind: Unsupported value: "Secret": supported values: "Role", "ClusterRole"'),
    ("cluster-binding-to-a-role", "ClusterRoleBinding",
     {"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "x"}},
     'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'),
    ("service-account-without-namespace", "RoleBinding",
     {"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "x"},
      "subjects": [{"kind": "ServiceAccount", "name": "sa"}]},
     "subjects[0].namespace: Required value"),
    ("pdb-both", "PodDisruptionBudget", {"spec": {"minAvailable": 1, "maxUnavailable": 1}},
     "minAvailable and maxUnavailable cannot be both set"),
    ("hpa-min-over-max", "HorizontalPodAutoscaler",
     {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "minReplicas": 5,
               "maxReplicas": 2}},
     "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"),
    ("reserved-priority-class", "PriorityClass", {"metadata": {"name": "system-x"}, "value": 1},
     "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"),
    ("apiservice-name", "APIService",
     {"metadata": {"name": "v1.wrong"}, "spec": {"group": "x.io", "version": "v1"}},
     'must be `spec.version+"."+spec.group`: "v1.x.io"'),
]


@pytest.mark.parametrize(("kind", "body", "message"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_validation_words_as_kube(kind: str, body: Obj, message: str) -> None:
    namespaced = kind in ("Role", "RoleBinding", "PodDisruptionBudget",
                          "HorizontalPodAutoscaler")
    meta = {"name": "x", **({"namespace": "default"} if namespaced else {}),
            **body.pop("metadata", {})}
    obj = defaults.apply_defaults(kind, {"kind": kind, "metadata": meta, **body})
    errors = [str(e) for e in validation.validate(kind, obj)]
    assert any(message in e for e in errors), errors


def test_rbac_names_are_path_segments() -> None:
    role = {"kind": "ClusterRole", "metadata": {"name": "system:controller:x"}, "rules": []}
    assert validation.validate("ClusterRole", role) == []
    slash = {"kind": "ClusterRole", "metadata": {"name": "a/b"}, "rules": []}
    assert "may not contain '/'" in str(validation.validate("ClusterRole", slash)[0])


def test_role_ref_cannot_change() -> None:
    ref = {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "a"}
    old = {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "d"}, "roleRef": ref}
    new = {**old, "roleRef": {**ref, "name": "other"}}
    assert "cannot change roleRef" in str(validation.validate("RoleBinding", new, old)[0])


def test_defaults_of_priority_class_and_hpa() -> None:
    pc = defaults.apply_defaults("PriorityClass", {"value": 5})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    assert defaults.apply_defaults("PriorityClass", {})["value"] == 0
    hpa = defaults.apply_defaults("HorizontalPodAutoscaler", {"spec": {
        "maxReplicas": 2, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}})
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    down = hpa["spec"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 30 and down["selectPolicy"] == "Max"
    assert hpa["spec"]["behavior"]["scaleUp"]["policies"][0] == {
        "type": "Pods", "value": 4, "periodSeconds": 15}
