"""The pytest plugin (entry point `tinykube`): a real cluster for the tests of code that talks to
Kubernetes.

Fixtures:

- `tinykube_cluster`: a running `tinykube up` (a `TinykubeCluster`). One cluster is started per
  configuration the first time a test asks for it and stopped at the end of the session (of the
  xdist worker, under pytest-xdist: each worker has its own). Its configuration comes from the
  closest `@pytest.mark.tinykube(nodes=..., network=..., runtime=..., args=[...])` marker, else
  from the ini options `tinykube_nodes`, `tinykube_network`, `tinykube_runtime`,
  `tinykube_args`. The fixture is function-scoped so that a marker can choose; the cluster it
  hands out lives for the session. Session- or module-scoped fixtures of one's own use
  `tinykube_clusters.get(...)` with the same keywords.
- `k8s_namespace`: a fresh namespace for one test (a `TestNamespace`), deleted after it, waiting
  until the namespace is gone (so are its pods: the namespace controller deletes them first).
  Inside the test `KUBECONFIG` names a kubeconfig whose context defaults to that namespace, so
  kubectl, the official client, kubernetes_asyncio, lightkube and kr8s use it unconfigured.
  Two clients read the kubeconfig's location at import time or cache the loaded configuration
  across tests; `CLIENT_RESETS` lists what is reset for them inside each test.

Nothing runs unless a test asks for a fixture: importing this module imports only pytest and
the standard library, and no cluster starts. `-p no:tinykube` disables the plugin.

Teardown leaves nothing: the `tinykube up` process (and its components child) is stopped with
SIGTERM and waited for, and its data directory (state, certificates, sockets, log) is removed.

The test clock: `@pytest.mark.tinykube(test_clock=True)` starts the cluster with `tinykube up
--test-clock`; `cluster.clock` (a `clock_client.TestClockClient`) then reads it (`now()`) and
moves it (`advance(seconds)`, which returns once the cluster is quiescent at the new time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

INI_OPTIONS = {
    "tinykube_nodes": "tinykube_cluster: node names (comma-separated) or a node count",
    "tinykube_network": "tinykube_cluster: network mode, host (default) or netns (root)",
    "tinykube_runtime": "tinykube_cluster: default pod runtime (virtual, process, container)",
    "tinykube_args": "tinykube_cluster: more `tinykube up` arguments (space-separated)",
    "tinykube_start_timeout": "tinykube_cluster: seconds to wait for the cluster (default 60)",
}

# (module, attribute, value factory): per-test resets so clients load this test's kubeconfig.
# The official clients read $KUBECONFIG once, when imported; kr8s caches its Api objects.
CLIENT_RESETS: list[tuple[str, str, Callable[[str], Any]]] = [
    ("kubernetes.config.kube_config", "KUBE_CONFIG_DEFAULT_LOCATION", lambda path: path),
    ("kubernetes_asyncio.config.kube_config", "KUBE_CONFIG_DEFAULT_LOCATION",
     lambda path: path),
    ("kr8s._api", "Api._instances", lambda path: {}),
]


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    nodes: str = ""  # comma-separated names; "" is tinykube's default (one node)
    network: str = "host"
    runtime: str = ""
    args: tuple[str, ...] = ()
    test_clock: bool = False

    @classmethod
    def make(cls, nodes: str | int | list[str] | None = None, network: str | None = None,
             runtime: str | None = None, args: list[str] | tuple[str, ...] = (),
             test_clock: bool = False) -> ClusterConfig:
        if isinstance(nodes, int) or (isinstance(nodes, str) and nodes.isdigit()):
            nodes = ",".join(f"node-{i}" for i in range(1, int(nodes) + 1))
        elif isinstance(nodes, list):
            nodes = ",".join(nodes)
        return cls(nodes or "", network or "host", runtime or "", tuple(args), test_clock)

    def up_args(self, dns_port: int) -> list[str]:
        args = ["--listen", "127.0.0.1:0"]
        if self.network == "netns":
            args += ["--network", "netns"]
        elif "--dns-listen" not in self.args and "--no-dns" not in self.args:
            args += ["--dns-listen", f"127.0.0.1:{dns_port}"]
        if self.network != "netns" and not any(a in self.args for a in ("--proxy",
                                                                          "--no-proxy")):
            args.append("--no-proxy")  # cluster IPs on loopback are shared by the whole host
        if self.nodes:
            args += ["--nodes", self.nodes]
        if self.runtime:
            args += ["--default-runtime", self.runtime]
        if self.test_clock:
            args.append("--test-clock")
        return [*args, *self.args]


class TinykubeCluster:
    """A running `tinykube up`, for tests."""

    def __init__(self, data_dir: Path, kubeconfig: Path, api_url: str,
                 dns_address: tuple[str, int] | None, pid: int) -> None:
        self.data_dir = data_dir
        self.kubeconfig = kubeconfig
        self.api_url = api_url
        self.dns_address = dns_address
        self.pid = pid
        self.kubectl_binary = shutil.which("kubectl") or "kubectl"
        from tinykube.background import AdminAPI
        from tinykube.clock_client import TestClockClient

        self._api = AdminAPI.from_kubeconfig(kubeconfig)
        self.dns = DNSDrills(self)
        self.clock = TestClockClient(kubeconfig)  # `test_clock=True` clusters only
        self.test_clock = False  # whether it runs on a test clock

    def __repr__(self) -> str:
        return f"TinykubeCluster({self.api_url}, data_dir={self.data_dir})"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None, timeout: float = 60
                ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise (with its output) if it fails and
        `check`."""
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig),
               "KUBECACHEDIR": str(self.data_dir / "kubecache")}
        result = subprocess.run([self.kubectl_binary, *args], input=input,
                                capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def apply(self, manifest: str | Path, namespace: str | None = None
              ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply` a path, or YAML text (anything with a newline or a `kind:`)."""
        ns = ["-n", namespace] if namespace else []
        text = str(manifest)
        if isinstance(manifest, Path) or ("\n" not in text and "kind:" not in text):
            return self.kubectl("apply", *ns, "-f", text)
        return self.kubectl("apply", *ns, "-f", "-", input=text)

    def wait_for(self, what: str | Callable[[], Any], condition: str = "condition=Ready",
                 namespace: str | None = None, timeout: float = 60) -> Any:
        """Wait until a callable returns something truthy (and return it), or until
        `kubectl wait --for=CONDITION WHAT` holds; objects that do not exist yet are waited
        for too (kubectl wait alone fails on them)."""
        deadline = time.monotonic() + timeout
        if callable(what):
            while time.monotonic() < deadline:
                if result := what():
                    return result
                time.sleep(0.05)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        ns = ["-n", namespace] if namespace else []
        while True:
            left = max(1.0, deadline - time.monotonic())
            result = self.kubectl("wait", *ns, f"--for={condition}", what,
                                  f"--timeout={left:.0f}s", check=False, timeout=left + 10)
            if result.returncode == 0:
                return result
            missing = "NotFound" in result.stderr or "no matching resources" in result.stderr
            if not missing or time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what} ({condition}) failed:\n"
                                     f"{result.stdout}{result.stderr}")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API request (JSON): (status, decoded body)."""
        return self._api.request(method, path, body)


class DNSDrills:
    """`cluster.dns`: fault drills in the cluster DNS (`tinykube.dns.drills`)."""

    def __init__(self, cluster: TinykubeCluster) -> None:
        self._cluster = cluster

    def inject(self, name: str, *, for_seconds: float, rcode: int | str | None = None,
               delay: float | None = None, drop: bool = False, truncate: bool = False,
               stale: bool = False, restart: bool = False) -> str:
        """Start a drill for `name` and return once the DNS runs it; its id. One of: `rcode`
        (2/"SERVFAIL", 3/"NXDOMAIN", ...), `delay` seconds, `drop`, `truncate` (TC over
        UDP), `stale` (keep the first answer), `restart` (SERVFAIL for every name)."""
        from tinykube import drill_client

        behaviour: dict[str, Any] = {k: v for k, v in (
            ("rcode", rcode), ("delay", delay)) if v is not None}
        behaviour.update({k: True for k, v in (("drop", drop), ("truncate", truncate),
                                               ("stale", stale), ("restart", restart)) if v})
        return drill_client.inject(self._cluster.kubeconfig, name, for_seconds=for_seconds,
                                   dns_address=self._cluster.dns_address, **behaviour)

    def clear(self) -> None:
        from tinykube import drill_client

        drill_client.clear(self._cluster.kubeconfig)


@dataclasses.dataclass
class TestNamespace:
    """A namespace of one test, with helpers bound to it."""

    __test__ = False  # not a test class, whatever its name
    name: str
    cluster: TinykubeCluster
    kubeconfig: Path

    def __str__(self) -> str:
        return self.name

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, kubeconfig=self.kubeconfig, **kwargs)

    def apply(self, manifest: str | Path) -> subprocess.CompletedProcess[str]:
        return self.cluster.apply(manifest, namespace=self.name)

    def wait_for(self, what: str | Callable[[], Any], condition: str = "condition=Ready",
                 timeout: float = 60) -> Any:
        return self.cluster.wait_for(what, condition, namespace=self.name, timeout=timeout)


class ClusterPool:
    """The clusters of this session, one per configuration, started on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._clusters: dict[ClusterConfig, TinykubeCluster] = {}
        self._root: Path | None = None

    def default(self) -> ClusterConfig:
        ini = self._config.getini
        return ClusterConfig.make(nodes=ini("tinykube_nodes") or None,
                                  network=ini("tinykube_network") or None,
                                  runtime=ini("tinykube_runtime") or None,
                                  args=str(ini("tinykube_args") or "").split())

    def get(self, **options: Any) -> TinykubeCluster:
        base = self.default()
        merged = {"nodes": base.nodes, "network": base.network, "runtime": base.runtime,
                  "args": base.args, **options}
        config = ClusterConfig.make(**merged)
        if config not in self._clusters:
            self._clusters[config] = self._start(config)
        return self._clusters[config]

    def _start(self, config: ClusterConfig) -> TinykubeCluster:
        from tinykube import background
        from tinykube.testing import free_port

        if self._root is None:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            self._root = Path(tempfile.mkdtemp(prefix=f"tinykube-pytest-{worker}-"))
        data_dir = self._root / f"cluster-{len(self._clusters)}"
        timeout = float(self._config.getini("tinykube_start_timeout") or 60)
        started = background.start(data_dir, config.up_args(free_port()), timeout=timeout)
        cluster = TinykubeCluster(data_dir, started.kubeconfig, started.api_url,
                                  started.dns_address, started.pid)
        cluster.test_clock = config.test_clock
        return cluster

    def stop_all(self) -> None:
        from tinykube import background

        for cluster in self._clusters.values():
            background.stop_pid(cluster.pid)
        self._clusters.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def namespace_kubeconfig(source: Path, namespace: str, target: Path) -> Path:
    """A copy of `source` whose contexts default to `namespace`."""
    import yaml

    config = yaml.safe_load(source.read_text())
    for context in config.get("contexts", []):
        context["context"]["namespace"] = namespace
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return target


def delete_namespace(cluster: TinykubeCluster, name: str, timeout: float = 120) -> None:
    """Delete `name` and wait until it is gone (its contents, pods included, go first)."""
    status, body = cluster.request("DELETE", f"/api/v1/namespaces/{name}")
    if status == 404:
        return
    assert status in (200, 202), f"deleting namespace {name}: {status} {body}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.request("GET", f"/api/v1/namespaces/{name}")[0] == 404:
            return
        if cluster.test_clock:  # the namespace controller checks again after a delay
            cluster.clock.advance(1)
        else:
            time.sleep(0.05)
    raise AssertionError(f"namespace {name} was not deleted within {timeout}s")


def _reset_clients(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> None:
    for module_name, attribute, value in CLIENT_RESETS:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        *owner_path, name = attribute.split(".")
        owner: Any = module
        for part in owner_path:
            owner = getattr(owner, part)
        if hasattr(owner, name):
            monkeypatch.setattr(owner, name, value(str(kubeconfig)))


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, help_text in INI_OPTIONS.items():
        parser.addini(name, help_text, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tinykube(nodes=None, network=None, runtime=None, args=(), "
        "test_clock=False): configure "
        "the cluster the tinykube_cluster fixture hands this test")


@pytest.fixture(scope="session")
def tinykube_clusters(pytestconfig: pytest.Config) -> Iterator[ClusterPool]:
    """This session's clusters (`.get(**config)`); all stopped and removed at its end."""
    pool = ClusterPool(pytestconfig)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def tinykube_cluster(request: pytest.FixtureRequest,
                     tinykube_clusters: ClusterPool) -> TinykubeCluster:
    """The session's cluster for this test's configuration (marker `tinykube`, else ini)."""
    marker = request.node.get_closest_marker("tinykube")
    return tinykube_clusters.get(**(marker.kwargs if marker else {}))


@pytest.fixture
def k8s_namespace(tinykube_cluster: TinykubeCluster,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[TestNamespace]:
    """A fresh namespace for this test, deleted (and waited for) afterwards; KUBECONFIG
    points at the cluster with this namespace as the default."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    status, body = tinykube_cluster.request(
        "POST", "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert status == 201, f"creating namespace {name}: {status} {body}"
    kubeconfig = namespace_kubeconfig(tinykube_cluster.kubeconfig, name,
                                      tinykube_cluster.data_dir / f"kubeconfig-{name}")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    _reset_clients(monkeypatch, kubeconfig)
    try:
        yield TestNamespace(name, tinykube_cluster, kubeconfig)
    finally:
        with contextlib.suppress(FileNotFoundError):
            kubeconfig.unlink()
        delete_namespace(tinykube_cluster, name)
