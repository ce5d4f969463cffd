"""Leader-elected controllers and scheduler: `tinykube up` and one `tinykube controllers`.

Short `--leader-elect-*` durations (4 s lease, 3 s renew deadline, 0.5 s retry) on both. `up`
takes both Leases at start; the extra candidate waits. Frozen (SIGSTOP) past its renew deadline,
`up`'s controller process loses them to the candidate, which then does the work (a Deployment
scaled meanwhile gets its pods, bound to the node); thawed, the old leader stays a follower.
Then the candidate is SIGKILLed: `up` takes the Leases back within one lease duration, and a
scale-up after the kill is done again. Throughout, every pod is bound once (one `Scheduled`
event each) and the Leases count their transitions and name their holders.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl]

LEASE = ["--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s",
         "--leader-elect-retry-period", "0.5s"]
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: virtual
      containers: [{name: c, image: nginx}]
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", "--nodes", "le-n1", *LEASE)
    yield running
    running.stop()


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


def holders(kctl: Kubectl) -> dict[str, dict[str, Any]]:
    leases = json.loads(kctl("get", "leases", "-n", "kube-system", "-o", "json"))["items"]
    return {lease["metadata"]["name"]: lease["spec"] for lease in leases}


def holder(kctl: Kubectl, name: str) -> str:
    return str(holders(kctl).get(name, {}).get("holderIdentity") or "")


def components_pid(cluster: Cluster) -> int:
    """The pid of `tinykube up`'s child (nodes, controllers, DNS, proxy)."""
    pid = cluster.process.pid
    children = [int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    for child in children:
        if b"tinykube.components" in Path(f"/proc/{child}/cmdline").read_bytes():
            return child
    raise AssertionError(f"no components child among {children}")


def start_candidate(cluster: Cluster, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "controllers.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tinykube", "controllers",
                                 "--kubeconfig", str(cluster.kubeconfig),
                                 "--data-dir", str(cluster.data_dir), *LEASE],
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    until(lambda: "tinykube controllers running as" in log.read_text(), 30,
          "tinykube controllers to start")
    return proc, log


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def taken_after(kctl: Kubectl, moment: datetime.datetime) -> float:
    """Seconds from `moment` to the scheduler Lease's acquireTime (the same host's clock)."""
    acquired = holders(kctl)["kube-scheduler"]["acquireTime"]
    return (datetime.datetime.fromisoformat(acquired.replace("Z", "+00:00")) -
            moment).total_seconds()


def bound_pods(kctl: Kubectl) -> list[str]:
    pods = json.loads(kctl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == "le-n1"
            and not p["metadata"].get("deletionTimestamp")]


def scheduled_events(kctl: Kubectl) -> Counter[str]:
    events = json.loads(kctl("get", "events", "-o", "json"))["items"]
    return Counter(e["involvedObject"]["name"] for e in events if e["reason"] == "Scheduled")


def test_failover_between_up_and_tinykube_controllers(cluster: Cluster, kctl: Kubectl,
                                                      tmp_path: Path) -> None:
    ours = until(lambda: holder(kctl, "kube-scheduler"), 20, "up to take the scheduler lease")
    until(lambda: holder(kctl, "kube-controller-manager") == ours, 20, "the controller lease")
    assert "_tinykube-" in ours  # up's stable identity: this host and its data directory
    kctl("apply", "-f", "-", input=DEPLOYMENT)
    until(lambda: len(bound_pods(kctl)) == 1, 30, "the first pod")

    candidate, log = start_candidate(cluster, tmp_path)
    child = components_pid(cluster)
    try:
        assert holder(kctl, "kube-scheduler") == ours
        os.kill(child, signal.SIGSTOP)  # up's controllers freeze: no renewals
        frozen = now()
        try:
            theirs = until(lambda: (h := holder(kctl, "kube-scheduler")) != ours and h, 15,
                           "the candidate to take the scheduler lease")
            until(lambda: holder(kctl, "kube-controller-manager") == theirs, 15,
                  "the candidate to take the controller lease")
            assert taken_after(kctl, frozen) < 4 + 3  # within a lease and a few retries
            kctl("scale", "deployment/web", "--replicas=3")
            until(lambda: len(bound_pods(kctl)) == 3, 30, "the candidate's pods")
        finally:
            os.kill(child, signal.SIGCONT)
        until(lambda: "leader election: stopped leading kube-scheduler" in
              "\n".join(cluster.output), 15, "up to say it stopped leading")
        assert holder(kctl, "kube-scheduler") == theirs  # the thawed one is a follower now

        candidate.kill()  # SIGKILL: no release, the lease must run out
        killed = now()
        until(lambda: holder(kctl, "kube-scheduler") == ours, 15, "up to take the lease back")
        until(lambda: holder(kctl, "kube-controller-manager") == ours, 15,
              "up to take the controller lease back")
        assert taken_after(kctl, killed) < 4 + 3
        kctl("scale", "deployment/web", "--replicas=5")
        until(lambda: len(bound_pods(kctl)) == 5, 30, "pods after the failover")
    finally:
        if candidate.poll() is None:
            candidate.kill()
        candidate.wait()
    spec = holders(kctl)["kube-scheduler"]
    assert spec["leaseTransitions"] >= 2, spec
    assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"]  # MicroTime
    counts = scheduled_events(kctl)
    assert set(counts) >= set(bound_pods(kctl))
    assert all(n == 1 for n in counts.values()), counts  # no pod bound twice
    events = json.loads(kctl("get", "events", "-n", "kube-system", "-o", "json"))["items"]
    became = {e["message"] for e in events if e["reason"] == "LeaderElection"}
    assert f"{ours} became leader" in became and f"{theirs} became leader" in became
    assert "tinykube controllers running as" in log.read_text()
