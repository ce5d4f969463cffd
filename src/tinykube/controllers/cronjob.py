"""The CronJob controller: create a Job at each scheduled time, as upstream's cronjob v2.

`reconcile(cj, jobs, now)` decides, purely (time is an argument, so tests never wait a
minute); the controller applies the `Plan` and re-queues the CronJob for its next schedule.
The steps are upstream's `syncCronJob`:

1. The active list keeps the CronJob's own Jobs that have not finished (a finished one is
   dropped with `SawCompletedJob`; one that is gone, silently); `lastSuccessfulTime` follows
   the latest completed Job. An unfinished Job it owns but did not list (e.g. `kubectl create
   job --from=cronjob/x`) gets an `UnexpectedJob` warning, as upstream.
2. Nothing more for a CronJob being deleted, with an unknown `timeZone` (`UnknownTimeZone`)
   or a schedule that does not parse (`UnparseableSchedule`), or while suspended.
3. The most recent missed time: schedule times after `lastScheduleTime` (or the creation
   time), no earlier than `now - startingDeadlineSeconds`. More than 100 of them is a
   `TooManyMissedTimes` warning ("too many missed start times"); only the latest one runs,
   and it is counted the way upstream counts (the interval between two activations), so a
   stopped clock cannot make the controller list decades of times.
4. A time past its `startingDeadlineSeconds` is skipped (`MissSchedule`); one already run
   (its Job, named `<cronjob>-<minutes since the epoch>`, is active or lastScheduleTime is it)
   is not run twice. `Forbid` skips while a Job is active (`JobAlreadyActive`); `Replace`
   deletes the active Jobs first (propagation Background); `Allow` runs alongside.
5. The Job gets the template's labels and annotations, the annotation
   `batch.kubernetes.io/cronjob-scheduled-timestamp`, and a controller reference; it joins
   `status.active` and `lastScheduleTime` becomes its time.
6. Finished Jobs beyond `successfulJobsHistoryLimit`/`failedJobsHistoryLimit` are deleted,
   oldest first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources
from tinykube.api.clone import clone
from tinykube.api.meta import owner_reference, rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller, StaleCacheError, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import cron
from tinykube.controllers.replicaset import (
    CONTROLLER_INDEX,
    controller_ref,
    controller_uid_index,
    parse_time,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Job = Mapping[str, Any]

SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
_RFC1123Z = "%a, %d %b %Y %H:%M:%S %z"


def _finished(job: Job) -> str | None:
    """The true Complete/Failed condition type of a Job, if it finished."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def job_name(cj: Mapping[str, Any], scheduled: datetime.datetime) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def _timestamp_in(moment: datetime.datetime, zone: datetime.tzinfo) -> str:
    text = moment.astimezone(zone).replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def new_job(cj: Mapping[str, Any], scheduled: datetime.datetime,
            zone: datetime.tzinfo) -> Obj:
    """The Job for the scheduled time, from the CronJob's jobTemplate."""
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    meta = template.get("metadata") or {}
    annotations = {**(meta.get("annotations") or {}),
                   SCHEDULED_ANNOTATION: _timestamp_in(scheduled, zone)}
    job_meta: Obj = {"name": job_name(cj, scheduled), "namespace": cj["metadata"]["namespace"],
                     "annotations": annotations, "ownerReferences": [owner_reference(cj)]}
    if meta.get("labels"):
        job_meta["labels"] = dict(meta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": clone(template.get("spec") or {})}


def job_reference(job: Job) -> Obj:
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
            "namespace": meta["namespace"], "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion")}


def most_recent_time(cj: Mapping[str, Any], schedule: cron.Schedule,
                     now: datetime.datetime) -> tuple[datetime.datetime | None, int]:
    """(the latest schedule time not yet run, how many were missed), upstream's
    mostRecentScheduleTime."""
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or \
        parse_time(cj["metadata"].get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int):
        earliest = max(earliest, now - datetime.timedelta(seconds=deadline))
    first = schedule.next(earliest)
    if first is None or now < first:
        return None, 0
    second = schedule.next(first)
    if second is None or now < second:
        return first, 1
    interval = max(1, round((second - first).total_seconds()))
    missed = int((now - first).total_seconds()) // interval + 1
    recent = first + datetime.timedelta(seconds=(missed - 1) * interval)
    while (t := schedule.next(recent)) is not None and t <= now:
        recent = t
    return recent, missed


