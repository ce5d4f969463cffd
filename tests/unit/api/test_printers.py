"""Golden tests for the server-side Table printers (kube-apiserver printers.go behaviour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tinykube.api import printers

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ts(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: timedelta = timedelta(hours=1), **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}",
            "resourceVersion": "42", "creationTimestamp": ts(age), **extra}


S, M, H, D = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))

# --- human_duration ---------------------------------------------------------------------------

DURATIONS = [
    ("future-2s", -2 * S, "<invalid>"),
    ("future-1.5s", timedelta(seconds=-1.5), "0s"),
    ("future-1s", -S, "0s"),
    ("zero", timedelta(0), "0s"),
    ("sub-second", timedelta(milliseconds=999), "0s"),
    ("119s", 119 * S, "119s"),
    ("120s", 120 * S, "2m"),
    ("2m1s", 121 * S, "2m1s"),
    ("9m59s", 10 * M - S, "9m59s"),
    ("10m", 10 * M, "10m"),
    ("10m59s", 11 * M - S, "10m"),
    ("179m", 3 * H - S, "179m"),
    ("3h", 3 * H, "3h"),
    ("3h5m", 3 * H + 5 * M + 30 * S, "3h5m"),
    ("7h59m", 8 * H - S, "7h59m"),
    ("8h", 8 * H, "8h"),
    ("47h", 48 * H - S, "47h"),
    ("2d", 48 * H, "2d"),
    ("2d5h", 2 * D + 5 * H, "2d5h"),
    ("7d23h", 8 * D - S, "7d23h"),
    ("8d", 8 * D, "8d"),
    ("729d", 730 * D - S, "729d"),
    ("2y", 730 * D, "2y"),
    ("2y10d", 740 * D, "2y10d"),
    ("7y364d", 8 * 365 * D - S, "7y364d"),
    ("8y", 8 * 365 * D, "8y"),
    ("12y", 12 * 365 * D + 100 * D, "12y"),
]


@pytest.mark.parametrize(("delta", "expected"), [d[1:] for d in DURATIONS],
                         ids=[d[0] for d in DURATIONS])
def test_human_duration(delta: timedelta, expected: str) -> None:
    assert printers.human_duration(delta) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, "<unknown>"), ("", "<unknown>"), ("0001-01-01T00:00:00Z", "<unknown>"),
    ("garbage", "<unknown>"), (ts(90 * S), "90s"), ("2024-05-01T11:59:30.123456Z", "29s"),
], ids=["none", "empty", "go-zero", "garbage", "rfc3339", "micro"])
def test_translate_timestamp(value: Any, expected: str) -> None:
    assert printers.translate_timestamp(value, NOW) == expected


# --- objects ----------------------------------------------------------------------------------

STS_POD = {
    "metadata": meta("web-0", 5 * M, labels={"app": "nginx"}),
    "spec": {"hostname": "web-0", "subdomain": "nginx", "nodeName": "node-1",
             "containers": [{"name": "nginx", "image": "nginx:1.11"}]},
    "status": {
        "phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
        "conditions": [{"type": "Initialized", "status": "True"},
                       {"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0, "started": True,
                               "state": {"running": {"startedAt": ts(5 * M)}}}],
    },
}
RESTARTED_POD = {
    "metadata": meta("app-1", 2 * D),
    "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "s:1"}]},
    "status": {
        "phase": "Running", "podIPs": [{"ip": "10.244.2.7"}, {"ip": "fd00::7"}],
        "containerStatuses": [
            {"name": "app", "ready": True, "restartCount": 2,
             "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                          "finishedAt": ts(3 * M)}}},
            {"name": "side", "ready": False, "restartCount": 1,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 2, "finishedAt": ts(40 * S)}}},
        ],
    },
}
TERMINATING_POD = {
    "metadata": meta("web-1", 10 * M, deletionTimestamp=ts(-30 * S)),
    "spec": {"nodeName": "node-2", "containers": [{"name": "nginx", "image": "nginx"}]},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.244.2.9"}],
               "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0,
                                      "state": {"running": {}}}]},
}
PENDING_POD = {
    "metadata": meta("pending", 30 * S),
    "spec": {"containers": [{"name": "c", "image": "i"}],
             "readinessGates": [{"conditionType": "example.com/gate"}]},
    "status": {"phase": "Pending", "nominatedNodeName": "node-3",
               "conditions": [{"type": "example.com/gate", "status": "False"}]},
}
INIT_POD = {
    "metadata": meta("init", 20 * S),
    "spec": {"initContainers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"},
                                {"name": "sidecar", "image": "i", "restartPolicy": "Always"}],
             "containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
        {"name": "b", "restartCount": 3, "state": {"waiting": {"reason": "PodInitializing"}}},
    ]},
}
INIT_FAILED_POD = {
    "metadata": meta("init-crash", 20 * S),
    "spec": {"initContainers": [{"name": "a", "image": "i"}], "containers": [{"name": "c"}]},
    "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "a", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
}
SUCCEEDED_POD = {
    "metadata": meta("job-x", 1 * H),
    "spec": {"containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
}
GATED_POD = {
    "metadata": meta("gated", 5 * S),
    "spec": {"containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
}

POD_ROWS = [
    ("sts-pod", STS_POD, ["web-0", "1/1", "Running", "0", "5m", "10.244.1.5", "node-1", "<none>",
                          "<none>"]),
    ("restarted", RESTARTED_POD, ["app-1", "1/2", "CrashLoopBackOff", "3 (40s ago)", "2d",
                                  "10.244.2.7", "<none>", "<none>", "<none>"]),
    ("terminating", TERMINATING_POD, ["web-1", "1/1", "Terminating", "0", "10m", "10.244.2.9",
                                      "node-2", "<none>", "<none>"]),
    ("pending-gates", PENDING_POD, ["pending", "0/1", "Pending", "0", "30s", "<none>", "<none>",
                                    "node-3", "0/1"]),
    ("init-progress", INIT_POD, ["init", "0/2", "Init:1/3", "3", "20s", "<none>", "<none>",
                                 "<none>", "<none>"]),
    ("init-crash", INIT_FAILED_POD, ["init-crash", "0/1", "Init:CrashLoopBackOff", "1", "20s",
                                     "<none>", "<none>", "<none>", "<none>"]),
    ("succeeded", SUCCEEDED_POD, ["job-x", "0/1", "Completed", "0", "60m", "<none>", "<none>",
                                  "<none>", "<none>"]),
    ("scheduling-gated", GATED_POD, ["gated", "0/1", "SchedulingGated", "0", "5s", "<none>",
                                     "<none>", "<none>", "<none>"]),
]


def svc(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta(name, D), "spec": spec, "status": status or {}}


SERVICE_ROWS = [
    ("headless", svc("nginx", {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                               "selector": {"app": "nginx"},
                               "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}),
     ["nginx", "ClusterIP", "None", "<none>", "80/TCP", "24h", "app=nginx"]),
    ("nginx-service", svc("nginx-service", {
        "type": "ClusterIP", "clusterIP": "10.107.124.218", "clusterIPs": ["10.107.124.218"],
        "externalIPs": ["192.168.128.158"], "selector": {"component": "nginx"},
        "ports": [{"name": "nginx-http", "port": 80, "protocol": "TCP"},
                  {"name": "nginx-https", "port": 443, "protocol": "TCP"}]}),
     ["nginx-service", "ClusterIP", "10.107.124.218", "192.168.128.158", "80/TCP,443/TCP", "24h",
      "component=nginx"]),
    ("nodeport", svc("np", {"type": "NodePort", "clusterIPs": ["10.96.0.20"],
                            "selector": {"b": "2", "a": "1"},
                            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                                      {"port": 53, "nodePort": 31053, "protocol": "UDP"}]}),
     ["np", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP,53:31053/UDP", "24h", "a=1,b=2"]),
    ("lb-pending", svc("lb", {"type": "LoadBalancer", "clusterIPs": ["10.96.0.30"],
                              "ports": [{"port": 443, "nodePort": 32443}]}),
     ["lb", "LoadBalancer", "10.96.0.30", "<pending>", "443:32443/TCP", "24h", "<none>"]),
    ("lb-ingress", svc("lb2", {"type": "LoadBalancer", "clusterIPs": ["10.96.0.31"],
                               "externalIPs": ["192.0.2.9"], "ports": [{"port": 80}]},
                       {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"},
                                                     {"ip": "203.0.113.10"}]}}),
     ["lb2", "LoadBalancer", "10.96.0.31", "203.0.113.10,lb.example.com,192.0.2.9", "80/TCP",
      "24h", "<none>"]),
    ("external-name", svc("ext", {"type": "ExternalName", "externalName": "db.example.com"}),
     ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "24h", "<none>"]),
    ("clusterip-only-legacy-field", svc("old", {"clusterIP": "10.96.0.5", "ports": [{"port": 1}]}),
     ["old", "ClusterIP", "10.96.0.5", "<none>", "1/TCP", "24h", "<none>"]),
]

TEMPLATE = {"metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.11"},
                                    {"name": "sidecar", "image": "busybox"}]}}

NODE = {
    "metadata": meta("node-1", 3 * D, labels={
        "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
        "kubernetes.io/role": "infra", "kubernetes.io/hostname": "node-1"}),
    "spec": {"unschedulable": True},
    "status": {
        "conditions": [{"type": "MemoryPressure", "status": "False"},
                       {"type": "Ready", "status": "True"}],
        "addresses": [{"type": "Hostname", "address": "node-1"},
                      {"type": "InternalIP", "address": "172.18.0.2"}],
        "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12",
                     "kernelVersion": "6.1.0", "containerRuntimeVersion": ""},
    },
}
BARE_NODE = {"metadata": meta("node-2", 90 * S), "spec": {}, "status": {}}

ENDPOINTS = {
    "metadata": meta("web", 2 * H),
    "subsets": [
        {"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.6"}],
         "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]},
    ],
}
HEADLESS_NO_PORTS = {"metadata": meta("raw", 2 * H),
                     "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]}

SLICE = {
    "metadata": meta("nginx-abc12", 2 * H, labels={"kubernetes.io/service-name": "nginx"}),
    "addressType": "IPv4",
    "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
    "endpoints": [{"addresses": [f"10.244.1.{i}"], "hostname": f"web-{i}",
                   "conditions": {"ready": True}} for i in range(5)],
}
SLICE_PORTS = {
    "metadata": meta("many-ports", 2 * H), "addressType": "IPv6",
    "ports": [{"port": 1}, {"name": "named"}, {}, {"port": 4}, {"port": 5}], "endpoints": [],
}

EVENT = {
    "metadata": meta("web-0.17c", 10 * M),
    "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default",
                       "fieldPath": "spec.containers{nginx}"},
    "reason": "Pulled", "message": "  Container image pulled\n", "type": "Normal",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": ts(10 * M), "lastTimestamp": ts(2 * M), "count": 4,
}
SERIES_EVENT = {
    "metadata": meta("svc.1", 1 * H),
    "involvedObject": {"kind": "Service"},
    "reason": "Sync", "message": "m", "type": "Warning",
    "eventTime": "2024-05-01T11:00:00.000000Z", "reportingComponent": "tinykube-controller",
    "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:00.000000Z"},
}
SINGLETON_EVENT = {
    "metadata": meta("new.1", 1 * H), "involvedObject": {"kind": "Node", "name": "n"},
    "reason": "R", "type": "Normal", "eventTime": "2024-05-01T11:58:00.000000Z",
    "reportingComponent": "ctrl", "reportingInstance": "ctrl-1",
}

PVC_BOUND = {
    "metadata": meta("www-web-0", 4 * D),
    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
             "volumeName": "pvc-123", "volumeMode": "Filesystem",
             "resources": {"requests": {"storage": "1Gi"}}},
    "status": {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
               "capacity": {"storage": "2Gi"}},
}
PVC_PENDING = {
    "metadata": meta("data", 1 * M, deletionTimestamp=ts(0 * S),
                     annotations={"volume.beta.kubernetes.io/storage-class": "legacy"}),
    "spec": {"resources": {"requests": {"storage": "1Gi"}}, "volumeAttributesClassName": "fast"},
    "status": {"phase": "Pending"},
}

CELL_CASES: list[tuple[str, str, dict[str, Any], list[Any]]] = [
    *[("Pod", case_id, obj, cells) for case_id, obj, cells in POD_ROWS],
    *[("Service", case_id, obj, cells) for case_id, obj, cells in SERVICE_ROWS],
    ("StatefulSet", "sts", {"metadata": meta("web", 3 * H),
                            "spec": {"replicas": 2, "template": TEMPLATE},
                            "status": {"readyReplicas": 1, "replicas": 2}},
     ["web", "1/2", "3h", "nginx,sidecar", "nginx:1.11,busybox"]),
    ("StatefulSet", "sts-defaults", {"metadata": meta("db", 3 * H), "spec": {}, "status": {}},
     ["db", "0/1", "3h", "", ""]),
    ("Deployment", "deploy", {
        "metadata": meta("frontend", 25 * H),
        "spec": {"replicas": 3, "template": TEMPLATE,
                 "selector": {"matchLabels": {"app": "nginx"},
                              "matchExpressions": [{"key": "tier", "operator": "In",
                                                    "values": ["web", "api"]}]}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}},
     ["frontend", "2/3", 3, 2, "25h", "nginx,sidecar", "nginx:1.11,busybox",
      "app=nginx,tier in (api,web)"]),
    ("ReplicaSet", "rs", {"metadata": meta("frontend-5d8", 25 * H),
                          "spec": {"replicas": 3, "template": TEMPLATE,
                                   "selector": {"matchLabels": {"app": "nginx"}}},
                          "status": {"replicas": 3, "readyReplicas": 2}},
     ["frontend-5d8", 3, 3, 2, "25h", "nginx,sidecar", "nginx:1.11,busybox", "app=nginx"]),
    ("ReplicaSet", "rs-no-selector", {"metadata": meta("x", H), "spec": {"replicas": 0}},
     ["x", 0, 0, 0, "60m", "", "", "<none>"]),
    ("Endpoints", "several-subsets", ENDPOINTS,
     ["web", "10.244.1.5:80,10.244.2.6:80,10.244.1.5:443 + 2 more...", "120m"]),
    ("Endpoints", "ipv6-join", {"metadata": meta("v6", H),
                                "subsets": [{"addresses": [{"ip": "fd00::1"}],
                                             "ports": [{"port": 53}]}]},
     ["v6", "[fd00::1]:53", "60m"]),
    ("Endpoints", "no-ports", HEADLESS_NO_PORTS, ["raw", "10.0.0.1,10.0.0.2", "120m"]),
    ("Endpoints", "no-subsets", {"metadata": meta("empty", H)}, ["empty", "<none>", "60m"]),
    ("EndpointSlice", "five-endpoints", SLICE,
     ["nginx-abc12", "IPv4", "80", "10.244.1.0,10.244.1.1,10.244.1.2 + 2 more...", "120m"]),
    ("EndpointSlice", "ports-more-unset", SLICE_PORTS,
     ["many-ports", "IPv6", "1,named,* + 2 more...", "<unset>", "120m"]),
    ("Node", "roles-unschedulable", NODE,
     ["node-1", "Ready,SchedulingDisabled", "control-plane,infra,worker", "3d", "v1.32.4",
      "172.18.0.2", "<none>", "Debian GNU/Linux 12", "6.1.0", "<unknown>"]),
    ("Node", "bare", BARE_NODE,
     ["node-2", "Unknown", "<none>", "90s", "", "<none>", "<none>", "<unknown>", "<unknown>",
      "<unknown>"]),
    ("Node", "not-ready", {"metadata": meta("n3", H),
                           "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
     ["n3", "NotReady", "<none>", "60m", "", "<none>", "<none>", "<unknown>", "<unknown>",
      "<unknown>"]),
    ("Namespace", "ns", {"metadata": meta("kube-system", 10 * D), "status": {"phase": "Active"}},
     ["kube-system", "Active", "10d"]),
    ("Event", "pulled", EVENT,
     ["2m", "Normal", "Pulled", "pod/web-0", "spec.containers{nginx}", "kubelet, node-1",
      "Container image pulled", "10m", 4, "web-0.17c"]),
    ("Event", "series", SERIES_EVENT,
     ["60s", "Warning", "Sync", "service", "", "tinykube-controller", "m", "60m", 7, "svc.1"]),
    ("Event", "singleton", SINGLETON_EVENT,
     ["2m", "Normal", "R", "node/n", "", "ctrl, ctrl-1", "", "2m", 1, "new.1"]),
    ("ConfigMap", "cm", {"metadata": meta("kube-root-ca.crt", 5 * D),
                         "data": {"ca.crt": "x", "b": "y"}, "binaryData": {"c": "AA=="}},
     ["kube-root-ca.crt", 3, "5d"]),
    ("Secret", "secret", {"metadata": meta("tls", 5 * D), "type": "kubernetes.io/tls",
                          "data": {"tls.crt": "", "tls.key": ""}},
     ["tls", "kubernetes.io/tls", 2, "5d"]),
    ("ServiceAccount", "sa", {"metadata": meta("default", 5 * D)}, ["default", 0, "5d"]),
    ("PersistentVolumeClaim", "bound", PVC_BOUND,
     ["www-web-0", "Bound", "pvc-123", "2Gi", "RWO,RWX", "standard", "<unset>", "4d",
      "Filesystem"]),
    ("PersistentVolumeClaim", "terminating-pending", PVC_PENDING,
     ["data", "Terminating", "", "", "", "legacy", "fast", "60s", "<unset>"]),
    ("ControllerRevision", "sts-owned", {
        "metadata": meta("web-6b7c", 3 * H, ownerReferences=[
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True,
             "uid": "u"}]), "revision": 2},
     ["web-6b7c", "statefulset.apps/web", 2, "3h"]),
    ("ControllerRevision", "orphan", {"metadata": meta("rev", H), "revision": 1},
     ["rev", "<none>", 1, "60m"]),
    ("Lease", "held", {"metadata": meta("kube-controller-manager", H),
                       "spec": {"holderIdentity": "cm_1234"}},
     ["kube-controller-manager", "cm_1234", "60m"]),
    ("Lease", "free", {"metadata": meta("free", H), "spec": {}}, ["free", "", "60m"]),
    ("RuntimeClass", "rc", {"metadata": meta("gvisor", H), "handler": "runsc"},
     ["gvisor", "runsc", "60m"]),
    ("Scale", "scale", {"metadata": meta("web", H), "spec": {"replicas": 3},
                        "status": {"replicas": 2, "selector": "app=nginx"}},
     ["web", 3, 2, "60m"]),
    ("Binding", "default-printer", {"metadata": meta("x", 90 * S)},
     ["x", "2024-05-01T11:58:30Z"]),
    # Kinds served without a controller of their own (issue 9 item 5).
    ("Job", "running-work-queue", {
        "metadata": meta("pi", 2 * M), "spec": {"parallelism": 3, "selector": {
            "matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"startTime": ts(90 * S), "succeeded": 1}},
     ["pi", "Running", "1/1 of 3", "90s", "2m", "pi", "perl",
      "batch.kubernetes.io/controller-uid=u1"]),
    ("Job", "complete", {
        "metadata": meta("done", H), "spec": {"completions": 2, "parallelism": 1},
        "status": {"startTime": ts(H), "completionTime": ts(50 * M), "succeeded": 2,
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                  {"type": "Complete", "status": "True"}]}},
     ["done", "Complete", "2/2", "10m", "60m", "", "", "<none>"]),
    ("Job", "not-started-suspended", {
        "metadata": meta("later", M), "spec": {"completions": 1, "suspend": True},
        "status": {"conditions": [{"type": "Suspended", "status": "True"},
                                  {"type": "Failed", "status": "False"}]}},
     ["later", "Suspended", "0/1", "", "60s", "", "", "<none>"]),
    ("Job", "terminating-before-suspended", {
        "metadata": meta("gone", M, deletionTimestamp=ts(S)), "spec": {},
        "status": {"conditions": [{"type": "Suspended", "status": "True"}]}},
     ["gone", "Terminating", "0/1", "", "60s", "", "", "<none>"]),
    ("CronJob", "scheduled", {
        "metadata": meta("hello", D), "spec": {
            "schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": False,
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "h", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ts(3 * M)}},
     ["hello", "*/5 * * * *", "Etc/UTC", "False", 1, "3m", "24h", "h", "busybox", "<none>"]),
    ("CronJob", "never-scheduled", {"metadata": meta("cj", H), "spec": {"schedule": "@daily"}},
     ["cj", "@daily", "<none>", "<unset>", 0, "<none>", "60m", "", "", "<none>"]),
    ("DaemonSet", "ds", {
        "metadata": meta("agent", H), "spec": {
            "selector": {"matchLabels": {"name": "agent"}},
            "template": {"spec": {"nodeSelector": {"disk": "ssd", "arch": "amd64"},
                                  "containers": [{"name": "a", "image": "busybox"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 1, "numberAvailable": 2}},
     ["agent", 3, 3, 2, 1, 2, "arch=amd64,disk=ssd", "60m", "a", "busybox", "name=agent"]),
    ("ReplicationController", "rc", {
        "metadata": meta("rc1", H), "spec": {"replicas": 2, "selector": {"app": "rc1"},
                                             "template": {"spec": {"containers": [
                                                 {"name": "a", "image": "nginx"}]}}},
        "status": {"replicas": 2, "readyReplicas": 1}},
     ["rc1", 2, 2, 1, "60m", "a", "nginx", "app=rc1"]),
    ("PersistentVolume", "bound", {
        "metadata": meta("pv1", D, annotations={
            "volume.beta.kubernetes.io/storage-class": "legacy"}),
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard",
                 "claimRef": {"namespace": "default", "name": "data"},
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}},
     ["pv1", "1Gi", "RWO,RWX", "Retain", "Bound", "default/data", "legacy", "<unset>", "",
      "24h", "Filesystem"]),
    ("PersistentVolume", "terminating", {
        "metadata": meta("pv2", M, deletionTimestamp=ts(S)),
        "spec": {"capacity": {"storage": "5Gi"}, "persistentVolumeReclaimPolicy": "Delete",
                 "volumeAttributesClassName": "gold"},
        "status": {"phase": "Released", "reason": "Lost"}},
     ["pv2", "5Gi", "", "Delete", "Terminating", "", "", "gold", "Lost", "60s", "<unset>"]),
    ("Ingress", "tls-and-address", {
        "metadata": meta("web", H), "spec": {
            "ingressClassName": "nginx", "tls": [{"hosts": ["a.example"]}],
            "rules": [{"host": "a.example"}, {"host": "b.example"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.5"}, {"hostname": "lb"}]}}},
     ["web", "nginx", "a.example,b.example", "127.0.0.5,lb", "80, 443", "60m"]),
    ("Ingress", "default-backend-only", {
        "metadata": meta("def", H), "spec": {"defaultBackend": {"service": {"name": "x"}}}},
     ["def", "<none>", "*", "", "80", "60m"]),
    ("Ingress", "more-than-three-hosts", {
        "metadata": meta("many", H), "spec": {"rules": [
            {"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}]}},
     ["many", "<none>", "a,b,c + 2 more...", "", "80", "60m"]),
    ("NetworkPolicy", "all-pods", {"metadata": meta("deny", H), "spec": {"podSelector": {}}},
     ["deny", "<none>", "60m"]),
    ("NetworkPolicy", "selector", {"metadata": meta("web", 2 * D), "spec": {"podSelector": {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}}},
     ["web", "app=web,tier in (a,b)", "2d"]),
    ("StorageClass", "default", {"metadata": meta("standard", H, annotations={
        "storageclass.kubernetes.io/is-default-class": "true"}),
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"},
     ["standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False,
      "60m"]),
    ("StorageClass", "beta-default", {"metadata": meta("old", H, annotations={
        "storageclass.beta.kubernetes.io/is-default-class": "true"}), "provisioner": "x.io/y"},
     ["old (default)", "x.io/y", "Delete", "Immediate", False, "60m"]),
    ("StorageClass", "not-default", {"metadata": meta("fast", D, annotations={
        "storageclass.kubernetes.io/is-default-class": "false"}),
        "provisioner": "csi.example.com", "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate", "allowVolumeExpansion": True},
     ["fast", "csi.example.com", "Retain", "Immediate", True, "24h"]),
]


@pytest.mark.parametrize(("kind", "obj", "expected"), [c[0:1] + c[2:] for c in CELL_CASES],
                         ids=[f"{c[0]}-{c[1]}" for c in CELL_CASES])
def test_row_cells(kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    result = printers.table(kind, [obj], now=NOW)
    assert result["rows"][0]["cells"] == expected
    assert len(result["columnDefinitions"]) == len(expected)


# --- columns ----------------------------------------------------------------------------------

HEADERS = [
    ("Pod", "NAME READY STATUS RESTARTS AGE IP* NODE* NOMINATED NODE* READINESS GATES*"),
    ("Service", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR*"),
    ("StatefulSet", "NAME READY AGE CONTAINERS* IMAGES*"),
    ("Deployment", "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS* IMAGES* SELECTOR*"),
    ("ReplicaSet", "NAME DESIRED CURRENT READY AGE CONTAINERS* IMAGES* SELECTOR*"),
    ("Endpoints", "NAME ENDPOINTS AGE"),
    ("EndpointSlice", "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"),
    ("Node", "NAME STATUS ROLES AGE VERSION INTERNAL-IP* EXTERNAL-IP* OS-IMAGE* "
             "KERNEL-VERSION* CONTAINER-RUNTIME*"),
    ("Namespace", "NAME STATUS AGE"),
    ("Event", "LAST SEEN TYPE REASON OBJECT SUBOBJECT* SOURCE* MESSAGE FIRST SEEN* COUNT* NAME*"),
    ("ConfigMap", "NAME DATA AGE"),
    ("Secret", "NAME TYPE DATA AGE"),
    ("ServiceAccount", "NAME SECRETS AGE"),
    ("PersistentVolumeClaim", "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS "
                              "VOLUMEATTRIBUTESCLASS AGE VOLUMEMODE*"),
    ("ControllerRevision", "NAME CONTROLLER REVISION AGE"),
    ("Lease", "NAME HOLDER AGE"),
    ("RuntimeClass", "NAME HANDLER AGE"),
    ("Scale", "NAME DESIRED AVAILABLE AGE"),
    ("Job", "NAME STATUS COMPLETIONS DURATION AGE CONTAINERS* IMAGES* SELECTOR*"),
    ("CronJob", "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS* IMAGES* "
                "SELECTOR*"),
    ("DaemonSet", "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE "
                  "CONTAINERS* IMAGES* SELECTOR*"),
    ("ReplicationController", "NAME DESIRED CURRENT READY AGE CONTAINERS* IMAGES* SELECTOR*"),
    ("PersistentVolume", "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS "
                         "VOLUMEATTRIBUTESCLASS REASON AGE VOLUMEMODE*"),
    ("Ingress", "NAME CLASS HOSTS ADDRESS PORTS AGE"),
    ("NetworkPolicy", "NAME POD-SELECTOR AGE"),
    ("StorageClass", "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"),
    ("Unknown", "NAME CREATED AT"),
]


@pytest.mark.parametrize(("kind", "headers"), HEADERS, ids=[h[0] for h in HEADERS])
def test_column_headers(kind: str, headers: str) -> None:
    rendered = " ".join(c["name"].upper() + ("*" if c["priority"] else "")
                        for c in printers.columns(kind))
    assert rendered == headers


@pytest.mark.parametrize("kind", [h[0] for h in HEADERS])
def test_column_definition_shape(kind: str) -> None:
    cols = printers.columns(kind)
    for col in cols:
        assert set(col) == {"name", "type", "format", "description", "priority"}
        assert col["type"] in ("string", "integer", "boolean", "date") and col["description"]
    names = [c for c in cols if c["name"] == "Name"]
    assert len(names) == 1
    assert names[0]["format"] == ("" if kind == "Scale" else "name")


@pytest.mark.parametrize(("kind", "integer_columns"), [
    ("ReplicaSet", ["Desired", "Current", "Ready"]), ("Scale", ["Desired", "Available"]),
    ("Pod", []), ("Deployment", []), ("Secret", []), ("Unknown", []),
    ("ReplicationController", ["Desired", "Current", "Ready"]),
    ("DaemonSet", ["Desired", "Current", "Ready", "Up-to-date", "Available"]),
    ("CronJob", ["Active"]), ("Job", []),
], ids=["rs", "scale", "pod-restarts-is-string", "deploy", "secret", "default", "rc", "ds",
        "cronjob", "job"])
def test_integer_columns(kind: str, integer_columns: list[str]) -> None:
    assert [c["name"] for c in printers.columns(kind) if c["type"] == "integer"] == integer_columns


def test_default_table_created_at_is_date() -> None:
    assert printers.columns("Binding")[1] == {
        "name": "Created At", "type": "date", "format": "",
        "description": printers.columns("Pod")[4]["description"], "priority": 0}


# --- the Table envelope -----------------------------------------------------------------------

def test_table_envelope_with_metadata_objects() -> None:
    result = printers.table("Pod", [STS_POD, TERMINATING_POD], now=NOW, resource_version="77",
                            continue_token="abc")
    assert result["kind"] == "Table" and result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {"resourceVersion": "77", "continue": "abc"}
    assert [r["cells"][0] for r in result["rows"]] == ["web-0", "web-1"]
    assert result["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
        "metadata": STS_POD["metadata"]}
    assert "conditions" not in result["rows"][0]


def test_table_metadata_omits_unset_fields() -> None:
    assert printers.table("Pod", [], now=NOW)["metadata"] == {}
    assert printers.table("Pod", [], now=NOW, resource_version="5")["metadata"] == {
        "resourceVersion": "5"}


def test_table_without_headers_and_objects() -> None:
    result = printers.table("Service", [SERVICE_ROWS[0][1]], now=NOW, include_object="None",
                            with_headers=False)
    assert result["columnDefinitions"] == []
    assert result["rows"] == [{"cells": SERVICE_ROWS[0][2]}]


def test_table_full_object_in_requested_version() -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("web"),
           "spec": {"replicas": 1}}
    result = printers.table("StatefulSet", [sts], now=NOW, include_object="Object",
                            object_api_version="apps/v1beta1")
    row_object = result["rows"][0]["object"]
    assert row_object["apiVersion"] == "apps/v1beta1" and row_object["kind"] == "StatefulSet"
    assert row_object["spec"] == {"replicas": 1}
    assert sts["apiVersion"] == "apps/v1"  # the input is not mutated


@pytest.mark.parametrize(("phase", "message"), [
    ("Succeeded", "The pod has completed successfully."), ("Failed", "The pod failed.")])
def test_finished_pod_rows_carry_completed_condition(phase: str, message: str) -> None:
    pod = {**SUCCEEDED_POD, "status": {**SUCCEEDED_POD["status"], "phase": phase}}
    row = printers.table("Pod", [pod], now=NOW)["rows"][0]
    assert row["conditions"] == [
        {"type": "Completed", "status": "True", "reason": phase, "message": message}]


def test_terminal_pod_with_deletion_timestamp_keeps_status() -> None:
    pod = {**SUCCEEDED_POD, "metadata": meta("done", H, deletionTimestamp=ts(0 * S))}
    assert printers.table("Pod", [pod], now=NOW)["rows"][0]["cells"][2] == "Completed"


def test_node_lost_pod_is_unknown() -> None:
    pod = {**TERMINATING_POD, "status": {**TERMINATING_POD["status"], "reason": "NodeLost"}}
    assert printers.table("Pod", [pod], now=NOW)["rows"][0]["cells"][2] == "Unknown"


def test_completed_container_with_running_sibling() -> None:
    pod = {
        "metadata": meta("mixed", H),
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [
                       {"name": "a", "ready": False,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                       {"name": "b", "ready": True, "state": {"running": {}}}]},
    }
    assert printers.table("Pod", [pod], now=NOW)["rows"][0]["cells"][1:3] == ["1/2", "NotReady"]
