"""Admission: what kube-apiserver's admission plugins do to a write before it is stored.

kube-apiserver runs every create and update through a chain of admission plugins, in one fixed
order (`AllOrderedPlugins` in `pkg/kubeapiserver/options/plugins.go`), after decoding and
defaulting and before the registry's own preparation and validation. The mutating ones change the
object (a pod gets `serviceAccountName: default` and two tolerations); any plugin may refuse the
request, usually with a 403 Forbidden that names itself in the message.

`PLUGINS` is that chain as a table, in kube's order; a plugin is a row: its name, the kinds and
operations it handles, an `admit` coroutine that may change `request.obj` or raise an
`APIError` (the mutating phase, before defaults and validation), and a `validate` function (the
validating phase: the registry calls it on the defaulted, validated object just before it is
stored, with no await in between, so a check and the write it allows are atomic). Subresource
writes (status, binding, ...) skip the chain, as every plugin here skips them upstream. A plugin
may add to `request.warnings`, which the API server sends as `Warning` headers.

- LimitRanger (`api.limitrange`): a pod create gets its namespace's LimitRange Container
  defaults (and the `kubernetes.io/limit-ranger` annotation saying what was set); a pod create,
  or a claim create or update, that breaks a LimitRange's min, max or ratio is refused 403
  with upstream's texts.

- NamespaceLifecycle: no creation in a namespace that is missing or terminating (the registry
  checks the same for its own callers; running it first keeps kube's order of errors: a pod in
  a missing namespace gets 404 for the namespace, not 403 for its service account).
- ServiceAccount (create): an empty `serviceAccountName` becomes `default`; the named account
  must exist, or the pod is refused with `error looking up service account NS/NAME:
  serviceaccount "NAME" not found`. The `default` account is made by a controller shortly after
  its namespace, so for it the plugin waits a little (upstream retries 10 times, 100-200 ms
  apart; here: a store watch for it, up to `ACCOUNT_WAIT` seconds, longer than upstream's 1-2 s
  because tinykube's controllers share a small machine with everything else; only a namespace
  that never gets the account pays it). The account's
  `imagePullSecrets` are copied to a pod that names none. (Token volumes are the kubelet's job
  in tinykube; upstream this plugin adds the projected `kube-api-access-*` volume.) An account
  with `automountServiceAccountToken: false` gives the same to a pod that does not say (upstream
  leaves the pod's field unset and adds no volume; here the kubelet reads the pod's field).
- DefaultTolerationSeconds (create and update): a pod that does not tolerate
  `node.kubernetes.io/not-ready:NoExecute` (or `unreachable`) gets a toleration of it with
  `tolerationSeconds: 300`. On update it puts back the defaults a replacing client left out.
- PodSecurity (create and update of pods, workloads and namespaces): the Pod Security
  Standards as the namespace's `pod-security.kubernetes.io/*` labels choose them; the decision
  is `api.podsecurity.review`'s, this plugin only looks up the namespace and its pods. Upstream
  it is a validating plugin, run after every mutating one; here it runs in its place in the one
  chain, which is the same as long as no later plugin changes what it checks (none does).
- Priority: a created pod gets `spec.priority` (and `preemptionPolicy`) from its
  `priorityClassName`, or from the `globalDefault` class (whose name it then gets), or 0 and
  `PreemptLowerPriority`; an unknown class, or a `priority` the pod sets that differs, is
  refused. An update keeps the stored priority when the client left it out. A PriorityClass
  may not become a second `globalDefault`. (Since 1.17 the system classes may be used in any
  namespace; upstream limits them only by a quota configuration, which tinykube has not.)
- RBACEscalation (create and update of Roles, ClusterRoles and their bindings): nobody grants
  permissions they do not hold (`rbac_escalation`); upstream this is the RBAC storage's check.
- MutatingAdmissionPolicy (mutating, behind its feature gate; `mutating_policies`): not a row
  of this chain but run by the handlers after it and before the mutating webhooks, with which
  it shares reinvocation, as kube runs the two last among the mutating plugins.
- ValidatingAdmissionPolicy (validating; `admission_policies`): the CEL policies bound by
  ValidatingAdmissionPolicyBindings deny (or warn about) the write.
- ResourceQuota (validating, last; `api.quota`): a create, or an update that grows usage, of
  anything a quota of its namespace counts is refused 403 when it would go over (`exceeded
  quota: q, requested: pods=1, used: pods=2, limited: pods=2`) or lacks the requests/limits a
  compute quota needs (`failed quota: q: must specify ...`); otherwise the quota's
  `status.used` is charged at once, through the registry with a resourceVersion precondition,
  so concurrent creates cannot overshoot; the ResourceQuota controller recomputes it later.
  Dry runs are checked but not charged, as upstream.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from tinykube.api import errors, limitrange, netwarnings, quota, resources
from tinykube.api.podsecurity import policy as pod_security_policy
from tinykube.api.podsecurity import review as pod_security
from tinykube.api.resources import Resource
from tinykube.api.storageclasses import default_storage_class
from tinykube.apiserver import admission_policies, rbac_escalation
from tinykube.apiserver.registry import Registry
from tinykube.store.cache import Entry

Obj = dict[str, Any]

CREATE, UPDATE = "CREATE", "UPDATE"
DEFAULT_ACCOUNT = "default"
ACCOUNT_WAIT = 5.0  # seconds to wait for a namespace's `default` ServiceAccount to appear
TOLERATION_SECONDS = 300
DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


@dataclasses.dataclass
class Request:
    """One write as admission sees it (`old` is the stored object of an update)."""

    operation: str
    res: Resource
    namespace: str
    obj: Obj
    old: Obj | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)  # Warning headers to send
    dry_run: bool = False


@dataclasses.dataclass(frozen=True)
class Plugin:
    """One row of the chain: upstream's plugin name, what it handles, and what it does."""

    name: str
    kinds: frozenset[str] | None  # None: every kind
    operations: frozenset[str]
    admit: Callable[[Admission, Request], Awaitable[None]] | None = None
    validate: Callable[[Admission, Request], None] | None = None

    def handles(self, request: Request) -> bool:
        return request.operation in self.operations and (
            self.kinds is None or request.res.kind in self.kinds)


