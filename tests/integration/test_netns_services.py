"""Services in `--network netns`: the nftables data plane, end to end (root, nft).

One cluster of three nodes (n1, n2, n3; default runtime `process`) serves the module. Three
server pods, placed on n1 and n2, each run an HTTP server on 0.0.0.0:8080 (the same port:
they are separate hosts now) that answers with its pod name and prints `peer <IP>` for every
request; a fourth (`srv-d`, on n1) has a readiness probe that never passes. They sit behind
the ClusterIP Service `web` (NodePort), the headless `web-headless` and the ClientIP-sticky
`sticky`; `empty` has no endpoints. A client pod on n3 sends the traffic.

Every packet of these tests is sent from inside the cluster's namespaces (`kubectl exec` into
a pod, `tinykube node exec`); nothing leaves the host's own namespace for a 10.x address. The
last test stops the cluster and checks that the host's namespaces, ruleset, routes and
addresses are as they were before it started.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, Kubectl, host_network_state, start_cluster, until

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.kubectl,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None
                       or shutil.which("ip") is None,
                       reason="--network netns needs root, iproute2 and nftables"),
]

NODES = ("n1", "n2", "n3")
SERVER = """
import http.server, os, socket, threading
NAME = os.environ["POD_NAME"]
def udp():  # answers every datagram with the pod's name
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 8053))
    while True:
        _, peer = sock.recvfrom(100)
        sock.sendto(NAME.encode(), peer)
threading.Thread(target=udp, daemon=True).start()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ready":  # not ready while the gate file exists
            self.send_response(503 if os.path.exists(os.environ["GATE"]) else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        print("peer", self.client_address[0], flush=True)
        body = NAME.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def server_pod(name: str, node: str, gates: Path, ready: bool = True) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/ready", "port": 8080}} if ready else \
        {"exec": {"command": ["false"]}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "web", "image": "python:3.11", "command": ["python3", "-u", "-c", SERVER],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.name"}}}, {"name": "GATE", "value": str(gates / name)}],
            "ports": [{"containerPort": 8080, "name": "http"},
                      {"containerPort": 8053, "name": "echo", "protocol": "UDP"}],
            "readinessProbe": {**probe, "periodSeconds": 1}}]},
    }


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}}


def objects(gates: Path) -> list[dict[str, Any]]:
    return [
        server_pod("srv-a", "n1", gates), server_pod("srv-b", "n2", gates),
        server_pod("srv-c", "n2", gates), server_pod("srv-d", "n1", gates, ready=False),
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
         "spec": {"nodeName": "n3", "terminationGracePeriodSeconds": 1, "containers": [{
             "name": "c", "image": "python:3.11", "command": ["sleep", "3600"]}]}},
        service("web", type="NodePort"),
        service("web-headless", clusterIP="None"),
        service("web-local", type="NodePort", externalTrafficPolicy="Local"),
        service("web-itp", internalTrafficPolicy="Local"),
        service("web-ext", externalIPs=[EXTERNAL_IP]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},  # its slice is written by a test
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
         "spec": {"selector": {"app": "web"}, "ports": [
             {"name": "echo", "port": 53, "protocol": "UDP", "targetPort": "echo"}]}},
        service("sticky", sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
         "spec": {"ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53,
                                                          "protocol": "UDP"}]}},
    ]


READY = ("srv-a", "srv-b", "srv-c")
EXTERNAL_IP = "192.0.2.10"  # TEST-NET-1: no route leads anywhere from the namespaces


@pytest.fixture(scope="module")
def before() -> dict[str, str]:
    return host_network_state()


@pytest.fixture(scope="module")
def cluster(before: dict[str, str], tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("netns") / "data", "--network", "netns",
                            "--nodes", ",".join(NODES), "--default-runtime", "process",
                            "--proxy", timeout=60)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))


