"""batch/v1: Job and CronJob (`pkg/apis/batch/validation`).

A Job needs a selector (the API server generates one from the Job's uid unless
`manualSelector`, see `api.defaults`) that matches its template's labels, and a pod template
whose `restartPolicy` is `OnFailure` or `Never`; counts are non-negative. A CronJob needs a
schedule (five cron fields or a `@` descriptor, checked as robfig/cron's parser counts them), a
known concurrency policy and a name of at most 52 characters (its Jobs append a timestamp); its
`jobTemplate.spec` is checked as a Job spec whose selector is optional. A Job's selector may not
change, and without `manualSelector: true` must be the generated one. A schedule may not name a
zone (`TZ=`/`CRON_TZ=`, refused as kube refuses new ones); `timeZone` must be an IANA zone.
"""

from __future__ import annotations

import zoneinfo

from tinykube.api.errors import FieldError
from tinykube.api.validation.meta import (
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
)
from tinykube.api.validation.names import Errors, Obj, check_non_negative, check_one_of
from tinykube.api.validation.pods import validate_pod_spec
from tinykube.api.validation.render import go_map, go_selector, raw

_RESTART_POLICIES = ["OnFailure", "Never"]
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRONJOB_NAME_MAX = 52  # a DNS-1035 label (63) minus the 11 characters of a Job's suffix


def _validate_job_template(spec: Obj, path: str) -> Errors:
    template = spec.get("template")
    if not isinstance(template, dict):
        return [FieldError.required(f"{path}.template")]
    meta = template.get("metadata") or {}
    errors = validate_labels(meta.get("labels"), f"{path}.template.metadata.labels")
    errors += validate_annotations(meta.get("annotations"),
                                   f"{path}.template.metadata.annotations")
    pod_spec = template.get("spec") or {}
    errors += validate_pod_spec(pod_spec, f"{path}.template.spec")
    policy = pod_spec.get("restartPolicy")
    if policy not in _RESTART_POLICIES:
        errors.append(FieldError.not_supported(f"{path}.template.spec.restartPolicy",
                                               policy or "", _RESTART_POLICIES))
    return errors


def _validate_job_spec(spec: Obj, path: str, *, selector_required: bool) -> Errors:
    errors: Errors = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                "ttlSecondsAfterFinished"):
        errors += check_non_negative(f"{path}.{key}", spec.get(key))
    errors += check_one_of(f"{path}.completionMode", spec.get("completionMode"),
                           ["NonIndexed", "Indexed"], required=False)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        if selector_required:
            errors.append(FieldError.required(f"{path}.selector"))
    else:
        selector_errors = validate_label_selector(selector, f"{path}.selector")
        errors += selector_errors
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        if not selector_errors and not selector_matches(selector, labels):
            errors.append(raw("FieldValueInvalid", f"{path}.template.metadata.labels",
                              go_map(labels or {}),
                              "`selector` does not match template `labels`"))
    errors += _validate_job_template(spec, path)
    return errors


def _generated_selector_errors(job: Obj) -> Errors:
    """Without `manualSelector: true` the selector must be the generated one (the Job's uid):
    a selector of one's own would let a Job adopt another's pods."""
    spec, uid = job.get("spec") or {}, (job.get("metadata") or {}).get("uid")
    selector = spec.get("selector")
    if spec.get("manualSelector") is True or not uid or not isinstance(selector, dict):
        return []
    if (selector.get("matchLabels") or {}).get("batch.kubernetes.io/controller-uid") == uid:
        return []
    return [raw("FieldValueInvalid", "spec.selector", go_selector(selector),
                "`selector` not auto-generated")]


def validate_job(job: Obj) -> Errors:
    return _validate_job_spec(job.get("spec") or {}, "spec", selector_required=True) + \
        _generated_selector_errors(job)


def _schedule_errors(schedule: str, time_zone: object) -> Errors:
    if "TZ" in schedule:
        detail = "cannot use both timeZone field and TZ or CRON_TZ in schedule" \
            if time_zone is not None else \
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
        return [FieldError.invalid("spec.schedule", schedule, detail)]
    if schedule.startswith("@"):
        if schedule in _DESCRIPTORS or schedule.startswith("@every "):
            return []
        detail = f"unrecognized descriptor: {schedule}"
    else:
        fields = schedule.split()
        if len(fields) == 5:
            return []
        detail = f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    return [FieldError.invalid("spec.schedule", schedule, detail)]


def _time_zone_errors(zone: object) -> Errors:
    if zone is None:
        return []
    text = str(zone)
    if not text:
        return [FieldError.invalid("spec.timeZone", text,
                                   "timeZone must be nil or non-empty string")]
    if text.lower() == "local":
        return [FieldError.invalid("spec.timeZone", text, "timeZone must be an explicit time "
                                   "zone as defined in https://www.iana.org/time-zones")]
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [FieldError.invalid("spec.timeZone", text, f"unknown time zone {text}")]
    return []


def validate_cronjob(cj: Obj) -> Errors:
    spec = cj.get("spec") or {}
    errors: Errors = []
    name = (cj.get("metadata") or {}).get("name") or ""
    if len(name) > _CRONJOB_NAME_MAX:
        errors.append(FieldError.invalid("metadata.name", name,
                                         f"must be no more than {_CRONJOB_NAME_MAX} characters"))
    schedule = spec.get("schedule")
    if not schedule:
        errors.append(FieldError.required("spec.schedule"))
    else:
        errors += _schedule_errors(str(schedule), spec.get("timeZone"))
    errors += _time_zone_errors(spec.get("timeZone"))
    errors += check_one_of("spec.concurrencyPolicy", spec.get("concurrencyPolicy"),
                           ["Allow", "Forbid", "Replace"])
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit"):
        errors += check_non_negative(f"spec.{key}", spec.get(key))
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    errors += _validate_job_spec(job_spec, "spec.jobTemplate.spec", selector_required=False)
    return errors
