"""Jobs and CronJobs end to end: a real `tinykube up`, both kubectls.

- A Job whose process pod exits 3, with backoffLimit 2, ends `Failed` (BackoffLimitExceeded)
  after exactly three pods, created 10 s and then 20 s apart (their creationTimestamps).
- An Indexed Job's process pods print `$JOB_COMPLETION_INDEX` and their hostname; each pod
  carries its index as annotation and label.
- `kubectl wait --for=condition=complete` returns for a Job of virtual pods (which succeed
  after `--virtual-job-seconds`), and `kubectl get jobs`/`cronjobs` print kube's columns.
- `kubectl create job --from=cronjob/x` makes a Job the CronJob owns, and it completes.
- With a headless Service named in `subdomain`, the cluster DNS answers `<job>-<index>.<svc>`
  with that index's pod.
- A finished Job with `ttlSecondsAfterFinished: 0` is deleted, its pods with it.
- Forbid, every minute: the CronJob controller runs in this process with an injected clock
  against a real API server (no other controller there), and kubectl watches it skip a minute
  while the Job of the previous one is active, then run once the Job completed.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import re
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import dns.message
import dns.query
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from tests.conftest import KUBECTLS, Cluster, Kubectl, until
from tinykube.apiserver.server import APIServerOptions, RunningAPIServer, open_apiserver
from tinykube.client import config as client_config
from tinykube.client.rest import RESTClient
from tinykube.controllers.cronjob import CronJobController

pytestmark = [pytest.mark.kubectl, pytest.mark.cluster_args("--virtual-job-seconds", "0.5")]
T = TypeVar("T")
Obj = dict[str, Any]
INDEX = "batch.kubernetes.io/job-completion-index"

FAILING = """
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      runtimeClassName: process
      containers: [{name: c, image: busybox, command: [sh, -c, "exit 3"]}]
"""

INDEXED = """
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      runtimeClassName: process
      subdomain: workers
      containers:
      - name: c
        image: busybox
        command: [sh, -c, 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)"']
"""

VIRTUAL = """
apiVersion: batch/v1
kind: Job
metadata: {name: quick}
spec:
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"""

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "*/5 * * * *"
  timeZone: Europe/Berlin
  concurrencyPolicy: Forbid
  jobTemplate:
    metadata: {labels: {from: hello}}
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: hello, image: busybox}]
"""


def get(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def condition_types(job: Obj) -> list[str]:
    return [c["type"] for c in job.get("status", {}).get("conditions") or []
            if c["status"] == "True"]


@pytest.mark.slow
def test_backoff_limit_2_fails_after_three_pods_with_growing_backoff(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=FAILING)
    kubectl("wait", "--for=condition=failed", "job/fails", "--timeout=90s", timeout=100)
    job = get(kubectl, "job", "fails")
    assert condition_types(job) == ["FailureTarget", "Failed"]
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert job["status"]["failed"] == 3 and job["status"]["uncountedTerminatedPods"] == {}
    pods = get(kubectl, "pods", "-l", "batch.kubernetes.io/job-name=fails")["items"]
    created = sorted(seconds(p["metadata"]["creationTimestamp"]) for p in pods)
    assert len(created) == 3
    gaps = [b - a for a, b in itertools.pairwise(created)]
    # 10 s, then 20 s after the previous pod failed (timestamps are whole seconds; each pod
    # takes a moment to run and fail)
    assert 9 <= gaps[0] <= 14 and 19 <= gaps[1] <= 25, gaps
    assert all(p["status"]["phase"] == "Failed" and not p["metadata"].get("finalizers")
               for p in pods)
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=fails")
    assert "BackoffLimitExceeded" in events and events.count("SuccessfulCreate") == 3
    row = kubectl("get", "job", "fails", "--no-headers").split()
    assert row[:3] == ["fails", "Failed", "0/1"]


def test_indexed_job_pods_get_their_index(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=INDEXED)
    kubectl("wait", "--for=condition=complete", "job/idx", "--timeout=60s", timeout=70)
    job = get(kubectl, "job", "idx")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    pods = get(kubectl, "pods", "-l", "job-name=idx")["items"]
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p
                for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        name = pod["metadata"]["name"]
        assert name.startswith(f"idx-{index}-")
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert pod["spec"]["hostname"] == f"idx-{index}"
        assert pod["spec"]["subdomain"] == "workers"
        assert kubectl("logs", name).strip() == f"index={index} host=idx-{index}"
    assert re.fullmatch(r"index=(\d) host=idx-\1", kubectl("logs", "job/idx").strip())


STABLE_NAMES = """
apiVersion: v1
kind: Service
metadata: {name: workers}
spec:
  clusterIP: None
  selector: {batch.kubernetes.io/job-name: named}
  ports: [{port: 80}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: named}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    metadata:
      annotations: {tinykube.io/virtual-run-seconds: '300'}
    spec:
      restartPolicy: Never
      subdomain: workers
      containers: [{name: c, image: busybox}]
"""


def _a_records(server: tuple[str, int], name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), server[0], port=server[1],
                           timeout=2)
    return sorted(item.address for rrset in answer.answer for item in rrset)


