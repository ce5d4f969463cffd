"""`kubectl port-forward` with both real kubectls, in host mode and in `--network netns` (root).

One `tinykube up` per kubectl and network mode runs a process pod serving HTTP on two ports
(each answer names the port and the path), a Service whose named targetPort is the first, and
a Deployment of the same server. Each case runs `kubectl port-forward` on free local ports,
waits for kubectl's "Forwarding from" lines (it prints them once it listens), then makes real
HTTP requests to 127.0.0.1: 20 at once through one port, two ports at once, `svc/` and
`deploy/` targets (kubectl resolves them to a pod and a container port itself). A port nothing
listens on gives kubectl's error line with the kubelet's wording, and then kubectl ends the
session, "lost connection to pod", as it does against any cluster (client-go closes the
connection on an error from the error stream; that the API server's session goes on serving
the other streams is in tests/unit/apiserver/test_portforward.py). In the netns mode the pods
are in network namespaces of their own and the kubelet connects to localhost inside the pod's,
as containerd does, so a server bound to the pod's 127.0.0.1 is reachable too; the local end
is on the host's loopback as always.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import os
import queue
import re
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import KUBECTLS, Kubectl, start_cluster
from tinykube.testing import free_port

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

# A container serving HTTP on 8080 and 8081; each answer names the port and the path.
CONTAINERS = """\
- name: web
  image: python
  ports: [{containerPort: 8080, name: http}, {containerPort: 8081}]
  readinessProbe: {tcpSocket: {port: 8081}, periodSeconds: 1}
  command:
  - python3
  - -c
  - |
    import http.server, threading
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{self.server.server_address[1]} {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    servers = [http.server.ThreadingHTTPServer(("0.0.0.0", p), Answer) for p in (8080, 8081)]
    threading.Thread(target=servers[1].serve_forever, daemon=True).start()
    servers[0].serve_forever()
"""
MANIFESTS = """
apiVersion: v1
kind: Pod
metadata: {name: ghost}
spec:
  runtimeClassName: virtual
  containers: [{name: main, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: pf, labels: {app: pf}}
spec:
  runtimeClassName: process
  containers:
""" + textwrap.indent(CONTAINERS, "  ") + """
---
apiVersion: v1
kind: Service
metadata: {name: pf-svc}
spec:
  selector: {app: pf}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: pf-deploy}
spec:
  selector: {matchLabels: {app: pfd}}
  template:
    metadata: {labels: {app: pfd}}
    spec:
      runtimeClassName: process
      containers:
""" + textwrap.indent(CONTAINERS, "      ")
# netns mode only: a server bound to 127.0.0.1 in its own namespace (in host mode every pod
# shares the host's loopback, so it would not be the pod's own).
LOCAL_ONLY = """
apiVersion: v1
kind: Pod
metadata: {name: local-only}
spec:
  runtimeClassName: process
  containers:
  - name: web
    image: python
    command: [python3, -m, http.server, --bind, 127.0.0.1, "8082"]
    readinessProbe:
      periodSeconds: 1
      exec:
        command: [python3, -c, "import socket; socket.create_connection(('127.0.0.1', 8082))"]
"""
MODES = [("host", ("--no-dns",)),
         ("netns", ("--network", "netns", "--nodes", "pf-node1,pf-node2"))]


@pytest.fixture(scope="module", params=[(m, k) for m in MODES for k in KUBECTLS],
                ids=[f"{m[0]}-{k[0]}" for m in MODES for k in KUBECTLS])
def kubectl(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    (mode, args), (_, binary) = request.param
    if mode == "netns":
        if os.geteuid() != 0 or shutil.which("ip") is None:
            pytest.skip("--network netns needs root and iproute2")
        request.getfixturevalue("host_network_unchanged")
    base = tmp_path_factory.mktemp(f"pf-{mode}")
    cluster = start_cluster(base / "data", "--default-runtime", "process", *args)
    (base / "kubecache").mkdir()
    kubectl = Kubectl(binary, cluster.kubeconfig, base / "kubecache")
    try:
        kubectl("apply", "-f", "-", input=MANIFESTS)
        kubectl("rollout", "status", "deployment/pf-deploy", "--timeout=60s")
        ready = ["pod/pf", "pod/ghost"]
        if mode == "netns":
            kubectl("apply", "-f", "-", input=LOCAL_ONLY)
            ready.append("pod/local-only")
        kubectl("wait", "--for=condition=Ready", *ready, "--timeout=60s")
        yield kubectl
    finally:
        cluster.stop()


@contextlib.contextmanager
def port_forward(kubectl: Kubectl, target: str,
                 *remotes: int | str) -> Iterator[tuple[list[int], subprocess.Popen[str]]]:
    """`kubectl port-forward TARGET LOCAL:REMOTE...` on free local ports, once it listens."""
    locals_ = [free_port() for _ in remotes]
    proc = kubectl.popen("port-forward", "--address", "127.0.0.1", target,
                         *(f"{local}:{remote}" for local, remote in zip(locals_, remotes,
                                                                        strict=True)))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()],
                     daemon=True).start()
    try:
        expected = {f"Forwarding from 127.0.0.1:{local} -> " for local in locals_}
        deadline = time.monotonic() + 30
        while expected:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"kubectl did not listen: {expected}") from None
            expected = {e for e in expected if not line.startswith(e)}
        yield locals_, proc
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def get(port: int, path: str = "/") -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def test_a_pod_port_answers_20_concurrent_requests(kubectl: Kubectl) -> None:
    with port_forward(kubectl, "pod/pf", 8080) as ([local], _), \
            concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: get(local, f"/{i}"), range(20)))
    assert answers == [f"8080 /{i}" for i in range(20)]


def test_two_ports_at_once(kubectl: Kubectl) -> None:
    with port_forward(kubectl, "pod/pf", 8080, 8081) as ([first, second], _), \
            concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: get((first, second)[i % 2], f"/{i}"), range(10)))
    assert answers == [f"{(8080, 8081)[i % 2]} /{i}" for i in range(10)]


@pytest.mark.parametrize(("target", "remote", "served_by"), [
    pytest.param("svc/pf-svc", 80, 8080, id="service-named-target-port"),
    pytest.param("deploy/pf-deploy", 8081, 8081, id="deployment"),
])
def test_service_and_deployment_targets(kubectl: Kubectl, target: str, remote: int,
                                        served_by: int) -> None:
    with port_forward(kubectl, target, remote) as ([local], _):
        assert [get(local, f"/{i}") for i in range(3)] == [f"{served_by} /{i}" for i in range(3)]


def forward_error(proc: subprocess.Popen[str], port: int) -> str:
    """Connect to a forwarded port that fails; kubectl's error output once it has ended."""
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(port)
    _, stderr = proc.communicate(timeout=30)
    assert stderr.rstrip().endswith("error: lost connection to pod")
    assert proc.returncode == 1
    return stderr


@pytest.fixture
def netns_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.callspec.params["kubectl"][0][0] == "netns")