def get(kctl: Kubectl, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(kctl("get", kind, name, "-o", "json")))


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file here named after a server makes its readiness probe fail."""
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def pods(kctl: Kubectl, gates: Path) -> dict[str, str]:
    """Every pod running (the servers but srv-d ready): pod name -> pod IP."""
    kctl("apply", "-f", "-", input=yaml.safe_dump_all(objects(gates)))

    def running() -> dict[str, str] | None:
        items = json.loads(kctl("get", "pods", "-o", "json"))["items"]
        ready = {p["metadata"]["name"] for p in items if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions") or ())}
        ips = {p["metadata"]["name"]: p["status"].get("podIP") for p in items}
        if len(ips) == 5 and all(ips.values()) and ready >= {*READY, "client"}:
            return ips
        return None
    ips: dict[str, str] = until(running, 60, "the pods to run")
    return ips


def in_client(kctl: Kubectl, code: str, timeout: float = 60, pod: str = "client") -> Any:
    """Run Python in the client pod (its network namespace, on n3); its JSON output."""
    return json.loads(kctl("exec", pod, "--", "python3", "-c", code, timeout=timeout))


def on_node(cluster: Cluster, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinykube", "node", "exec", "--data-dir",
                           str(cluster.data_dir), node, "--", *argv],
                          capture_output=True, text=True, timeout=30, check=False)


REQUESTS = """
import collections, json, urllib.request
seen = collections.Counter()
for _ in range({count}):
    seen[urllib.request.urlopen("{url}", timeout=5).read().decode()] += 1
print(json.dumps(seen))
"""


def spread(kctl: Kubectl, url: str, count: int, pod: str = "client") -> dict[str, int]:
    return dict(in_client(kctl, REQUESTS.format(url=url, count=count), 120, pod))


def address(kctl: Kubectl, node: str) -> str:
    addresses = get(kctl, "node", node)["status"]["addresses"]
    return str(next(a["address"] for a in addresses if a["type"] == "InternalIP"))


def node_port(kctl: Kubectl, name: str) -> int:
    return int(get(kctl, "service", name)["spec"]["ports"][0]["nodePort"])


def peers(kctl: Kubectl, pod: str) -> collections.Counter[str]:
    return collections.Counter(re.findall(r"^peer (\S+)$", kctl("logs", pod), re.M))


def test_the_service_name_reaches_every_ready_server_from_another_node(
        kctl: Kubectl, pods: dict[str, str]) -> None:
    served = spread(kctl, "http://web/", 300)  # `web` through the cluster DNS search path
    assert set(served) == set(READY), served
    assert sum(served.values()) == 300
    for name in READY:  # each server saw the client pod's own address, not a node's
        assert set(peers(kctl, name)) == {pods["client"]}, name
    assert not peers(kctl, "srv-d")  # never ready: never a backend


def test_the_headless_name_answers_each_pod_which_sees_the_client(
        kctl: Kubectl, pods: dict[str, str]) -> None:
    answer = in_client(kctl, """
import json, socket, urllib.request
ips = sorted({a[4][0] for a in socket.getaddrinfo("web-headless", 8080, socket.AF_INET)})
print(json.dumps({ip: urllib.request.urlopen(f"http://{ip}:8080/", timeout=5).read().decode()
                  for ip in ips}))