@dataclasses.dataclass
class Plan:
    """What `reconcile` decided for one CronJob."""

    status: Obj
    create: Obj | None = None
    delete: list[str] = dataclasses.field(default_factory=list)  # Jobs, propagation Background
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    requeue_after: float | None = None


def _track_jobs(cj: Mapping[str, Any], jobs: Sequence[Job], plan: Plan) -> None:
    """Step 1: the active list and lastSuccessfulTime from the CronJob's Jobs."""
    status = plan.status
    by_uid = {j["metadata"].get("uid"): j for j in jobs}
    listed = {ref.get("uid") for ref in status.get("active") or []}
    active = []
    for ref in status.get("active") or []:
        job = by_uid.get(ref.get("uid"))
        if job is None:
            continue
        done = _finished(job)
        if done is not None:
            plan.events.append(("Normal", "SawCompletedJob",
                                f"Saw completed job: {job['metadata']['name']}, "
                                f"condition: {done}"))
        else:
            active.append(ref)
    for job in jobs:
        done = _finished(job)
        if done is None and job["metadata"].get("uid") not in listed:
            plan.events.append(("Warning", "UnexpectedJob", "Saw a job that the controller did "
                                f"not create or forgot: {job['metadata']['name']}"))
        completed = parse_time((job.get("status") or {}).get("completionTime"))
        last = parse_time(status.get("lastSuccessfulTime"))
        if done == "Complete" and completed is not None and (last is None or completed > last):
            status["lastSuccessfulTime"] = rfc3339(completed)
    status["active"] = active


