"""The CronJob controller's decisions (`cronjob.reconcile`) and the TTL controller's, with an
injected clock: no test waits for a minute to pass."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.api.meta import rfc3339
from tinykube.controllers import cron, cronjob, ttl_after_finished

Obj = dict[str, Any]
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def minutes(n: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=n)


def make_cj(schedule: str = "* * * * *", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "c", "namespace": "ns", "uid": "cj-uid",
                         "creationTimestamp": rfc3339(T0 - datetime.timedelta(seconds=30))},
            "spec": {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {
                         "template": {"spec": {"containers": [{"name": "x"}]}}}}, **spec},
            "status": {}}


def make_job(name: str, *, finished: str | None = None, at: datetime.datetime = T0) -> Obj:
    status: Obj = {"startTime": rfc3339(at)}
    if finished:
        status["conditions"] = [{"type": finished, "status": "True"}]
        if finished == "Complete":
            status["completionTime"] = rfc3339(at + datetime.timedelta(seconds=5))
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "creationTimestamp": rfc3339(at)}, "status": status}


class Clocked:
    """A CronJob, its Jobs and the time: applies each plan as the controller would."""

    def __init__(self, cj: Obj) -> None:
        self.cj = cj
        self.jobs: dict[str, Obj] = {}
        self.events: list[str] = []

    def sync(self, now: datetime.datetime) -> cronjob.Plan:
        plan = cronjob.reconcile(self.cj, list(self.jobs.values()), now)
        for name in plan.delete:
            self.jobs.pop(name, None)
        if plan.create is not None:
            job = {**plan.create, "status": {}}
            job["metadata"] = {**job["metadata"], "uid": f"uid-{job['metadata']['name']}",
                               "creationTimestamp": rfc3339(now)}
            self.jobs[job["metadata"]["name"]] = job
            plan.status["active"] = [*plan.status["active"], cronjob.job_reference(job)]
        self.cj = {**self.cj, "status": plan.status}
        self.events += [reason for _, reason, _ in plan.events]
        return plan

    def complete(self, name: str, now: datetime.datetime) -> None:
        self.jobs[name]["status"] = {"conditions": [{"type": "Complete", "status": "True"}],
                                     "completionTime": rfc3339(now)}

    def active(self) -> list[str]:
        return [ref["name"] for ref in self.cj["status"].get("active") or []]


def name_at(t: datetime.datetime) -> str:
    return f"c-{int(t.timestamp()) // 60}"


@pytest.mark.parametrize(("deadline", "after_the_first"), [
    (10, ["c-12:02"]),  # 12:01 was skipped and is out of the deadline's reach at 12:01:30
    (None, ["c-12:01", "c-12:02"]),  # without a deadline the skipped run starts late, once
], ids=["starting-deadline-10s", "no-deadline"])
def test_forbid_skips_while_a_job_runs_every_minute(deadline: int | None,
                                                    after_the_first: list[str]) -> None:
    spec: Obj = {"startingDeadlineSeconds": deadline} if deadline else {}
    world = Clocked(make_cj(concurrencyPolicy="Forbid", **spec))
    plan = world.sync(minutes(0) + datetime.timedelta(seconds=1))
    first = name_at(minutes(0))
    assert list(world.jobs) == [first] and world.active() == [first]
    assert plan.requeue_after == pytest.approx(59.1)
    world.sync(minutes(1) + datetime.timedelta(seconds=1))
    assert list(world.jobs) == [first] and world.events[-1] == "JobAlreadyActive"
    world.complete(first, minutes(1.5))
    world.sync(minutes(1.5))
    assert "SawCompletedJob" in world.events
    assert world.cj["status"]["lastSuccessfulTime"] == rfc3339(minutes(1.5))
    for name in list(world.jobs)[1:]:
        world.complete(name, minutes(1.6))
    world.sync(minutes(2) + datetime.timedelta(seconds=1))
    names = {name_at(minutes(1)): "c-12:01", name_at(minutes(2)): "c-12:02"}
    assert [names[n] for n in list(world.jobs)[1:]] == after_the_first
    assert world.cj["status"]["lastScheduleTime"] == rfc3339(minutes(2))


def test_allow_runs_alongside_and_replace_replaces() -> None:
    allow = Clocked(make_cj())
    replace = Clocked(make_cj(concurrencyPolicy="Replace"))
    for world in (allow, replace):
        world.sync(minutes(0))
        world.sync(minutes(1))
    assert allow.active() == [name_at(minutes(0)), name_at(minutes(1))]
    assert replace.active() == [name_at(minutes(1))] and list(replace.jobs) == replace.active()
    assert "SuccessfulDelete" in replace.events


def test_the_same_time_is_not_run_twice() -> None:
    world = Clocked(make_cj())
    world.sync(minutes(0))
    world.sync(minutes(0.5))
    assert len(world.jobs) == 1


def test_new_job_from_the_template() -> None:
    cj = make_cj(timeZone="Europe/Berlin")
    job = cronjob.new_job(cj, T0, cron.time_zone("Europe/Berlin"))
    assert job["metadata"]["name"] == f"c-{int(T0.timestamp()) // 60}"
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["metadata"]["annotations"] == {
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-01-01T13:00:00+01:00"}
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "c", True)
    assert cronjob.new_job(make_cj(), T0, datetime.UTC)["metadata"]["annotations"][
        cronjob.SCHEDULED_ANNOTATION] == "2026-01-01T12:00:00Z"


# last schedule (minutes from T0), starting deadline, now -> most recent missed time, count
MISSED = [
    ("none-yet", 0, None, 0.5, None, 0),
    ("one", 0, None, 1.5, 1, 1),
    ("three", 0, None, 3.2, 3, 3),
    ("deadline-limits-the-count", 0, 90, 200, 200, 2),
    ("too-many", 0, None, 200, 200, 200),
]


@pytest.mark.parametrize(("last", "deadline", "now", "recent", "count"),
                         [m[1:] for m in MISSED], ids=[m[0] for m in MISSED])
def test_most_recent_time(last: float, deadline: int | None, now: float,
                          recent: float | None, count: int) -> None:
    extra: Obj = {"startingDeadlineSeconds": deadline} if deadline else {}
    cj = make_cj(**extra)
    cj["status"]["lastScheduleTime"] = rfc3339(minutes(last))
    found, missed = cronjob.most_recent_time(cj, cron.parse("* * * * *"), minutes(now))
    assert found == (None if recent is None else minutes(recent)) and missed == count


def test_too_many_missed_start_times_warns_and_runs_the_latest() -> None:
    world = Clocked(make_cj())
    world.cj["status"]["lastScheduleTime"] = rfc3339(minutes(0))
    plan = world.sync(minutes(200))
    assert ("Warning", "TooManyMissedTimes", "too many missed start times: 200. Set or "
            "decrease .spec.startingDeadlineSeconds or check clock skew") in plan.events
    assert list(world.jobs) == [name_at(minutes(200))]


def test_a_time_past_its_starting_deadline_is_not_run() -> None:
    world = Clocked(make_cj("0 * * * *", startingDeadlineSeconds=10))
    plan = world.sync(T0 + datetime.timedelta(seconds=30))
    assert world.jobs == {} and plan.events == []  # 12:00 is out of the deadline's reach
    plan = world.sync(T0 + datetime.timedelta(hours=1, seconds=5))
    assert list(world.jobs) == [name_at(T0 + datetime.timedelta(hours=1))]


# spec change, the warning
BROKEN = [
    ("suspended", {"suspend": True}, None),
    ("unknown-zone", {"timeZone": "Mars/Olympus"}, "UnknownTimeZone"),
    ("bad-schedule", {"schedule": "61 * * * *"}, "UnparseableSchedule"),
]


@pytest.mark.parametrize(("change", "warning"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_nothing_runs(change: Obj, warning: str | None) -> None:
    world = Clocked({**make_cj(), "spec": {**make_cj()["spec"], **change}})
    plan = world.sync(minutes(5))
    assert world.jobs == {} and plan.requeue_after is None
    assert [e[1] for e in plan.events if e[0] == "Warning"] == ([warning] if warning else [])


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    jobs = [make_job(f"ok{i}", finished="Complete", at=minutes(i)) for i in range(5)] + \
        [make_job(f"bad{i}", finished="Failed", at=minutes(i)) for i in range(3)] + \
        [make_job("running", at=minutes(9))]
    plan = cronjob.reconcile(make_cj(suspend=True), jobs, minutes(10))
    assert plan.delete == ["ok0", "ok1", "bad0", "bad1"]


def test_unexpected_job_is_reported_not_adopted() -> None:
    plan = cronjob.reconcile(make_cj(suspend=True), [make_job("manual")], minutes(1))
    assert plan.status["active"] == []
    assert plan.events == [("Warning", "UnexpectedJob", "Saw a job that the controller did not "
                            "create or forgot: manual")]


# --- TTL after finished -------------------------------------------------------------------

TTL = [
    ("not-finished", 10, None, 0, None),
    ("no-ttl", None, "Complete", 0, None),
    ("due-later", 10, "Complete", 4, 6),
    ("due-now", 10, "Failed", 10, 0),
    ("zero-ttl", 0, "Complete", 3, -3),
]


@pytest.mark.parametrize(("ttl", "finished", "elapsed", "left"), [t[1:] for t in TTL],
                         ids=[t[0] for t in TTL])
def test_ttl_expires_in(ttl: int | None, finished: str | None, elapsed: float,
                        left: float | None) -> None:
    job = make_job("j")
    if finished:
        job["status"]["conditions"] = [{"type": finished, "status": "True",
                                        "lastTransitionTime": rfc3339(T0)}]
    job["spec"] = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    now = T0 + datetime.timedelta(seconds=elapsed)
    assert ttl_after_finished.expires_in(job, now) == left