def test_a_port_nothing_listens_on_is_kubectls_error(kubectl: Kubectl, netns_mode: bool) -> None:
    """The kubelet's wording around the runtime's: containerd's (localhost in the pod's
    namespace, IPv4 then IPv6) in netns mode, a dial of the pod's address in host mode."""
    uid = kubectl("get", "pod/pf", "-o", "jsonpath={.metadata.uid}")
    ip = kubectl("get", "pod/pf", "-o", "jsonpath={.status.podIP}")
    with port_forward(kubectl, "pod/pf", 8080, 9) as ([good, bad], proc):
        assert get(good, "/before") == "8080 /before"
        stderr = forward_error(proc, bad)
    reason = (r'failed to connect to localhost:9 inside namespace \\"tk\w+-p\w+\\", IPv4: '
              r"dial tcp4 127.0.0.1:9: connect: connection refused IPv6 dial tcp6 \[::1\]:9: "
              r"connect: connection refused " if netns_mode else
              re.escape(f"dial tcp {ip}:9: connect: connection refused"))
    assert re.search(re.escape(f"error forwarding port 9 to pod pf_default, uid {uid}: ") +
                     reason, stderr), stderr


def test_a_server_on_the_pods_own_localhost(kubectl: Kubectl, netns_mode: bool) -> None:
    """As on a real node, port-forward reaches a server bound to 127.0.0.1 in the pod."""
    if not netns_mode:
        pytest.skip("host-mode pods share the host's loopback")
    with port_forward(kubectl, "pod/local-only", 8082) as ([local], _):
        assert "Directory listing" in get(local)


def test_a_virtual_pod_runs_nothing_to_forward_to(kubectl: Kubectl) -> None:
    with port_forward(kubectl, "pod/ghost", 80) as ([local], proc):
        stderr = forward_error(proc, local)
    error = ('pod "ghost" runs in the virtual runtime, which runs no process to forward ports '
             'to: give it runtimeClassName "process"')
    assert error.replace('"', '\\"') in stderr  # klog quotes the error, escaping its quotes


@pytest.mark.parametrize(("pod", "error"), [
    pytest.param("pf", "Error from server (BadRequest): Upgrade request required: tinykube "
                 "serves port-forward as SPDY/3.1 tunneled over WebSocket "
                 "(SPDY/3.1+portforward.k8s.io) or as a channel WebSocket (v4.channel.k8s.io, "
                 "v4.base64.channel.k8s.io)", id="not-an-upgrade"),
    pytest.param("nope", 'Error from server (NotFound): pods "nope" not found', id="no-pod"),
])
def test_requests_that_are_not_a_session(kubectl: Kubectl, pod: str, error: str) -> None:
    result = kubectl.run("get", "--raw", f"/api/v1/namespaces/default/pods/{pod}/portforward",
                         check=False)
    assert (result.returncode, result.stderr.strip()) == (1, error)


def test_discovery_lists_the_subresource(kubectl: Kubectl) -> None:
    resources = kubectl("get", "--raw", "/api/v1")
    assert '"name":"pods/portforward"' in resources.replace(" ", "")
