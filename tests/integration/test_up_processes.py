"""`tinykube up` as two processes: the API server, and a child with the nodes, controllers, DNS
and proxy. The child follows the parent (even a killed one), a dead child stops `up` with an
error, and `--single-process` keeps everything in one process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Kubectl, start_cluster
from tinykube.components import ComponentOptions, NodeSpec
from tinykube.dns.app import DNSOptions


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def components_child(pid: int) -> int:
    [child] = [c for c in children(pid)
               if b"tinykube.components" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return child


def test_the_child_stops_when_the_parent_is_killed(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data")
    child = components_child(cluster.process.pid)
    kubectl = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path)
    assert "Ready" in kubectl("get", "nodes")  # registered by the child
    cluster.stop(signal.SIGKILL)
    wait_for(lambda: not alive(child), 10, "the child to notice its parent is gone")


def test_a_dead_child_stops_up_with_an_error(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data")
    os.kill(components_child(cluster.process.pid), signal.SIGKILL)
    assert cluster.process.wait(timeout=20) != 0
    assert any("node and controller process failed: exited with code -9" in line
               for line in cluster.output)


def test_single_process_runs_pods_without_a_child(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data", "--single-process")
    try:
        assert [c for c in children(cluster.process.pid)
                if b"tinykube.components" in Path(f"/proc/{c}/cmdline").read_bytes()] == []
        kubectl = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path)
        kubectl("run", "one", "--image=busybox")
        kubectl("wait", "--for=condition=Ready", "pod/one", "--timeout=20s")
    finally:
        assert cluster.stop() == 0


@pytest.mark.parametrize("dns", [
    None,
    DNSOptions(listen=("127.0.0.1", 5353), fallback_port=None, upstream=None),
    DNSOptions(listen=("127.96.0.10", 53), metrics=("127.96.0.10", 9153),
               upstream=[("192.0.2.1", 53)], log_queries=True),
])
def test_component_options_survive_the_trip_to_the_child(dns: DNSOptions | None) -> None:
    options = ComponentOptions(kubeconfig=Path("/data/kubeconfig"), data_dir=Path("/data"),
                               host_ip="127.0.0.1",
                               nodes=[NodeSpec("a"), NodeSpec("b", {"node": "b"})],
                               pod_cidr="127.244.0.0/16", dns=dns, proxy=False,
                               default_runtime="process", kubelet_token="secret", verbose=2)
    assert ComponentOptions.from_json(options.to_json()) == options