def test_indexed_pods_have_stable_dns_names(kubectl: Kubectl, cluster: Cluster) -> None:
    assert cluster.dns is not None
    kubectl("apply", "-f", "-", input=STABLE_NAMES)
    until(lambda: kubectl("get", "job", "named", "-o", "jsonpath={.status.ready}") == "2",
          what="both pods ready")
    server = cluster.dns
    pods = get(kubectl, "pods", "-l", "job-name=named")["items"]
    expected = {f"named-{p['metadata']['annotations'][INDEX]}.workers.default.svc.cluster.local":
                [p["status"]["podIP"]] for p in pods}
    assert len(expected) == 2
    until(lambda: {name: _a_records(server, name) for name in expected} == expected,
          what="each index's name answered with its pod")


def test_wait_for_complete_and_the_printed_columns(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=VIRTUAL)
    out = kubectl("wait", "--for=condition=complete", "job/quick", "--timeout=30s", timeout=40)
    assert out.strip() == "job.batch/quick condition met"
    job = get(kubectl, "job", "quick")
    assert condition_types(job) == ["SuccessCriteriaMet", "Complete"]
    assert job["status"]["succeeded"] == 2 and job["status"]["ready"] == 0
    assert seconds(job["status"]["completionTime"]) >= seconds(job["status"]["startTime"])
    pods = get(kubectl, "pods", "-l", "job-name=quick")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Succeeded"]
    assert all(p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] ==
               job["metadata"]["uid"] for p in pods)
    table = kubectl("get", "jobs", "quick").splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert re.fullmatch(r"quick\s+Complete\s+2/2\s+\d+s\s+\d+s", table[1].strip()), table
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=quick",
                     "-o", "jsonpath={range .items[*]}{.reason}{'\\n'}{end}").split()
    assert sorted(events) == ["Completed", "SuccessfulCreate", "SuccessfulCreate"]


LONG_RUNNING = """
apiVersion: batch/v1
kind: Job
metadata: {name: NAME}
spec:
  parallelism: 2
  completions: 2
SPEC
  template:
    metadata:
      annotations: {tinykube.io/virtual-run-seconds: '300'}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"""


def long_running(name: str, spec: str) -> str:
    return LONG_RUNNING.replace("NAME", name).replace("SPEC", spec)


def test_active_deadline_fails_the_job(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=long_running("late", "  activeDeadlineSeconds: 2"))
    kubectl("wait", "--for=condition=failed", "job/late", "--timeout=30s", timeout=40)
    job = get(kubectl, "job", "late")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded", "Job was active longer than specified deadline")
    assert job["status"]["failed"] == 2 and "active" not in job["status"]
    until(lambda: not kubectl("get", "pods", "-l", "job-name=late", "-o", "name").strip(),
          what="the running pods deleted")


