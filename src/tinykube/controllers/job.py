"""The Job controller: run pods to completion, as upstream's pkg/controller/job does.

Gather / decide / apply. `sync` gathers the Job and its pods (by controller uid) from the
informers and the Job's in-memory `Backoff` record; `reconcile(job, pods, backoff, now)`
decides, purely, and returns a `Plan`; `_apply` performs it.

Tracking with finalizers (upstream's design, so a pod deleted early is still counted once):
every pod is created with the `batch.kubernetes.io/job-tracking` finalizer. A finished pod
(Succeeded, Failed, or, unless `podReplacementPolicy: Failed`, deleted before succeeding) is
first recorded by uid in `status.uncountedTerminatedPods`, then its finalizer is removed, then
(`flush`) it moves to `status.succeeded`/`failed`. Pods the controller deletes itself (excess
parallelism, suspend) lose their finalizer first and are never counted; once the Job is
finishing, every pod not succeeded counts as failed.

Decisions, in upstream's order:

1. A finished Job (`Complete` or `Failed`) only has finalizers left to remove.
2. Failing: a `podFailurePolicy` `FailJob` rule matching a failed pod (reason
   `PodFailurePolicy`), more failures than `backoffLimit` (`BackoffLimitExceeded`), or active
   for longer than `activeDeadlineSeconds` (`DeadlineExceeded`) adds the interim
   `FailureTarget` condition; succeeding (a `successPolicy` rule, or `completions` reached)
   adds `SuccessCriteriaMet`. Either way the active pods are deleted; once none is left the
   terminal `Failed`/`Complete` condition follows (with `completionTime` for Complete).
3. Suspended: active pods deleted, `Suspended` condition; resuming resets `startTime`.
4. Otherwise keep `min(parallelism, remaining completions)` pods active; Indexed Jobs create
   the missing indexes, lowest first. New pods after failures wait out the pod backoff:
   10 s doubling per failure since the last success, capped at 10 minutes (upstream's
   `DefaultJobPodFailureBackOff`/`MaxJobPodFailureBackOff`), measured from the last failure.

Indexed pods get the `batch.kubernetes.io/job-completion-index` annotation and label, the
`JOB_COMPLETION_INDEX` env var (from the annotation, as upstream) and hostname `<job>-<index>`,
so with a headless Service named in `subdomain` each index has a stable DNS name.
`podReplacementPolicy: Failed` (the default with a podFailurePolicy) counts a deleted pod only
once it is Failed, and replaces it only then. A Job deleted without cascading leaves pods
whose finalizer the controller removes (`_release_orphans`), so they do not hang in deletion.
`backoffLimitPerIndex` (Indexed): each pod carries `batch.kubernetes.io/job-index-failure-count`;
an index that failed more often (or hit a `FailIndex` rule) joins `status.failedIndexes` and is
not run again; each index backs off on its own failures; more than `maxFailedIndexes` fails the
Job (`MaxFailedIndexesExceeded`), as does ending with any failed index (`FailedIndexes`).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors, resources, selectors
from tinykube.api.clone import clone
from tinykube.api.meta import owner_reference, rfc3339
from tinykube.client import events
from tinykube.client.controller import Controller, StaleCacheError, object_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.replicaset import (
    CONTROLLER_INDEX,
    Expectations,
    controller_ref,
    controller_uid_index,
    deletion_order,
    is_ready,
    parse_time,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Pod = Mapping[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
BACKOFF_BASE = 10.0  # seconds (upstream DefaultJobPodFailureBackOff)
BACKOFF_MAX = 600.0  # seconds (upstream MaxJobPodFailureBackOff)
BURST = 500

BACKOFF_LIMIT = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS = ("CompletionsReached", "Reached expected number of succeeded pods")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
MAX_FAILED_INDEXES = ("MaxFailedIndexesExceeded",
                      "Job has exceeded the specified maximal number of failed indexes")


# --- pods -------------------------------------------------------------------------------------

def _phase(pod: Pod) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_finished(pod: Pod) -> bool:
    return _phase(pod) in ("Succeeded", "Failed")


def is_terminating(pod: Pod) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) and not is_finished(pod)


def is_active(pod: Pod) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and not is_finished(pod)


def has_finalizer(pod: Pod) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def only_replace_failed(job: Mapping[str, Any]) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or bool(spec.get("podFailurePolicy"))


def is_failed(pod: Pod, job: Mapping[str, Any]) -> bool:
    """Upstream's isPodFailed: Failed, or deleted before succeeding (counted as a failure)."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) != "Succeeded"


