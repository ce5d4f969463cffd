"""Resource quota: what an object costs, which quotas it counts against, and whether it fits.

The pure half of kube's quota system (`pkg/quota/v1`, `plugin/pkg/admission/resourcequota`),
shared by the ResourceQuota controller (which recomputes `status.used` from what is stored) and
the ResourceQuota admission plugin (which charges a create or update against `status.used`).

- An **evaluator** per resource says which quota names it can measure and what one object
  costs (`usage`): pods (`pods`, `count/pods`, `cpu`/`memory`/`ephemeral-storage` and their
  `requests.`/`limits.` forms, hugepages, extended `requests.*`), services (`services`,
  `services.nodeports`, `services.loadbalancers`), persistentvolumeclaims (`requests.storage`
  and the per-StorageClass `<class>.storageclass.storage.k8s.io/...` names), the four legacy
  object counts (`configmaps`, `secrets`, `replicationcontrollers`, `resourcequotas`) and
  `count/<resource>.<group>` for everything else. A pod in a terminal phase, or past its
  deletion grace period, costs only its `count/pods` (as upstream's `QuotaV1Pod`).
- **Scopes** (`spec.scopes`, `spec.scopeSelector`) only ever match pods: Terminating
  (`activeDeadlineSeconds` set), NotTerminating, BestEffort, NotBestEffort, PriorityClass.
  Any other object never counts against a scoped quota.
- `quota_status(quota, objects, now)` is the controller's decision: `status.hard` is the spec's
  hard, `status.used` the sum over the matching objects of every resource some evaluator can
  measure (0 when none is used), masked to the hard names.
- `charge(quotas, ...)` is admission's decision: each quota whose status matches the object
  (an unsynced quota, with no `status.hard` yet, does not) checks the pod constraints (`must
  specify cpu for: c`), that its usage is known, and that `used + delta <= hard` for every
  resource the delta touches; an update is charged only what it adds. The result is the new
  `status.used` of each charged quota, or kube's refusal text.

Quantities are kept as exact `Fraction`s with the format of their first nonzero term
(`Quantity.Add` adopts the other operand's format when it is zero), and printed as
`Quantity.String()` prints them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any, NamedTuple

from tinykube.api import quantity
from tinykube.api.defaults import qos_class

Obj = Mapping[str, Any]

CREATE, UPDATE = "CREATE", "UPDATE"
TERMINAL_PHASES = ("Succeeded", "Failed")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
# The compute names a quota may only count if every container names them (a backward
# compatibility rule upstream: quota on cpu or memory requires explicit requests/limits).
CONSTRAINED = frozenset({"cpu", "memory", "requests.cpu", "requests.memory",
                         "limits.cpu", "limits.memory"})
POD_NAMES = frozenset({"pods", "count/pods", "cpu", "memory", "ephemeral-storage",
                       "requests.cpu", "requests.memory", "requests.ephemeral-storage",
                       "limits.cpu", "limits.memory", "limits.ephemeral-storage"})
SERVICE_NAMES = frozenset({"services", "count/services", "services.nodeports",
                           "services.loadbalancers"})
# Old quota names for four object counts, next to their `count/<resource>` names.
LEGACY_COUNTS = {"configmaps": "configmaps", "secrets": "secrets",
                 "replicationcontrollers": "replicationcontrollers",
                 "resourcequotas": "resourcequotas"}


class Qty(NamedTuple):
    """One quantity: its exact value and the format it prints in."""

    value: Fraction
    form: str = quantity.DECIMAL

    def __str__(self) -> str:
        return quantity.canonical(self.value, self.form)


Usage = dict[str, Qty]
ZERO = Qty(Fraction(0))


def parse_list(raw: object) -> Usage:
    """A ResourceList (`{"cpu": "500m"}`) as quantities; unparsable values are left out."""
    result: Usage = {}
    if isinstance(raw, Mapping):
        for name, text in raw.items():
            parsed = quantity.parse(text)
            if parsed is not None:
                result[str(name)] = Qty(*parsed)
    return result


def to_strings(usage: Mapping[str, Qty]) -> dict[str, str]:
    return {name: str(qty) for name, qty in sorted(usage.items())}


def plus(a: Qty | None, b: Qty) -> Qty:
    if a is None or a.value == 0:
        return Qty(a.value + b.value if a else b.value, b.form)
    return Qty(a.value + b.value, a.form)


def add(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> Usage:
    """`quota.Add`: the sum of two lists, key by key."""
    result = dict(a)
    for name, qty in b.items():
        result[name] = plus(result.get(name), qty)
    return result


def subtract_non_negative(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> Usage:
    """`quota.SubtractWithNonNegativeResult`: a - b key by key, never below zero."""
    result = {name: Qty(max(qty.value - b[name].value, Fraction(0)), qty.form)
              if name in b else qty for name, qty in a.items()}
    for name in b:
        result.setdefault(name, ZERO)
    return result


def mask(usage: Mapping[str, Qty], names: Iterable[str]) -> Usage:
    keep = set(names)
    return {name: qty for name, qty in usage.items() if name in keep}


def non_zero(usage: Mapping[str, Qty]) -> Usage:
    return {name: qty for name, qty in usage.items() if qty.value != 0}


def pretty(usage: Mapping[str, Qty]) -> str:
    """`prettyPrint`: `name=value` pairs sorted by name, joined by commas."""
    return ",".join(f"{name}={qty}" for name, qty in sorted(usage.items()))


def _max(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> Usage:
    result = dict(a)
    for name, qty in b.items():
        if name not in result or qty.value > result[name].value:
            result[name] = qty
    return result


# --- pods ----------------------------------------------------------------------------------

def _container_list(container: Obj, field: str) -> Usage:
    resources = container.get("resources")
    return parse_list(resources.get(field) if isinstance(resources, Mapping) else None)


def _pod_total(pod: Obj, field: str) -> Usage:
    """`resourcehelper.PodRequests`/`PodLimits`: the containers' sum, or the largest init
    container (plus the sidecars started before it) if larger, plus the pod overhead."""
    spec = pod.get("spec") or {}
    total: Usage = {}
    for container in spec.get("containers") or []:
        total = add(total, _container_list(container, field))
    sidecars: Usage = {}
    init_peak: Usage = {}
    for container in spec.get("initContainers") or []:
        own = _container_list(container, field)
        if container.get("restartPolicy") == "Always":
            total = add(total, own)
            sidecars = add(sidecars, own)
            init_peak = _max(init_peak, sidecars)
        else:
            init_peak = _max(init_peak, add(own, sidecars))
    total = _max(total, init_peak)
    return add(total, parse_list(spec.get("overhead")))


def _extended(name: str) -> bool:
    """An extended resource (`example.com/gpu`): a domain outside kubernetes.io."""
    return "/" in name and not name.startswith(("kubernetes.io/", "requests."))


def compute_usage(requests: Mapping[str, Qty], limits: Mapping[str, Qty]) -> Usage:
    """`podComputeUsageHelper`: the quota names a set of requests and limits charge."""
    result: Usage = {"pods": Qty(Fraction(1))}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            result[name] = result[f"requests.{name}"] = requests[name]
        if name in limits:
            result[f"limits.{name}"] = limits[name]
    for name, qty in requests.items():
        if name.startswith("hugepages-"):
            result[name] = result[f"requests.{name}"] = qty
        elif _extended(name):
            result[f"requests.{name}"] = qty
    return result


def _parse_time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC)
    except ValueError:
        return None


def pod_counts(pod: Obj, now: datetime.datetime) -> bool:
    """`QuotaV1Pod`: a pod is charged compute until terminal or past its grace period."""
    if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return False
    meta = pod.get("metadata") or {}
    deleted, grace = _parse_time(meta.get("deletionTimestamp")), \
        meta.get("deletionGracePeriodSeconds")
    return not (deleted is not None and isinstance(grace, int)
                and now > deleted + datetime.timedelta(seconds=grace))


def pod_usage(pod: Obj, now: datetime.datetime) -> Usage:
    """`PodUsageFunc`: `count/pods` always (it counts what is stored), compute while live."""
    usage: Usage = {"count/pods": Qty(Fraction(1))}
    if not pod_counts(pod, now):
        return usage
    return add(usage, compute_usage(_pod_total(pod, "requests"), _pod_total(pod, "limits")))


def pod_names(name: str) -> bool:
    return name in POD_NAMES or name.startswith(("hugepages-", "requests.hugepages-")) or (
        name.startswith("requests.") and _extended(name[len("requests."):]))


def pod_constraints(required: Iterable[str], pod: Obj) -> str | None:
    """`podEvaluator.Constraints`: every container must name the constrained compute
    resources the quota counts; the text lists what is missing, per resource."""
    wanted = set(required) & CONSTRAINED
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        has = compute_usage(_container_list(container, "requests"),
                            _container_list(container, "limits"))
        for name in wanted - set(has):
            missing.setdefault(name, set()).add(str(container.get("name", "")))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{name} for: {','.join(sorted(missing[name]))}"
                                        for name in sorted(missing))


def _terminating(pod: Obj) -> bool:
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    return isinstance(deadline, int) and deadline >= 0


def _best_effort(pod: Obj) -> bool:
    return qos_class(pod.get("spec") or {}) == "BestEffort"


def _priority_class(pod: Obj, selector: Obj) -> bool:
    value = (pod.get("spec") or {}).get("priorityClassName") or ""
    operator, values = selector.get("operator"), selector.get("values") or []
    if operator == "Exists":
        return bool(value)
    # Upstream matches a label set that always has the key: DoesNotExist never matches.
    return {"In": value in values, "NotIn": value not in values}.get(str(operator), False)


_POD_SCOPES: dict[str, Callable[[Obj, Obj], bool]] = {
    "Terminating": lambda pod, _s: _terminating(pod),
    "NotTerminating": lambda pod, _s: not _terminating(pod),
    "BestEffort": lambda pod, _s: _best_effort(pod),
    "NotBestEffort": lambda pod, _s: not _best_effort(pod),
    "PriorityClass": _priority_class,
}


def pod_scope(selector: Obj, pod: Obj) -> bool:
    scope = _POD_SCOPES.get(str(selector.get("scopeName")))
    return scope is not None and scope(pod, selector)


# --- services, claims, object counts ---------------------------------------------------------

def service_usage(svc: Obj, _now: datetime.datetime) -> Usage:
    """Every service counts; NodePort and LoadBalancer ones count their node ports (only the
    explicit ones when a LoadBalancer allocates none), LoadBalancers count themselves."""
    spec = svc.get("spec") or {}
    one = Qty(Fraction(1))
    usage: Usage = {"services": one, "count/services": one}
    ports = spec.get("ports") or []
    kind = spec.get("type") or "ClusterIP"
    if kind == "LoadBalancer":
        usage["services.loadbalancers"] = one
        if spec.get("allocateLoadBalancerNodePorts") is False:
            ports = [p for p in ports if isinstance(p, Mapping) and p.get("nodePort")]
    if kind in ("NodePort", "LoadBalancer"):
        usage["services.nodeports"] = Qty(Fraction(len(ports)))
    return usage


def claim_class(pvc: Obj) -> str:
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_CLASS_ANNOTATION])
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def claim_usage(pvc: Obj, _now: datetime.datetime) -> Usage:
    one = Qty(Fraction(1))
    usage: Usage = {"persistentvolumeclaims": one, "count/persistentvolumeclaims": one}
    klass = claim_class(pvc)
    if klass:
        usage[f"{klass}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = one
    requests = (pvc.get("spec") or {}).get("resources") or {}
    storage = parse_list(requests.get("requests") if isinstance(requests, Mapping) else None) \
        .get("storage")
    if storage is not None:
        usage["requests.storage"] = storage
        if klass:
            usage[f"{klass}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return usage


def claim_names(name: str) -> bool:
    return name in ("persistentvolumeclaims", "count/persistentvolumeclaims",
                    "requests.storage") or (
        STORAGE_CLASS_SUFFIX in name
        and name.endswith(("/requests.storage", "/persistentvolumeclaims")))


def count_name(group: str, resource: str) -> str:
    """`ObjectCountQuotaResourceNameFor`: `count/<resource>` or `count/<resource>.<group>`."""
    return f"count/{resource}" + (f".{group}" if group else "")


def parse_count_name(name: str) -> tuple[str, str] | None:
    """(group, resource) of a `count/<resource>[.<group>]` name."""
    if not name.startswith("count/"):
        return None
    resource, _, group = name[len("count/"):].partition(".")
    return (group, resource) if resource else None


# --- the evaluator table -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Evaluator:
    """What the quota system knows of one resource."""

    group: str
    resource: str
    operations: frozenset[str]
    usage: Callable[[Obj, datetime.datetime], Usage]
    names: Callable[[str], bool]  # whether a quota name is measured by this evaluator
    scope: Callable[[Obj, Obj], bool] = lambda _selector, _obj: False
    constraints: Callable[[Iterable[str], Obj], str | None] = lambda _names, _obj: None

    def matching(self, names: Iterable[str]) -> list[str]:
        return sorted(name for name in names if self.names(name))


_BOTH = frozenset({CREATE, UPDATE})
_SPECIAL = {
    ("", "pods"): Evaluator("", "pods", frozenset({CREATE}), pod_usage, pod_names,
                            pod_scope, pod_constraints),
    ("", "services"): Evaluator("", "services", _BOTH, service_usage,
                                lambda name: name in SERVICE_NAMES),
    ("", "persistentvolumeclaims"): Evaluator("", "persistentvolumeclaims", _BOTH,
                                              claim_usage, claim_names),
}


def evaluator_for(group: str, resource: str) -> Evaluator:
    """The evaluator of a resource: a special one, or a plain object count."""
    special = _SPECIAL.get((group, resource))
    if special is not None:
        return special
    names = {count_name(group, resource)}
    if not group and resource in LEGACY_COUNTS:
        names.add(LEGACY_COUNTS[resource])
    usage = {name: Qty(Fraction(1)) for name in names}
    return Evaluator(group, resource, frozenset({CREATE}), lambda _obj, _now: dict(usage),
                     names.__contains__)


def tracked(names: Iterable[str]) -> set[tuple[str, str]]:
    """The (group, resource) pairs whose objects a quota's hard names need counted."""
    found: set[tuple[str, str]] = set()
    for name in names:
        for key, evaluator in _SPECIAL.items():
            if evaluator.names(name):
                found.add(key)
        if name in LEGACY_COUNTS:
            found.add(("", name))
        counted = parse_count_name(name)
        if counted is not None:
            found.add(counted)
    return found