def test_suspend_and_resume(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=long_running("paused", "  suspend: true"))
    kubectl("wait", "--for=condition=suspended", "job/paused", "--timeout=30s", timeout=40)
    assert kubectl("get", "pods", "-l", "job-name=paused", "-o", "name").strip() == ""
    assert kubectl("get", "job", "paused", "--no-headers").split()[:3] == \
        ["paused", "Suspended", "0/2"]
    kubectl("patch", "job", "paused", "--type=merge", "-p", '{"spec": {"suspend": false}}')
    until(lambda: kubectl("get", "job", "paused", "-o", "jsonpath={.status.active}") == "2",
          what="two pods once resumed")
    kubectl("wait", "--for=condition=suspended=false", "job/paused", "--timeout=30s",
            timeout=40)
    kubectl("patch", "job", "paused", "--type=merge", "-p", '{"spec": {"suspend": true}}')
    until(lambda: not kubectl("get", "pods", "-l", "job-name=paused", "-o", "name").strip(),
          what="the pods deleted on suspend")
    job = get(kubectl, "job", "paused")
    assert "failed" not in job["status"]  # pods the controller deletes are not failures
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=paused")
    assert "Suspended" in events and "Resumed" in events


def test_official_client_watches_a_job_complete(cluster: Cluster) -> None:
    """The `kubernetes` client: create a Job, watch it until its Complete condition."""
    api = k8s.BatchV1Api(k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(cluster.kubeconfig)))
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "watched"},
            "spec": {"completions": 3, "parallelism": 3, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    created = api.create_namespaced_job("default", body)
    assert created.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": created.metadata.uid}
    seen: list[int] = []
    stream = k8s_watch.Watch()  # type: ignore[no-untyped-call]
    for event in stream.stream(api.list_namespaced_job, "default",  # type: ignore[no-untyped-call]
                               field_selector="metadata.name=watched", timeout_seconds=30):
        job = event["object"]
        seen.append(job.status.succeeded or 0)
        if any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or []):
            stream.stop()  # type: ignore[no-untyped-call]
    assert seen[-1] == 3 and seen == sorted(seen)
    assert job.status.completion_time is not None and job.status.failed is None


def test_create_job_from_cronjob(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=CRONJOB)
    table = kubectl("get", "cronjobs").splitlines()
    assert table[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                                "LAST", "SCHEDULE", "AGE"]
    assert re.fullmatch(r"hello\s+\*/5 \* \* \* \*\s+Europe/Berlin\s+False\s+0\s+<none>\s+\d+s",
                        table[1].strip()), table
    assert kubectl("create", "job", "manual", "--from=cronjob/hello").strip() == \
        "job.batch/manual created"
    kubectl("wait", "--for=condition=complete", "job/manual", "--timeout=30s", timeout=40)
    job = get(kubectl, "job", "manual")
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("CronJob", "hello")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["labels"]["from"] == "hello"


def test_ttl_after_finished_deletes_the_job_and_its_pods(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=VIRTUAL.replace("name: quick", "name: brief").replace(
        "  completions: 2", "  ttlSecondsAfterFinished: 0\n  completions: 2"))
    until(lambda: not kubectl("get", "jobs", "-o", "name").strip(), what="the Job deleted")
    until(lambda: not kubectl("get", "pods", "-l", "job-name=brief", "-o", "name").strip(),
          what="its pods deleted")


# --- CronJob with an injected clock --------------------------------------------------------

class ServerThread:
    """An API server and a CronJob controller on one event loop in a daemon thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.now = datetime.datetime.now(datetime.UTC)
        self.server: RunningAPIServer | None = None
        self.controller: CronJobController | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.server = self.call(open_apiserver(APIServerOptions(data_dir=self.data_dir,
                                                                port=0)))
        self.call(self._start_controller())
        return self

    async def _start_controller(self) -> None:
        assert self.server is not None
        client = RESTClient(client_config.load(str(self.server.kubeconfig)))
        self.controller = CronJobController(client, now=lambda: self.now)
        self._tasks = self.controller.start()

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.controller is not None:
                await self.controller.client.close()
            if self.server is not None:
                await self.server.stop()
        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def call(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=60)

    def tick(self, now: datetime.datetime, key: str | None = None) -> None:
        """Set the controller's clock and sync the CronJob `key` at once (its timer runs on
        real time)."""
        async def set_and_queue() -> None:
            self.now = now
            assert self.controller is not None
            if key is not None:
                self.controller.queue.add(key)
        self.call(set_and_queue())


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("cron") / "data") as running:
        yield running


EVERY_MINUTE = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: minutely, namespace: NS}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 10
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"""