def completion_index(pod: Pod) -> int | None:
    text = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY)
    return int(text) if isinstance(text, str) and text.isdigit() else None


def finish_time(pod: Pod, now: datetime.datetime) -> datetime.datetime:
    """When the pod finished: its last container's finishedAt, else its deletion, else now."""
    status = pod.get("status") or {}
    times = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for c in status.get("containerStatuses") or []]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    return parse_time(pod["metadata"].get("deletionTimestamp")) or now


# --- indexes ----------------------------------------------------------------------------------

def parse_indexes(text: str | None) -> set[int]:
    """`1,3-5` -> {1, 3, 4, 5}."""
    found: set[int] = set()
    for part in (text or "").split(","):
        first, dash, last = part.strip().partition("-")
        if first.isdigit():
            found.update(range(int(first), int(last if dash and last.isdigit() else first) + 1))
    return found


def format_indexes(indexes: Iterable[int]) -> str:
    """{1, 3, 4, 5} -> `1,3-5`, as upstream writes completedIndexes."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    start = prev = None
    for i in [*ordered, None]:
        if start is not None and prev is not None and (i is None or i != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ",".join(parts)


# --- backoff ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Backoff:
    """Failures since the last success and when the last one happened (upstream's
    backoffRecord, kept in memory per Job)."""

    failures: int = 0
    last_failure: datetime.datetime | None = None

    def delay(self) -> float:
        if self.failures == 0:
            return 0.0
        return float(min(BACKOFF_BASE * 2.0 ** (self.failures - 1), BACKOFF_MAX))

    def remaining(self, now: datetime.datetime) -> float:
        if self.failures == 0 or self.last_failure is None:
            return 0.0
        return max(0.0, self.delay() - (now - self.last_failure).total_seconds())

    def after(self, succeeded: Sequence[Pod], failed: Sequence[Pod],
              now: datetime.datetime) -> Backoff:
        """The record once these pods are counted (upstream's newBackoffRecord)."""
        if not failed:
            return Backoff() if succeeded else self
        last_failure = max(finish_time(p, now) for p in failed)
        if not succeeded:
            return Backoff(self.failures + len(failed), last_failure)
        last_success = max(finish_time(p, now) for p in succeeded)
        later = [p for p in failed if finish_time(p, now) > last_success]
        return Backoff(len(later), last_failure if later else None)


# --- pod failure policy and success policy ------------------------------------------------

def _exit_code_rule_matches(rule: Mapping[str, Any], pod: Pod) -> str | None:
    """The name and exit code of the first container the rule's onExitCodes matches."""
    codes = rule.get("onExitCodes") or {}
    values = set(codes.get("values") or [])
    status = pod.get("status") or {}
    for container in [*(status.get("initContainerStatuses") or []),
                      *(status.get("containerStatuses") or [])]:
        if codes.get("containerName") and container.get("name") != codes["containerName"]:
            continue
        terminated = (container.get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if not isinstance(code, int) or code == 0:
            continue
        if (code in values) == (codes.get("operator", "In") == "In"):
            return f"Container {container.get('name')} for pod {_pod_ref(pod)} failed with " \
                f"exit code {code}"
    return None


def _condition_rule_matches(rule: Mapping[str, Any], pod: Pod) -> str | None:
    conditions = {(c.get("type"), c.get("status")) for c in
                  (pod.get("status") or {}).get("conditions") or []}
    for wanted in rule.get("onPodConditions") or []:
        if (wanted.get("type"), wanted.get("status", "True")) in conditions:
            return f"Pod {_pod_ref(pod)} has condition {wanted.get('type')}"
    return None


def _pod_ref(pod: Pod) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


def failure_policy_action(job: Mapping[str, Any], pod: Pod) -> tuple[str, str] | None:
    """(action, FailJob message) of the first podFailurePolicy rule a Failed pod matches."""
    policy = (job.get("spec") or {}).get("podFailurePolicy") or {}
    if _phase(pod) != "Failed":
        return None
    for number, rule in enumerate(policy.get("rules") or []):
        matched = _exit_code_rule_matches(rule, pod) if rule.get("onExitCodes") \
            else _condition_rule_matches(rule, pod)
        if matched is not None:
            action = str(rule.get("action"))
            return action, f"{matched} matching {action} rule at index {number}"
    return None


def success_policy_rule(job: Mapping[str, Any], completed: set[int]) -> int | None:
    """The index of the first successPolicy rule the completed indexes satisfy."""
    for number, rule in enumerate(((job.get("spec") or {}).get("successPolicy") or {})
                                  .get("rules") or []):
        wanted = rule.get("succeededIndexes")
        pool = completed & parse_indexes(wanted) if wanted else completed
        count = rule.get("succeededCount")
        if not isinstance(count, int):
            if wanted is not None and pool == parse_indexes(wanted):
                return number
        elif len(pool) >= count:
            return number
    return None


# --- conditions -------------------------------------------------------------------------------

def condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def has_true(job: Mapping[str, Any], type_: str) -> bool:
    cond = condition(job, type_)
    return cond is not None and cond.get("status") == "True"


def is_job_finished(job: Mapping[str, Any]) -> bool:
    return has_true(job, "Complete") or has_true(job, "Failed")


def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                  now: str) -> bool:
    """Set (or add) a condition in place; False if it was already so. A False condition that
    does not exist yet is not added (upstream's ensureJobConditionStatus)."""
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") == status:
                return False
            cond.update(status=status, reason=reason, message=message,
                        lastProbeTime=now, lastTransitionTime=now)
            return True
    if status != "True":
        return False
    conditions.append({"type": type_, "status": status, "reason": reason, "message": message,
                       "lastProbeTime": now, "lastTransitionTime": now})
    return True


# --- new pods ---------------------------------------------------------------------------------

def new_pod(job: Mapping[str, Any], index: int | None, failures: int = 0) -> Obj:
    """A pod from the Job's template, with the tracking finalizer (and its index, if Indexed)."""
    template = (job.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    name = job["metadata"]["name"]
    labels = dict(template_meta.get("labels") or {})
    annotations = dict(template_meta.get("annotations") or {})
    spec = clone(template.get("spec") or {})
    prefix = f"{name}-"
    if index is not None:
        prefix = f"{name}-{index}-"
        labels[INDEX_KEY] = annotations[INDEX_KEY] = str(index)
        if (job.get("spec") or {}).get("backoffLimitPerIndex") is not None:
            annotations[FAILURE_COUNT_KEY] = str(failures)
        spec.setdefault("hostname", f"{name}-{index}")
        env_var = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}}
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                env = [e for e in container.get("env") or [] if e.get("name") != INDEX_ENV]
                container["env"] = [*env, env_var]
    meta: Obj = {"generateName": prefix, "namespace": job["metadata"]["namespace"],
                 "labels": labels, "finalizers": [TRACKING_FINALIZER],
                 "ownerReferences": [owner_reference(job)]}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


