"""Managed fields: who owns which field of an object, and server-side apply on top of it.

Every write records its manager in `metadata.managedFields`: an entry per manager identity
(`manager` name, `operation` Apply or Update, for Update its `apiVersion`, and the `subresource`)
with the set of fields it owns (`fieldsV1`, see `structured`) and the `time` of its last change.
The rules, as structured-merge-diff (kube's library) defines them:

1. **An Update takes what it changes.** A create, update or non-apply patch by manager M gives M
   every field it added or changed (defaults included: they are set when the object is written)
   and takes those fields from every other manager. Updates never conflict.
2. **Removed fields belong to nobody.** A field that leaves the object leaves every set.
3. **An Apply owns exactly what it applies.** Manager M's Apply entry becomes the field set of
   its applied configuration, whatever it held before.
4. **Changing another manager's field is a conflict.** An apply that would give a field owned by
   someone else a different value fails with 409 and one cause per field and owner, unless
   `force=true`, which moves those fields to M.
5. **Equal values share.** An applied field whose value equals the live one stays owned by its
   other managers too: both own it, and neither conflicts until one changes it.
6. **What an applier stops applying goes away**, if nobody else owns it: a field in M's previous
   Apply set and not in the new one is removed from the object (a list item with its fields);
   a field somebody else also owns is only released.

Moving from client-side to server-side apply (`kubectl_apply`, kube's lastAppliedManager and
lastAppliedUpdater): for the manager `kubectl` only, conflicts on fields that the object's
`kubectl.kubernetes.io/last-applied-configuration` holds are not conflicts (the user applied
them before, client-side), and the annotation is rewritten to the new applied configuration,
so a later client-side apply computes its patch from what was applied last.

Lists and maps merge by their shape (associative lists by key, sets by value, atomic lists
whole); that is `structured.merge`. Update entries are capped at 10, as kube caps them: the
oldest are folded into one `ancient-changes` entry. Entries are kept in kube's order
(operation, then time, then manager). Fields kube never tracks (`apiVersion`, `kind`,
`metadata.name`, `uid`, `resourceVersion`, ... and `managedFields` itself) are left out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from tinykube.api import errors, structured
from tinykube.api.structured import FieldSet, Path, Shape

Obj = dict[str, Any]
APPLY, UPDATE = "Apply", "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"

_UNTRACKED_META = ("name", "namespace", "uid", "resourceVersion", "generation",
                   "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "generateName")
_UNTRACKED_PREFIXES: tuple[Path, ...] = (
    ("f:apiVersion",), ("f:kind",),
    *(("f:metadata", "f:" + name) for name in _UNTRACKED_META),
)


@dataclasses.dataclass(frozen=True)
class Manager:
    """A manager identity: the same name applying and updating are two managers, as are two
    API versions of one updater (not of one applier) and each subresource."""

    name: str
    operation: str
    api_version: str
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        version = "" if self.operation == APPLY else self.api_version
        return self.name, self.operation, version, self.subresource

    def describe(self) -> str:
        """As kube's conflict messages name it."""
        text = json.dumps(self.name)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


@dataclasses.dataclass
class Owned:
    """One entry of `managedFields`: its manager, its fields and when they last changed."""

    manager: Manager
    fields: FieldSet
    time: str | None


Managed = dict[tuple[str, str, str, str], Owned]


# --- entries <-> sets -------------------------------------------------------------------------

def decode_entries(entries: object) -> Managed:
    """`metadata.managedFields` as sets; entries that are not well formed are dropped."""
    managed: Managed = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("manager"), str):
            continue
        manager = Manager(entry["manager"], str(entry.get("operation") or UPDATE),
                          str(entry.get("apiVersion") or ""), str(entry.get("subresource") or ""))
        tree = entry.get("fieldsV1")
        fields = structured.decode(tree) if isinstance(tree, Mapping) else set()
        owned = managed.setdefault(manager.key, Owned(manager, set(), entry.get("time")))
        owned.fields |= fields
    return managed


