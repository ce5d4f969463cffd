"""The `tinykube up` terminal stays quiet when clients do what clients normally do.

A real `up` (at debug level, so that each normal end leaves a debug line to wait on) runs a
process pod; the real kubectl follows its log and is interrupted as Ctrl-C interrupts it, and a
namespace with running pods is deleted. The captured output must hold the debug lines that prove
each path ran, and no traceback and no warning about them.
"""

from __future__ import annotations

import select
import signal
import time
from collections.abc import Callable

import pytest

from tests.conftest import Cluster, Kubectl

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TICKER = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  runtimeClassName: process
  terminationGracePeriodSeconds: 1
  containers:
  - name: tick
    image: busybox
    command: [sh, -c, "while true; do echo tick; sleep 0.1; done"]
"""


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def lines_with(cluster: Cluster, text: str) -> list[str]:
    return [line for line in cluster.output if text in line]


def assert_quiet(cluster: Cluster) -> None:
    assert lines_with(cluster, "Traceback") == []
    assert lines_with(cluster, " ERROR ") == []
    assert lines_with(cluster, " WARNING ") == []


@pytest.mark.cluster_args("-vv")
def test_ctrl_c_of_kubectl_logs_follow_prints_no_traceback(cluster: Cluster,
                                                           kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=TICKER.format(name="ticker", namespace="default"))
    kctl("wait", "--for=condition=Ready", "pod/ticker", "--timeout=30s")
    for _ in range(2):  # the second follower proves the first one's end left nothing behind
        follower = kctl.popen("logs", "-f", "ticker")
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 20)
        assert ready and follower.stdout.readline() == "tick\n"
        follower.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert follower.wait(timeout=10) != 0
    left = "the follower of /containerLogs/default/ticker/tick left"
    wait_for(lambda: len(lines_with(cluster, left)) == 2 or lines_with(cluster, "Traceback"),
             "the kubelet endpoint to see both followers leave")
    assert_quiet(cluster)
    assert len(lines_with(cluster, left)) == 2


@pytest.mark.cluster_args("-vv")
def test_deleting_a_namespace_with_pods_warns_of_no_events(cluster: Cluster,
                                                          kctl: Kubectl) -> None:
    kctl("create", "namespace", "doomed")
    for name in ("one", "two", "three"):
        kctl("apply", "-f", "-", input=TICKER.format(name=name, namespace="doomed"))
    kctl("wait", "-n", "doomed", "--for=condition=Ready", "pod", "--all", "--timeout=30s")
    kctl("delete", "namespace", "doomed", "--timeout=60s")
    refused = lines_with(cluster, "could not record event")
    assert refused, "deleting the namespace refused no event: the case did not happen"
    assert all(" DEBUG " in line for line in refused), refused
    assert_quiet(cluster)