class Admission:
    """Runs `PLUGINS` (or the plugins given) over a create or update, in order."""

    def __init__(self, registry: Registry, *, plugins: tuple[Plugin, ...] | None = None,
                 account_wait: float = ACCOUNT_WAIT) -> None:
        self.registry = registry
        self.plugins = PLUGINS if plugins is None else plugins
        self.account_wait = account_wait
        # namespace -> its Services with a named targetPort, while the Services' generation
        # is the one recorded (netwarnings.NAMED_PORT_SERVICES)
        self._named_port_services: dict[str, list[Obj]] = {}
        self._services_generation: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"Admission({', '.join(p.name for p in self.plugins)})"

    def named_port_services(self, namespace: str) -> list[Obj]:
        """The namespace's stored Services with a named targetPort, kept until a Service
        changes (every pod write asks; the list is shared: do not modify it)."""
        store = self.registry.store
        generation = store.generation(netwarnings.SERVICES)
        if generation != self._services_generation:
            self._named_port_services = {}
            self._services_generation = generation
        found = self._named_port_services.get(namespace)
        if found is None:
            found = self._named_port_services[namespace] = netwarnings.named_port_services(
                entry.obj for entry in store.list(netwarnings.SERVICES, namespace))
        return found

    async def admit(self, request: Request) -> None:
        """Mutate `request.obj` in place, or raise the first plugin's refusal."""
        for plugin in self.plugins:
            if plugin.admit is not None and plugin.handles(request):
                await plugin.admit(self, request)

    def validate(self, request: Request) -> None:
        """The validating phase over the object about to be stored: raise the first refusal."""
        for plugin in self.plugins:
            if plugin.validate is not None and plugin.handles(request):
                plugin.validate(self, request)

    async def service_account(self, namespace: str, name: str) -> Obj | None:
        """The ServiceAccount, waiting up to `account_wait` for `default` to be created."""
        store = self.registry.store
        entry = store.get("core/serviceaccounts", namespace, name)
        if entry is not None or name != DEFAULT_ACCOUNT or self.account_wait <= 0:
            return entry.obj if entry is not None else None
        watcher = store.watch("core/serviceaccounts", namespace, None,
                              matcher=lambda obj: obj["metadata"].get("name") == name)
        try:
            async with asyncio.timeout(self.account_wait):
                while True:
                    event = await watcher.queue.get()
                    if event is None:
                        return None
                    if event.type != "DELETED":
                        return event.entry.obj
        except TimeoutError:
            return None
        finally:
            watcher.close()


