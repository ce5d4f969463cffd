"""Rootless `tinykube up --network netns`: the pod network inside a user namespace of its own.

`tinykube up` runs as the unprivileged user nobody (65534), through util-linux's `setpriv`
with a data directory and HOME it owns; no user is added to the host. This machine's Python
lives under /root (mode 0700), which nobody cannot enter, so the command first gets a private
mount namespace (made here, as root, gone with the process) in which /root is a world-readable
tmpfs holding only a bind of ~/.pyenv; nothing of the host changes.

Two nodes, a process-pod Deployment serving HTTP on 0.0.0.0:8080 behind a ClusterIP (NodePort)
Service and a headless one; a client pod on another node reaches the Service by name and the
server logs the client pod's own 10.244 address; `kubectl port-forward svc/...` and the
NodePort on the host's 127.0.0.1 reach it from the host. After a stop, and after a SIGKILL of
`up`, no process of the cluster is left and the host's namespaces and ruleset are as they were
(`host_network_unchanged`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

NOBODY = 65534


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "switching to the user nobody needs root"
    if shutil.which("setpriv") is None or shutil.which("unshare") is None:
        return "needs util-linux's setpriv and unshare"
    if shutil.which("nslookup") is None:
        return "needs nslookup (bind9-dnsutils) for `tinykube node exec`"
    limit = Path("/proc/sys/user/max_user_namespaces")
    if not limit.exists() or int(limit.read_text()) == 0:
        return "user namespaces are disabled (user.max_user_namespaces is 0)"
    return None


pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(_why_not() is not None, reason=str(_why_not())),
]
# As nobody, in a private mount namespace where /root shows only ~/.pyenv (see above)
AS_NOBODY = """
view=$(mktemp -d) && mount --bind /root/.pyenv "$view" &&
mount -t tmpfs -o mode=755 tmpfs /root && mkdir /root/.pyenv &&
mount --move "$view" /root/.pyenv && rmdir "$view" &&
exec setpriv --reuid=NOBODY --regid=NOBODY --clear-groups env HOME="$HOME_DIR" "$@"
""".replace("NOBODY", str(NOBODY))
SERVER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: n1
      containers:
      - name: web
        image: python
        command: [PYTHON, -u, -m, http.server, --bind, 0.0.0.0, "8080"]
        readinessProbe: {httpGet: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-pods}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers:
  - {name: client, image: python, command: [sleep, "3600"]}
""".replace("PYTHON", sys.executable)


def prefix(home: Path) -> list[str]:
    return ["env", f"HOME_DIR={home}", "unshare", "-m", "--propagation", "private",
            "sh", "-c", AS_NOBODY, "sh"]


def cluster_processes(marker: str) -> list[str]:
    """Pids of processes whose command line names `marker` (the data directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and proc.name != str(os.getpid()):
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(proc.name)
            except OSError:
                continue
    return found


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("\nUid:")[1].split()[1])  # the effective uid


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory of nobody's (not under pytest's 0700 tmp directories)."""
    directory = Path(tempfile.mkdtemp(prefix="tinykube-rootless-"))
    os.chown(directory, NOBODY, NOBODY)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def start(home: Path) -> Cluster:
    return start_cluster(home / "data", "--network", "netns", "--nodes", "n1,n2", "--proxy",
                         prefix=prefix(home), timeout=60)


