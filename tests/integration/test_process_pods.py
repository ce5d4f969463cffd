"""Process pods end to end: real processes, real sockets, the real kubectl (v1.32).

One cluster serves the module; its DNS listens on port 53 of a random loopback address (so
the pods' resolv.conf can name it, and clusters of other test runs on this host are not hit).
A StatefulSet `web` of three `python3 -m http.server --bind $POD_IP 8080` pods serves a page
naming each pod, with an httpGet readiness probe on that page. The cluster's default runtime
is `process`, so the other pods need no runtimeClassName.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

WEB = """
apiVersion: v1
kind: Service
metadata: {{name: nginx}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{port: 8080, name: web}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: nginx
  replicas: 3
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      runtimeClassName: process
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: python:3.11
        command: [sh, -c]
        args:
        - mkdir -p $(ROOT)/$(POD_NAME) && cd $(ROOT)/$(POD_NAME) &&
          echo "page of $(POD_NAME)" > index.html &&
          exec python3 -m http.server --bind $POD_IP 8080
        env:
        - {{name: ROOT, value: "{root}"}}
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        ports: [{{containerPort: 8080, name: web}}]
        readinessProbe:
          httpGet: {{path: /index.html, port: web}}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: web, name: http}}]
"""

LIVENESS = """
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "echo run-$(date +%s%N); exec sleep 60"]
    livenessProbe:
      exec: {command: ["false"]}
      initialDelaySeconds: 1  # the first probe may not kill a run before it has printed
      periodSeconds: 1
      failureThreshold: 1
"""

NAMES = """
apiVersion: v1
kind: Pod
metadata: {name: names}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "hostname; getent hosts web-1.nginx"]
"""

ACCOUNT = """
apiVersion: v1
kind: Pod
metadata: {name: account}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo "account=$ACCOUNT"']
    env:
    - name: ACCOUNT
      valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    dns = f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}:53"
    running = start_cluster(tmp_path_factory.mktemp("process") / "data", "--dns-listen", dns,
                            "--default-runtime", "process", "--proxy")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(scope="module")
def web(kctl: Kubectl, pages: Path) -> dict[str, str]:
    """The ready StatefulSet: pod name -> pod IP."""
    kctl("apply", "-f", "-", input=WEB.format(root=pages))
    kctl("rollout", "status", "sts/web", "--timeout=30s")
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods(kctl, "app=web")}


def pods(kctl: Kubectl, selector: str) -> list[dict[str, Any]]:
    return list(json.loads(kctl("get", "pods", "-l", selector, "-o", "json"))["items"])