def encode_entries(managed: Managed) -> list[Obj]:
    """Sets as `metadata.managedFields`, in kube's order; empty sets are left out."""
    def order(owned: Owned) -> tuple[str, str, str, str, str]:
        m = owned.manager
        return m.operation, owned.time or "", m.name, m.api_version, m.subresource

    out = []
    for owned in sorted((o for o in managed.values() if o.fields), key=order):
        entry: Obj = {"manager": owned.manager.name, "operation": owned.manager.operation,
                      "apiVersion": owned.manager.api_version}
        if owned.time:
            entry["time"] = owned.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = structured.encode(owned.fields)
        if owned.manager.subresource:
            entry["subresource"] = owned.manager.subresource
        out.append(entry)
    return out


def tracked(obj: Any, shape: Shape, ignored: Iterable[Path] = ()) -> FieldSet:
    """The fields of `obj` that ownership is kept for (`ignored`: prefixes the write may not
    change, such as `status` on a main resource with a status subresource)."""
    prefixes = (*_UNTRACKED_PREFIXES, *ignored)
    return {path for path in structured.field_set(obj, shape)
            if not any(path[:len(p)] == p for p in prefixes)}


# --- rule 1 and 2: updates --------------------------------------------------------------------

def changes(old: Any, new: Any, shape: Shape) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) tracked fields between two versions of an object."""
    changed, removed = structured.diff(old, new, shape)
    return _tracked_only(changed), _tracked_only(removed)


_UNTRACKED_TOP = frozenset(p[0] for p in _UNTRACKED_PREFIXES if len(p) == 1)
_UNTRACKED_META_KEYS = frozenset("f:" + name for name in _UNTRACKED_META)


def _tracked_only(paths: FieldSet) -> FieldSet:
    """`paths` without those under `_UNTRACKED_PREFIXES` (a test of the first two elements:
    this runs on every field of every write)."""
    return {path for path in paths
            if path[0] not in _UNTRACKED_TOP
            and not (path[0] == "f:metadata" and len(path) > 1
                     and path[1] in _UNTRACKED_META_KEYS)}


def update(managed: Managed, manager: Manager, old: Any, new: Any, shape: Shape,
           now: str) -> Managed:
    """The ownership after `manager` wrote `new` over `old` (None for a create)."""
    changed, removed = changes(old or {}, new, shape)
    result = _without(managed, changed | removed, keep=manager)
    if changed or removed or manager.key in result:
        mine = result.get(manager.key) or Owned(manager, set(), None)
        fields = (mine.fields | changed) - removed
        result[manager.key] = Owned(manager, fields,
                                    now if changed or removed else mine.time)
    return _capped(result)


def _without(managed: Managed, paths: FieldSet, keep: Manager | None) -> Managed:
    """Every other manager's sets minus `paths` (and minus `removed` for all)."""
    out: Managed = {}
    for key, owned in managed.items():
        fields = owned.fields if keep is not None and key == keep.key else owned.fields - paths
        out[key] = Owned(owned.manager, fields, owned.time)
    return out


def _capped(managed: Managed) -> Managed:
    """At most MAX_UPDATE_MANAGERS Update entries: the oldest are folded, one by one, into an
    `ancient-changes` entry of their API version (which takes the newest folded time)."""
    updates = sorted((o for o in managed.values() if o.manager.operation == UPDATE and o.fields),
                     key=lambda o: o.time or "")
    count = len(updates)
    out = dict(managed)
    for owned in updates:
        if count <= MAX_UPDATE_MANAGERS:
            break
        bucket = Manager(ANCIENT, UPDATE, owned.manager.api_version)
        if owned.manager.key == bucket.key:
            continue
        del out[owned.manager.key]
        if bucket.key in out:
            out[bucket.key].fields |= owned.fields
            out[bucket.key].time = owned.time
            count -= 1
        else:
            out[bucket.key] = Owned(bucket, set(owned.fields), owned.time)
    return out


# --- rules 3 to 6: apply ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ConflictingField:
    path: Path
    owner: Manager


class ApplyConflict(errors.Conflict):
    """kube's `NewApplyConflict`: 409, the message, one FieldManagerConflict cause per field;
    `fields` keeps them for callers that narrow the conflict."""

    def __init__(self, fields: list[ConflictingField]) -> None:
        causes = [{"reason": "FieldManagerConflict",
                   "message": f"conflict with {c.owner.describe()}",
                   "field": structured.path_text(c.path)} for c in fields]
        super().__init__(_conflict_message(fields), details={"causes": causes})
        self.fields = fields