# --- decide -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Plan:
    """What `reconcile` decided for one Job."""

    status: Obj
    create: list[int | None] = dataclasses.field(default_factory=list)  # indexes (None: any)
    delete: list[str] = dataclasses.field(default_factory=list)  # finalizer removed first
    finalize: list[str] = dataclasses.field(default_factory=list)  # pods to remove it from
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    requeue_after: float | None = None
    backoff: Backoff = Backoff()
    failure_counts: dict[int, int] = dataclasses.field(default_factory=dict)  # per new index


def _counts(job: Mapping[str, Any]) -> tuple[int, int]:
    status = job.get("status") or {}
    return int(status.get("succeeded") or 0), int(status.get("failed") or 0)


def _uncounted(status: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    uncounted = status.get("uncountedTerminatedPods") or {}
    return list(uncounted.get("succeeded") or []), list(uncounted.get("failed") or [])


@dataclasses.dataclass
class _Seen:
    """The pods sorted out: what they are now, and which are newly finished."""

    active: list[Pod]
    terminating: int
    new_succeeded: list[Pod]
    new_failed: list[Pod]
    ignored: list[Pod]  # failed, but an `Ignore` rule says not to count them
    fail_job: str | None  # the message of a matching FailJob rule
    fail_index: set[int] = dataclasses.field(default_factory=set)  # FailIndex rules matched


def _sort_pods(job: Mapping[str, Any], pods: Sequence[Pod], finishing: bool) -> _Seen:
    uncounted = set().union(*_uncounted(job.get("status") or {}))
    seen = _Seen([p for p in pods if is_active(p)], sum(1 for p in pods if is_terminating(p)),
                 [], [], [], None)
    for pod in pods:
        if not has_finalizer(pod) or pod["metadata"].get("uid") in uncounted:
            continue
        if _phase(pod) == "Succeeded":
            seen.new_succeeded.append(pod)
        elif is_failed(pod, job) or finishing:
            action = failure_policy_action(job, pod)
            if action is not None and action[0] == "Ignore":
                seen.ignored.append(pod)
                continue
            if action is not None and action[0] == "FailJob" and seen.fail_job is None:
                seen.fail_job = action[1]
            if action is not None and action[0] == "FailIndex" and \
                    (index := completion_index(pod)) is not None:
                seen.fail_index.add(index)
            seen.new_failed.append(pod)
    return seen


def _want_active(job: Mapping[str, Any], succeeded: int, active: int) -> int:
    spec = job.get("spec") or {}
    parallelism = int(spec.get("parallelism", 1) or 0)
    completions = spec.get("completions")
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(int(completions) - succeeded, parallelism))