def forbidden(request: Request, message: str) -> errors.Forbidden:
    """`admission.NewForbidden`: `<resource> "<name>" is forbidden: <message>`; the name is
    the generateName prefix while the real name is not chosen yet."""
    meta = request.obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or "Unknown"
    return errors.Forbidden.for_object(request.res.plural, request.res.group, name, message)


# --- the plugins, in kube-apiserver's order ----------------------------------------------------

async def _namespace_lifecycle(admission: Admission, request: Request) -> None:
    admission.registry.check_namespace(request.res, request.namespace, creating=True)


def _pod_spec(request: Request) -> Obj:
    spec = request.obj.get("spec")
    if not isinstance(spec, dict):
        spec = request.obj["spec"] = {}
    return spec


async def _service_account(admission: Admission, request: Request) -> None:
    spec = _pod_spec(request)
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    account = await admission.service_account(request.namespace, name)
    if account is None:
        raise forbidden(request, f"error looking up service account {request.namespace}/{name}: "
                                 f'serviceaccount "{name}" not found')
    if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name", "")}
                                    for s in account["imagePullSecrets"]]
    if spec.get("automountServiceAccountToken") is None and \
            account.get("automountServiceAccountToken") is False:
        spec["automountServiceAccountToken"] = False  # the kubelet mounts no token


def _tolerates(tolerations: list[Obj], key: str) -> bool:
    """Whether some toleration covers `key:NoExecute` (an empty key or effect matches all)."""
    return any(isinstance(t, dict) and (t.get("key") or "") in ("", key)
               and (t.get("effect") or "") in ("", "NoExecute") for t in tolerations)


async def _pod_security(admission: Admission, request: Request) -> None:
    kind, obj, store = request.res.kind, request.obj, admission.registry.store
    if kind == "Namespace":
        _pod_security_namespace(admission, request)
        return
    entry = store.get("core/namespaces", "", request.namespace)
    labels = (entry.obj.get("metadata") or {}).get("labels") if entry is not None else None
    nspolicy, label_errors = pod_security_policy.policy_of(labels)
    if kind == "Pod":
        if not label_errors and nspolicy.fully_privileged:
            return
        if request.old is not None and not pod_security.significant_pod_update(obj, request.old):
            return
        verdict = pod_security.review_pod(nspolicy, obj.get("metadata") or {},
                                          obj.get("spec") or {}, enforce=True)
    else:
        template = pod_security.template_of(kind, obj)
        if template is None or (not label_errors and nspolicy.warn.level == "privileged"):
            return
        verdict = pod_security.review_pod(nspolicy, *template, enforce=False)
    if verdict.refusal is not None:
        raise forbidden(request, verdict.refusal)
    request.warnings.extend(verdict.warnings)


def _pod_security_namespace(admission: Admission, request: Request) -> None:
    """Bad labels refuse the write (422, as validation would); a stricter enforce level
    warns about the pods already there."""
    bad = pod_security.label_errors(request.obj, request.old)
    if bad:
        name = str((request.obj.get("metadata") or {}).get("name") or "")
        raise errors.Invalid("Namespace", "", name, bad)
    if request.old is not None:
        name = str((request.obj.get("metadata") or {}).get("name") or "")
        pods = [e.obj for e in admission.registry.store.list("core/pods", name)]
        verdict = pod_security.review_namespace_update(request.obj, request.old, pods)
        request.warnings.extend(verdict.warnings)


def _default_priority_class(admission: Admission) -> Obj | None:
    """The `globalDefault` PriorityClass; of several (a race), the lowest value's."""
    defaults = [e.obj for e in admission.registry.store.list("scheduling.k8s.io/priorityclasses")
                if e.obj.get("globalDefault") is True]
    return min(defaults, key=lambda pc: pc.get("value", 0), default=None)


