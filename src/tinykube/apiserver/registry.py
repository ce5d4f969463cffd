"""Object lifecycle rules: what create, update, patch and delete do to an object.

This is kube-apiserver's generic registry plus the per-kind strategies that matter here:

- create: namespace must exist (and not be terminating), `generateName`, uid,
  creationTimestamp, generation 1, status reset, defaults, validation, Service allocation;
- managed fields: a write that names its manager (`manager`) records it in
  `metadata.managedFields` (`api.managedfields`: the fields it changed become its own), computed
  on the object as stored, defaults included; a client that sends `managedFields` replaces
  them, one that leaves them out or sends `[]` keeps the stored ones, and `[{}]` strips them;
- update: optimistic concurrency on `metadata.resourceVersion` (409 when stale), immutable
  metadata kept, the main resource keeps the old status and a `status` update keeps the old
  spec, generation bumped only when the spec changes;
- delete: finalizers and `deletionTimestamp`, graceful deletion of pods bound to a node (a
  later delete may only shorten the grace period); the propagation policy becomes the garbage
  collector's `orphan` or `foregroundDeletion` finalizer (`api.ownership`), and the collector
  does the rest through the API. An object whose last finalizer is removed by an update goes
  then, if no grace period is left to wait out.

All functions work on dicts in the storage version; version conversion, decoding and
encoding are the HTTP layer's business. Everything here runs on the event loop between awaits,
so a read-modify-write is atomic without locks.
"""

from __future__ import annotations

import datetime
import secrets
import string
import uuid
from collections.abc import Callable
from typing import Any

from tinykube import clock as clocks
from tinykube.api import (
    certificates,
    defaults,
    errors,
    managedfields,
    ownership,
    structured,
    validation,
)
from tinykube.api.apiextensions import objects as custom
from tinykube.api.clone import clone
from tinykube.api.errors import FieldError
from tinykube.api.meta import rfc3339
from tinykube.api.resources import Resource
from tinykube.apiserver import access
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.store.cache import Entry, Store
from tinykube.store.etcd import precondition_failed

Obj = dict[str, Any]
Clock = Callable[[], datetime.datetime]
Validator = Callable[[Obj, Obj | None], None]  # (new object, stored object or None)

# Kinds whose status may only be written through the status subresource.
_STATUS_KINDS = {"Pod", "Service", "Node", "Namespace", "PersistentVolumeClaim", "StatefulSet",
                 "Deployment", "ReplicaSet", "DaemonSet", "ReplicationController", "Job",
                 "CronJob", "Ingress", "PersistentVolume",
                 "APIService", "CertificateSigningRequest", "FlowSchema",
                 "HorizontalPodAutoscaler", "PodDisruptionBudget", "PriorityLevelConfiguration",
                 "ResourceQuota", "ValidatingAdmissionPolicy", "VolumeAttachment",
                 "CustomResourceDefinition"}
