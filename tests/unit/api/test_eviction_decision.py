"""The eviction decision (upstream's EvictionREST.Create without the I/O), as a table."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tinykube.api import disruption, errors

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
Obj = dict[str, Any]


def pod(phase: str = "Running", *, ready: bool = True, terminating: bool = False,
        labels: Obj | None = None) -> Obj:
    meta: Obj = {"name": "web-1", "namespace": "default",
                 "labels": {"app": "web"} if labels is None else labels}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T12:00:30Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def budget(allowed: int = 1, *, current: int = 3, desired: int = 2, observed: int = 1,
           name: str = "web", policy: str = "", selector: Obj | None = None) -> Obj:
    spec: Obj = {"selector": {"matchLabels": {"app": "web"}} if selector is None else selector}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {"metadata": {"name": name, "namespace": "default", "generation": 1},
            "spec": spec,
            "status": {"disruptionsAllowed": allowed, "currentHealthy": current,
                       "desiredHealthy": desired, "observedGeneration": observed}}


ALLOWED = [
    ("no-budget", pod(), [], disruption.Eviction()),
    ("budget-of-other-pods", pod(labels={"app": "db"}), [budget(0)], disruption.Eviction()),
    ("empty-selector-covers-nothing", pod(), [budget(0, selector={})], disruption.Eviction()),
    ("pending-pod-ignores-budgets", pod("Pending"), [budget(0)],
     disruption.Eviction(enforce_rv=True)),
    ("succeeded-pod", pod("Succeeded"), [budget(0)], disruption.Eviction()),
    ("failed-pod", pod("Failed"), [budget(0)], disruption.Eviction()),
    ("terminating-pod", pod(terminating=True), [budget(0)], disruption.Eviction()),
    ("unready-pod-of-a-healthy-budget", pod(ready=False), [budget(0, current=2)],
     disruption.Eviction(enforce_rv=True)),
    ("unready-pod-always-allow", pod(ready=False), [budget(0, current=0, policy="AlwaysAllow")],
     disruption.Eviction(enforce_rv=True)),
]


@pytest.mark.parametrize(("the_pod", "budgets", "expected"), [a[1:] for a in ALLOWED],
                         ids=[a[0] for a in ALLOWED])
def test_evictions_that_need_no_decrement(the_pod: Obj, budgets: list[Obj],
                                          expected: disruption.Eviction) -> None:
    assert disruption.decide_eviction(the_pod, budgets, NOW) == expected


def test_allowed_eviction_decrements_and_records_the_pod() -> None:
    outcome = disruption.decide_eviction(pod(), [budget(1)], NOW)
    assert outcome.budget == "web" and not outcome.enforce_rv
    status = outcome.budget_status
    assert status is not None
    assert status["disruptionsAllowed"] == 0
    assert status["disruptedPods"] == {"web-1": "2026-01-01T12:00:00Z"}
    assert status["conditions"][0]["reason"] == "InsufficientPods"


def test_dry_run_writes_nothing() -> None:
    assert disruption.decide_eviction(pod(), [budget(1)], NOW, dry_run=True) == \
        disruption.Eviction()


REFUSED = [
    ("exhausted", [budget(0, current=2, desired=2)], errors.TooManyRequests,
     {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
      "message": "Cannot evict pod as it would violate the pod's disruption budget.",
      "reason": "TooManyRequests",
      "details": {"causes": [{"reason": "DisruptionBudget",
                              "message": "The disruption budget web needs 2 healthy pods and "
                                         "has 2 currently"}]},
      "code": 429}),
    ("not-yet-observed", [budget(1, observed=0)], errors.TooManyRequests,
     {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
      "message": "Cannot evict pod as it would violate the pod's disruption budget.",
      "reason": "TooManyRequests",
      "details": {"causes": [{"reason": "DisruptionBudget",
                              "message": "The disruption budget web is still being processed "
                                         "by the server."}], "retryAfterSeconds": 10},
      "code": 429}),
    ("two-budgets", [budget(1), budget(1, name="other")], disruption.MultipleBudgets,
     {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
      "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                 "subresource does not support.", "code": 500}),
    ("negative", [budget(-1)], errors.Forbidden,
     {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
      "message": 'poddisruptionbudget.policy "web" is forbidden: pdb disruptions allowed is '
                 "negative", "reason": "Forbidden",
      "details": {"name": "web", "group": "policy", "kind": "poddisruptionbudget"},
      "code": 403}),
]


@pytest.mark.parametrize(("budgets", "error", "status"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_refused_evictions(budgets: list[Obj], error: type[errors.APIError], status: Obj) -> None:
    with pytest.raises(error) as raised:
        disruption.decide_eviction(pod(), budgets, NOW)
    assert raised.value.to_status() == status