async def _priority(admission: Admission, request: Request) -> None:
    if request.res.kind == "PriorityClass":
        _priority_class_default(admission, request)
        return
    spec = _pod_spec(request)
    if request.old is not None:  # update: what the plugin set on create stays
        old_spec = request.old.get("spec") or {}
        for key in ("priority", "preemptionPolicy"):
            if spec.get(key) is None and old_spec.get(key) is not None:
                spec[key] = old_spec[key]
        return
    name = spec.get("priorityClassName") or ""
    if name:
        entry = admission.registry.store.get("scheduling.k8s.io/priorityclasses", "", name)
        if entry is None:
            raise forbidden(request, f"no PriorityClass with name {name} was found")
        chosen: Obj | None = entry.obj
    else:
        chosen = _default_priority_class(admission)
        if chosen is not None:
            spec["priorityClassName"] = chosen["metadata"]["name"]
    value = chosen.get("value", 0) if chosen is not None else 0
    policy = (chosen.get("preemptionPolicy") if chosen is not None
              else None) or "PreemptLowerPriority"
    if spec.get("priority") is not None and spec["priority"] != value:
        raise forbidden(request, f"the integer value of priority ({spec['priority']}) must not be "
                                 f"provided in pod spec; priority admission controller computed "
                                 f"{value} from the given PriorityClass name")
    if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
        raise forbidden(request, f"the string value of PreemptionPolicy "
                                 f"({spec['preemptionPolicy']}) must not be provided in pod spec; "
                                 f"priority admission controller computed {policy} from the "
                                 "given PriorityClass name")
    spec["priority"], spec["preemptionPolicy"] = value, policy


def _priority_class_default(admission: Admission, request: Request) -> None:
    """Only one PriorityClass may be the `globalDefault`."""
    if request.obj.get("globalDefault") is not True:
        return
    current = _default_priority_class(admission)
    if current is None:
        return
    current_name = current["metadata"]["name"]
    if request.old is None or current_name != (request.obj.get("metadata") or {}).get("name"):
        raise forbidden(request, f"PriorityClass {current_name} is already marked as default. "
                                 "Only one default can exist")


async def _default_toleration_seconds(admission: Admission, request: Request) -> None:
    spec = _pod_spec(request)
    tolerations = spec.get("tolerations") or []
    if not isinstance(tolerations, list):
        return  # not a list: validation refuses it
    tolerations = list(tolerations)
    for key in DEFAULT_TOLERATIONS:
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": TOLERATION_SECONDS})
    spec["tolerations"] = tolerations


BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
PROTECTION_FINALIZERS = {"PersistentVolumeClaim": "kubernetes.io/pvc-protection",
                         "PersistentVolume": "kubernetes.io/pv-protection"}


async def _default_storage_class(admission: Admission, request: Request) -> None:
    spec = request.obj.get("spec")
    if not isinstance(spec, dict):
        spec = request.obj["spec"] = {}
    annotations = request.obj.get("metadata", {}).get("annotations") or {}
    if spec.get("storageClassName") is not None or BETA_CLASS_ANNOTATION in annotations:
        return
    entries = admission.registry.store.list("storage.k8s.io/storageclasses")
    chosen = default_storage_class([e.obj for e in entries])
    if chosen is not None:
        spec["storageClassName"] = chosen["metadata"]["name"]


async def _storage_object_in_use_protection(admission: Admission, request: Request) -> None:
    meta = request.obj.setdefault("metadata", {})
    finalizers = meta.get("finalizers")
    if not isinstance(finalizers, list):
        finalizers = []
    finalizer = PROTECTION_FINALIZERS[request.res.kind]
    if finalizer not in finalizers:
        meta["finalizers"] = [*finalizers, finalizer]


def _limit_ranges(admission: Admission, namespace: str) -> list[Obj]:
    entries = admission.registry.store.list("core/limitranges", namespace)
    return sorted((e.obj for e in entries), key=lambda lr: str(lr["metadata"].get("name")))


async def _limit_ranger_admit(admission: Admission, request: Request) -> None:
    if request.res.kind != "Pod" or request.operation != CREATE:
        return  # claims are only checked; a pod's containers cannot change after create
    for limit_range in _limit_ranges(admission, request.namespace):
        limitrange.apply_defaults(request.obj, limit_range)


def _limit_ranger_validate(admission: Admission, request: Request) -> None:
    if request.res.kind == "Pod" and request.operation != CREATE:
        return  # a pod's containers cannot change: upstream skips pod updates
    if request.old is not None and request.old["metadata"].get("deletionTimestamp"):
        return
    check = limitrange.pod_violations if request.res.kind == "Pod" \
        else limitrange.claim_violations
    for limit_range in _limit_ranges(admission, request.namespace):
        found = check(request.obj, limit_range)
        if found:
            raise forbidden(request, limitrange.message(found))


