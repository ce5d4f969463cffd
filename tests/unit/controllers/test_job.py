"""The Job controller's decisions (`job.reconcile`) with an injected clock.

`World` plays the API server and the kubelet for one Job: it applies each `Plan` as the
controller does (status with uncounted pods, finalizers removed, `flush`), creates pods with
the current time as their creationTimestamp, and lets a scenario finish pods at chosen
times. Scenarios are tables: what happens to the pods, and what the Job shows afterwards.
"""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import pytest
from workload_fakes import FakeClient

from tinykube.api.meta import rfc3339
from tinykube.controllers import job as jobs

Obj = dict[str, Any]
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def make_job(**spec: Any) -> Obj:
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("template", {"metadata": {"labels": {"job-name": "j"}}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}})
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid",
                         "creationTimestamp": rfc3339(T0)},
            "spec": spec, "status": {}}


class World:
    """One Job, its pods, and the time."""

    def __init__(self, job: Obj) -> None:
        self.job = job
        self.pods: dict[str, Obj] = {}
        self.now = T0
        self.backoff = jobs.Backoff()
        self.events: list[tuple[str, str]] = []
        self.requeue: float | None = None
        self._ids = itertools.count()

    def sync(self) -> jobs.Plan:
        plan = jobs.reconcile(self.job, list(self.pods.values()), self.backoff, self.now)
        self.backoff = plan.backoff
        status = plan.status
        for name in plan.delete:
            self.pods.pop(name, None)
        finalized = set()
        for name in plan.finalize:
            pod = self.pods.get(name)
            if pod is not None:
                pod["metadata"]["finalizers"] = []
                finalized.add(pod["metadata"]["uid"])
                if pod["metadata"].get("deletionTimestamp"):  # nothing holds it any more
                    del self.pods[name]
        gone = {u for u in set().union(*jobs._uncounted(status))
                if u not in {p["metadata"]["uid"] for p in self.pods.values()}}
        self.job = {**self.job, "status": jobs.flush(status, finalized | gone)}
        for index in plan.create:
            pod = jobs.new_pod(self.job, index, plan.failure_counts.get(index or 0, 0))
            n = next(self._ids)
            pod["metadata"].update(name=f"{pod['metadata']['generateName']}{n}", uid=f"pod{n}",
                                   creationTimestamp=rfc3339(self.now))
            pod["status"] = {"phase": "Running"}
            self.pods[pod["metadata"]["name"]] = pod
        self.events += [(reason, message) for _, reason, message in plan.events]
        self.requeue = plan.requeue_after
        return plan

    def settle(self) -> None:
        """Sync until nothing changes (the informers' events would trigger these syncs)."""
        for _ in range(10):
            before = (repr(self.job), repr(self.pods))
            self.sync()
            if (repr(self.job), repr(self.pods)) == before:
                return

    def finish(self, name: str, *, code: int = 0, after: float = 0.0) -> None:
        """The pod's container exits with `code` `after` seconds from now."""
        finished = rfc3339(self.now + datetime.timedelta(seconds=after))
        self.pods[name]["status"] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [{"name": "c", "state": {"terminated": {
                "exitCode": code, "finishedAt": finished}}}]}

    def running(self) -> list[str]:
        return sorted(n for n, p in self.pods.items() if jobs.is_active(p))

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)

    def conditions(self) -> list[tuple[str, str]]:
        return [(c["type"], c["reason"]) for c in self.job["status"].get("conditions") or []
                if c["status"] == "True"]


def test_backoff_limit_2_fails_after_three_pods_with_growing_backoff() -> None:
    world = World(make_job(backoffLimit=2))
    world.settle()
    created = []
    for expected_wait in (10, 20):
        (pod,) = world.running()
        created.append(world.pods[pod]["metadata"]["creationTimestamp"])
        world.finish(pod, code=1)
        world.settle()
        assert world.running() == [] and world.requeue == pytest.approx(expected_wait)
        world.advance(expected_wait - 1)
        world.settle()
        assert world.running() == []  # still backing off
        world.advance(1)
        world.settle()
    (pod,) = world.running()
    created.append(world.pods[pod]["metadata"]["creationTimestamp"])
    world.finish(pod, code=1)
    world.settle()
    assert created == [rfc3339(T0), rfc3339(T0 + datetime.timedelta(seconds=10)),
                       rfc3339(T0 + datetime.timedelta(seconds=30))]
    assert world.conditions() == [("FailureTarget", "BackoffLimitExceeded"),
                                  ("Failed", "BackoffLimitExceeded")]
    assert world.job["status"]["failed"] == 3 and "succeeded" not in world.job["status"]
    assert ("BackoffLimitExceeded", "Job has reached the specified backoff limit") \
        in world.events
    assert [e for e in world.events if e[0] == "Completed"] == []