def _past_deadline(job: Mapping[str, Any], now: datetime.datetime) -> float | None:
    """Seconds left before activeDeadlineSeconds (<= 0: past it); None without a deadline."""
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    start = parse_time((job.get("status") or {}).get("startTime"))
    if deadline is None or start is None:
        return None
    return float(deadline) - (now - start).total_seconds()


def failure_count(pod: Pod) -> int:
    """How many times the pod's index failed before it (backoffLimitPerIndex)."""
    text = (pod["metadata"].get("annotations") or {}).get(FAILURE_COUNT_KEY, "0")
    return int(text) if str(text).isdigit() else 0


def _newly_failed_indexes(job: Mapping[str, Any], seen: _Seen) -> set[int]:
    """Indexes past their backoffLimitPerIndex (or hit by a FailIndex rule) with these pods."""
    limit = (job.get("spec") or {}).get("backoffLimitPerIndex")
    if not isinstance(limit, int):
        return set()
    failed = set(seen.fail_index)
    for pod in seen.new_failed:
        index = completion_index(pod)
        if index is not None and failure_count(pod) + 1 > limit:
            failed.add(index)
    return failed


def _index_backoff(job: Mapping[str, Any], pods: Sequence[Pod], index: int,
                   now: datetime.datetime) -> tuple[int, float]:
    """(failures so far, seconds left to wait) for recreating `index` (backoffLimitPerIndex:
    each index backs off on its own failures)."""
    failed = [p for p in pods if completion_index(p) == index and _phase(p) == "Failed"]
    if not failed:
        return 0, 0.0
    last = max(failed, key=lambda p: finish_time(p, now))
    failures = failure_count(last) + 1
    return failures, Backoff(failures, finish_time(last, now)).remaining(now)


def _backoff_limit(spec: Mapping[str, Any]) -> float:
    """backoffLimit (unlimited by default once backoffLimitPerIndex is set, as upstream)."""
    default: float = float("inf") if spec.get("backoffLimitPerIndex") is not None else 6
    limit = spec.get("backoffLimit")
    return float(limit) if isinstance(limit, int) else default


def _finishing(job: Mapping[str, Any], seen: _Seen, failed: int, completed: set[int],
               succeeded: int, now: datetime.datetime,
               failed_indexes: set[int] | None = None) -> tuple[str, str, str] | None:
    """(interim condition type, reason, message) if the Job is now finishing."""
    for type_ in ("FailureTarget", "SuccessCriteriaMet"):
        cond = condition(job, type_)
        if cond is not None and cond.get("status") == "True":
            return type_, str(cond.get("reason", "")), str(cond.get("message", ""))
    spec = job.get("spec") or {}
    if seen.fail_job is not None:
        return "FailureTarget", "PodFailurePolicy", seen.fail_job
    failed_indexes = failed_indexes or set()
    most = spec.get("maxFailedIndexes")
    if isinstance(most, int) and len(failed_indexes) > most:
        return ("FailureTarget", *MAX_FAILED_INDEXES)
    if failed > _backoff_limit(spec) or _restarts_exceed(job, seen.active):
        return ("FailureTarget", *BACKOFF_LIMIT)
    left = _past_deadline(job, now)
    if left is not None and left <= 0 and not spec.get("suspend"):
        return ("FailureTarget", *DEADLINE)
    indexed = spec.get("completionMode") == "Indexed"
    if indexed and (rule := success_policy_rule(job, completed)) is not None:
        return "SuccessCriteriaMet", "SuccessPolicy", f"Matched rules at index {rule}"
    completions = spec.get("completions")
    if failed_indexes and len(completed | failed_indexes) >= int(completions or 0):
        return ("FailureTarget", *FAILED_INDEXES)
    done = succeeded >= int(completions) if completions is not None else \
        succeeded > 0 and not seen.active
    return ("SuccessCriteriaMet", *COMPLETIONS) if done else None