def selectors(quota: Obj) -> list[Obj]:
    """`getScopeSelectorsFromQuota`: `spec.scopes` as Exists requirements, plus the
    scopeSelector's expressions."""
    spec = quota.get("spec") or {}
    found: list[Obj] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    expressions = (spec.get("scopeSelector") or {}).get("matchExpressions") or []
    return [*found, *(e for e in expressions if isinstance(e, Mapping))]


def in_scope(evaluator: Evaluator, quota: Obj, obj: Obj) -> bool:
    return all(evaluator.scope(selector, obj) for selector in selectors(quota))


# --- the controller's decision --------------------------------------------------------------

def quota_status(quota: Obj, objects: Mapping[tuple[str, str], Iterable[Obj]],
                 now: datetime.datetime) -> dict[str, dict[str, str]]:
    """`status` of a quota: hard from the spec, used summed over `objects` (by (group,
    resource); a pair missing from it is one that could not be listed, so it has no used)."""
    hard = parse_list((quota.get("spec") or {}).get("hard"))
    used: Usage = {}
    for (group, resource), items in objects.items():
        evaluator = evaluator_for(group, resource)
        names = evaluator.matching(hard)
        if not names:
            continue
        total: Usage = dict.fromkeys(names, ZERO)
        for obj in items:
            if in_scope(evaluator, quota, obj):
                total = add(total, evaluator.usage(obj, now))
        used = add(used, mask(total, names))
    return {"hard": to_strings(hard), "used": to_strings(mask(used, hard))}