# failures since the last success -> the wait before the next pod
@pytest.mark.parametrize(("failures", "wait"), [(0, 0), (1, 10), (2, 20), (3, 40), (6, 320),
                                                (7, 600), (20, 600)],
                         ids=lambda v: str(v))
def test_backoff_doubles_from_10s_capped_at_10_minutes(failures: int, wait: float) -> None:
    record = jobs.Backoff(failures, T0)
    assert record.delay() == wait
    assert record.remaining(T0 + datetime.timedelta(seconds=5)) == max(0, wait - 5)


def test_a_success_resets_the_backoff() -> None:
    world = World(make_job(completions=3, parallelism=1))
    world.settle()
    world.finish(world.running()[0], code=1)
    world.settle()
    assert world.backoff.failures == 1
    world.advance(10)
    world.settle()
    world.finish(world.running()[0])
    world.settle()
    assert world.backoff == jobs.Backoff()
    assert len(world.running()) == 1  # the next pod at once


# spec, the exit code of each pod in turn (the next running one, waiting out any backoff), the
# true conditions at the end, status counters
SCENARIOS = [
    ("one-pod-completes", {}, [0], [("SuccessCriteriaMet", "CompletionsReached"),
                                    ("Complete", "CompletionsReached")], {"succeeded": 1}),
    ("completions-3-parallel-2", {"completions": 3, "parallelism": 2}, [0, 0, 0],
     [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")],
     {"succeeded": 3}),
    ("work-queue-first-success-ends-it", {"completions": None, "parallelism": 2}, [0, 0],
     [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")],
     {"succeeded": 2}),
    ("backoff-limit-0", {"backoffLimit": 0}, [1],
     [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")],
     {"failed": 1}),
    ("fail-job-rule", {"podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}}, [42],
     [("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")], {"failed": 1}),
    ("ignore-rule-is-not-counted", {"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}}]}}, [7, 0],
     [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")],
     {"succeeded": 1}),
    ("count-rule-counts", {"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0]}}]}}, [3],
     [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")],
     {"failed": 1}),
    ("indexed", {"completions": 3, "parallelism": 3, "completionMode": "Indexed"}, [0, 0, 0],
     [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")],
     {"succeeded": 3, "completedIndexes": "0-2"}),
    ("success-policy", {"completions": 4, "parallelism": 4, "completionMode": "Indexed",
                        "successPolicy": {"rules": [{"succeededIndexes": "0"}]}},
     [0],  # the three still running are deleted (and counted failed) as the Job finishes
     [("SuccessCriteriaMet", "SuccessPolicy"), ("Complete", "SuccessPolicy")],
     {"succeeded": 1, "completedIndexes": "0", "failed": 3}),
]


@pytest.mark.parametrize(("spec", "outcomes", "conditions", "counts"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_scenarios(spec: Obj, outcomes: list[int], conditions: list[tuple[str, str]],
                   counts: Obj) -> None:
    world = World(make_job(**spec))
    world.settle()
    done: set[str] = set()
    for code in outcomes:
        pending = [n for n in world.running() if n not in done]
        if not pending:
            world.advance(600)
            world.settle()
            pending = [n for n in world.running() if n not in done]
        name = pending[0]
        done.add(name)
        world.finish(name, code=code)
        world.settle()
    world.settle()
    assert world.conditions() == conditions
    status = world.job["status"]
    assert {k: status[k] for k in ("succeeded", "failed", "completedIndexes")
            if k in status} == counts
    assert status["uncountedTerminatedPods"] == {}
    assert all(not p["metadata"]["finalizers"] for p in world.pods.values())
    if conditions[-1][0] == "Complete":
        assert status["completionTime"] == rfc3339(world.now)


def test_active_deadline_fails_the_job_and_deletes_its_pods() -> None:
    world = World(make_job(parallelism=2, completions=2, activeDeadlineSeconds=30))
    world.settle()
    assert len(world.running()) == 2 and world.requeue == pytest.approx(30)
    world.advance(30)
    world.settle()
    assert world.running() == []
    assert world.conditions() == [("FailureTarget", "DeadlineExceeded"),
                                  ("Failed", "DeadlineExceeded")]
    assert world.job["status"]["failed"] == 2
    assert ("DeadlineExceeded", "Job was active longer than specified deadline") in world.events


def test_suspend_deletes_active_pods_uncounted_and_resume_restarts_the_clock() -> None:
    world = World(make_job(parallelism=2, completions=2))
    world.settle()
    world.job["spec"]["suspend"] = True
    world.settle()
    assert world.running() == [] and world.pods == {}
    assert world.conditions() == [("Suspended", "JobSuspended")]
    assert "failed" not in world.job["status"] and world.job["status"].get("active") is None
    world.advance(60)
    world.job["spec"]["suspend"] = False
    world.settle()
    assert len(world.running()) == 2
    (suspended,) = world.job["status"]["conditions"]
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")
    assert world.job["status"]["startTime"] == rfc3339(world.now)
    assert [e[0] for e in world.events] == ["Suspended", "Resumed"]


def test_a_suspended_job_starts_suspended() -> None:
    world = World(make_job(suspend=True))
    world.settle()
    assert world.pods == {} and "startTime" not in world.job["status"]
    assert world.conditions() == [("Suspended", "JobSuspended")]


def test_lowering_parallelism_deletes_the_extra_pods() -> None:
    world = World(make_job(parallelism=3, completions=10))
    world.settle()
    world.job["spec"]["parallelism"] = 1
    world.settle()
    assert len(world.running()) == 1 and "failed" not in world.job["status"]


def test_a_deleted_pod_counts_as_failed_and_is_replaced() -> None:
    world = World(make_job())
    world.settle()
    (name,) = world.running()
    world.pods[name]["metadata"]["deletionTimestamp"] = rfc3339(world.now)
    world.settle()
    assert world.job["status"]["failed"] == 1 and name not in world.pods
    assert world.requeue == pytest.approx(10)


def test_indexed_pods_replace_the_failed_index() -> None:
    world = World(make_job(completions=3, parallelism=3, completionMode="Indexed"))
    world.settle()
    by_index = {jobs.completion_index(world.pods[n]): n for n in world.running()}
    assert sorted(i for i in by_index if i is not None) == [0, 1, 2]
    world.finish(by_index[1], code=1)
    world.finish(by_index[0])
    world.settle()
    world.advance(10)
    world.settle()
    indexes = sorted(jobs.completion_index(world.pods[n]) or 0 for n in world.running())
    assert indexes == [1, 2]
    assert world.job["status"]["completedIndexes"] == "0"


def test_new_indexed_pod() -> None:
    job = make_job(completionMode="Indexed", completions=2)
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    pod = jobs.new_pod(job, 1)
    meta = pod["metadata"]
    assert meta["generateName"] == "j-1-"
    assert meta["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert meta["labels"][jobs.INDEX_KEY] == meta["annotations"][jobs.INDEX_KEY] == "1"
    assert meta["ownerReferences"][0]["kind"] == "Job"
    assert meta["ownerReferences"][0]["controller"] is True
    assert pod["spec"]["hostname"] == "j-1"
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1",
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
    assert "hostname" not in jobs.new_pod(make_job(), None)["spec"]


@pytest.mark.parametrize(("indexes", "text"), [
    ([], ""), ([0], "0"), ([0, 1, 2], "0-2"), ([1, 3, 4, 5, 9], "1,3-5,9"), ([2, 0], "0,2")],
    ids=["none", "one", "range", "mixed", "unsorted"])
def test_completed_indexes_text(indexes: list[int], text: str) -> None:
    assert jobs.format_indexes(indexes) == text
    assert jobs.parse_indexes(text) == set(indexes)


def test_pod_failure_policy_on_pod_condition() -> None:
    job = make_job(podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]})
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "status": {
        "phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True"}]}}
    assert jobs.failure_policy_action(job, pod) == (
        "Ignore", "Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0")


def test_fail_job_message_names_the_container_and_code() -> None:
    world = World(make_job(podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In",
                                              "values": [42]}}]}))
    world.settle()
    (name,) = world.running()
    world.finish(name, code=42)
    world.settle()
    failed = next(c for c in world.job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["message"] == f"Container c for pod ns/{name} failed with exit code 42 " \
        "matching FailJob rule at index 0"


def test_a_finished_job_only_removes_finalizers() -> None:
    job = make_job()
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    pod = jobs.new_pod(job, None)
    pod["metadata"].update(name="p", uid="u")
    plan = jobs.reconcile(job, [pod], jobs.Backoff(), T0)
    assert (plan.create, plan.delete, plan.finalize) == ([], [], ["p"])
    assert plan.status == job["status"]


def test_merge_patch_nulls_what_is_gone() -> None:
    old = {"uncountedTerminatedPods": {"succeeded": ["u"]}, "active": 1}
    new = {"uncountedTerminatedPods": {}, "succeeded": 1}
    assert jobs.merge_patch(old, new) == {
        "uncountedTerminatedPods": {"succeeded": None}, "succeeded": 1, "active": None}


def test_replacement_policy_failed_waits_for_a_terminating_pod() -> None:
    world = World(make_job(podReplacementPolicy="Failed"))
    world.settle()
    (name,) = world.running()
    world.pods[name]["metadata"]["deletionTimestamp"] = rfc3339(world.now)
    world.settle()
    assert list(world.pods) == [name] and world.job["status"]["terminating"] == 1
    assert "failed" not in world.job["status"]
    world.finish(name, code=137)  # the kubelet stopped it
    world.settle()
    assert world.job["status"]["failed"] == 1 and name not in world.pods
    world.advance(10)
    world.settle()
    assert len(world.running()) == 1


# --- the controller's writes ----------------------------------------------------------------

def _controller(client: FakeClient, job: Obj, pods: list[Obj]) -> jobs.JobController:
    ctl = jobs.JobController(client, now=lambda: T0)  # type: ignore[arg-type]
    ctl.jobs.cache.put("ns/j", job)
    for pod in pods:
        ctl.pods.cache.put(f"ns/{pod['metadata']['name']}", pod)
    return ctl


def _owned_pod(job: Obj, name: str, phase: str) -> Obj:
    pod = jobs.new_pod(job, None)
    pod["metadata"].update(name=name, uid=f"uid-{name}", resourceVersion="7",
                           labels={"batch.kubernetes.io/controller-uid": "job-uid"})
    pod["metadata"]["ownerReferences"][0]["uid"] = "job-uid"
    pod["status"] = {"phase": phase}
    return pod


async def test_sync_records_then_releases_then_counts_a_finished_pod() -> None:
    job = make_job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}})
    job["metadata"]["resourceVersion"] = "5"
    job["status"] = {"startTime": rfc3339(T0), "active": 1}
    pod = _owned_pod(job, "j-abc", "Succeeded")
    client = FakeClient()
    ctl = _controller(client, job, [pod])
    await ctl.sync("ns/j")
    writes = [(verb, plural, body) for verb, plural, body in client.writes()]
    assert [(verb, plural) for verb, plural, _ in writes] == [
        ("patch/status", "jobs"), ("patch", "pods"), ("patch/status", "jobs")]
    first, release, counted = (body for _, _, body in writes)
    assert first["metadata"] == {"resourceVersion": "5"}
    assert first["status"]["uncountedTerminatedPods"] == {"succeeded": ["uid-j-abc"]}
    assert release == {"metadata": {"finalizers": None, "resourceVersion": "7"}}
    assert counted["status"]["succeeded"] == 1
    assert counted["status"]["uncountedTerminatedPods"] == {"succeeded": None}
    assert client.events == []  # Complete comes on the next sync, once nothing is left running


def test_backoff_limit_per_index_fails_the_index_then_the_job() -> None:
    world = World(make_job(completions=3, parallelism=3, completionMode="Indexed",
                           backoffLimitPerIndex=1, backoffLimit=None))
    del world.job["spec"]["backoffLimit"]  # as defaulted: no global limit with a per-index one

    def pod_of(index: int) -> str:
        return next(n for n in world.running()
                    if jobs.completion_index(world.pods[n]) == index)

    world.settle()
    first = pod_of(1)
    assert world.pods[first]["metadata"]["annotations"][jobs.FAILURE_COUNT_KEY] == "0"
    world.finish(first, code=1)
    world.finish(pod_of(0))
    world.settle()
    assert len(world.running()) == 1 and world.requeue == pytest.approx(10)  # index 1 waits
    world.advance(10)
    world.settle()
    second = pod_of(1)
    assert world.pods[second]["metadata"]["annotations"][jobs.FAILURE_COUNT_KEY] == "1"
    world.finish(second, code=1)
    world.settle()
    assert world.job["status"]["failedIndexes"] == "1"
    world.advance(600)
    world.settle()
    assert [jobs.completion_index(world.pods[n]) for n in world.running()] == [2]
    world.finish(pod_of(2))
    world.settle()
    assert world.conditions() == [("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]
    assert world.job["status"]["completedIndexes"] == "0,2"
    assert world.job["status"]["failed"] == 2


def test_max_failed_indexes_fails_the_job_at_once() -> None:
    world = World(make_job(completions=4, parallelism=4, completionMode="Indexed",
                           backoffLimitPerIndex=0, maxFailedIndexes=0))
    del world.job["spec"]["backoffLimit"]
    world.settle()
    world.finish(world.running()[0], code=1)
    world.settle()
    assert world.conditions() == [("FailureTarget", "MaxFailedIndexesExceeded"),
                                  ("Failed", "MaxFailedIndexesExceeded")]
    assert world.running() == []