def _restarts_exceed(job: Mapping[str, Any], active: Sequence[Pod]) -> bool:
    """restartPolicy OnFailure: container restarts of active pods count against backoffLimit."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    limit = _backoff_limit(spec)
    restarts = sum(int(c.get("restartCount") or 0) for p in active
                   for c in (p.get("status") or {}).get("containerStatuses") or [])
    return restarts > limit if limit == 0 else restarts >= limit


def reconcile(job: Mapping[str, Any], pods: Sequence[Pod], backoff: Backoff,
              now: datetime.datetime) -> Plan:
    """What to do for `job` given its pods, its backoff record and the time."""
    stamp = rfc3339(now)
    status = clone(dict(job.get("status") or {}))
    conditions: list[Obj] = status.setdefault("conditions", [])
    plan = Plan(status)
    if is_job_finished(job):
        plan.finalize = [p["metadata"]["name"] for p in pods if has_finalizer(p)]
        return plan
    spec = job.get("spec") or {}
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")
    finishing_before = has_true(job, "FailureTarget") or has_true(job, "SuccessCriteriaMet")
    seen = _sort_pods(job, pods, finishing_before)
    succeeded, failed = _counts(job)
    uncounted_s, uncounted_f = _uncounted(status)
    completed = parse_indexes(status.get("completedIndexes")) if indexed else set()
    for pod in seen.new_succeeded:
        index = completion_index(pod)
        if indexed and index is not None and index < int(completions or 0):
            completed.add(index)
    succeeded_total = len(completed) if indexed else \
        succeeded + len(uncounted_s) + len(seen.new_succeeded)
    failed_total = failed + len(uncounted_f) + len(seen.new_failed)
    plan.backoff = backoff.after(seen.new_succeeded, seen.new_failed, now)
    per_index = isinstance(spec.get("backoffLimitPerIndex"), int) and indexed
    failed_indexes = parse_indexes(status.get("failedIndexes")) | \
        (_newly_failed_indexes(job, seen) if per_index else set())

    finishing = _finishing(job, seen, failed_total, completed, succeeded_total, now,
                           failed_indexes)
    if finishing is not None and not finishing_before:
        set_condition(conditions, finishing[0], "True", finishing[1], finishing[2], stamp)
        # the pods still running now count as failed: sort them again as the Job finishes
        seen = _sort_pods(job, pods, True)
    if finishing is not None:
        plan.delete = [p["metadata"]["name"] for p in seen.active]
    elif spec.get("suspend"):
        plan.delete = [p["metadata"]["name"] for p in seen.active]
        if set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended",
                         stamp):
            plan.events.append(("Normal", "Suspended", "Job suspended"))
    else:
        if set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", stamp):
            plan.events.append(("Normal", "Resumed", "Job resumed"))
            status["startTime"] = stamp
        status.setdefault("startTime", stamp)
        _manage(job, plan, seen.active, completed, succeeded_total, now,
                terminating=seen.terminating if only_replace_failed(job) else 0,
                failed_indexes=failed_indexes, pods=pods if per_index else None)

    new_s = [p["metadata"]["uid"] for p in seen.new_succeeded]
    new_f = [p["metadata"]["uid"] for p in seen.new_failed]
    status["uncountedTerminatedPods"] = _uncounted_status(uncounted_s + new_s, uncounted_f + new_f)
    if indexed:
        status["completedIndexes"] = format_indexes(completed)
    if per_index:
        status["failedIndexes"] = format_indexes(failed_indexes)
    plan.finalize = [p["metadata"]["name"] for p in
                     [*seen.new_succeeded, *seen.new_failed, *seen.ignored]] + \
        [p["metadata"]["name"] for p in pods if has_finalizer(p) and
         p["metadata"].get("uid") in set(uncounted_s + uncounted_f)]
    deleting = set(plan.delete)
    still_active = [p for p in seen.active if p["metadata"]["name"] not in deleting]
    status["active"] = len(still_active) + len(plan.create)
    status["ready"] = sum(1 for p in still_active if is_ready(p))
    status["terminating"] = seen.terminating + len(plan.delete)
    if finishing is not None and finishing_before and not seen.active and \
            not seen.terminating and not uncounted_s and not uncounted_f and \
            not seen.new_succeeded and not seen.new_failed:
        _finish(job, plan, finishing, stamp)
    plan.status = _omit_empty(status)
    return plan


def _omit_empty(status: Obj) -> Obj:
    """Drop the fields upstream's types omit when empty (`omitempty` counters and strings)."""
    return {k: v for k, v in status.items()
            if not (k in ("active", "succeeded", "failed", "completedIndexes", "conditions")
                    and not v)}


