"""Server-side defaults: one table row per defaulted field, plus the seed manifest end to end."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.api import defaults

SEED = Path(__file__).resolve().parents[2] / "testdata" / "web.yaml"  # the seed manifest


def _get(obj: Any, path: str) -> Any:
    """`a.b[0].c` lookup."""
    node = obj
    for part in path.replace("]", "").replace("[", ".").split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


def _pod_spec(**extra: Any) -> dict[str, Any]:
    return {"containers": [{"name": "c", "image": "nginx:1.11", **extra}]}


SERVICE = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
POD = {"metadata": {"name": "p"}, "spec": _pod_spec(ports=[{"containerPort": 80}])}
STS = {"metadata": {"name": "web"}, "spec": {"template": {"spec": _pod_spec()},
                                             "volumeClaimTemplates": [{"metadata": {"name": "d"}}]}}
DEPLOY = {"metadata": {"name": "d"}, "spec": {"template": {"spec": _pod_spec()}}}


@pytest.mark.parametrize(("kind", "obj", "path", "expected"), [
    pytest.param("Service", SERVICE, "spec.type", "ClusterIP", id="svc-type"),
    pytest.param("Service", SERVICE, "spec.sessionAffinity", "None", id="svc-affinity"),
    pytest.param("Service", SERVICE, "spec.ports[0].protocol", "TCP", id="svc-protocol"),
    pytest.param("Service", SERVICE, "spec.ports[0].targetPort", 80, id="svc-targetport"),
    pytest.param("Service", SERVICE, "spec.internalTrafficPolicy", "Cluster", id="svc-itp"),
    pytest.param("Service", SERVICE, "spec.ipFamilies", ["IPv4"], id="svc-families"),
    pytest.param("Service", SERVICE, "spec.ipFamilyPolicy", "SingleStack", id="svc-family-policy"),
    pytest.param("Pod", POD, "spec.restartPolicy", "Always", id="pod-restart"),
    pytest.param("Pod", POD, "spec.dnsPolicy", "ClusterFirst", id="pod-dns"),
    pytest.param("Pod", POD, "spec.terminationGracePeriodSeconds", 30, id="pod-grace"),
    pytest.param("Pod", POD, "spec.schedulerName", "default-scheduler", id="pod-scheduler"),
    pytest.param("Pod", POD, "spec.securityContext", {}, id="pod-security-context"),
    pytest.param("Pod", POD, "spec.enableServiceLinks", True, id="pod-service-links"),
    pytest.param("Pod", POD, "spec.containers[0].ports[0].protocol", "TCP", id="ctr-port-protocol"),
    pytest.param("Pod", POD, "spec.containers[0].terminationMessagePath", "/dev/termination-log",
                 id="ctr-termination-path"),
    pytest.param("Pod", POD, "spec.containers[0].terminationMessagePolicy", "File",
                 id="ctr-termination-policy"),
    pytest.param("Pod", POD, "spec.containers[0].imagePullPolicy", "IfNotPresent",
                 id="ctr-pull-tagged"),
    pytest.param("Pod", POD, "spec.containers[0].resources", {}, id="ctr-resources"),
    pytest.param("StatefulSet", STS, "spec.replicas", 1, id="sts-replicas"),
    pytest.param("StatefulSet", STS, "spec.podManagementPolicy", "OrderedReady", id="sts-pmp"),
    pytest.param("StatefulSet", STS, "spec.updateStrategy",
                 {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, id="sts-strategy"),
    pytest.param("StatefulSet", STS, "spec.revisionHistoryLimit", 10, id="sts-history"),
    pytest.param("StatefulSet", STS, "spec.persistentVolumeClaimRetentionPolicy",
                 {"whenDeleted": "Retain", "whenScaled": "Retain"}, id="sts-retention"),
    pytest.param("StatefulSet", STS, "spec.template.spec.restartPolicy", "Always",
                 id="sts-template"),
    pytest.param("StatefulSet", STS, "spec.volumeClaimTemplates[0].spec.volumeMode", "Filesystem",
                 id="sts-pvc-mode"),
    pytest.param("StatefulSet", STS, "spec.volumeClaimTemplates[0].status.phase", "Pending",
                 id="sts-pvc-phase"),
    pytest.param("Deployment", DEPLOY, "spec.strategy",
                 {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                             "maxSurge": "25%"}},
                 id="deploy-strategy"),
    pytest.param("Deployment", DEPLOY, "spec.replicas", 1, id="deploy-replicas"),
    pytest.param("Deployment", DEPLOY, "spec.revisionHistoryLimit", 10, id="deploy-history"),
    pytest.param("Deployment", DEPLOY, "spec.progressDeadlineSeconds", 600, id="deploy-deadline"),
    pytest.param("Deployment", DEPLOY, "spec.template.spec.dnsPolicy", "ClusterFirst",
                 id="deploy-template"),
    pytest.param("ReplicaSet", DEPLOY, "spec.replicas", 1, id="rs-replicas"),
    pytest.param("Namespace", {"metadata": {"name": "dev"}}, "status.phase", "Active",
                 id="ns-phase"),
    pytest.param("Namespace", {"metadata": {"name": "dev"}}, "spec.finalizers", ["kubernetes"],
                 id="ns-finalizers"),
    pytest.param("EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]},
                 "ports[0].protocol", "TCP", id="slice-protocol"),
    pytest.param("Endpoints", {"subsets": [{"ports": [{"port": 80}]}]},
                 "subsets[0].ports[0].protocol", "TCP", id="endpoints-protocol"),
    pytest.param("Secret", {"metadata": {"name": "s"}}, "type", "Opaque", id="secret-type"),
    pytest.param("PersistentVolume", {"spec": {}}, "status.phase", "Pending", id="pv-phase"),
    pytest.param("PersistentVolume", {"spec": {}}, "spec.persistentVolumeReclaimPolicy",
                 "Retain", id="pv-reclaim"),
    pytest.param("Pod", {"spec": _pod_spec(resources={"limits": {"cpu": "1"},
                                                      "requests": {"memory": "1Gi"}})},
                 "spec.containers[0].resources.requests", {"cpu": "1", "memory": "1Gi"},
                 id="pod-requests-from-limits"),
    pytest.param("Deployment", {"spec": {"template": {"spec": _pod_spec(
        resources={"limits": {"cpu": "1"}})}}},
                 "spec.template.spec.containers[0].resources", {"limits": {"cpu": "1"}},
                 id="template-requests-left-alone"),
    pytest.param("Pod", {"spec": {**_pod_spec(), "serviceAccount": "old"}},
                 "spec.serviceAccountName", "old", id="pod-service-account-from-alias"),
    pytest.param("Deployment", {"spec": {"template": {"spec": {
        **_pod_spec(), "serviceAccountName": "builder"}}}},
                 "spec.template.spec.serviceAccount", "builder",
                 id="template-service-account-alias"),
])
def test_default_value(kind: str, obj: dict[str, Any], path: str, expected: Any) -> None:
    assert _get(defaults.apply_defaults(kind, obj), path) == expected


def test_namespace_name_label() -> None:
    ns = {"metadata": {"name": "dev", "labels": {"team": "a"}}}
    labels = defaults.apply_defaults("Namespace", ns)["metadata"]["labels"]
    assert labels == {"team": "a", "kubernetes.io/metadata.name": "dev"}


@pytest.mark.parametrize(("spec", "path", "expected"), [
    pytest.param({"type": "NodePort", "ports": [{"port": 80}]}, "externalTrafficPolicy",
                 "Cluster", id="nodeport-etp"),
    pytest.param({"type": "LoadBalancer", "ports": [{"port": 80}]},
                 "allocateLoadBalancerNodePorts", True, id="lb-allocate"),
    pytest.param({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]},
                 "sessionAffinityConfig", {"clientIP": {"timeoutSeconds": 10800}},
                 id="clientip-timeout"),
    pytest.param({"ports": [{"port": 80, "targetPort": "http"}]}, "ports[0].targetPort", "http",
                 id="named-targetport-kept"),
    pytest.param({"ports": [{"port": 53, "protocol": "UDP"}]}, "ports[0].protocol", "UDP",
                 id="explicit-protocol-kept"),
    pytest.param({"clusterIP": "None", "ports": [{"port": 80}]}, "clusterIPs", ["None"],
                 id="headless-clusterips"),
    pytest.param({"clusterIP": "None"}, "ipFamilyPolicy", "SingleStack", id="headless-policy"),
])
def test_service_variants(spec: dict[str, Any], path: str, expected: Any) -> None:
    result = defaults.apply_defaults("Service", {"metadata": {"name": "s"}, "spec": spec})
    assert _get(result["spec"], path) == expected


@pytest.mark.parametrize("spec", [
    pytest.param({"type": "ExternalName", "externalName": "example.com"}, id="external-name"),
])
def test_external_name_gets_no_ip_fields(spec: dict[str, Any]) -> None:
    result = defaults.apply_defaults("Service", {"metadata": {"name": "s"}, "spec": spec})["spec"]
    for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "clusterIPs"):
        assert key not in result


def test_cluster_ip_service_has_no_external_traffic_policy() -> None:
    result = defaults.apply_defaults("Service", SERVICE)["spec"]
    assert "externalTrafficPolicy" not in result
    assert "allocateLoadBalancerNodePorts" not in result


@pytest.mark.parametrize(("image", "policy"), [
    pytest.param("nginx", "Always", id="untagged"),
    pytest.param("nginx:latest", "Always", id="latest"),
    pytest.param("nginx:1.11", "IfNotPresent", id="tagged"),
    pytest.param("localhost:5000/nginx", "Always", id="registry-port-untagged"),
    pytest.param("localhost:5000/nginx:1.2", "IfNotPresent", id="registry-port-tagged"),
    pytest.param("nginx@sha256:" + "a" * 64, "IfNotPresent", id="digest"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    pod = {"spec": {"containers": [{"name": "c", "image": image}]}}
    result = defaults.apply_defaults("Pod", pod)
    assert result["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_probe_defaults() -> None:
    probe = {"httpGet": {"port": 80}}
    pod = {"spec": _pod_spec(livenessProbe=probe, readinessProbe={"tcpSocket": {"port": 80}})}
    container = defaults.apply_defaults("Pod", pod)["spec"]["containers"][0]
    assert container["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
    }
    assert container["readinessProbe"]["periodSeconds"] == 10


@pytest.mark.parametrize(("volume", "expected"), [
    pytest.param({"name": "v", "hostPath": {"path": "/x"}},
                 {"name": "v", "hostPath": {"path": "/x", "type": ""}}, id="hostpath-type"),
    pytest.param({"name": "v"}, {"name": "v", "emptyDir": {}}, id="no-source-is-emptydir"),
    pytest.param({"name": "v", "emptyDir": None}, {"name": "v", "emptyDir": {}},
                 id="null-emptydir"),
    pytest.param({"name": "v", "configMap": {"name": "cm"}},
                 {"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}, id="configmap"),
    pytest.param({"name": "v", "secret": {"secretName": "s"}},
                 {"name": "v", "secret": {"secretName": "s", "defaultMode": 420}}, id="secret"),
    pytest.param({"name": "v", "secret": {"secretName": "s", "defaultMode": 256}},
                 {"name": "v", "secret": {"secretName": "s", "defaultMode": 256}},
                 id="explicit-mode-kept"),
])
def test_volume_defaults(volume: dict[str, Any], expected: dict[str, Any]) -> None:
    pod = {"spec": {**_pod_spec(), "volumes": [volume]}}
    assert defaults.apply_defaults("Pod", pod)["spec"]["volumes"] == [expected]


@pytest.mark.parametrize(("resources", "qos"), [
    pytest.param({}, "BestEffort", id="best-effort"),
    pytest.param({"requests": {"cpu": "100m"}}, "Burstable", id="burstable"),
    pytest.param({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed", id="limits-only"),
    pytest.param({"limits": {"cpu": "1", "memory": "1Gi"},
                  "requests": {"cpu": "500m", "memory": "1Gi"}}, "Burstable", id="unequal"),
])
def test_initial_pod_status(resources: dict[str, Any], qos: str) -> None:
    pod = {"spec": _pod_spec(resources=resources)}
    assert defaults.initial_pod_status(pod) == {"phase": "Pending", "qosClass": qos}


@pytest.mark.parametrize("kind", ["Service", "Pod", "StatefulSet", "Deployment", "Namespace"])
def test_input_not_mutated_and_idempotent(kind: str) -> None:
    obj = {"Service": SERVICE, "Pod": POD, "StatefulSet": STS, "Deployment": DEPLOY,
           "Namespace": {"metadata": {"name": "dev"}}}[kind]
    snapshot = copy.deepcopy(obj)
    once = defaults.apply_defaults(kind, obj)
    assert obj == snapshot
    assert defaults.apply_defaults(kind, once) == once


def test_explicit_values_are_kept() -> None:
    sts = {"spec": {"replicas": 3, "podManagementPolicy": "Parallel",
                    "updateStrategy": {"type": "OnDelete"},
                    "template": {"spec": {**_pod_spec(), "restartPolicy": "Always",
                                          "dnsPolicy": "Default"}}}}
    spec = defaults.apply_defaults("StatefulSet", sts)["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "OnDelete"}
    assert spec["template"]["spec"]["dnsPolicy"] == "Default"


def test_deployment_recreate_gets_no_rolling_update() -> None:
    deploy = {"spec": {"strategy": {"type": "Recreate"}, "template": {"spec": _pod_spec()}}}
    assert defaults.apply_defaults("Deployment", deploy)["spec"]["strategy"] == {
        "type": "Recreate"}


def test_unknown_kind_is_copied_unchanged() -> None:
    lease = {"metadata": {"name": "n"}, "spec": {"holderIdentity": "x"}}
    result = defaults.apply_defaults("Lease", lease)
    assert result == lease
    assert result is not lease


def test_seed_statefulset_golden() -> None:
    """The seed StatefulSet's template after defaulting, as kube-apiserver stores it."""
    sts = list(yaml.safe_load_all(SEED.read_text()))[1]
    template = defaults.apply_defaults("StatefulSet", sts)["spec"]["template"]["spec"]
    assert template == {
        "containers": [{
            "name": "nginx", "image": "nginx:1.11",
            "ports": [{"containerPort": 80, "name": "web", "protocol": "TCP"}],
            "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}],
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "resources": {},
        }],
        "nodeSelector": {"node": "kube-node3"},
        "volumes": [{"name": "www", "hostPath": {"path": "/mydir", "type": ""}}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
        "securityContext": {}, "enableServiceLinks": True,
    }