def _conflict_message(fields: list[ConflictingField]) -> str:
    if len(fields) == 1:
        only = fields[0]
        return (f"Apply failed with 1 conflict: conflict with {only.owner.describe()}: "
                f"{structured.path_text(only.path)}")
    lines: list[str] = []
    for described, owner in sorted({c.owner.describe(): c.owner for c in fields}.items()):
        lines.append(f"conflicts with {described}:")
        lines += [f"- {structured.path_text(c.path)}" for c in fields if c.owner == owner]
    return f"Apply failed with {len(fields)} conflicts: " + "\n".join(lines)


def apply(managed: Managed, manager: Manager, live: Obj, applied: Obj, shape: Shape, *,
          force: bool, now: str, ignored: Iterable[Path] = ()) -> tuple[Obj, Managed]:
    """The object after `manager` applied `applied` to `live`, and the new ownership; raises
    the 409 of rule 4 unless `force`."""
    ignored = tuple(ignored)
    applied_set = tracked(applied, shape, ignored)
    merged = structured.merge(live, {k: v for k, v in applied.items()
                                     if not any(p == ("f:" + k,) for p in ignored)}, shape)
    mine = managed.get(manager.key)
    stale = (mine.fields if mine else set()) - applied_set
    others = [o for key, o in managed.items() if key != manager.key]
    owned_elsewhere = set().union(*(o.fields for o in others))
    orphaned = _orphaned(stale - owned_elsewhere, applied_set | owned_elsewhere)
    structured.remove(merged, orphaned)
    changed, removed = changes(live, merged, shape)
    conflicts = [ConflictingField(path, o.manager) for o in others
                 for path in sorted(o.fields & changed & applied_set)]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    result = _without(managed, (changed & applied_set) | removed, keep=manager)
    touched = changed | removed | (applied_set ^ (mine.fields if mine else set()))
    result[manager.key] = Owned(manager, applied_set,
                                now if touched or mine is None else mine.time)
    return merged, _capped(result)


def _orphaned(candidates: FieldSet, kept: FieldSet) -> FieldSet:
    """The `candidates` to remove (rule 6) when `kept` stays owned: not a map or list item
    that holds a kept field (a map once applied empty and now with keys, an item another
    manager has fields in: kube's prune adds those back), nor a key field of such an item."""
    holders = {path[:i] for path in kept for i in range(1, len(path))}

    def needed(path: Path) -> bool:
        if path in holders:
            return True
        parent = path[:-1]
        if parent in holders and parent[-1].startswith("k:") and path[-1].startswith("f:"):
            return path[-1][2:] in json.loads(parent[-1][2:])
        return False

    return {path for path in candidates if not needed(path)}


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"


def kubectl_apply(managed: Managed, manager: Manager, live: Obj, applied: Obj, shape: Shape, *,
                  force: bool, now: str, ignored: Iterable[Path] = ()) -> tuple[Obj, Managed]:
    """`apply`, with the client-side apply migration of the module docstring."""
    ignored = tuple(ignored)
    last = _last_applied(live) if manager.name == KUBECTL else None
    try:
        merged, result = apply(managed, manager, live, applied, shape, force=force, now=now,
                               ignored=ignored)
    except ApplyConflict as conflict:
        if last is None:
            raise
        allowed = tracked(last, shape)
        left = [c for c in conflict.fields if c.path not in allowed]
        if left:
            raise ApplyConflict(left) from None
        merged, result = apply(managed, manager, live, applied, shape, force=True, now=now,
                               ignored=ignored)
    if last is not None:
        bare = {**applied, "metadata": {**(applied.get("metadata") or {})}}
        annotations = {k: v for k, v in (bare["metadata"].get("annotations") or {}).items()
                       if k != LAST_APPLIED}
        if annotations:
            bare["metadata"]["annotations"] = annotations
        else:
            bare["metadata"].pop("annotations", None)
        meta = merged.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               LAST_APPLIED: json.dumps(bare, separators=(",", ":")) + "\n"}
    return merged, result


def _last_applied(live: Obj) -> Obj | None:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        value = json.loads(text) if isinstance(text, str) and text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

