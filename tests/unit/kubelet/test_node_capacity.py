"""A node reports the machine's CPUs, memory and disk, as every node of a kind cluster does."""

from __future__ import annotations

import os
from pathlib import Path

from tinykube.kubelet import agent


def test_node_capacity_is_the_machine(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25165824 kB\nMemFree:         1000 kB\n")
    capacity = agent.machine_capacity(str(meminfo), str(tmp_path))
    disk = os.statvfs(tmp_path)
    assert capacity == {"cpu": str(len(os.sched_getaffinity(0))), "memory": "25165824Ki",
                        "pods": "110",
                        "ephemeral-storage": f"{disk.f_blocks * disk.f_frsize // 1024}Ki"}


def test_node_object_carries_it_as_capacity_and_allocatable() -> None:
    node = agent.node_object("n1", pod_cidr="10.244.1.0/24", host_ip="127.0.0.1", labels={})
    assert node["status"]["capacity"] == node["status"]["allocatable"] == agent.machine_capacity()
    assert int(node["status"]["capacity"]["memory"].removesuffix("Ki")) > 0