def kubectl_for(cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir(exist_ok=True)
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def in_client(kctl: Kubectl, code: str) -> str:
    return kctl("exec", "client", "--", sys.executable, "-c", code)


def test_a_rootless_cluster_serves_pods_services_and_the_host(home: Path,
                                                               tmp_path: Path) -> None:
    """One cluster: served, then SIGKILLed (nothing left), started again (the pods come back),
    then stopped (nothing left)."""
    cluster = start(home)
    marker = str(home / "data")
    try:
        assert "default runtime: process (rootless" in "\n".join(cluster.output)
        assert uid_of(cluster.process.pid) == NOBODY  # `up` itself, as its pods' processes
        assert {uid_of(int(pid)) for pid in cluster_processes(marker)} == {NOBODY}
        kctl = kubectl_for(cluster, tmp_path)
        serve_and_reach(kctl, home)
        refuse_runc(kctl)
    except BaseException:
        cluster.stop()
        raise
    # `up` killed: its components see their stdin close and stop; every pod process is in
    # the holder's PID namespace and goes with it
    cluster.stop(signal.SIGKILL)
    until(lambda: not cluster_processes(marker), 20, "every process of the cluster to end")
    again = start(home)
    try:
        kctl = kubectl_for(again, tmp_path)
        kctl("rollout", "status", "deploy/web", "--timeout=60s")
        # (the status is the killed run's until the new agent has started the pods again)
        code = "import urllib.request as u; print(u.urlopen('http://web/', timeout=5).status)"
        until(lambda: kctl.run("exec", "client", "--", sys.executable, "-c", code,
                               check=False).stdout == "200\n", 40, "the Service, again")
    finally:
        assert again.stop() == 0, "\n".join(again.output)
    until(lambda: not cluster_processes(marker), 10, "every process of the cluster to end")


def serve_and_reach(kctl: Kubectl, home: Path) -> None:
    kctl("apply", "-f", "-", input=SERVER)
    kctl("rollout", "status", "deploy/web", "--timeout=60s")
    kctl("wait", "--for=condition=Ready", "pod/client", "--timeout=30s")
    pods = json.loads(kctl("get", "pods", "-o", "json"))["items"]
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert all(ip.startswith("10.244.") for ip in ips.values()), ips
    servers = {ip for name, ip in ips.items() if name.startswith("web-")}
    # pods nest their own PID namespaces in the holder's: the client's command is PID 2
    seen = kctl("exec", "client", "--", "ps", "-e", "-o", "pid=,args=")
    assert ["2", "sleep 3600"] in [line.split(None, 1) for line in seen.strip().splitlines()]
    # the Service by name, through cluster DNS (10.96.0.10) and the nftables DNAT
    body = in_client(kctl, "import urllib.request as u; "
                           "print(u.urlopen('http://web/', timeout=5).status)")
    assert body.strip() == "200"
    headless = in_client(kctl, "import socket; print(sorted({a[4][0] for a in "
                               "socket.getaddrinfo('web-pods', 8080)}))")
    assert set(json.loads(headless.replace("'", '"'))) == servers
    logs = until(lambda: ips["client"] in (text := kctl("logs", "-l", "app=web",
                                                        "--prefix")) and text,
                 10, "the client's address in a server's log")
    assert re.search(rf"\b{re.escape(ips['client'])} - - ", logs), logs
    # from the host: port-forward to the Service, and the NodePort on 127.0.0.1
    forward = kctl.popen("port-forward", "svc/web", ":80")
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        assert "Directory listing" in fetch(f"http://127.0.0.1:{port}/")
    finally:
        forward.kill()
        forward.wait(10)
    # `tinykube node exec` enters the holder's namespaces, as the same user
    cluster_ip = kctl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    lookup = subprocess.run([*prefix(home), sys.executable, "-m", "tinykube", "node", "exec",
                             "--data-dir", str(home / "data"), "n2", "--", "nslookup",
                             "web.default.svc.cluster.local", "10.96.0.10"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert lookup.returncode == 0, lookup.stdout + lookup.stderr
    assert f"Address: {cluster_ip}" in lookup.stdout
    node_port = kctl("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")
    assert "Directory listing" in until(
        lambda: _try(f"http://127.0.0.1:{node_port}/"), 10, "the NodePort")


def refuse_runc(kctl: Kubectl) -> None:
    """runc pods are not run rootless: the kubelet's event says so."""
    kctl("run", "boxed", "--image=busybox", "--restart=Never",
         '--overrides={"spec":{"runtimeClassName":"container"}}', "--", "true")
    events = until(lambda: "FailedCreatePodSandBox" in (text := kctl(
        "get", "events", "--field-selector", "involvedObject.name=boxed")) and text, 20,
        "the refusal event")
    assert "does not run in rootless --network netns" in " ".join(events.split())
    kctl("delete", "pod", "boxed", "--wait=false")


def _try(url: str) -> str | None:
    try:
        return fetch(url)
    except OSError:
        return None
