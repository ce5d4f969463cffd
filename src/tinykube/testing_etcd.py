"""A throwaway etcd cluster on loopback ports (tests and benchmarks).

`start_etcd(tmp)` runs Debian's `/usr/bin/etcd` `size` times (free client and peer ports, a data
directory each under `tmp`, `--unsafe-no-fsync` where the etcd has it), waits until the cluster
answers a quorum read through `etcdctl`, and returns the members; `stop` kills each by its PID.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tinykube.testing import free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


@dataclasses.dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclasses.dataclass
class EtcdCluster:
    members: list[Member]

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def etcdctl(self, *args: str) -> str:
        env = {**os.environ, "ETCDCTL_API": "3"}
        endpoints = ",".join(m.endpoint for m in self.members)
        return subprocess.run([ETCDCTL, f"--endpoints={endpoints}", *args], env=env,
                              check=True, capture_output=True, text=True, timeout=20).stdout

    def stop(self) -> None:
        for member in self.members:
            if member.process.poll() is None:
                os.kill(member.process.pid, signal.SIGKILL)
                member.process.wait(timeout=10)


def start_etcd(tmp: Path, size: int = 3, timeout: float = 30) -> EtcdCluster:
    ports = [(free_port(udp=False), free_port(udp=False)) for _ in range(size)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    members = []
    for i, (client, peer) in enumerate(ports):
        log = (tmp / f"etcd-m{i}.log").open("wb")
        process = subprocess.Popen([
            ETCD, "--name", f"m{i}", "--data-dir", str(tmp / f"etcd-m{i}"),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"tinykube-test-{os.getpid()}",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--unsafe-no-fsync" if _has_no_fsync() else "--quota-backend-bytes=0",
        ], stdout=log, stderr=subprocess.STDOUT)
        members.append(Member(f"m{i}", client, peer, process))
    cluster = EtcdCluster(members)
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.etcdctl("get", "health-probe")
            return cluster
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.2)


def _has_no_fsync() -> bool:
    out = subprocess.run([ETCD, "--help"], capture_output=True, text=True, timeout=10)
    return "--unsafe-no-fsync" in out.stdout + out.stderr