""")
    assert answer == {pods[name]: name for name in READY}


def test_a_node_port_answers_from_another_nodes_namespace(kctl: Kubectl, cluster: Cluster,
                                                          pods: dict[str, str]) -> None:
    port, answers = node_port(kctl, "web"), set()
    for node in NODES:  # every node's address, from n3's namespace
        for _ in range(6):
            result = on_node(cluster, "n3", "curl", "-sS", "-m", "5",
                             f"http://{address(kctl, node)}:{port}/")
            assert result.returncode == 0, result.stderr
            answers.add(result.stdout)
    assert answers <= set(READY) and len(answers) >= 2, answers


def test_an_external_ip_reaches_the_servers_from_a_pod(kctl: Kubectl,
                                                       pods: dict[str, str]) -> None:
    served = spread(kctl, f"http://{EXTERNAL_IP}/", 30)
    assert set(served) <= set(READY) and len(served) >= 2, served


def test_a_pod_reaches_itself_through_its_service(kctl: Kubectl,
                                                  pods: dict[str, str]) -> None:
    """Hairpin: srv-c's requests to `web` come back to srv-c too (masqueraded, its bridge
    port has hairpin on)."""
    served = spread(kctl, "http://web/", 60, pod="srv-c")
    assert "srv-c" in served and set(served) <= set(READY), served


def test_external_traffic_policy_local(kctl: Kubectl, cluster: Cluster,
                                       pods: dict[str, str]) -> None:
    """From n3 to n1's node port: only n1's endpoint, which sees n3's address (no masquerade);
    from n1 to n3's, which has no endpoint of its own: dropped."""
    port = node_port(kctl, "web-local")
    for _ in range(6):
        result = on_node(cluster, "n3", "curl", "-sS", "-m", "5",
                         f"http://{address(kctl, 'n1')}:{port}/")
        assert (result.returncode, result.stdout) == (0, "srv-a"), result
    assert address(kctl, "n3") in peers(kctl, "srv-a")
    result = on_node(cluster, "n1", "curl", "-sS", "-m", "1",
                     f"http://{address(kctl, 'n3')}:{port}/")
    assert result.returncode == 28, result  # curl: timed out (dropped, not refused)


def host_curl(port: int) -> subprocess.CompletedProcess[str]:
    """From the host's own namespace, to its loopback only."""
    return subprocess.run(["curl", "-sS", "-m", "5", f"http://127.0.0.1:{port}/"],
                          capture_output=True, text=True, timeout=30, check=False)


def test_node_ports_are_relayed_from_the_hosts_loopback(kctl: Kubectl,
                                                        pods: dict[str, str]) -> None:
    """`127.0.0.1:<nodePort>` on the host is relayed into n1's namespace, whose NodePort rule
    takes the connection over: every ready server answers, and `Local` answers too (the
    relay's traffic is n1's own, which kube-proxy sends to every endpoint)."""
    port = node_port(kctl, "web")
    answers = collections.Counter(host_curl(port).stdout for _ in range(30))
    assert set(answers) == set(READY), answers
    local = {host_curl(node_port(kctl, "web-local")).stdout for _ in range(6)}
    assert local <= set(READY) and local, local


def test_a_node_port_relay_comes_and_goes_with_its_service(kctl: Kubectl,
                                                           pods: dict[str, str]) -> None:
    kctl("apply", "-f", "-", input=yaml.safe_dump(service("relayed", type="NodePort")))
    port = node_port(kctl, "relayed")
    until(lambda: host_curl(port).stdout in READY, 20, "the relay of a new Service")
    kctl("delete", "service", "relayed")
    until(lambda: host_curl(port).returncode == 7, 20,  # curl: connection refused
          "the relay to stop with its Service")


def test_a_udp_node_port_is_relayed_too(kctl: Kubectl, pods: dict[str, str]) -> None:
    echo = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo-np"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [
                {"name": "echo", "port": 53, "protocol": "UDP", "targetPort": "echo"}]}}
    kctl("apply", "-f", "-", input=yaml.safe_dump(echo))
    port = node_port(kctl, "echo-np")

    def ask() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1)
            sock.sendto(b"who", ("127.0.0.1", port))
            try:
                return sock.recv(100).decode()
            except TimeoutError:
                return ""
    try:
        assert until(ask, 20, "an answer through the UDP relay") in READY
    finally:
        kctl("delete", "service", "echo-np")


def test_a_node_port_the_host_already_uses_is_an_event(kctl: Kubectl,
                                                       pods: dict[str, str]) -> None:
    """The relay cannot listen where another program of the host does: a Warning Event on
    the Service says so (the userspace proxy's reason), nothing else breaks."""
    with socket.socket() as taken:  # a free port of the default node port range, held
        port = next(p for p in range(32767, 32000, -1) if _bind(taken, p))
        taken.listen()
        web = service("busy", type="NodePort")
        web["spec"]["ports"][0]["nodePort"] = port
        kctl("apply", "-f", "-", input=yaml.safe_dump(web))
        try:
            event = until(lambda: [e for e in json.loads(kctl(
                "get", "events", "--field-selector", "involvedObject.name=busy", "-o",
                "json"))["items"] if e["reason"] == "FailedToBindServicePort"], 20,
                "the relay's bind failure event")
            assert f"127.0.0.1:{port}/TCP" in event[0]["message"], event
            assert "in use" in event[0]["message"], event
        finally:
            kctl("delete", "service", "busy")


