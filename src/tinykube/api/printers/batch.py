"""Printers for batch/v1: Job and CronJob.

A Job's STATUS is its first true condition in kube's order (Complete, Failed, then Terminating
for a deleting Job, Suspended, FailureTarget, SuccessCriteriaMet), else Running; COMPLETIONS is
`succeeded/completions`, or `succeeded/1 of parallelism` for a work queue; DURATION runs from
`startTime` to `completionTime` (or now) and is empty before the Job starts. A CronJob shows
its schedule, time zone (`<none>`), suspend flag, active Job count and last schedule's age.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api.printers.base import (
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    NAME_COLUMN,
    NONE,
    UNSET,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    format_label_selector,
    get_path,
    name_of,
    wide,
)
from tinykube.api.printers.duration import human_duration, parse_timestamp, translate_timestamp

_JOB_STATES = ("Complete", "Failed", "Terminating", "Suspended", "FailureTarget",
               "SuccessCriteriaMet")
_SELECTOR_DOC = "A label query over pods that should match the pod count."


def _container_cells(template: Any) -> list[Cell]:
    containers = [as_dict(c) for c in as_list(get_path(as_dict(template), "spec", "containers"))]
    return [",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers)]


def _job_status(job: Mapping[str, Any]) -> str:
    true = {str(as_dict(c).get("type")) for c in as_list(get_path(job, "status", "conditions"))
            if as_dict(c).get("status") == "True"}
    if get_path(job, "metadata", "deletionTimestamp") is not None:
        true.add("Terminating")
    return next((state for state in _JOB_STATES if state in true), "Running")


def _completions(job: Mapping[str, Any]) -> str:
    spec, succeeded = as_dict(job.get("spec")), as_int(get_path(job, "status", "succeeded"))
    if isinstance(spec.get("completions"), int):
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism")
    if isinstance(parallelism, int) and parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _duration(job: Mapping[str, Any], now: datetime) -> str:
    start = parse_timestamp(get_path(job, "status", "startTime"))
    if start is None:
        return ""
    end = parse_timestamp(get_path(job, "status", "completionTime")) or now
    return human_duration(end - start)


def _job_cells(job: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(job.get("spec"))
    return [name_of(job), _job_status(job), _completions(job), _duration(job, now),
            age_of(job, now), *_container_cells(spec.get("template")),
            format_label_selector(spec.get("selector"))]


def _cronjob_cells(cj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(cj.get("spec"))
    suspend = spec.get("suspend")
    last = get_path(cj, "status", "lastScheduleTime")
    job_spec = as_dict(get_path(spec, "jobTemplate", "spec"))
    return [name_of(cj), str(spec.get("schedule") or ""), str(spec.get("timeZone") or NONE),
            UNSET if not isinstance(suspend, bool) else str(suspend),
            len(as_list(get_path(cj, "status", "active"))),
            NONE if last is None else translate_timestamp(last, now), age_of(cj, now),
            *_container_cells(job_spec.get("template")),
            format_label_selector(job_spec.get("selector"))]


BATCH_PRINTERS: dict[str, Printer] = {
    "Job": Printer((
        NAME_COLUMN, Column("Status", "Status of the job."),
        Column("Completions", "The number of pods which reached phase Succeeded."),
        Column("Duration", "Time required to complete the job."), AGE_COLUMN,
        CONTAINERS_COLUMN, IMAGES_COLUMN, wide("Selector", _SELECTOR_DOC),
    ), _job_cells),
    "CronJob": Printer((
        NAME_COLUMN,
        Column("Schedule", "The schedule in Cron format, see "
                           "https://en.wikipedia.org/wiki/Cron."),
        Column("Timezone", "The time zone name for the given schedule, see "
                           "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        Column("Suspend", "This flag tells the controller to suspend subsequent executions, it "
                          "does not apply to already started executions.", type="boolean"),
        Column("Active", "A list of pointers to currently running jobs.", type="integer"),
        Column("Last Schedule", "Information when was the last time the job was successfully "
                                "scheduled."),
        AGE_COLUMN, CONTAINERS_COLUMN, IMAGES_COLUMN, wide("Selector", _SELECTOR_DOC),
    ), _cronjob_cells),
}