def _uncounted_status(succeeded: list[str], failed: list[str]) -> Obj:
    body: Obj = {}
    if succeeded:
        body["succeeded"] = succeeded
    if failed:
        body["failed"] = failed
    return body


def _finish(job: Mapping[str, Any], plan: Plan, finishing: tuple[str, str, str],
            stamp: str) -> None:
    """The terminal condition once no pod of a finishing Job is left running."""
    conditions = plan.status["conditions"]
    type_, reason, message = finishing
    if type_ == "SuccessCriteriaMet":
        set_condition(conditions, "Complete", "True", reason, message, stamp)
        plan.status["completionTime"] = stamp
        plan.events.append(("Normal", "Completed", "Job completed"))
    else:
        set_condition(conditions, "Failed", "True", reason, message, stamp)
        plan.events.append(("Warning", reason, message))


def _manage(job: Mapping[str, Any], plan: Plan, active: Sequence[Pod], completed: set[int],
            succeeded: int, now: datetime.datetime, *, terminating: int = 0,
            failed_indexes: set[int] | None = None, pods: Sequence[Pod] | None = None) -> None:
    """Create or delete pods towards the wanted number of active ones (`terminating` pods
    still count, with `podReplacementPolicy: Failed`, until they are gone)."""
    spec = job.get("spec") or {}
    want = _want_active(job, succeeded, len(active))
    keep = list(active)
    left = _past_deadline(job, now)
    if left is not None:
        plan.requeue_after = left  # to fail the Job when its deadline passes
    failed_indexes = failed_indexes or set()
    if spec.get("completionMode") == "Indexed":
        keep, doomed = _indexed_keep(job, active, completed | failed_indexes)
        plan.delete += [p["metadata"]["name"] for p in doomed]
    if len(keep) > want:
        plan.delete += [p["metadata"]["name"] for p in deletion_order(keep)[:len(keep) - want]]
        return
    missing = min(want - len(keep) - terminating, BURST)
    if missing <= 0:
        return
    wait = plan.backoff.remaining(now) if pods is None else 0.0
    if wait > 0:
        plan.requeue_after = min(wait, plan.requeue_after or wait)
        return
    if spec.get("completionMode") == "Indexed":
        running = {completion_index(p) for p in keep}
        free = [i for i in range(int(spec.get("completions") or 0))
                if i not in completed and i not in running and i not in failed_indexes]
        if pods is not None:  # backoffLimitPerIndex: each index waits on its own
            free = _ready_indexes(job, plan, pods, free, now)
        plan.create = list(free[:missing])
    else:
        plan.create = [None] * missing


def _ready_indexes(job: Mapping[str, Any], plan: Plan, pods: Sequence[Pod], free: list[int],
                   now: datetime.datetime) -> list[int]:
    """The free indexes whose own backoff is over; the others re-queue the Job."""
    ready = []
    for index in free:
        failures, wait = _index_backoff(job, pods, index, now)
        if wait > 0:
            plan.requeue_after = min(wait, plan.requeue_after or wait)
            continue
        ready.append(index)
        if failures:
            plan.failure_counts[index] = failures
    return ready


