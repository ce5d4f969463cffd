"""API servers on a test etcd cluster (`tinykube.testing_etcd`).

`start_apiserver` runs `tinykube apiserver` (or the first one, `tinykube up --store`, with no
nodes, DNS or proxy) as a child process and waits for its "ready" line; `stop` ends it by PID.
`api_servers(tmp)` is a 3-member etcd with two API servers on it, stopped on leaving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.api_http import Server
from tinykube.testing import free_port
from tinykube.testing_etcd import ETCD, EtcdCluster, Member, start_etcd
from tinykube.testing_netns_hosts import HostNetwork

__all__ = ["APIServerProcess", "EtcdCluster", "Member", "api_servers", "needs_etcd",
           "start_apiserver", "start_etcd"]
needs_etcd = pytest.mark.skipif(not Path(ETCD).exists(), reason="etcd-server is not installed")


@dataclasses.dataclass
class APIServerProcess:
    process: subprocess.Popen[bytes]
    kubeconfig: Path
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_apiserver(store: str, data_dir: Path, port: int, *, first: bool, log: Path,
                    extra: tuple[str, ...] = (), timeout: float = 40) -> APIServerProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    if first:
        args = ["up", "--store", store, "--data-dir", str(data_dir),
                "--listen", f"127.0.0.1:{port}", "--single-process", "--nodes", "",
                "--no-dns", "--no-proxy", *extra]
        kubeconfig = data_dir / "kubeconfig"
    else:
        args = ["apiserver", "--store", store, "--data-dir", str(data_dir),
                "--listen", f"127.0.0.1:{port}", *extra]
        kubeconfig = data_dir / f"kubeconfig-{port}"
    process = subprocess.Popen([sys.executable, "-m", "tinykube", *args], env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while f"ready at https://127.0.0.1:{port}" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            raise RuntimeError(f"API server on {port} did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return APIServerProcess(process, kubeconfig, f"https://127.0.0.1:{port}")


Cluster = tuple[EtcdCluster, list["APIServerProcess"], list[Server]]


@contextlib.contextmanager
def api_servers(tmp: Path, hosts: HostNetwork | None = None,
                second: tuple[str, ...] = (), pin_second: int | None = None) -> Iterator[Cluster]:
    """A 3-member etcd (its members in namespace `hosts`, if given) and two API servers on it,
    the first one `tinykube up --store`, the second with the `second` arguments too; with
    `pin_second`, the second one's store is that member alone (the first has every member)."""
    etcd = start_etcd(tmp, hosts=hosts)
    started: list[APIServerProcess] = []
    try:
        data = tmp / "data"
        started.append(start_apiserver(etcd.url, data, free_port(udp=False), first=True,
                                       log=tmp / "a.log"))
        store = etcd.url if pin_second is None else \
            f"etcd://{etcd.members[pin_second].endpoint}"
        started.append(start_apiserver(store, data, free_port(udp=False), first=False,
                                       log=tmp / "b.log", extra=second))
        yield etcd, started, [Server(s.url, data) for s in started]
    finally:
        for server in started:
            server.stop()
        etcd.stop()
