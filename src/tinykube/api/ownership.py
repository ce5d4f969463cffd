"""Cascading deletion as data: the garbage collector's finalizers and who gets them.

A DELETE chooses what happens to the object's dependents with `propagationPolicy` (or the
older `orphanDependents`). The API server records the choice on the object, as kube-apiserver
does, and the garbage collector acts on it through the API:

- `Background` (the default): the object goes at once (unless other finalizers or a pod's
  grace period hold it); the collector then deletes dependents whose owners are all gone.
- `Foreground`: the object gets `deletionTimestamp` and the `foregroundDeletion` finalizer and
  stays visible; the collector deletes its dependents and removes the finalizer once no
  dependent with `blockOwnerDeletion: true` is left; the object goes with its last finalizer.
- `Orphan`: the object gets the `orphan` finalizer; the collector removes the object's
  reference from every dependent, then the finalizer.

A DELETE without a policy keeps whichever of these finalizers the object has, else takes its
kind's default: Background, but Orphan for Deployments, StatefulSets and ReplicaSets deleted
through `apps/v1beta1` or `apps/v1beta2`, which upstream keeps for old clients
(`DefaultGarbageCollectionPolicy`).

Only kinds the collector watches get these finalizers (`collected`): on any other kind nobody
would ever remove them. Events are the one stored kind it leaves alone: they are many, never
owners, and caching them all would cost more than anything the collector does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.api import resources
from tinykube.api.errors import FieldError

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = ("Foreground", "Background", "Orphan")
_UNCOLLECTED = frozenset({"core/events"})
# (group, version) -> kinds whose deletion orphans by default through that version.
_ORPHAN_BY_DEFAULT = {("apps", "v1beta1"): {"Deployment", "StatefulSet", "ReplicaSet"},
                      ("apps", "v1beta2"): {"Deployment", "StatefulSet", "ReplicaSet"}}


def collected(res: resources.Resource) -> bool:
    """True when the garbage collector watches this kind (and so honours its finalizers)."""
    return res.stored and res.storage_key not in _UNCOLLECTED


def collected_resources() -> list[resources.Resource]:
    """One entry (the preferred version) per kind the garbage collector watches."""
    return [r for r in resources.preferred() if collected(r)]


def default_policy(res: resources.Resource) -> str:
    """The policy of a DELETE that names none, through this (served) resource version."""
    return "Orphan" if res.kind in _ORPHAN_BY_DEFAULT.get((res.group, res.version), ()) \
        else "Background"


def policy(options: Mapping[str, Any]) -> str | None:
    """The propagation policy a DeleteOptions asks for (None: as the object's finalizers say,
    else Background)."""
    if options.get("orphanDependents") is not None:
        return "Orphan" if options["orphanDependents"] else "Background"
    value = options.get("propagationPolicy")
    return str(value) if value is not None else None


def validate_options(options: Mapping[str, Any]) -> list[FieldError]:
    """kube-apiserver's ValidateDeleteOptions, for the propagation fields."""
    errs = []
    value = options.get("propagationPolicy")
    if options.get("orphanDependents") is not None and value is not None:
        errs.append(FieldError.invalid("propagationPolicy", value,
                                       "orphanDependents and deletionPropagation cannot be "
                                       "both set"))
    if value is not None and value not in POLICIES:
        errs.append(FieldError.not_supported("propagationPolicy", value, [*POLICIES, "nil"]))
    return errs


def deletion_finalizers(finalizers: Sequence[str], chosen: str | None, *,
                        default: str = "Background") -> list[str]:
    """The object's finalizers once a delete with policy `chosen` is applied: an explicit
    policy replaces the collector's finalizer; no policy keeps whichever is there, else
    applies the kind's `default`."""
    if chosen is None:
        if any(f in (FOREGROUND, ORPHAN) for f in finalizers):
            return list(finalizers)
        chosen = default
    kept = [f for f in finalizers if f not in (FOREGROUND, ORPHAN)]
    if chosen == "Foreground":
        kept.append(FOREGROUND)
    elif chosen == "Orphan":
        kept.append(ORPHAN)
    return kept


def deleting_with(obj: Mapping[str, Any], finalizer: str) -> bool:
    """True when `obj` is being deleted and still carries `finalizer`."""
    meta = obj.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])