def _indexed_keep(job: Mapping[str, Any], active: Sequence[Pod],
                  completed: set[int]) -> tuple[list[Pod], list[Pod]]:
    """Active pods worth keeping (one per index not yet completed) and those to delete."""
    completions = int((job.get("spec") or {}).get("completions") or 0)
    keep: dict[int, Pod] = {}
    doomed: list[Pod] = []
    for pod in sorted(active, key=lambda p: p["metadata"].get("creationTimestamp", "")):
        index = completion_index(pod)
        if index is None or index >= completions or index in completed or index in keep:
            doomed.append(pod)
        else:
            keep[index] = pod
    return list(keep.values()), doomed


def flush(status: Mapping[str, Any], finalized: set[str]) -> Obj:
    """Move the uncounted pods whose finalizer is gone into succeeded/failed."""
    out = clone(dict(status))
    succeeded, failed = _uncounted(out)
    out["succeeded"] = int(out.get("succeeded") or 0)
    out["failed"] = int(out.get("failed") or 0)
    if "completedIndexes" in out:
        out["succeeded"] = len(parse_indexes(out["completedIndexes"]))
    else:
        out["succeeded"] += sum(1 for uid in succeeded if uid in finalized)
    out["failed"] += sum(1 for uid in failed if uid in finalized)
    out["uncountedTerminatedPods"] = _uncounted_status(
        [u for u in succeeded if u not in finalized], [u for u in failed if u not in finalized])
    return _omit_empty(out)


# --- the controller ---------------------------------------------------------------------------