@pytest.mark.parametrize("binary", [b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def test_forbid_skips_a_minute_while_its_job_runs(clocked: ServerThread, binary: str,
                                                  tmp_path: Path) -> None:
    assert clocked.server is not None
    kubectl = Kubectl(binary, clocked.server.kubeconfig, tmp_path)
    namespace = f"cron-{len(binary)}-{tmp_path.name[-6:]}".lower().replace("_", "-")
    kubectl("create", "namespace", namespace)
    clocked.tick(datetime.datetime.now(datetime.UTC))  # back from an earlier test's future
    kubectl("apply", "-f", "-", input=EVERY_MINUTE.replace("NS", namespace))
    created = get(kubectl, "-n", namespace, "cronjob", "minutely")["metadata"]
    start = datetime.datetime.fromisoformat(created["creationTimestamp"].replace("Z", "+00:00"))
    minute = start.replace(second=0) + datetime.timedelta(minutes=1)
    key = f"{namespace}/minutely"

    def jobs() -> list[str]:
        return sorted(kubectl("get", "-n", namespace, "jobs", "-o", "name").split())

    def name_at(t: datetime.datetime) -> str:
        return f"job.batch/minutely-{int(t.timestamp()) // 60}"

    clocked.tick(minute + datetime.timedelta(seconds=1), key)
    until(lambda: jobs() == [name_at(minute)], what="the first minute's Job")
    until(lambda: get(kubectl, "-n", namespace, "cronjob", "minutely")["status"].get("active"),
          what="the Job in status.active")
    second = minute + datetime.timedelta(minutes=1)
    clocked.tick(second + datetime.timedelta(seconds=1), key)
    until(lambda: "JobAlreadyActive" in kubectl("get", "-n", namespace, "events"),
          what="the JobAlreadyActive event")
    assert jobs() == [name_at(minute)]
    job_name = name_at(minute).split("/")[1]
    finished = second + datetime.timedelta(seconds=20)  # past the 10 s starting deadline
    clocked.tick(finished, key)
    kubectl("patch", "-n", namespace, "job", job_name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {
                "conditions": [{"type": "Complete", "status": "True"}],
                "completionTime": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "startTime": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "succeeded": 1}}))
    third = second + datetime.timedelta(minutes=1)
    clocked.tick(third + datetime.timedelta(seconds=1), key)
    until(lambda: jobs() == sorted([name_at(minute), name_at(third)]),
          what="the third minute's Job, the second one skipped")
    status = get(kubectl, "-n", namespace, "cronjob", "minutely")["status"]
    assert status["lastScheduleTime"] == third.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["lastSuccessfulTime"] == finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [ref["name"] for ref in status["active"]] == [name_at(third).split("/")[1]]
    row = kubectl("get", "-n", namespace, "cronjob", "minutely", "--no-headers").split()
    assert row[:9] == ["minutely", "*", "*", "*", "*", "*", "<none>", "False", "1"]


def test_deleting_a_running_job_deletes_its_pods(kubectl: Kubectl) -> None:
    """The pods' tracking finalizer goes once their Job is gone, so the garbage collector's
    deletion completes (no pod hangs in Terminating)."""
    long_running = VIRTUAL.replace("name: slow", "").replace("name: quick", "name: slow").replace(
        "    spec:\n      restartPolicy", "    metadata:\n      annotations: "
        "{tinykube.io/virtual-run-seconds: '300'}\n    spec:\n      restartPolicy")
    kubectl("apply", "-f", "-", input=long_running)
    until(lambda: kubectl("get", "job", "slow", "-o", "jsonpath={.status.active}") == "2",
          what="two active pods")
    pods = get(kubectl, "pods", "-l", "job-name=slow")["items"]
    assert all(p["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"] for p in pods)
    kubectl("delete", "job", "slow", "--cascade=background")
    until(lambda: not kubectl("get", "pods", "-l", "job-name=slow", "-o", "name").strip(),
          what="the pods deleted")