def _history(cj: Mapping[str, Any], jobs: Sequence[Job], plan: Plan) -> None:
    """Step 6: finished Jobs beyond the history limits, oldest first."""
    spec = cj.get("spec") or {}
    doomed = set(plan.delete)
    for kind, key in (("Complete", "successfulJobsHistoryLimit"),
                      ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(key)
        if not isinstance(limit, int):
            continue
        finished = sorted((j for j in jobs if _finished(j) == kind), key=lambda j: (
            (j.get("status") or {}).get("startTime") or j["metadata"].get("creationTimestamp")
            or "", j["metadata"]["name"]))
        for job in finished[:max(0, len(finished) - limit)]:
            name = job["metadata"]["name"]
            if name not in doomed:
                plan.delete.append(name)
                plan.events.append(("Normal", "SuccessfulDelete", f"Deleted job {name}"))


def _next_in(schedule: cron.Schedule, now: datetime.datetime) -> float | None:
    upcoming = schedule.next(now)
    return None if upcoming is None else (upcoming - now).total_seconds() + 0.1


def reconcile(cj: Mapping[str, Any], jobs: Sequence[Job], now: datetime.datetime) -> Plan:
    """What to do for `cj` given the Jobs it controls and the time."""
    plan = Plan(clone(dict(cj.get("status") or {})))
    _track_jobs(cj, jobs, plan)
    _history(cj, jobs, plan)
    spec = cj.get("spec") or {}
    if cj["metadata"].get("deletionTimestamp"):
        return plan
    try:
        zone = cron.time_zone(spec.get("timeZone"))
    except cron.ScheduleError:
        plan.events.append(("Warning", "UnknownTimeZone",
                            f"invalid timeZone: {spec.get('timeZone')!r}: unknown time zone "
                            f"{spec.get('timeZone')}"))
        return plan
    try:
        schedule = cron.parse(str(spec.get("schedule") or ""), zone)
    except cron.ScheduleError as exc:
        plan.events.append(("Warning", "UnparseableSchedule",
                            f"unparseable schedule: {spec.get('schedule')!r} : {exc}"))
        return plan
    if spec.get("suspend"):
        return plan
    plan.requeue_after = _next_in(schedule, now)
    scheduled, missed = most_recent_time(cj, schedule, now)
    if missed > MAX_MISSED:
        plan.events.append(("Warning", "TooManyMissedTimes",
                            f"too many missed start times: {missed}. Set or decrease "
                            ".spec.startingDeadlineSeconds or check clock skew"))
    if scheduled is None:
        return plan
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and scheduled + datetime.timedelta(seconds=deadline) < now:
        plan.events.append(("Warning", "MissSchedule", "Missed scheduled time to start a job: "
                            + scheduled.astimezone(zone).strftime(_RFC1123Z)))
        return plan
    name = job_name(cj, scheduled)
    active = plan.status["active"]
    if any(ref.get("name") == name for ref in active) or \
            parse_time(plan.status.get("lastScheduleTime")) == scheduled:
        return plan
    policy = spec.get("concurrencyPolicy", "Allow")
    if policy == "Forbid" and active:
        plan.events.append(("Normal", "JobAlreadyActive", "Not starting job because prior "
                            "execution is running and concurrency policy is Forbid"))
        return plan
    if policy == "Replace":
        for ref in active:
            plan.delete.append(str(ref["name"]))
            plan.events.append(("Normal", "SuccessfulDelete", f"Deleted job {ref['name']}"))
        plan.status["active"] = []
    plan.create = new_job(cj, scheduled, zone)
    plan.status["lastScheduleTime"] = rfc3339(scheduled)
    return plan


# --- the controller ---------------------------------------------------------------------------

class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("batch", "v1", "cronjobs")
        self.jobs_res = resources.must("batch", "v1", "jobs")
        self.cronjobs = shared_informer(client, self.res)
        self.jobs = shared_informer(client, self.jobs_res)
        self.jobs.cache.add_index(CONTROLLER_INDEX, controller_uid_index)
        super().__init__(client, [self.cronjobs, self.jobs])
        self.now = now or clocks.installed().utcnow
        self.recorder = events.Recorder(client, self.name)
        self.cronjobs.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                                   on_delete=self.enqueue)
        self.jobs.add_handlers(on_add=self._on_job, on_update=lambda _o, n: self._on_job(n),
                               on_delete=self._on_job)

    def _on_job(self, job: Job) -> None:
        ref = controller_ref(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref['name']}")

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.cache.get(key)
        if cj is None:
            return
        jobs = self.jobs.cache.by_index(CONTROLLER_INDEX, cj["metadata"]["uid"])
        plan = reconcile(cj, jobs, self.now())
        await self._apply(cj, plan)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)

    async def _apply(self, cj: Mapping[str, Any], plan: Plan) -> None:
        namespace = cj["metadata"]["namespace"]
        for name in plan.delete:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(self.jobs_res, name, namespace,
                                         propagation_policy="Background")
        status = plan.status
        if plan.create is not None:
            try:
                job = await self.client.create(self.jobs_res, plan.create, namespace)
            except errors.AlreadyExists:
                log.info("%s: Job %s already exists", self.name, plan.create["metadata"]["name"])
                return
            except errors.APIError as exc:
                await self.recorder.event(cj, "Warning", "FailedCreate",
                                          f"Error creating job: {exc}")
                raise
            plan.events.append(("Normal", "SuccessfulCreate",
                                f"Created job {job['metadata']['name']}"))
            status["active"] = [*status.get("active", []), job_reference(job)]
        if _differs(cj.get("status") or {}, status):
            body = {**status, "active": status.get("active") or None}
            try:
                await self.client.patch(self.res, cj["metadata"]["name"], {
                    "metadata": {"resourceVersion": cj["metadata"]["resourceVersion"]},
                    "status": body}, namespace, patch_type="merge", subresource="status")
            except errors.Conflict as exc:
                if plan.create is None:
                    raise StaleCacheError(object_key(cj)) from exc
                # the Job exists: write the status on what the server has now
                await self.client.patch(self.res, cj["metadata"]["name"], {"status": body},
                                        namespace, patch_type="merge", subresource="status")
        for type_, reason, message in plan.events:
            await self.recorder.event(cj, type_, reason, message)


def _differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any((old.get(k) or None) != (new.get(k) or None) for k in set(old) | set(new))