# Kinds with metadata.generation tracking spec changes.
_GENERATION_KINDS = {"Pod", "StatefulSet", "Deployment", "ReplicaSet", "Namespace", "DaemonSet",
                     "ReplicationController", "Job", "CronJob", "Ingress",
                     "FlowSchema", "IngressClass", "MutatingWebhookConfiguration",
                     "PodDisruptionBudget", "PriorityLevelConfiguration",
                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                     "ValidatingWebhookConfiguration", "CustomResourceDefinition",
                     "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}
_EMPTY_STATUS: dict[str, Obj] = {
    "Pod": {"phase": "Pending", "qosClass": "BestEffort"},
    "Service": {"loadBalancer": {}},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "Deployment": {},
    "ReplicaSet": {"replicas": 0},
    "PersistentVolumeClaim": {"phase": "Pending"},
    "PersistentVolume": {"phase": "Pending"},
    "ReplicationController": {"replicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                  "desiredNumberScheduled": 0, "numberReady": 0},
    "Ingress": {"loadBalancer": {}},
    # Go fields without omitempty are written as zeros.
    "HorizontalPodAutoscaler": {"desiredReplicas": 0},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                            "expectedPods": 0},
    "VolumeAttachment": {"attached": False},
}
# CertificateSigningRequest: the requestor, which the API server records from the
# authenticated user (tinykube's one identity, the admin) and clients may not set.
_REQUESTOR = ("username", "uid", "groups", "extra")
# A DaemonSet's template generation (upstream's internal spec.templateGeneration, carried in v1
# by this annotation): 1 at create, one more at each template change, whatever the client sent.
_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
# Metadata lists that are left out when empty, as kube-apiserver's JSON leaves them.
_OMIT_EMPTY = ("ownerReferences", "finalizers")
_NAME_SUFFIX = string.ascii_lowercase.replace("a", "").replace("e", "").replace("i", "") \
    .replace("o", "").replace("u", "") + "2456789"


def _utcnow() -> datetime.datetime:
    return clocks.installed().utcnow()  # the test clock's under `--test-clock`


def _has_status(res: Resource) -> bool:
    """Whether writes of the object keep its status (only the status subresource sets it)."""
    return bool(res.custom.status) if res.custom is not None else res.kind in _STATUS_KINDS


def _tracks_generation(res: Resource) -> bool:
    return res.custom is not None or res.kind in _GENERATION_KINDS


def _spec(res: Resource, obj: Obj) -> Any:
    """What a generation counts: `spec`, or for a custom resource everything but metadata (and
    status, when the status subresource owns it)."""
    if res.custom is None:
        return obj.get("spec")
    skip = ("metadata", "status") if res.custom.status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skip}


def _defaulted(res: Resource, obj: Obj, *, in_place: bool = False) -> Obj:
    if res.custom is not None:
        return custom.defaulted(res, obj)
    return defaults.apply_defaults(res.kind, obj, in_place=in_place)


defaulted = _defaulted  # public for admission webhooks, which are sent defaulted objects


def _finalized(obj: Obj) -> bool:
    """True when a deleting object has no finalizers left and no grace period to wait out.

    A pod in graceful deletion (grace period > 0) is removed only by the final delete with
    grace period 0 that its node sends once the containers have stopped; the status writes
    the node makes meanwhile must not end the deletion early.
    """
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if meta.get("deletionGracePeriodSeconds"):
        return False
    return obj["kind"] != "Namespace" or not obj.get("spec", {}).get("finalizers")