# --- admission's decision -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Decision:
    """Admission's answer: a refusal text, or the new `status.used` of each charged quota
    (by quota name; empty when nothing is charged)."""

    refusal: str | None = None
    used: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)


def _status_lists(quota: Obj) -> tuple[Usage, Usage]:
    status = quota.get("status") or {}
    return parse_list(status.get("hard")), parse_list(status.get("used"))


def _interesting(quotas: Iterable[Obj], evaluator: Evaluator,
                 obj: Obj) -> tuple[list[Obj], str | None]:
    """The quotas that count `obj`, or the first refusal met while finding them."""
    found = []
    for quota in quotas:
        hard, used = _status_lists(quota)
        names = evaluator.matching(hard)
        if not names or not in_scope(evaluator, quota, obj):
            continue
        name = quota["metadata"]["name"]
        problem = evaluator.constraints(names, obj)
        if problem is not None:
            return [], f"failed quota: {name}: {problem}"
        if any(n not in used for n in names):
            return [], f"status unknown for quota: {name}, resources: {','.join(names)}"
        found.append(quota)
    return found, None


def charge(quotas: Iterable[Obj], operation: str, group: str, resource: str, obj: Obj,
           old: Obj | None, now: datetime.datetime) -> Decision:
    """Whether a create or update of `obj` fits every quota of its namespace (`checkRequest`)."""
    evaluator = evaluator_for(group, resource)
    if operation not in evaluator.operations:
        return Decision()
    ordered = sorted(quotas, key=lambda q: str(q["metadata"]["name"]))
    interesting, refusal = _interesting(ordered, evaluator, obj)
    if refusal is not None or not interesting:
        return Decision(refusal=refusal)
    delta = non_zero(evaluator.usage(obj, now))
    if operation == UPDATE and old is not None and (old.get("metadata") or {}).get(
            "resourceVersion"):
        delta = non_zero(subtract_non_negative(delta, evaluator.usage(old, now)))
    if not delta:
        return Decision()
    charged: dict[str, dict[str, str]] = {}
    for quota in interesting:
        hard, used = _status_lists(quota)
        requested = mask(delta, hard)
        new_used = add(used, requested)
        exceeded = sorted(n for n in requested if new_used[n].value > hard[n].value)
        if exceeded:
            return Decision(refusal=(
                f"exceeded quota: {quota['metadata']['name']}, "
                f"requested: {pretty(mask(requested, exceeded))}, "
                f"used: {pretty(mask(used, exceeded))}, limited: {pretty(mask(hard, exceeded))}"))
        if requested:
            charged[quota["metadata"]["name"]] = to_strings(new_used)
    return Decision(used=charged)
