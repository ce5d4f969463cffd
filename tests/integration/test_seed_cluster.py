"""The seed's cluster comes alive: nodes, scheduling, StatefulSet pods, endpoints and DNS.

This replays the blog post end to end with the real kubectl and the real `nslookup`/`dig`
against `tinykube up` started with three virtual nodes, one of them labelled for the seed's
`nodeSelector: {node: kube-node3}`. Every scenario runs with both kubectls.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.conftest import TESTDATA, Cluster, Kubectl, until

pytestmark = [pytest.mark.kubectl,
              pytest.mark.cluster_args("--nodes", "kube-node1,kube-node2,kube-node3")]


def dig(cluster: Cluster, name: str, qtype: str = "A") -> list[str]:
    assert cluster.dns is not None
    host, port = cluster.dns
    out = subprocess.run(["dig", "+short", f"@{host}", "-p", str(port), name, qtype],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return sorted(out.split())


def nslookup(cluster: Cluster, name: str) -> str:
    assert cluster.dns is not None
    host, port = cluster.dns
    return subprocess.run(["nslookup", f"-port={port}", name, host], capture_output=True,
                          text=True, timeout=10).stdout


def pod_ips(kubectl: Kubectl) -> dict[str, str]:
    pods = yaml.safe_load(kubectl("get", "pods", "-o", "yaml"))["items"]
    return {p["metadata"]["name"]: p["status"].get("podIP", "") for p in pods}


def test_seed_end_to_end(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    # `kubectl wait` on a pod the StatefulSet controller has not made yet fails at once
    until(lambda: "pod/web-0" in kubectl("get", "pods", "-o", "name").split(), 20,
          "the StatefulSet's first pod")
    # No node carries node=kube-node3 yet: the pod waits, and says why.
    kubectl("wait", "--for=condition=PodScheduled=false", "pod/web-0", "--timeout=20s")
    events = kubectl("describe", "pod", "web-0")
    assert "FailedScheduling" in events
    assert "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector." \
        in events

    kubectl("label", "node", "kube-node3", "node=kube-node3")
    kubectl("scale", "sts", "web", "--replicas=2")
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    sts = re.split(r"\s+", kubectl("get", "statefulsets", "web").splitlines()[1])
    assert sts[:2] == ["web", "2/2"]

    pods = [line.split() for line in kubectl("get", "pods", "-o", "wide").splitlines()[1:]]
    assert [(p[0], p[1], p[2], p[6]) for p in pods] == [
        ("web-0", "1/1", "Running", "kube-node3"), ("web-1", "1/1", "Running", "kube-node3")]
    ips = pod_ips(kubectl)
    assert len(set(ips.values())) == 2

    described = kubectl("describe", "service", "nginx")
    endpoints = re.search(r"Endpoints:\s+(\S+)", described)
    assert endpoints is not None
    assert sorted(endpoints.group(1).split(",")) == sorted(f"{ip}:80" for ip in ips.values())

    eps = yaml.safe_load(kubectl("get", "endpoints", "nginx", "-o", "yaml"))
    slices = yaml.safe_load(kubectl("get", "endpointslices", "-l",
                                 "kubernetes.io/service-name=nginx", "-o", "yaml"))["items"]
    from_eps = {(a["ip"], a["hostname"]) for s in eps["subsets"] for a in s["addresses"]}
    from_slices = {(e["addresses"][0], e["hostname"]) for s in slices for e in s["endpoints"]}
    assert from_eps == from_slices == {(ips["web-0"], "web-0"), (ips["web-1"], "web-1")}

    # The seed's nslookup transcript, against the cluster DNS.
    assert dig(cluster, "nginx.default.svc.cluster.local") == sorted(ips.values())
    assert dig(cluster, "web-1.nginx.default.svc.cluster.local") == [ips["web-1"]]
    headless = nslookup(cluster, "nginx.default.svc.cluster.local")
    assert all(f"Address: {ip}" in headless for ip in ips.values())


def test_service_ip_answers_in_dns(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=(
            "apiVersion: v1\nkind: Service\nmetadata: {name: nginx-service}\n"
            "spec: {selector: {app: nginx}, ports: [{port: 80, name: web}]}\n"))
    ip = kubectl("get", "svc", "nginx-service", "-o", "jsonpath={.spec.clusterIP}")
    # DNS follows the API by watch (a few ms on SQLite, more on etcd): ask until it answers
    until(lambda: f"Address: {ip}" in nslookup(cluster, "nginx-service.default.svc.cluster.local"),
          10, "the Service's cluster IP in DNS")
    assert dig(cluster, "_web._tcp.nginx-service.default.svc.cluster.local", "SRV") == \
        sorted(["0", "100", "80", "nginx-service.default.svc.cluster.local."])


def test_orphan_delete_keeps_pods(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl("label", "node", "kube-node3", "node=kube-node3")
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    kubectl("delete", "sts", "web", "--cascade=orphan")
    pod = yaml.safe_load(kubectl("get", "pod", "web-0", "-o", "yaml"))
    assert "ownerReferences" not in pod["metadata"]


def test_pod_deletion_recreates_same_name_with_new_ip(cluster: Cluster,
                                                      kubectl: Kubectl) -> None:
    kubectl("label", "node", "kube-node3", "node=kube-node3")
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    old = pod_ips(kubectl)["web-0"]
    kubectl.delete_replaced("pod", "web-0", grace=1)
    kubectl("wait", "--for=condition=Ready", "pod/web-0", "--timeout=30s")
    new = pod_ips(kubectl)["web-0"]
    assert new and new != old
    assert dig(cluster, "web-0.nginx.default.svc.cluster.local") == [new]


def test_describe_pod_statefulset_node_and_deployment(cluster: Cluster,
                                                      kubectl: Kubectl) -> None:
    kubectl("label", "node", "kube-node3", "node=kube-node3")
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    pod = kubectl("describe", "pod", "web-0")
    assert re.search(r"Node:\s+kube-node3/127\.0\.0\.1", pod)
    assert re.search(r"Status:\s+Running", pod)
    assert re.search(r"Controlled By:\s+StatefulSet/web", pod)
    assert re.search(r"Port:\s+80/TCP", pod)
    assert "Scheduled" in pod and "Successfully assigned default/web-0 to kube-node3" in pod
    sts = kubectl("describe", "sts", "web")
    assert re.search(r"Pods Status:\s+1 Running", sts)
    assert "SuccessfulCreate" in sts
    node = kubectl("describe", "node", "kube-node3")
    assert re.search(r"Ready\s+True", node) and "web-0" in node
    assert "Failed to get lease" not in node
    kubectl("apply", "-f", "-", input=(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d1}\n"
            "spec: {replicas: 1, selector: {matchLabels: {app: d1}}, template: {metadata: "
            "{labels: {app: d1}}, spec: {nodeSelector: {node: kube-node3}, containers: "
            "[{name: c, image: busybox}]}}}\n"))
    kubectl("rollout", "status", "deploy/d1", "--timeout=30s")
    deploy = kubectl("describe", "deploy", "d1")
    assert re.search(r"Replicas:\s+1 desired \| 1 updated \| 1 total \| 1 available", deploy)
    assert re.search(r"RollingUpdateStrategy:\s+25% max unavailable, 25% max surge", deploy)
    assert "ScalingReplicaSet" in deploy


def test_legacy_versions_are_served_back_as_asked(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(TESTDATA / "web.yaml"))
    legacy = kubectl.run("get", "--raw", "/apis/apps/v1beta1/namespaces/default/statefulsets/web")
    assert '"apiVersion":"apps/v1beta1"' in legacy.stdout
    current = yaml.safe_load(kubectl("get", "--raw",
                                  "/apis/apps/v1/namespaces/default/statefulsets/web"))
    assert current["apiVersion"] == "apps/v1"
    # v1beta1 defaulted the selector from the template labels
    assert current["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}
