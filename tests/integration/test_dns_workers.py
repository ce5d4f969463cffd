"""`tinykube up --dns-workers 2`: two processes answer cluster DNS on one address (SO_REUSEPORT),
seen with `ss` and `dig`.

* both processes hold the address (ss), and the second is `tinykube dns --join` with a
  kubeconfig of the DNS's own identity (kubeadm's CoreDNS account);
* 40 `dig`s (40 source ports) all get the true answer, and the first process's query log
  holds some of them but not all: the kernel gave the others to the worker;
* a Service made after the start is answered by every process (each watches the API);
* a worker killed by its PID is started again and joins the address again;
* stopping `up` leaves no worker behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tinykube.observe_client import ObserveAPI, set_query_log, wait_log_state

pytestmark = [pytest.mark.kubectl, pytest.mark.skipif(
    shutil.which("dig") is None or shutil.which("ss") is None, reason="needs dig and ss")]
QUERIES = 40


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("dnsworkers") / "data", "--no-proxy",
                            "--dns-workers", "2")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))


def holders(address: tuple[str, int]) -> set[int]:
    """PIDs of the processes with a UDP socket bound to `address` (ss -uapn)."""
    out = subprocess.run(["ss", "-uapnH", "sport", "=", f":{address[1]}"], capture_output=True,
                         text=True, check=True).stdout
    return {int(pid) for line in out.splitlines() if f"{address[0]}:{address[1]}" in line
            for pid in re.findall(r"pid=(\d+)", line)}


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def dig(address: tuple[str, int], name: str) -> tuple[str, list[str]]:
    """(status, A records) of one query from a fresh source port."""
    out = subprocess.run(["dig", "-p", str(address[1]), f"@{address[0]}", "+tries=1",
                          "+timeout=3", name, "A"], capture_output=True, text=True,
                         timeout=10).stdout
    status = re.search(r"status: (\w+)", out)
    answers = re.findall(r"^[^;\s]\S*\s+\d+\s+IN\s+A\s+(\S+)$", out, re.MULTILINE)
    return (status.group(1) if status else "no answer"), answers


def worker_pids(cluster: Cluster) -> set[int]:
    assert cluster.dns is not None
    return {pid for pid in holders(cluster.dns) if "--join" in cmdline(pid)}


def test_two_processes_share_the_address_and_the_queries(cluster: Cluster) -> None:
    assert cluster.dns is not None
    address = cluster.dns
    pids = until(lambda: len(found := holders(address)) == 2 and found, 30,
                 "two DNS processes on the address")
    workers = worker_pids(cluster)
    assert len(workers) == 1 and cmdline(next(iter(workers)))[1:4] == ["-m", "tinykube", "dns"]
    assert len(pids - workers) == 1  # the components process of `up`
    worker_config = cluster.data_dir / "dns-workers.kubeconfig"
    assert cmdline(next(iter(workers)))[-2:] == ["--kubeconfig", str(worker_config)]
    assert (worker_config.stat().st_mode & 0o777) == 0o600
    whoami = Kubectl(KUBECTLS[0][1], worker_config, cluster.data_dir)
    assert "system:serviceaccount:kube-system:coredns" in whoami("auth", "whoami")

    observe = ObserveAPI.from_kubeconfig(cluster.kubeconfig)
    set_query_log(cluster.kubeconfig, enabled=True)
    assert wait_log_state(observe, True)
    names = [f"q{i}.kubernetes.default.svc.cluster.local" for i in range(QUERIES)]
    answered = [dig(cluster.dns, name) for name in names]
    assert all(status == "NXDOMAIN" for status, _ in answered), answered
    assert dig(cluster.dns, "kubernetes.default.svc.cluster.local")[1] == ["127.96.0.1"]
    logged = {e["name"].rstrip(".") for e in observe.get("api/dns/log")["entries"]}
    seen_here = logged & set(names)
    # 40 random source ports: the chance that one process got all of them is 2 in 2**40
    assert 0 < len(seen_here) < QUERIES, (len(seen_here), sorted(logged)[:5])
    set_query_log(cluster.kubeconfig, enabled=False)


def test_every_process_answers_a_new_service(cluster: Cluster, kctl: Kubectl) -> None:
    assert cluster.dns is not None
    kctl("create", "service", "clusterip", "fresh", "--tcp=80:80")
    ip = kctl("get", "service", "fresh", "-o", "jsonpath={.spec.clusterIP}")
    name = "fresh.default.svc.cluster.local"
    address = cluster.dns
    until(lambda: all(dig(address, name)[1] == [ip] for _ in range(QUERIES)), 30,
          "every process to answer the new Service")


def test_a_killed_worker_comes_back(cluster: Cluster) -> None:
    assert cluster.dns is not None
    (old,) = until(lambda: worker_pids(cluster) or None, 30, "a worker")
    os.kill(old, signal.SIGKILL)
    (new,) = until(lambda: (w := worker_pids(cluster)) and old not in w and w, 60,
                   "the worker started again")
    assert new != old
    assert all(dig(cluster.dns, "kubernetes.default.svc.cluster.local")[1] == ["127.96.0.1"]
               for _ in range(10))


def test_stopping_up_stops_the_workers(tmp_path: Path) -> None:
    running = start_cluster(tmp_path / "data", "--no-proxy", "--no-ui", "--dns-workers", "3")
    assert running.dns is not None
    workers = until(lambda: len(w := worker_pids(running)) == 2 and w, 30, "two workers")
    assert running.stop() == 0
    assert not any(Path(f"/proc/{pid}").exists() and "--join" in cmdline(pid)
                   for pid in workers)
    assert holders(running.dns) == set()