def _bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def test_internal_traffic_policy_local(kctl: Kubectl, pods: dict[str, str]) -> None:
    """A pod on n2 reaches only n2's endpoints; the client on n3, with none, gets nothing."""
    assert set(spread(kctl, "http://web-itp/", 20, pod="srv-b")) <= {"srv-b", "srv-c"}
    ip = get(kctl, "service", "web-itp")["spec"]["clusterIP"]
    outcome = in_client(kctl, f"""
import json, socket
try:
    socket.create_connection(("{ip}", 80), timeout=1)
    print(json.dumps("connected"))
except OSError as error:
    print(json.dumps(type(error).__name__))
""")
    assert outcome == "TimeoutError"


def test_a_node_still_reaches_the_cluster_dns_it_serves(kctl: Kubectl, cluster: Cluster,
                                                        pods: dict[str, str]) -> None:
    """10.96.0.10 is in the service range the table drops, but the node serves it itself."""
    ip = get(kctl, "service", "web")["spec"]["clusterIP"]
    result = on_node(cluster, "n1", "nslookup", "web.default.svc.cluster.local", "10.96.0.10")
    assert result.returncode == 0 and f"Address: {ip}" in result.stdout, result


def test_a_node_reaches_a_cluster_ip(kctl: Kubectl, cluster: Cluster,
                                     pods: dict[str, str]) -> None:
    ip = get(kctl, "service", "web")["spec"]["clusterIP"]
    result = on_node(cluster, "n3", "curl", "-sS", "-m", "5", f"http://{ip}/")
    assert result.returncode == 0 and result.stdout in READY, result


def test_a_service_without_endpoints_refuses_at_once(kctl: Kubectl,
                                                     pods: dict[str, str]) -> None:
    ip = get(kctl, "service", "empty")["spec"]["clusterIP"]
    outcome = in_client(kctl, f"""
import json, socket, time
out = {{}}
began = time.monotonic()
try:
    socket.create_connection(("{ip}", 80), timeout=5)
    out["tcp"] = "connected"
except OSError as error:
    out["tcp"] = type(error).__name__
out["tcp_seconds"] = time.monotonic() - began
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(5)
udp.connect(("{ip}", 53))
udp.send(b"x")
try:
    udp.recv(100)
    out["udp"] = "answered"
except OSError as error:
    out["udp"] = type(error).__name__
print(json.dumps(out))
""")
    assert outcome["tcp"] == "ConnectionRefusedError" and outcome["tcp_seconds"] < 0.1, outcome
    assert outcome["udp"] == "ConnectionRefusedError", outcome  # ICMP port unreachable


def test_client_ip_affinity_sticks_to_one_server(kctl: Kubectl, pods: dict[str, str]) -> None:
    served = spread(kctl, "http://sticky/", 30)
    assert len(served) == 1 and set(served) <= set(READY), served


def test_kubectl_in_a_pod_reaches_the_api_through_the_kubernetes_service(
        kctl: Kubectl, pods: dict[str, str]) -> None:
    env = kctl("exec", "client", "--", "sh", "-c", "echo $KUBERNETES_SERVICE_HOST")
    assert env.strip() == get(kctl, "service", "kubernetes")["spec"]["clusterIP"]
    in_pod = ("exec", "client", "--", "env", "-u", "KUBECONFIG", "HOME=/nonexistent",
              KUBECTLS[0][1], "get", "pods", "-o", "name")
    # The pod is its ServiceAccount, which RBAC lets list nothing until it is bound to a role.
    refused = kctl.run(*in_pod, check=False)
    assert ('pods is forbidden: User "system:serviceaccount:default:default" cannot list '
            'resource "pods" in API group "" in the namespace "default"') in refused.stderr
    kctl("create", "rolebinding", "client-view", "--clusterrole=view",
         "--serviceaccount=default:default")
    try:
        listed = until(lambda: kctl.run(*in_pod, check=False).stdout, 10, "RBAC allowing it")
    finally:
        kctl("delete", "rolebinding", "client-view")
    assert sorted(listed.split()) == sorted(f"pod/{name}" for name in pods)