class Registry:
    """Create/update/delete with Kubernetes semantics on top of the store."""

    def __init__(self, store: Store, allocator: ServiceAllocator, *,
                 clock: Clock = _utcnow) -> None:
        self.store = store
        self.allocator = allocator
        self.clock = clock

    def __repr__(self) -> str:
        return f"Registry({self.store!r})"

    # --- reads ----------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> Entry:
        entry = self.store.get(res.storage_key, namespace, name)
        if entry is None:
            raise errors.NotFound.for_object(res.plural, res.group, name)
        return entry

    def check_namespace(self, res: Resource, namespace: str, *, creating: bool) -> None:
        if not res.namespaced:
            return
        entry = self.store.get("core/namespaces", "", namespace)
        if entry is None:
            raise errors.NotFound.for_object("namespaces", "", namespace)
        if creating and entry.obj.get("metadata", {}).get("deletionTimestamp"):
            raise errors.Forbidden(
                f"{res.plural} \"\" is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                details={"name": "", "group": res.group, "kind": res.plural,
                         "causes": [{"reason": "NamespaceTerminating",
                                     "message": f"namespace {namespace} is being terminated",
                                     "field": "metadata.namespace"}]})

    # --- create ---------------------------------------------------------------------

    def create(self, res: Resource, obj: Obj, *, dry_run: bool = False,
               manager: managedfields.Manager | None = None,
               admit: Validator | None = None, uid: str | None = None) -> Entry:
        """Create `obj`; `admit` (admission's validating phase) sees it last, before the
        write, with no await in between. `uid`: the one a dry run of this create gave it
        (validating webhooks saw it), else a new one."""
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if res.namespaced else ""
        self.check_namespace(res, namespace, creating=True)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_NAME_SUFFIX) for _ in range(5))
        if not meta.get("name"):
            raise errors.Invalid(res.kind, res.group, "", [
                FieldError.required("metadata.name", "name or generateName is required")])
        self._prepare_create(res, obj, uid)
        obj = _defaulted(res, obj)
        self._validate(res, obj, None)
        if self.store.get(res.storage_key, namespace, obj["metadata"]["name"]) is not None:
            raise errors.AlreadyExists.for_object(res.plural, res.group, obj["metadata"]["name"])
        if res.kind == "Service":
            self._allocate(res, obj, None, dry_run=dry_run)
        if admit is not None:
            self._admit_create(res, obj, admit, dry_run=dry_run)
        self._record_manager(res, None, obj, manager)
        if dry_run:
            return Entry(obj, self.store.resource_version)
        return self.store.create(res.storage_key, obj)

    def _admit_create(self, res: Resource, obj: Obj, admit: Validator, *,
                      dry_run: bool) -> None:
        """Run admission's validating phase after allocation (so a Service whose node port is
        taken is refused before any quota is charged), releasing what a refused one took."""
        try:
            admit(obj, None)
        except errors.APIError:
            if res.kind == "Service" and not dry_run:
                self.allocator.release(obj.get("spec", {}))
            raise

    def _prepare_create(self, res: Resource, obj: Obj, uid: str | None = None) -> None:
        meta = obj["metadata"]
        if not res.namespaced:
            meta.pop("namespace", None)
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "selfLink"):
            meta.pop(field, None)
        meta["uid"] = uid or str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock())
        if res.kind == "DaemonSet":
            meta["annotations"] = {**(meta.get("annotations") or {}), _TEMPLATE_GENERATION: "1"}
        if _tracks_generation(res):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if res.custom is not None:
            if res.custom.status:  # the status subresource owns status
                obj.pop("status", None)
        elif res.kind in _STATUS_KINDS and res.kind != "Node":
            obj["status"] = clone(_EMPTY_STATUS.get(res.kind, {}))
        obj["apiVersion"] = res.stored_api_version
        obj["kind"] = res.kind
        if res.kind == "CertificateSigningRequest" and isinstance(obj.get("spec"), dict):
            spec = obj["spec"]
            for field in _REQUESTOR:
                spec.pop(field, None)
            current = access.current()  # the requester, as kube records it
            user = current[0] if current is not None else access.ADMIN
            spec["username"], spec["groups"] = user.name, list(user.groups)
            if user.uid:
                spec["uid"] = user.uid

    def _validate(self, res: Resource, obj: Obj, old: Obj | None,
                  subresource: str = "") -> None:
        errs = custom.validate(res, obj, old) if res.custom is not None else \
            validation.validate(res.kind, obj, old, subresource=subresource)
        if errs:
            raise errors.Invalid(res.kind, res.group, obj["metadata"].get("name", ""), errs)

    def _allocate(self, res: Resource, obj: Obj, old: Obj | None, *, dry_run: bool) -> None:
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec")
        errs, taken = self.allocator.allocate(spec, old_spec)
        if errs or dry_run:
            self.allocator.undo(taken)
        if errs:
            raise errors.Invalid(res.kind, res.group, obj["metadata"]["name"], errs)
        if old_spec is not None and not dry_run:
            self._release_new(old_spec, spec)

    def _release_new(self, spec: Obj, keep: Obj | None) -> None:
        """Release what `spec` holds that `keep` does not."""
        keep_ips = set((keep or {}).get("clusterIPs") or [])
        keep_ports = {p.get("nodePort") for p in (keep or {}).get("ports") or []}
        self.allocator.release({
            "clusterIPs": [ip for ip in spec.get("clusterIPs") or [] if ip not in keep_ips],
            "ports": [p for p in spec.get("ports") or [] if p.get("nodePort") not in keep_ports],
        })

    # --- update ---------------------------------------------------------------------

    def update(self, res: Resource, obj: Obj, *, subresource: str = "",
               dry_run: bool = False, manager: managedfields.Manager | None = None,
               admit: Validator | None = None) -> Entry:
        """Replace an object (or its status); `metadata.resourceVersion` if set must match.
        `admit` (admission's validating phase) sees the new and old object before the write."""
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if res.namespaced else ""
        current = self.get(res, namespace, meta.get("name", ""))
        expected = meta.get("resourceVersion")
        if expected and str(expected) != str(current.rv):
            raise self._modified(res, meta["name"], str(expected))
        new = self._merge_update(res, current.obj, obj, subresource)
        if res.kind == "CertificateSigningRequest":
            new = certificates.prepare_update(new, current.obj, subresource,
                                              rfc3339(self.clock()))
        new = _defaulted(res, new, in_place=True)  # `_merge_update` made `new` our own copy
        self._validate(res, new, current.obj, subresource)
        if admit is not None:
            admit(new, current.obj)
        if res.kind == "Service" and subresource != "status":
            self._allocate(res, new, current.obj, dry_run=dry_run)
        self._record_manager(res, current.obj, new, manager)
        if dry_run:
            return Entry(new, current.rv)
        if _finalized(new):
            return self._remove(res, namespace, meta["name"])
        if new == current.obj:
            return current  # a no-op update does not change the resourceVersion
        return self.store.update(res.storage_key, new, expected_rv=current.rv)

    def _record_manager(self, res: Resource, old: Obj | None, new: Obj,
                        manager: managedfields.Manager | None) -> None:
        """Record `manager`'s write in `new`'s managedFields (see the module docstring)."""
        meta = new["metadata"]
        sent = meta.get("managedFields")
        if isinstance(sent, list) and sent and all(entry == {} for entry in sent):
            meta.pop("managedFields")  # `[{}]`: strip them, this write included (kube's way)
            return
        if manager is not None:
            managed = managedfields.update(
                managedfields.decode_entries(meta.get("managedFields")), manager, old, new,
                self.shape(res), rfc3339(self.clock()))
            meta["managedFields"] = managedfields.encode_entries(managed)
        if not meta.get("managedFields"):
            meta.pop("managedFields", None)

    @staticmethod
    def shape(res: Resource) -> structured.Shape:
        """How server-side apply merges this resource's lists and maps."""
        custom = res.custom
        return structured.shape_of(res.kind, custom.schema if custom else None,
                                   custom=custom is not None)

    def has_status(self, res: Resource) -> bool:
        """Whether the main resource leaves `status` to the status subresource."""
        return res.custom.status if res.custom is not None else res.kind in _STATUS_KINDS

    def _merge_update(self, res: Resource, old: Obj, new: Obj, subresource: str) -> Obj:
        """The object to store: `new`'s writable part over `old`, a copy sharing nothing with
        either (a status write copies `old` and `new`'s status only)."""
        if subresource == "status":
            return self._merge_status(old, new)
        new = clone(new)
        old_meta, meta = old["metadata"], new["metadata"]
        if not meta.get("managedFields") and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]  # left out or `[]`: kept
        for field in ("uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "namespace", "name"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        for field in _OMIT_EMPTY:  # Go's omitempty: a patch that removed the last item
            if meta.get(field) == []:
                del meta[field]
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        if subresource == "approval":  # CertificateSigningRequest: its conditions only
            merged = clone(old)
            merged.setdefault("status", {})["conditions"] = (
                new.get("status") or {}).get("conditions") or []
            return merged
        if subresource == "finalize":
            merged = clone(old)
            merged.setdefault("spec", {})["finalizers"] = new.get("spec", {}).get("finalizers", [])
            return merged
        if _has_status(res):
            if "status" in old:
                new["status"] = clone(old["status"])
            elif res.custom is not None:
                new.pop("status", None)
        if _tracks_generation(res) and _spec(res, new) != _spec(res, old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if res.kind == "DaemonSet":
            generation = int((old_meta.get("annotations") or {}).get(_TEMPLATE_GENERATION, 1))
            if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
                generation += 1
            meta["annotations"] = {**(meta.get("annotations") or {}),
                                   _TEMPLATE_GENERATION: str(generation)}
        return new

    @staticmethod
    def _merge_status(old: Obj, new: Obj) -> Obj:
        """A status write: `old` with `new`'s status, and `new`'s managedFields if it sent any
        (left out or `[]`: the stored ones are kept)."""
        merged = clone(old)
        merged["status"] = clone(new.get("status", {}))
        sent = (new.get("metadata") or {}).get("managedFields")
        if sent:
            merged["metadata"]["managedFields"] = clone(sent)
        return merged

    # --- delete ---------------------------------------------------------------------

    def delete(self, res: Resource, namespace: str, name: str, options: Obj,
               *, dry_run: bool = False) -> tuple[Entry, bool]:
        """Delete or start deleting; returns (entry, gone) where gone means removed now.

        The propagation policy becomes the garbage collector's finalizer (`ownership`); an
        object that keeps a finalizer, a namespace, or a pod with a grace period to wait out
        gets `deletionTimestamp` and stays until the last of them is done.
        """
        errs = ownership.validate_options(options)
        if errs:
            raise errors.Invalid("DeleteOptions", "meta.k8s.io", "", errs)
        current = self.get(res, namespace, name)
        self._check_preconditions(res, current, options)
        if dry_run:
            return current, True
        obj = clone(current.obj)
        meta = obj["metadata"]
        if ownership.collected(res):
            finalizers = ownership.deletion_finalizers(meta.get("finalizers") or [],
                                                       ownership.policy(options),
                                                       default=ownership.default_policy(res))
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
        if res.kind == "CustomResourceDefinition" and not meta.get("deletionTimestamp"):
            # its objects go first (apiserver/crds.py removes the finalizer after them)
            meta["finalizers"] = [*(meta.get("finalizers") or []), custom.CLEANUP_FINALIZER]
        if not meta.get("deletionTimestamp"):
            grace = self._grace_period(res, obj, options)
            if not (meta.get("finalizers") or res.kind == "Namespace" or grace):
                return self._remove(res, namespace, name), True
            now = self.clock()
            meta["deletionTimestamp"] = rfc3339(now + datetime.timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
            if res.kind == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
            return self.store.update(res.storage_key, obj, expected_rv=current.rv), False
        self._shorten_grace(res, meta, options)
        if _finalized(obj):
            return self._remove(res, namespace, name), True
        if obj == current.obj:
            return current, False
        return self.store.update(res.storage_key, obj, expected_rv=current.rv), False

    @staticmethod
    def _shorten_grace(res: Resource, meta: Obj, options: Obj) -> None:
        """A pod already in graceful deletion: only a shorter grace period may be given (the
        node's final delete gives 0), and deletionTimestamp moves with it."""
        grace, old = options.get("gracePeriodSeconds"), meta.get("deletionGracePeriodSeconds")
        if res.kind != "Pod" or grace is None or not old or max(int(grace), 0) >= int(old):
            return
        grace = max(int(grace), 0)
        stamp = datetime.datetime.strptime(meta["deletionTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        moved = stamp.replace(tzinfo=datetime.UTC) - datetime.timedelta(seconds=int(old) - grace)
        meta["deletionTimestamp"] = rfc3339(moved)
        meta["deletionGracePeriodSeconds"] = grace

    def _grace_period(self, res: Resource, obj: Obj, options: Obj) -> int:
        """Seconds of graceful deletion: only pods that a node runs wait."""
        if res.kind != "Pod" or not obj.get("spec", {}).get("nodeName"):
            return 0
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
        return max(int(grace), 0)

    def _check_preconditions(self, res: Resource, current: Entry, options: Obj) -> None:
        pre = options.get("preconditions") or {}
        meta = current.obj["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.Conflict(
                f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: '
                f'{meta.get("uid")}')
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(current.rv):
            raise self._modified(res, meta["name"], str(pre["resourceVersion"]))

    def _modified(self, res: Resource, name: str, expected: str) -> errors.Conflict:
        """A failed resourceVersion precondition (on etcd, perhaps only this server's cache
        behind: `store.etcd.StaleCache`)."""
        return precondition_failed(errors.Conflict.modified(res.plural, res.group, name),
                                   expected, self.store.resource_version,
                                   self.store.cache_lags)

    def _remove(self, res: Resource, namespace: str, name: str) -> Entry:
        entry = self.store.delete(res.storage_key, namespace, name)
        if res.kind == "Service":
            self.allocator.release(entry.obj.get("spec", {}))
        return entry

    def finish_deletion(self, res: Resource, namespace: str, name: str) -> None:
        """Remove an object whose grace period has run out (called by the API server's timer)."""
        entry = self.store.get(res.storage_key, namespace, name)
        if entry is not None and not entry.obj["metadata"].get("finalizers"):
            self._remove(res, namespace, name)
