"""Requests, priority and preemption as a user meets them, against one `tinykube up` (one node).

- A pod asking more cpu than the node has left stays Pending with kube-scheduler's words,
  PostFilter part included, and is scheduled as soon as a pod leaves the node.
- A high-priority pod that fits nowhere preempts a low-priority one: the victim gets the
  `DisruptionTarget` condition and a `Preempted` event, the preemptor is nominated and runs.
- `preemptionPolicy: Never` waits instead, and says so.

The node's allocatable cpu is the machine's, so requests are computed from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("sched") / "data", "--no-dns")
    yield running
    running.stop()


def pod(name: str, millicores: int, priority_class: str | None = None,
        **spec: Any) -> str:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox", "resources": {
        "requests": {"cpu": f"{millicores}m"}}}], **spec}
    if priority_class:
        body["priorityClassName"] = priority_class
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": body})


def allocatable_millicores(kubectl: Kubectl) -> int:
    cpu = kubectl("get", "nodes", "-o", "jsonpath={.items[0].status.allocatable.cpu}")
    return int(cpu[:-1]) if cpu.endswith("m") else int(cpu) * 1000


def phase_and_node(kubectl: Kubectl, name: str) -> tuple[str, str]:
    out = kubectl("get", "pod", name, "-o", "jsonpath={.status.phase} {.spec.nodeName}",
                  check=False)
    phase, _, node = out.partition(" ")
    return phase, node


def events_of(kubectl: Kubectl, name: str) -> str:
    return kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                   "-o", "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}")


@pytest.fixture
def kctl_clean(kctl: Kubectl) -> Iterator[Kubectl]:
    yield kctl
    kctl("delete", "pods", "--all", "--grace-period=0", "--force", check=False)
    kctl("delete", "priorityclass", "low", "high", "never", "--ignore-not-found")


def test_too_big_waits_then_runs_when_room_is_made(kctl_clean: Kubectl) -> None:
    kubectl = kctl_clean
    total = allocatable_millicores(kubectl)
    kubectl("apply", "-f", "-", input=pod("first", total * 6 // 10))
    until(lambda: phase_and_node(kubectl, "first")[1], what="first scheduled")
    kubectl("apply", "-f", "-", input=pod("second", total * 6 // 10))
    message = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
               "available: 1 No preemption victims found for incoming pod.")
    until(lambda: message in events_of(kubectl, "second"), what="FailedScheduling")
    assert phase_and_node(kubectl, "second") == ("Pending", "")
    kubectl("delete", "pod", "first", "--grace-period=0", "--force")
    until(lambda: phase_and_node(kubectl, "second")[1], what="second scheduled once room")


def test_high_priority_preempts_low(kctl_clean: Kubectl) -> None:
    kubectl = kctl_clean
    kubectl("create", "priorityclass", "low", "--value=10")
    kubectl("create", "priorityclass", "high", "--value=1000")
    kubectl("create", "priorityclass", "never", "--value=1000", "--preemption-policy=Never")
    total = allocatable_millicores(kubectl)
    kubectl("apply", "-f", "-", input=pod("victim", total * 6 // 10, "low"))
    until(lambda: phase_and_node(kubectl, "victim")[0] == "Running", what="victim running")
    kubectl("apply", "-f", "-", input=pod("polite", total * 6 // 10, "never"))
    until(lambda: "preemption: not eligible due to preemptionPolicy=Never." in
          events_of(kubectl, "polite"), what="the polite pod waits")
    kubectl("delete", "pod", "polite", "--grace-period=0", "--force")
    kubectl("apply", "-f", "-", input=pod("boss", total * 6 // 10, "high"))
    boss_uid = kubectl("get", "pod", "boss", "-o", "jsonpath={.metadata.uid}")
    until(lambda: f"Preempted: Preempted by pod {boss_uid} on node " in
          events_of(kubectl, "victim"), what="the Preempted event")
    until(lambda: phase_and_node(kubectl, "boss")[0] == "Running", timeout=60,
          what="the preemptor running")
    assert kubectl("get", "pod", "victim", "--ignore-not-found", "-o", "name") == ""
