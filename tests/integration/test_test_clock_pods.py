"""`tinykube up --test-clock` with pods: a liveness probe's failures and a finished Job's TTL
follow the test clock (issue 16's checks); the CronJob and ages are test_test_clock.py's.

One cluster serves the module (test clock, default runtime virtual); `clock.advance` is the
`TestClockClient` the pytest plugin hands out as `cluster.clock`. Every test works in its own
namespace, and each advance moves the one clock of the whole cluster.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, TESTDATA, Cluster, Kubectl, start_cluster, until
from tinykube.clock_client import TestClockClient
from tinykube.pytest_plugin import namespace_kubeconfig

LIVENESS = (TESTDATA / "liveness-fails.yaml").read_text()

TTL_JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: short}
spec:
  ttlSecondsAfterFinished: 3600
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("clockpods") / "data", "--test-clock",
                            timeout=60)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clock(cluster: Cluster) -> TestClockClient:
    return TestClockClient(cluster.kubeconfig)


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Kubectl]:
    """kubectl (v1.32) in a namespace of the test's own."""
    namespace = f"clock-{uuid.uuid4().hex[:8]}"
    admin = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path)
    admin("create", "namespace", namespace)
    config = namespace_kubeconfig(cluster.kubeconfig, namespace, tmp_path / "kubeconfig")
    yield Kubectl(KUBECTLS[0][1], config, tmp_path)
    admin("delete", "namespace", namespace, "--wait=false")


def items(kctl: Kubectl, kind: str) -> list[dict[str, Any]]:
    return list(json.loads(kctl("get", kind, "-o", "json"))["items"])


def test_a_failing_liveness_probe_restarts_after_180_seconds(kctl: Kubectl,
                                                             clock: TestClockClient) -> None:
    kctl("apply", "-f", "-", input=LIVENESS)

    def running() -> Any:
        statuses = json.loads(kctl("get", "pod", "live", "-o", "json"))["status"].get(
            "containerStatuses") or [{}]
        return "running" in statuses[0].get("state", {}) and statuses[0]
    assert until(running, 30, "the pod to run")["restartCount"] == 0
    clock.advance(60)  # two failures (the first probe ran at the start): not yet
    assert running()["restartCount"] == 0
    clock.advance(120)  # its wall time is bench/toolkit's figure
    status = running()
    assert status and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM
    events = kctl("get", "events", "--field-selector", "involvedObject.name=live")
    assert "failed liveness probe, will be restarted" in events
    kctl("delete", "pod", "live", "--wait=false")


def test_a_finished_job_is_deleted_after_its_ttl(kctl: Kubectl, clock: TestClockClient) -> None:
    kctl("apply", "-f", "-", input=TTL_JOB)
    clock.advance(5)  # its virtual pod runs for one (test clock) second
    job = json.loads(kctl("get", "job", "short", "-o", "json"))
    assert job["status"]["succeeded"] == 1
    clock.advance(3590)
    assert kctl("get", "job", "short", "-o", "name").strip() == "job.batch/short"
    clock.advance(10)
    assert kctl("get", "jobs", "-o", "name").strip() == ""
