"""NetworkPolicy enforced in `--network netns`, checked with real connections (root, nft).

One cluster of two nodes serves the module. Every pod runs the same Python HTTP server on
0.0.0.0:8080 (`http`), 9091 and 9099, so any pod can be a target: `srv` (app=srv, on n1) in
`default`, behind the ClusterIP Service `srv` (80 -> `http`); `client` (n2) and `friend`
(role=friend, n2) in `default`; `outsider` (role=friend, n1, the same node as `srv`, so its
traffic is bridged) in namespace `allowed` (team=a); `stranger` (n2) in `other` (team=b).

Each case applies its policies, then polls every (client, target, expected) until the
connection succeeds or fails as expected (curl in the client pod through `kubectl exec`, 1 s
connect timeout: a policy drops, so a blocked connection times out); deleting the policies
must then restore every connection the case blocked. Every packet is sent from inside the
cluster's namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.kubectl,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None
                       or shutil.which("ip") is None or shutil.which("curl") is None
                       or shutil.which("dig") is None,
                       reason="--network netns needs root, iproute2 and nftables; curl, dig"),
]

SERVER = """
import http.server, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
for port in (9091, 9099):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""

PODS = {  # name -> (namespace, node, labels)
    "srv": ("default", "n1", {"app": "srv"}),
    "client": ("default", "n2", {"app": "client"}),
    "friend": ("default", "n2", {"role": "friend"}),
    "outsider": ("allowed", "n1", {"role": "friend"}),
    "stranger": ("other", "n2", {}),
}


def objects() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": name, "labels": labels}}
        for name, labels in (("allowed", {"team": "a"}), ("other", {"team": "b"}))]
    for name, (namespace, node, labels) in PODS.items():
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{
                "name": "web", "image": "python:3.11",
                "command": ["python3", "-u", "-c", SERVER],
                "ports": [{"containerPort": 8080, "name": "http"},
                          {"containerPort": 9091, "name": "extra"}]}]}})
    items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "srv"},
                  "spec": {"selector": {"app": "srv"},
                           "ports": [{"port": 80, "targetPort": "http"}]}})
    return items


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("netpol") / "data", "--network", "netns",
                            "--nodes", "n1,n2", "--default-runtime", "process", "--proxy",
                            timeout=60)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture(scope="module")
def ips(kctl: Kubectl) -> dict[str, str]:
    """Every pod running and answering: pod name -> pod IP (and `svc` -> the cluster IP)."""
    kctl("apply", "-f", "-", input=yaml.safe_dump_all(objects()))

    def running() -> dict[str, str] | None:
        items = json.loads(kctl("get", "pods", "-A", "-o", "json"))["items"]
        found = {p["metadata"]["name"]: p["status"].get("podIP") for p in items
                 if p["metadata"]["name"] in PODS and p["status"].get("phase") == "Running"}
        return found if len(found) == len(PODS) and all(found.values()) else None
    found: dict[str, str] = until(running, 60, "the pods to run")
    found["svc"] = kctl("get", "svc", "srv", "-o", "jsonpath={.spec.clusterIP}")
    for name in PODS:  # every server answers before any policy exists
        until(lambda name=name: reach(kctl, "client", f"{found[name]}:8080"), 30,
              f"{name} to answer")
    return found


def reach(kctl: Kubectl, pod: str, target: str) -> bool:
    """Whether an HTTP request from `pod` to `target` (ip:port) gets its answer."""
    namespace = PODS[pod][0]
    result = kctl.run("exec", "-n", namespace, pod, "--", "curl", "-sS", "-o", "/dev/null",
                      "-w", "%{http_code}", "--connect-timeout", "1", "-m", "2",
                      f"http://{target}/", check=False, timeout=30)
    return result.returncode == 0 and result.stdout == "200"


def resolves(kctl: Kubectl, pod: str, tcp: bool = False) -> bool:
    """Whether the cluster DNS answers `pod` (UDP, or TCP) with the Service's address."""
    result = kctl.run("exec", "-n", PODS[pod][0], pod, "--", "dig", "+short", "+time=1",
                      "+tries=1", *(["+tcp"] if tcp else []), "srv.default.svc.cluster.local",
                      "@10.96.0.10", check=False, timeout=30)
    return result.returncode == 0 and result.stdout.strip() != "" and \
        "timed out" not in result.stdout


