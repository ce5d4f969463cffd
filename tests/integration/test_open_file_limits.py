"""A cluster under a shell's open-file limit (`ulimit -n 1024`, soft and hard) with a Service of
2,000 ports: the proxy takes only what its bounds allow, says so, and the cluster keeps serving.

`tinykube up --proxy` runs under `prlimit --nofile=1024:1024` with its own service range (so its
cluster IPs clash with no other test cluster's) and the process runtime. The Service `wide` asks
for 2,000 listeners, `more-a` and `more-b` for 200 each; at 1024 descriptors the proxy's listeners
may use 512 (the rest is kept for pods, DNS and connections), at most 256 of them for one Service.
Then every part that ran out of descriptors before still works: a process pod starts and
`kubectl logs` prints its output, DNS answers over TCP, the cluster IP of a proxied port accepts
connections, and each Service that lost addresses has the Warning Event that says why. A second
cluster, started with a soft limit below its hard one, runs with the soft limit raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

OPEN_FILES = 1024
DEADLINE = 60.0


def service(name: str, ports: int, first: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": f"p{n}", "port": first + n} for n in range(ports)]}}


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
       "spec": {"containers": [{"name": "c", "image": "busybox",
                                "command": ["sh", "-c", "echo still-serving; exec sleep 3600"]}]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cidr = f"127.{random.randrange(100, 200)}.{random.randrange(256)}.0/24"
    running = start_cluster(tmp_path_factory.mktemp("nofile") / "data", "--proxy",
                            "--service-cidr", cidr, "--default-runtime", "process",
                            open_files=(OPEN_FILES, OPEN_FILES))
    yield running
    assert running.stop() == 0, "\n".join(running.output)


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    kubectl = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))
    for name, ports, first in (("wide", 2000, 10000), ("more-a", 200, 20000),
                               ("more-b", 200, 30000)):
        kubectl("apply", "-f", "-", input=json.dumps(service(name, ports, first)))
        ip = kubectl("get", "service", name, "-o", "jsonpath={.spec.clusterIP}")
        wait_listening(ip, first)  # one at a time: the budget goes in creation order
    kubectl("apply", "-f", "-", input=json.dumps(POD))
    return kubectl


def listens(ip: str, port: int) -> bool:
    """Whether the proxy listens on ip:port. It resets every connection at once (the Services
    have no endpoints), so the reset may come before connect() returns: that is listening too;
    only a refused connect is not."""
    try:
        socket.create_connection((ip, port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    except ConnectionResetError:
        pass
    return True


def wait_listening(ip: str, port: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while not listens(ip, port):
        assert time.monotonic() < deadline, f"the proxy never listened on {ip}:{port}"
        time.sleep(0.1)


def events(kctl: Kubectl, name: str) -> list[dict[str, Any]]:
    listed = json.loads(kctl("get", "events", "-o", "json", "--field-selector",
                             f"involvedObject.kind=Service,involvedObject.name={name}"))
    return list(listed["items"])


def wait_for_event(kctl: Kubectl, name: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    while not (found := events(kctl, name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def open_file_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/PID/limits")


def other_listeners(kctl: Kubectl) -> int:
    """The proxy's listeners for the cluster's own Services (kubernetes, kube-dns)."""
    listed = json.loads(kctl("get", "services", "-A", "-o", "json"))["items"]
    return sum(len(s["spec"].get("ports", [])) for s in listed
               if s["metadata"]["name"] not in ("wide", "more-a", "more-b"))


@pytest.mark.parametrize(("name", "reason", "kept", "wanted"), [
    pytest.param("wide", "TooManyServicePorts", 256, 2000, id="per-service-bound"),
    pytest.param("more-b", "ProxyOpenFileLimit", OPEN_FILES // 2 - 256 - 200, 200,
                 id="descriptor-budget"),
])
def test_left_out_addresses_are_a_warning_event(kctl: Kubectl, name: str, reason: str,
                                                kept: int, wanted: int) -> None:
    found = wait_for_event(kctl, name)
    if reason == "ProxyOpenFileLimit":  # the budget is shared with the cluster's own Services
        kept -= other_listeners(kctl)
    refused = wanted - kept
    assert [(e["type"], e["reason"]) for e in found] == [("Warning", reason)]
    assert f"{refused} of its {wanted} listen addresses are not proxied" in found[0]["message"]


def test_a_service_within_the_bounds_has_no_event(kctl: Kubectl) -> None:
    assert events(kctl, "more-a") == []


def test_a_process_pod_starts_and_kubectl_logs_works(kctl: Kubectl) -> None:
    kctl("wait", "--for=condition=Ready", "pod/talker", "--timeout=60s")
    deadline = time.monotonic() + DEADLINE
    while (output := kctl("logs", "talker")) != "still-serving\n":
        assert time.monotonic() < deadline, output
        time.sleep(0.2)


def test_dns_answers_over_tcp(cluster: Cluster, kctl: Kubectl) -> None:
    assert cluster.dns is not None
    host, port = cluster.dns
    wide_ip = kctl("get", "service", "wide", "-o", "jsonpath={.spec.clusterIP}")
    result = subprocess.run(["dig", "+tcp", "+short", f"@{host}", "-p", str(port),
                             "wide.default.svc.cluster.local"], capture_output=True, text=True,
                            timeout=30)
    assert result.stdout.split() == [wide_ip], result.stdout + result.stderr


def test_proxied_ports_listen_and_left_out_ones_do_not(kctl: Kubectl) -> None:
    wide_ip = kctl("get", "service", "wide", "-o", "jsonpath={.spec.clusterIP}")
    assert [listens(wide_ip, port) for port in (10000, 10255, 10256, 11999)] == \
        [True, True, False, False]


def test_the_limit_is_what_the_shell_gave(cluster: Cluster) -> None:
    assert open_file_limit(cluster.process.pid) == (OPEN_FILES, OPEN_FILES)


STANDALONE = {  # command -> (arguments, the line it prints once it runs)
    "dns": (["--listen", "127.0.0.1:0", "--upstream", "none"], "tinykube DNS listening on"),
    "proxy": ([], "tinykube proxy: "),
}


def test_a_soft_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    """`tinykube up` (both processes), `tinykube dns` and `tinykube proxy` start with the soft
    limit raised to the hard one."""
    hard = min(open_file_limit(os.getpid())[1], 4096)
    cidr = f"127.{random.randrange(100, 200)}.{random.randrange(256)}.0/24"
    running = start_cluster(tmp_path / "data", "--no-dns", "--service-cidr", cidr,
                            open_files=(256, hard))
    try:
        pids = [running.process.pid, *children(running.process.pid)]
        assert len(pids) == 2, "the components child is not running"
        assert [open_file_limit(pid) for pid in pids] == [(hard, hard)] * 2
        for name, (args, ready) in STANDALONE.items():
            with standalone(name, running.kubeconfig, args, ready, (256, hard)) as pid:
                assert open_file_limit(pid) == (hard, hard), name
    finally:
        assert running.stop() == 0


@contextlib.contextmanager
def standalone(name: str, kubeconfig: Path, args: list[str], ready: str,
               open_files: tuple[int, int]) -> Iterator[int]:
    """`tinykube NAME` under `prlimit`, until it has printed `ready`; yields its pid."""
    process = subprocess.Popen(
        ["prlimit", f"--nofile={open_files[0]}:{open_files[1]}", "--", sys.executable, "-m",
         "tinykube", name, "--kubeconfig", str(kubeconfig), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        seen = []
        deadline = time.monotonic() + DEADLINE
        while not any(ready in line for line in seen):
            readable, _, _ = select.select([process.stdout], [], [],
                                           max(0.0, deadline - time.monotonic()))
            assert readable, f"tinykube {name} printed no {ready!r}: {seen}"
            line = process.stdout.readline()
            assert line, f"tinykube {name} ended: {seen}"
            seen.append(line)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]