QUOTA_CONFLICT_RETRIES = 3


def _resource_quota(admission: Admission, request: Request) -> None:
    if not request.res.namespaced or not request.namespace:
        return
    store, res = admission.registry.store, request.res
    if request.operation not in quota.evaluator_for(res.group, res.plural).operations:
        return  # e.g. a pod update: nothing it changes is charged
    for _attempt in range(QUOTA_CONFLICT_RETRIES):
        entries = {e.obj["metadata"]["name"]: e
                   for e in store.list("core/resourcequotas", request.namespace)}
        decision = quota.charge([e.obj for e in entries.values()], request.operation,
                                res.group, res.plural, request.obj, request.old,
                                admission.registry.clock())
        if decision.refusal is not None:
            raise forbidden(request, decision.refusal)
        if request.dry_run:
            return
        try:
            for name, used in decision.used.items():
                _charge(admission, entries[name], used)
            return
        except errors.Conflict:
            continue  # a quota changed under us (another API server): decide again
    raise errors.Conflict("Operation cannot be fulfilled on resourcequotas: the quota was "
                          "modified meanwhile, please try again")


def _charge(admission: Admission, stored: Entry, used: dict[str, str]) -> None:
    """Write a quota's new `status.used`, on the condition that it did not change."""
    res = resources.must("", "v1", "resourcequotas")
    status = {**(stored.obj.get("status") or {}), "used": used}
    meta = {**stored.obj["metadata"], "resourceVersion": str(stored.rv)}
    admission.registry.update(res, {**stored.obj, "metadata": meta, "status": status},
                              subresource="status")


_PODS = frozenset({"Pod"})
def _networking_warnings(admission: Admission, request: Request) -> None:
    """Warn (never refuse) about Service/DNS mistakes, looking at the stored objects."""
    store = admission.registry.store

    def lookup(key: str, namespace: str) -> list[Obj]:
        if key == netwarnings.NAMED_PORT_SERVICES:
            return admission.named_port_services(namespace)
        return [entry.obj for entry in store.list(key, namespace)]

    request.warnings.extend(netwarnings.warnings(request.res.kind, request.obj, lookup))


PLUGINS: tuple[Plugin, ...] = (
    Plugin("NamespaceLifecycle", None, frozenset({CREATE}), _namespace_lifecycle),
    Plugin("LimitRanger", frozenset({"Pod", "PersistentVolumeClaim"}),
           frozenset({CREATE, UPDATE}), _limit_ranger_admit, _limit_ranger_validate),
    Plugin("ServiceAccount", _PODS, frozenset({CREATE}), _service_account),
    Plugin("PodSecurity", frozenset({"Pod", "Namespace", *pod_security.TEMPLATES}),
           frozenset({CREATE, UPDATE}), _pod_security),
    Plugin("Priority", frozenset({"Pod", "PriorityClass"}), frozenset({CREATE, UPDATE}),
           _priority),
    Plugin("DefaultTolerationSeconds", _PODS, frozenset({CREATE, UPDATE}),
           _default_toleration_seconds),
    Plugin("DefaultStorageClass", frozenset({"PersistentVolumeClaim"}), frozenset({CREATE}),
           _default_storage_class),
    Plugin("StorageObjectInUseProtection", frozenset(PROTECTION_FINALIZERS),
           frozenset({CREATE}), _storage_object_in_use_protection),
    # Upstream in the RBAC storage, before validation: no escalation through RBAC objects.
    Plugin("RBACEscalation", rbac_escalation.KINDS, frozenset({CREATE, UPDATE}),
           rbac_escalation.check),
    # tinykube's own, warnings only (upstream has no such plugin; see api/netwarnings.py)
    Plugin("NetworkingWarnings", netwarnings.KINDS, frozenset({CREATE, UPDATE}),
           validate=_networking_warnings),
    # CEL policies (`admission_policies`): validating, before the quota is charged.
    Plugin("ValidatingAdmissionPolicy", None, frozenset({CREATE, UPDATE}),
           validate=admission_policies.validate),
    Plugin("ResourceQuota", None, frozenset({CREATE, UPDATE}),
           validate=_resource_quota),
)