def netpol(name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


SRV = {"matchLabels": {"app": "srv"}}
CLIENT = {"matchLabels": {"app": "client"}}
KUBE_DNS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
Policies = Callable[[dict[str, str]], list[dict[str, Any]]]
# (id, policies from the pod IPs, [(client, target pod or "svc", port, reached)])
CASES: list[tuple[str, Policies, list[tuple[str, str, int, bool]]]] = [
    ("default-deny-ingress", lambda ip: [netpol("deny", {"podSelector": {}})], [
        ("client", "srv", 8080, False), ("outsider", "srv", 8080, False),
        ("srv", "client", 8080, False), ("client", "svc", 80, False),
        ("client", "outsider", 8080, True), ("srv", "stranger", 8080, True),
        ("srv", "svc", 80, True)]),  # a pod cannot block access to itself
    ("allow-from-a-namespace", lambda ip: [netpol("srv", {"podSelector": SRV, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]})], [
        ("outsider", "srv", 8080, True), ("stranger", "srv", 8080, False),
        ("client", "srv", 8080, False), ("client", "friend", 8080, True)]),
    ("allow-from-pods-with-a-label", lambda ip: [netpol("srv", {"podSelector": SRV, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "friend"}}}]}]})], [
        ("friend", "srv", 8080, True), ("friend", "svc", 80, True),
        ("client", "srv", 8080, False), ("client", "svc", 80, False),
        ("outsider", "srv", 8080, False)]),  # role=friend, but in another namespace
    ("named-port-and-end-port", lambda ip: [netpol("srv", {"podSelector": SRV, "ingress": [
        {"ports": [{"port": "http"}, {"port": 9090, "endPort": 9092}]}]})], [
        ("client", "srv", 8080, True), ("client", "srv", 9091, True),
        ("client", "srv", 9099, False), ("client", "svc", 80, True)]),
    ("egress-to-an-ip-block-with-except", lambda ip: [netpol("out", {
        "podSelector": CLIENT, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {
            "cidr": "10.244.0.0/16", "except": [f"{ip['srv']}/32"]}}]}]})], [
        ("client", "srv", 8080, False), ("client", "svc", 80, False),
        ("client", "outsider", 8080, True), ("client", "friend", 8080, True),
        ("friend", "srv", 8080, True)]),
    ("egress-named-port-resolved-per-destination", lambda ip: [netpol("out", {
        "podSelector": CLIENT, "policyTypes": ["Egress"],
        "egress": [{"ports": [{"port": "extra"}]}]})], [
        ("client", "srv", 9091, True), ("client", "friend", 9091, True),
        ("client", "srv", 8080, False), ("client", "svc", 80, False),
        ("friend", "srv", 8080, True)]),
]


@pytest.mark.parametrize(("policies", "checks"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_policy_case(kctl: Kubectl, ips: dict[str, str], policies: Policies,
                     checks: list[tuple[str, str, int, bool]]) -> None:
    manifests = policies(ips)
    applied = kctl.run("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert "Warning" not in applied.stderr  # enforced here: no "does not enforce" warning
    try:
        for client, target, port, expected in checks:
            until(lambda c=client, t=target, p=port, e=expected:
                  reach(kctl, c, f"{ips[t]}:{p}") is e, 20,
                  f"{client} -> {target}:{port} {'reached' if expected else 'blocked'}")
    finally:
        kctl("delete", "-f", "-", "--wait=false", input=yaml.safe_dump_all(manifests))
    for client, target, port, expected in checks:  # deleting the policies restores traffic
        if not expected:
            until(lambda c=client, t=target, p=port: reach(kctl, c, f"{ips[t]}:{p}"), 20,
                  f"{client} -> {target}:{port} restored")


def test_egress_default_deny_blocks_dns_until_a_policy_allows_kube_dns(
        kctl: Kubectl, ips: dict[str, str]) -> None:
    assert resolves(kctl, "client") and resolves(kctl, "client", tcp=True)
    deny = netpol("deny-egress", {"podSelector": CLIENT, "policyTypes": ["Egress"]})
    dns = netpol("dns", {"podSelector": CLIENT, "policyTypes": ["Egress"], "egress": [
        {"to": [KUBE_DNS], "ports": [{"port": 53, "protocol": "UDP"},
                                     {"port": 53, "protocol": "TCP"}]}]})
    kctl("apply", "-f", "-", input=yaml.safe_dump(deny))
    try:
        until(lambda: not resolves(kctl, "client"), 20, "DNS over UDP blocked")
        assert not resolves(kctl, "client", tcp=True)
        assert not reach(kctl, "client", f"{ips['friend']}:8080")
        assert resolves(kctl, "friend")  # another pod of the namespace is not selected
        kctl("apply", "-f", "-", input=yaml.safe_dump(dns))
        until(lambda: resolves(kctl, "client"), 20, "DNS over UDP allowed")
        assert resolves(kctl, "client", tcp=True)
        assert not reach(kctl, "client", f"{ips['friend']}:8080")  # still only DNS
    finally:
        kctl("delete", "networkpolicy", "deny-egress", "dns", "--ignore-not-found")
    until(lambda: reach(kctl, "client", f"{ips['friend']}:8080"), 20, "egress restored")


def test_the_node_always_reaches_its_isolated_pod(kctl: Kubectl, cluster: Cluster,
                                                  ips: dict[str, str]) -> None:
    deny = netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    kctl("apply", "-f", "-", input=yaml.safe_dump(deny))
    try:
        until(lambda: not reach(kctl, "client", f"{ips['srv']}:8080"), 20, "srv isolated")
        result = subprocess.run(
            [sys.executable, "-m", "tinykube", "node", "exec", "--data-dir",
             str(cluster.data_dir), "n1", "--", "curl", "-sS", "-m", "5", "-o", "/dev/null",
             "-w", "%{http_code}", f"http://{ips['srv']}:8080/"],
            capture_output=True, text=True, timeout=30, check=False)
        assert result.stdout == "200", result.stderr
    finally:
        kctl("delete", "netpol", "deny")


def test_get_netpol_lists_the_policies(kctl: Kubectl, ips: dict[str, str]) -> None:
    kctl("apply", "-f", "-", input=yaml.safe_dump(netpol("deny", {"podSelector": SRV})))
    try:
        lines = kctl("get", "netpol").splitlines()
        assert [line.split()[:2] for line in lines] == [["NAME", "POD-SELECTOR"],
                                                         ["deny", "app=srv"]]
    finally:
        kctl("delete", "netpol", "deny")