class JobController(Controller):
    name = "job-controller"

    def __init__(self, client: RESTClient, *,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.res = resources.must("batch", "v1", "jobs")
        self.pods_res = resources.must("", "v1", "pods")
        self.jobs = shared_informer(client, self.res)
        self.pods = shared_informer(client, self.pods_res)
        self.pods.cache.add_index(CONTROLLER_INDEX, controller_uid_index)
        super().__init__(client, [self.jobs, self.pods])
        self.now = now or clocks.installed().utcnow
        self.expectations = Expectations()
        self.backoffs: dict[str, Backoff] = {}  # job uid -> record
        self.recorder = events.Recorder(client, self.name)
        self.jobs.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                               on_delete=self._on_job_delete)
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                               on_delete=self._on_pod)

    def _on_job_delete(self, job: Mapping[str, Any]) -> None:
        self.backoffs.pop(str(job["metadata"].get("uid")), None)
        self.enqueue(job)

    def _on_pod(self, pod: Pod) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "Job":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")

    def job_pods(self, job: Mapping[str, Any]) -> list[Pod]:
        selector = selectors.from_label_selector(job["spec"].get("selector"))
        return [p for p in self.pods.cache.by_index(CONTROLLER_INDEX, job["metadata"]["uid"])
                if selectors.match_labels(selector, p["metadata"].get("labels"))]

    async def sync(self, key: str) -> None:
        job = self.jobs.cache.get(key)
        if job is None:  # deleted: its pods are orphans, their finalizer must go
            self.expectations.forget(key)
            await self._release_orphans(key)
            return
        pods = self.job_pods(job)
        if job["metadata"].get("deletionTimestamp"):
            await self._remove_finalizers(job, [p["metadata"]["name"] for p in pods
                                                if has_finalizer(p)])
            return
        if not self.expectations.satisfied(key, self.pods.cache.get):
            self.queue.add_after(key, self.expectations.ttl)
            return
        uid = str(job["metadata"]["uid"])
        plan = reconcile(job, pods, self.backoffs.get(uid, Backoff()), self.now())
        self.backoffs[uid] = plan.backoff
        await self._apply(key, job, plan)

    async def _release_orphans(self, key: str) -> None:
        namespace, _, name = key.rpartition("/")
        for pod in self.pods.cache.list():
            ref = controller_ref(pod)
            if pod["metadata"].get("namespace") == namespace and has_finalizer(pod) and \
                    ref is not None and ref.get("kind") == "Job" and ref.get("name") == name:
                await self._remove_finalizers({"metadata": {"namespace": namespace}},
                                              [pod["metadata"]["name"]])

    async def _apply(self, key: str, job: Mapping[str, Any], plan: Plan) -> None:
        namespace = job["metadata"]["namespace"]
        status = plan.status
        version = str(job["metadata"].get("resourceVersion", ""))
        if _status_differs(job.get("status") or {}, status):
            version = await self._write_status(job, job.get("status") or {}, status, version)
        finalized: set[str] = set()
        for name in plan.delete:
            finalized |= await self._delete_pod(job, name)
        finalized |= set(await self._remove_finalizers(
            job, [n for n in plan.finalize if n not in finalized]))
        flushed = flush(status, self._finalized_uids(job, status, finalized))
        if _status_differs(status, flushed):
            await self._write_status(job, status, flushed, version)
        created = []
        for index in plan.create:
            pod_name = await self._create_pod(job, index, plan.failure_counts.get(index or 0, 0))
            if pod_name is None:
                self.queue.add_rate_limited(key)
                break
            created.append(f"{namespace}/{pod_name}")
        self.expectations.expect(key, created=created, deleted=[])
        for type_, reason, message in plan.events:
            await self.recorder.event(job, type_, reason, message)
        if plan.requeue_after is not None:
            self.queue.add_after(key, max(plan.requeue_after, 0.01))

    def _finalized_uids(self, job: Mapping[str, Any], status: Mapping[str, Any],
                        names: set[str]) -> set[str]:
        """Uncounted uids whose pod has lost its finalizer: just now, before, or with the pod."""
        by_uid = {str(p["metadata"]["uid"]): p for p in self.job_pods(job)}
        done = set()
        for uid in set().union(*_uncounted(status)):
            pod = by_uid.get(uid)
            if pod is None or not has_finalizer(pod) or pod["metadata"]["name"] in names:
                done.add(uid)
        return done

    async def _write_status(self, job: Mapping[str, Any], old: Mapping[str, Any], status: Obj,
                            version: str) -> str:
        """Write the status if the Job is still at `version` (else retry on a fresher cache);
        the new resourceVersion."""
        body = merge_patch(old, status)
        try:
            written = await self.client.patch(
                self.res, job["metadata"]["name"],
                {"metadata": {"resourceVersion": version}, "status": body},
                job["metadata"]["namespace"], patch_type="merge", subresource="status")
        except errors.Conflict as exc:
            raise StaleCacheError(object_key(job)) from exc
        return str((written.get("metadata") or {}).get("resourceVersion", version))

    async def _create_pod(self, job: Mapping[str, Any], index: int | None,
                          failures: int = 0) -> str | None:
        try:
            pod = await self.client.create(self.pods_res, new_pod(job, index, failures),
                                           job["metadata"]["namespace"])
        except errors.APIError as exc:
            log.info("%s: creating a pod for %s failed: %s", self.name, object_key(job), exc)
            await self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {exc}")
            return None
        name = str(pod["metadata"]["name"])
        await self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return name

    async def _delete_pod(self, job: Mapping[str, Any], name: str) -> set[str]:
        """Remove the pod's finalizer, then delete it; the names whose finalizer went."""
        finalized = set(await self._remove_finalizers(job, [name]))
        try:
            await self.client.delete(self.pods_res, name, job["metadata"]["namespace"])
        except errors.NotFound:
            return finalized
        await self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return finalized

    async def _remove_finalizers(self, job: Mapping[str, Any], names: Iterable[str]) -> list[str]:
        """Remove the tracking finalizer; the names it is now gone from (or the pod is)."""
        done = []
        namespace = job["metadata"]["namespace"]
        for name in dict.fromkeys(names):
            pod = self.pods.cache.get(f"{namespace}/{name}")
            if pod is not None and has_finalizer(pod):
                kept = [f for f in pod["metadata"].get("finalizers") or []
                        if f != TRACKING_FINALIZER]
                try:
                    await self.client.patch(self.pods_res, name, {"metadata": {
                        "finalizers": kept or None,
                        "resourceVersion": pod["metadata"]["resourceVersion"]}},
                        namespace, patch_type="merge")
                except errors.NotFound:
                    pass
                except errors.APIError as exc:
                    log.info("%s: removing the finalizer of %s failed: %s", self.name, name, exc)
                    continue
            done.append(name)
        return done


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj:
    """A JSON merge patch from `old` to `new`: fields gone are null, objects recursively."""
    patch: Obj = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def _status_differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    keys = set(old) | set(new)
    return any(_norm(old.get(k)) != _norm(new.get(k)) for k in keys)


def _norm(value: Any) -> Any:
    return None if value in (None, [], {}, 0, "") else value