def test_readiness_takes_a_server_out_and_back(kctl: Kubectl, gates: Path,
                                                pods: dict[str, str]) -> None:
    gate = gates / "srv-b"
    gate.touch()
    try:
        until(lambda: set(spread(kctl, "http://web/", 30)) == {"srv-a", "srv-c"}, 20,
              "srv-b out of the Service")
    finally:
        gate.unlink()
    until(lambda: set(spread(kctl, "http://web/", 30)) == set(READY), 20,
          "srv-b back in the Service")


UDP_ASK = """
import json, socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", 40053))  # the same source port every time: the same conntrack entry
sock.settimeout(2)
sock.sendto(b"?", ("{ip}", 53))
print(json.dumps(sock.recv(100).decode()))
"""


def test_udp_flows_to_a_removed_endpoint_are_flushed(kctl: Kubectl, gates: Path,
                                                     pods: dict[str, str]) -> None:
    """One client address and port keeps asking the UDP Service; once the server it was sent
    to leaves the endpoints, its conntrack entry is deleted and the next datagram goes to
    another server (without the flush it would stick to the old one while the client keeps
    the entry alive)."""
    ip = get(kctl, "service", "echo")["spec"]["clusterIP"]
    ask = UDP_ASK.format(ip=ip)
    first = until(lambda: in_client(kctl, ask), 10, "a UDP answer")
    assert first in READY
    gate = gates / first
    gate.touch()
    try:
        def moved() -> str | None:
            answer: str = in_client(kctl, ask)
            return answer if answer != first else None
        assert until(moved, 20, f"UDP answers from another server than {first}") in READY
    finally:
        gate.unlink()
    until(lambda: set(spread(kctl, "http://web/", 30)) == set(READY), 20, f"{first} back")


def manual_slice(pods: dict[str, str], endpoints: dict[str, dict[str, bool]]) -> str:
    """The `manual` Service's EndpointSlice: pod name -> conditions."""
    return json.dumps({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "manual-1", "labels": {"kubernetes.io/service-name": "manual"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [pods[name]], "conditions": conditions}
                      for name, conditions in endpoints.items()]})


def test_terminating_endpoints_serve_only_while_none_is_ready(kctl: Kubectl,
                                                              pods: dict[str, str]) -> None:
    """kube-proxy's fallback: with no ready endpoint, the serving terminating ones get the
    traffic (not the terminating ones that stopped serving); once one is ready, only it."""
    terminating = {"srv-a": {"ready": False, "serving": True, "terminating": True},
                   "srv-b": {"ready": False, "serving": False, "terminating": True}}
    kctl("apply", "-f", "-", input=manual_slice(pods, terminating))
    until(lambda: spread(kctl, "http://manual/", 10) == {"srv-a": 10}, 20,
          "the serving terminating endpoint to get every request")
    ready = {**terminating, "srv-c": {"ready": True, "serving": True, "terminating": False}}
    kctl("apply", "-f", "-", input=manual_slice(pods, ready))
    until(lambda: spread(kctl, "http://manual/", 10) == {"srv-c": 10}, 20,
          "the ready endpoint to get every request")


def test_a_deleted_server_leaves_the_service(kctl: Kubectl, pods: dict[str, str]) -> None:
    kctl("delete", "pod", "srv-a", "--wait=true", "--timeout=30s")
    assert set(spread(kctl, "http://web/", 30)) == {"srv-b", "srv-c"}


def test_nothing_is_left_on_the_host(cluster: Cluster, before: dict[str, str]) -> None:
    prefix = json.loads((cluster.data_dir / "network.json").read_text())["prefix"]
    assert cluster.stop() == 0
    after = host_network_state()  # (other clusters' namespaces left out)
    assert not [n for n in after["netns"].split() if n.startswith(prefix)]
    assert after == before