def pod(kctl: Kubectl, name: str) -> dict[str, Any]:
    return dict(json.loads(kctl("get", "pod", name, "-o", "json")))


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy."""
    return until_seen(check, timeout, what)[0]


def until_seen(check: Callable[[], Any], timeout: float, what: str) -> tuple[Any, float]:
    """Poll `check` until it returns something truthy; that and when the successful poll
    began (each poll runs kubectl, which takes a while on a loaded machine: measuring from
    the start of the poll that saw a change leaves that poll's own run time out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        began = time.monotonic()
        if result := check():
            return result, began
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def slice_ready(kctl: Kubectl, ip: str) -> bool | None:
    slices = json.loads(kctl("get", "endpointslices", "-l",
                             "kubernetes.io/service-name=nginx", "-o", "json"))["items"]
    for endpoint in [e for s in slices for e in s.get("endpoints") or []]:
        if ip in endpoint["addresses"]:
            return bool(endpoint["conditions"].get("ready"))
    return None


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_every_pod_serves_its_own_page_on_its_ip(web: dict[str, str]) -> None:
    assert sorted(web) == ["web-0", "web-1", "web-2"]
    assert len(set(web.values())) == 3
    for name, ip in web.items():
        assert ip.startswith("127.244.")
        assert get(f"http://{ip}:8080/index.html") == f"page of {name}\n"


def page_owner(url: str) -> str:
    """Which pod served `url` (each pod's page names it)."""
    return get(url).removeprefix("page of ").strip()


def owners(url: str, requests: int = 30) -> set[str]:
    """Who served `requests` requests; a pod without its page answers 404 ("missing")."""
    seen = set()
    for _ in range(requests):
        try:
            seen.add(page_owner(url))
        except urllib.error.HTTPError as error:
            seen.add("missing" if error.code == 404 else str(error.code))
    return seen


def service_url(kctl: Kubectl) -> str:
    ip = kctl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    until(lambda: _connects(ip, 80), 5, "the proxy to listen on the cluster IP")
    return f"http://{ip}/index.html"


def _connects(ip: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((ip, port)) == 0


def dig(cluster: Cluster, name: str) -> list[str]:
    assert cluster.dns is not None
    host, port = cluster.dns
    return sorted(subprocess.run(["dig", "+short", f"@{host}", "-p", str(port), name],
                                 capture_output=True, text=True, timeout=10,
                                 check=True).stdout.split())


def test_cluster_ip_spreads_requests_over_every_ready_pod(kctl: Kubectl,
                                                          web: dict[str, str]) -> None:
    url = service_url(kctl)
    served = collections.Counter(page_owner(url) for _ in range(300))
    assert set(served) == {"web-0", "web-1", "web-2"}, served
    assert min(served.values()) >= 50, served  # round robin, not one favourite


def test_headless_name_answers_every_pod_each_serving_its_own_page(
        cluster: Cluster, web: dict[str, str]) -> None:
    ips = dig(cluster, "nginx.default.svc.cluster.local")
    assert ips == sorted(web.values())
    owners = {page_owner(f"http://{ip}:8080/index.html") for ip in ips}
    assert owners == {"web-0", "web-1", "web-2"}


def test_node_port_answers_on_localhost(kctl: Kubectl, web: dict[str, str]) -> None:
    node_port = int(kctl("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"))
    assert 30000 <= node_port <= 32767
    until(lambda: _connects("127.0.0.1", node_port), 5, "the NodePort")
    assert page_owner(f"http://127.0.0.1:{node_port}/index.html") in web


def test_status_and_events_of_a_running_process_pod(kctl: Kubectl, web: dict[str, str]) -> None:
    status = pod(kctl, "web-0")["status"]
    assert status["phase"] == "Running"
    container = status["containerStatuses"][0]
    assert container["ready"] is True and container["restartCount"] == 0
    assert "running" in container["state"]
    events = kctl("get", "events", "--field-selector", "involvedObject.name=web-0")
    assert 'Container image "python:3.11" is not pulled' in events


def test_readiness_takes_a_pod_out_of_the_slice_and_back(kctl: Kubectl, web: dict[str, str],
                                                         pages: Path, cluster: Cluster) -> None:
    url = service_url(kctl)
    page = pages / "web-1" / "index.html"
    content = page.read_text()
    page.unlink()
    try:
        removed = time.monotonic()
        _, seen = until_seen(lambda: slice_ready(kctl, web["web-1"]) is False, 10,
                             "web-1 not ready in slice")
        left_after = seen - removed
        # Out of DNS and of the proxy too: the other two serve every request.
        until(lambda: dig(cluster, "nginx.default.svc.cluster.local") == sorted(
            [web["web-0"], web["web-2"]]), 2.5, "web-1 out of DNS")
        until(lambda: owners(url) == {"web-0", "web-2"}, 2.5, "web-1 out of the proxy")
    finally:
        page.write_text(content)
    restored = time.monotonic()
    _, seen = until_seen(lambda: slice_ready(kctl, web["web-1"]) is True, 10,
                         "web-1 ready again")
    back_after = seen - restored
    assert left_after < 2.5 and back_after < 2.5, (left_after, back_after)  # two periods
    until(lambda: len(dig(cluster, "nginx.default.svc.cluster.local")) == 3, 2, "DNS again")
    assert all(slice_ready(kctl, web[n]) for n in ("web-0", "web-2"))
    assert [p["status"]["containerStatuses"][0]["restartCount"]
            for p in pods(kctl, "app=web")] == [0, 0, 0]


def test_liveness_failure_restarts_and_keeps_the_previous_log(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=LIVENESS)
    status = until(lambda: (s := pod(kctl, "live")["status"]).get("containerStatuses") and
                   s["containerStatuses"][0]["restartCount"] >= 1 and s, 25, "a restart")
    container = status["containerStatuses"][0]
    assert container["lastState"]["terminated"]["exitCode"] == 143  # 128 + SIGTERM
    previous = kctl("logs", "live", "--previous")
    current = until(lambda: kctl("logs", "live"), 5, "the new run's output")
    assert previous.startswith("run-") and current.startswith("run-")
    assert previous != current
    events = kctl("get", "events", "--field-selector", "involvedObject.name=live")
    assert "failed liveness probe, will be restarted" in events
    kctl("delete", "pod", "live")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mount and UTS namespaces need root")
def test_inside_a_pod_names_are_the_pods_own(kctl: Kubectl, web: dict[str, str]) -> None:
    kctl("apply", "-f", "-", input=NAMES)
    until(lambda: pod(kctl, "names")["status"].get("phase") == "Succeeded", 30, "names to end")
    lines = kctl("logs", "names").splitlines()
    assert lines[0] == "names"
    assert lines[1].split() == [web["web-1"], "web-1.nginx.default.svc.cluster.local"]
    assert os.uname().nodename != "names"  # the host's name is untouched


def test_a_pod_reads_its_service_account_name_from_the_downward_api(kctl: Kubectl) -> None:
    """The pod names no account; admission made it `default`, and the kubelet's fieldRef
    `spec.serviceAccountName` gives the process that."""
    kctl("apply", "-f", "-", input=ACCOUNT)
    until(lambda: pod(kctl, "account")["status"].get("phase") == "Succeeded", 30,
          "the account pod to end")
    assert kctl("logs", "account").strip() == "account=default"


def test_a_pod_reaches_the_api_with_its_service_account(kctl: Kubectl,
                                                        web: dict[str, str]) -> None:
    """kubectl inside a pod, with no kubeconfig: in-cluster config from the service account
    files at /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT,
    through the proxy to the API server, whose certificate names the Service's cluster IP.
    The token is the pod's own (its ServiceAccount's, bound to it): RBAC lets it list pods
    once a RoleBinding says so."""
    kctl("create", "role", "pod-lister", "--verb=list", "--resource=pods")
    kctl("create", "rolebinding", "default-lists-pods", "--role=pod-lister",
         "--serviceaccount=default:default")
    listed = kctl("exec", "web-0", "--", "env", "-u", "KUBECONFIG", "HOME=/nonexistent",
                  KUBECTLS[0][1], "get", "pods", "-l", "app=web", "-o", "name")
    assert sorted(listed.split()) == sorted(f"pod/{name}" for name in web)


READER = """
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  serviceAccountName: reader
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: python, command: [sleep, "3600"]}
"""
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_a_pods_token_is_its_own_and_dies_with_it(kctl: Kubectl) -> None:
    """The mounted token is a bound token of the pod's ServiceAccount: it reads what the
    account's Role allows and nothing else, and stops working when the pod is deleted."""
    kctl("create", "sa", "reader")
    kctl("create", "role", "config-reader", "--verb=get,list", "--resource=configmaps")
    kctl("create", "rolebinding", "reader-configs", "--role=config-reader",
         "--serviceaccount=default:reader")
    kctl("apply", "-f", "-", input=READER)
    until(lambda: pod(kctl, "reader")["status"].get("phase") == "Running", 30, "reader to run")
    token = kctl("exec", "reader", "--", "cat", TOKEN).strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:default:reader"
    assert claims["kubernetes.io"]["pod"]["name"] == "reader"
    assert claims["exp"] - claims["iat"] == 3607
    kctl("--token", token, "get", "configmaps")
    denied = kctl.run("--token", token, "get", "pods", check=False)
    assert ('pods is forbidden: User "system:serviceaccount:default:reader" cannot list '
            'resource "pods" in API group "" in the namespace "default"') in denied.stderr
    kctl("delete", "pod", "reader", "--timeout=20s")
    rejected = kctl.run("--token", token, "get", "configmaps", check=False)
    assert rejected.returncode != 0 and "Unauthorized" in rejected.stderr, rejected.stderr


def test_deleting_a_process_pod_stops_its_processes(kctl: Kubectl, web: dict[str, str]) -> None:
    ip = web["web-2"]
    kctl.delete_replaced("pod", "web-2", timeout=20)
    with pytest.raises(OSError):
        get(f"http://{ip}:8080/index.html")


ESCAPER = """
apiVersion: v1
kind: Pod
metadata: {name: escaper}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: python
    command: [sh, -c, "setsid sleep MARK & exec sleep 3600"]
"""
HOG = """
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: OnFailure
  containers:
  - name: hog
    image: python
    # 64 x 8 MiB at most (bounded even where no limit is enforced), then it waits
    command: [python3, -c,
              "import time\\nb = [b'x' * (8 << 20) for _ in range(64)]\\ntime.sleep(60)"]
    resources: {limits: {memory: 64Mi}}
"""


def processes_with(marker: str) -> list[str]:
    """Pids of the processes whose command line has `marker` (this test's own)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(proc.name)
            except OSError:
                continue
    return found


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_deleting_a_pod_ends_the_processes_that_left_its_session(kctl: Kubectl) -> None:
    """A daemon that calls setsid(2) is still in its container's cgroup: it goes with it."""
    marker = str(random.randrange(10**8, 10**9))  # `sleep <marker>` names this test's daemon
    kctl("apply", "-f", "-", input=ESCAPER.replace("MARK", marker))
    until(lambda: processes_with(f"sleep\0{marker}"), 20, "the daemon to start")
    kctl("delete", "pod", "escaper", "--timeout=20s")
    until(lambda: not processes_with(f"sleep\0{marker}"), 10, "the daemon to be gone")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_a_container_over_its_memory_limit_is_oom_killed(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=HOG)
    status = until(lambda: (s := pod(kctl, "hog")["status"]).get("containerStatuses") and
                   s["containerStatuses"][0]["restartCount"] >= 1 and s, 30, "an OOM kill")
    terminated = status["containerStatuses"][0]["lastState"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    kctl("delete", "pod", "hog", "--timeout=20s")


SECURITY = """
apiVersion: v1
kind: Pod
metadata: {name: sec}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000}
  containers:
  - name: main
    image: python
    command: [sh, -c, "id -u; id -g; id -G; head -c 4 $(ACCOUNT)/token; echo;
                       tail -1 /etc/hosts; exec sleep 3600"]
    env: [{name: ACCOUNT, value: /var/run/secrets/kubernetes.io/serviceaccount}]
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  containers:
  - name: main
    image: python
    securityContext: {runAsNonRoot: true}
    command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: private-run}
spec:
  containers:
  - name: main
    image: python
    command: [sh, -c, "mkdir -p /run/mine && echo written-inside > /run/mine/file &&
                       exec sleep 3600"]
"""


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_security_context_users_and_the_exec_into_the_container(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=SECURITY)
    kctl("wait", "--for=condition=Ready", "pod/sec", "pod/private-run", "--timeout=30s")
    uid, gid, groups, token, hosts = until(
        lambda: len(lines := kctl("logs", "sec").splitlines()) >= 5 and lines, 10, "output")[:5]
    assert (uid, gid, sorted(groups.split())) == ("1000", "3000", ["2000", "3000"])
    assert len(token) == 4 and hosts.split()[-1] == "sec"  # readable by the container's user
    assert kctl("exec", "sec", "--", "id", "-u").strip() == "1000"  # exec runs as it too
    # kubectl exec joins the running container: it sees what the container wrote in its /run
    assert kctl("exec", "private-run", "--", "cat", "/run/mine/file").strip() == \
        "written-inside"
    assert not Path("/run/mine").exists()  # which the host never sees
    def refusal() -> str | None:
        statuses = pod(kctl, "nonroot")["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("message")
    waiting = until(refusal, 10, "the refusal")
    assert waiting.startswith('container has runAsNonRoot and image will run as root (pod: '
                              '"nonroot_default(')
    kctl("delete", "pod", "sec", "nonroot", "private-run", "--timeout=20s")


DEV_STDOUT = """
apiVersion: v1
kind: Pod
metadata: {name: devout}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: python
    command: [sh, -c, "echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr"]
"""


def test_a_container_can_open_dev_stdout_and_dev_stderr(kctl: Kubectl) -> None:
    """As nginx's `access_log /dev/stdout` does: its streams are pipes, which open by path."""
    kctl("apply", "-f", "-", input=DEV_STDOUT)
    until(lambda: pod(kctl, "devout")["status"].get("phase") == "Succeeded", 30, "the end")
    assert kctl("logs", "devout").split() == ["to-stdout", "to-stderr"]
    kctl("delete", "pod", "devout", "--timeout=20s")


PID_IPC = """
apiVersion: v1
kind: Pod
metadata: {name: shm-owner}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: python
    command: [sh, -c, "ipcmk -M 4096 && ps -e -o pid=,args= && exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: shm-peer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: python
    command: [sleep, "3600"]
"""


def test_a_pod_has_its_own_pids_and_ipc_and_exec_joins_them(kctl: Kubectl) -> None:
    """`ps` in a container lists its own processes only (its command is PID 2, under the
    pod's init); `kubectl exec` lands in the same PID and IPC namespaces; a SysV segment of
    one pod is not visible from another."""
    kctl("apply", "-f", "-", input=PID_IPC)
    kctl("wait", "--for=condition=Ready", "pod/shm-owner", "pod/shm-peer", "--timeout=30s")
    logged = until(lambda: "ps -e" in (text := kctl("logs", "shm-owner")) and text, 10, "ps")
    pids = [line.split(None, 1) for line in logged.splitlines() if line.strip()[:1].isdigit()]
    assert [pid for pid, _ in pids] == ["1", "2", "4"], logged  # init, sh, (ipcmk: 3), ps
    seen = kctl("exec", "shm-owner", "--", "ps", "-e", "-o", "pid=,args=")
    assert ["2", "sleep 3600"] in [line.split(None, 1) for line in seen.strip().splitlines()]
    assert "4096" in kctl("exec", "shm-owner", "--", "ipcs", "-m")
    assert "4096" not in kctl("exec", "shm-peer", "--", "ipcs", "-m")
    kctl("delete", "pod", "shm-owner", "shm-peer", "--timeout=20s")
