"""`tinykube up --test-clock`: time stands still until the test moves it, and every component
reacts as if that much time had passed (issue 16's checks), in far less wall time.

One cluster serves the module (test clock, default runtime virtual); `clock.advance` is the
`TestClockClient` the pytest plugin hands out as `cluster.clock`. Every test works in its own
namespace, and each advance moves the one clock of the whole cluster.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tinykube.clock_client import TestClockClient
from tinykube.pytest_plugin import namespace_kubeconfig

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: every5}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"""

LIVENESS = """
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  runtimeClassName: process
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    livenessProbe:
      exec: {command: ["false"]}
      periodSeconds: 60
      failureThreshold: 3
"""

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
    running = start_cluster(tmp_path_factory.mktemp("clock") / "data", "--test-clock",
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


def test_the_clock_stands_still_until_advanced(clock: TestClockClient) -> None:
    before = clock.now()
    assert clock.enabled()
    assert clock.now() == before
    assert (clock.advance(90) - before).total_seconds() == 90
    assert clock.now() == clock.advance(0)


def test_a_cronjob_every_5_minutes_makes_3_jobs_in_15(kctl: Kubectl,
                                                    clock: TestClockClient) -> None:
    kctl("apply", "-f", "-", input=CRONJOB)
    clock.advance(1)  # the controller saw it; nothing was due yet
    assert items(kctl, "jobs") == []
    clock.advance(15 * 60)
    jobs = items(kctl, "jobs")
    assert len(jobs) == 3, [j["metadata"]["name"] for j in jobs]
    assert all(j["metadata"]["ownerReferences"][0]["name"] == "every5" for j in jobs)
    # each at its scheduled minute: the name's suffix is the schedule time in minutes
    minutes = sorted(int(j["metadata"]["name"].rsplit("-", 1)[1]) for j in jobs)
    assert [b - a for a, b in itertools.pairwise(minutes)] == [5, 5]
    assert all(m % 5 == 0 for m in minutes)


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
    started = time.monotonic()
    clock.advance(120)
    elapsed = time.monotonic() - started
    status = running()
    assert status and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM
    assert elapsed < 1.0, f"advance(120) took {elapsed:.2f} s of wall time"
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


@pytest.mark.parametrize("binary", [b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def test_ages_in_kubectl_get_follow_the_clock(kctl: Kubectl, clock: TestClockClient,
                                              binary: str) -> None:
    kubectl = Kubectl(binary, kctl.kubeconfig, kctl.cache_dir)
    kubectl("create", "configmap", "aged")
    clock.advance(6 * 60)
    table = kubectl("get", "configmap", "aged").splitlines()
    assert table[1].split() == ["aged", "0", "6m"]
    created = json.loads(kubectl("get", "configmap", "aged", "-o", "json"))["metadata"][
        "creationTimestamp"]
    assert created < clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

