"""PodDisruptionBudget rules shared by the disruption controller and the eviction subresource.

Both sides of upstream's budget protocol read the same few facts, kept here as pure functions:

- `selects(pdb, pod)`: a budget covers the pods of its namespace its selector matches; a
  budget with no or an empty selector covers nothing (policy/v1 eviction and the controller
  agree on that).
- `is_ready`: the pod's `Ready` condition is True (podutil.IsPodReady).
- `set_allowed_condition(status, generation, now)`: the `DisruptionAllowed` condition as
  component-helpers' `UpdateDisruptionAllowedCondition` sets it (`SufficientPods` /
  `InsufficientPods`), with `meta.SetStatusCondition`'s rule that `lastTransitionTime` moves
  only when the status changes.
- `decide_eviction(pod, budgets, now)`: upstream's `EvictionREST.Create` minus the I/O: a pod
  that is terminal, Pending or already terminating is deleted without looking at budgets; more
  than one budget is a 500 Status; an exhausted budget (or one the controller has not yet
  observed) is a 429 with the `DisruptionBudget` cause; otherwise the budget's
  `disruptionsAllowed` is decremented and the pod recorded in `disruptedPods`, which the
  controller uses not to count a pod that is being evicted. A not-ready pod of a budget that is
  already healthy enough (or whose `unhealthyPodEvictionPolicy` is `AlwaysAllow`) is deleted
  without a decrement, with a resourceVersion precondition.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.api import errors, selectors
from tinykube.api.meta import rfc3339

Obj = dict[str, Any]

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000  # upstream's MaxDisruptedPodSize


def selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Does `pdb` cover `pod`? An empty or missing selector covers nothing."""
    if pdb["metadata"].get("namespace") != pod["metadata"].get("namespace"):
        return False
    selector = selectors.from_label_selector((pdb.get("spec") or {}).get("selector"))
    return bool(selector) and selectors.match_labels(selector, pod["metadata"].get("labels"))


def is_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def set_allowed_condition(status: Obj, now: datetime.datetime, *,
                          reason: str = "", message: str = "") -> None:
    """Set the `DisruptionAllowed` condition of a PDB status from its `disruptionsAllowed`
    (or, given `reason`, to False with that reason, e.g. `SyncFailed`)."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0 and not reason
    condition = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
                 "observedGeneration": int(status.get("observedGeneration") or 0),
                 "lastTransitionTime": rfc3339(now),
                 "reason": reason or ("SufficientPods" if allowed else "InsufficientPods"),
                 "message": message}
    conditions = [dict(c) for c in status.get("conditions") or []]
    for i, old in enumerate(conditions):
        if old.get("type") == "DisruptionAllowed":
            if old.get("status") == condition["status"]:
                condition["lastTransitionTime"] = old.get("lastTransitionTime",
                                                          condition["lastTransitionTime"])
            conditions[i] = condition
            break
    else:
        conditions.append(condition)
    status["conditions"] = conditions


def too_many_requests(cause: str, retry_after: int = 0) -> errors.TooManyRequests:
    details: Obj = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.TooManyRequests(VIOLATION, details=details)


class MultipleBudgets(errors.APIError):
    """The 500 Status upstream returns (not raises) for a pod of two budgets: no reason."""

    code = 500
    reason = ""

    def to_status(self) -> dict[str, Any]:
        status = super().to_status()
        del status["reason"]
        return status


@dataclasses.dataclass
class Eviction:
    """What evicting a pod comes to: a budget status to write first, then the delete."""

    budget: str = ""  # the name of the budget whose status is written
    budget_status: Obj | None = None
    enforce_rv: bool = False  # delete with the pod's resourceVersion as precondition


def can_ignore_budgets(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase", "Pending")
    return phase in ("Succeeded", "Failed", "Pending") or \
        bool(pod["metadata"].get("deletionTimestamp"))


def decide_eviction(pod: Mapping[str, Any], budgets: Sequence[Mapping[str, Any]],
                    now: datetime.datetime, *, dry_run: bool = False) -> Eviction:
    """Whether and how `pod` may be evicted; raises the APIError kube-apiserver answers."""
    if can_ignore_budgets(pod):
        phase = (pod.get("status") or {}).get("phase", "Pending")
        terminal = phase in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp")
        return Eviction(enforce_rv=not terminal)
    covering = [b for b in budgets if selects(b, pod)]
    if len(covering) > 1:
        raise MultipleBudgets(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.")
    if not covering:
        return Eviction()
    pdb = covering[0]
    status = pdb.get("status") or {}
    current, desired = int(status.get("currentHealthy") or 0), int(
        status.get("desiredHealthy") or 0)
    policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
    if not is_ready(pod) and (policy == "AlwaysAllow" or (current >= desired and desired > 0)):
        return Eviction(enforce_rv=True)
    name = pdb["metadata"]["name"]
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation", 1)):
        raise too_many_requests(f"The disruption budget {name} is still being processed by the "
                                "server.", retry_after=10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.Forbidden.for_object("poddisruptionbudget", "policy", name,
                                          "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.Forbidden.for_object(
            "poddisruptionbudget", "policy", name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise too_many_requests(f"The disruption budget {name} needs {desired} healthy pods "
                                f"and has {current} currently")
    new = copy.deepcopy(dict(status))
    new["disruptionsAllowed"] = allowed - 1
    if new["disruptionsAllowed"] == 0:
        set_allowed_condition(new, now)
    if dry_run:
        return Eviction()
    new.setdefault("disruptedPods", {})[pod["metadata"]["name"]] = rfc3339(now)
    return Eviction(budget=name, budget_status=new)
