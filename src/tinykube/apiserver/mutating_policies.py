"""The MutatingAdmissionPolicy plugin: every binding's policy over each create and update.

kube-apiserver 1.32 runs it (with the `MutatingAdmissionPolicy` gate) as the mutating plugin
just before MutatingAdmissionWebhook, so policies see the object the built-in mutating plugins
left, and webhooks, schema validation, ValidatingAdmissionPolicy and the validating webhooks
see what the policies made. Here `mutate` runs between `Admission.admit` and the mutating
webhooks (`handlers`), on the defaulted object, in place.

Invocations are (binding, param) pairs of the MutatingAdmissionPolicyBindings, ordered by
binding name, whose policy exists and matches the write (`api.admission_policy.matches` on
the policy's `matchConstraints` and the binding's `matchResources`; params as
ValidatingAdmissionPolicy finds them: `admission_policies.params`). Each runs its policy's
mutations (`api.mutating_policy.mutate`) and the result is defaulted again, as kube defaults
after each patch. Writes of the four policy kinds are exempt, as in kube.

Failures (`PolicyError`, and params missing under `parameterNotFoundAction: Deny`) are
ignored under `failurePolicy: Ignore`; under `Fail` (the default) the write is refused after
all invocations ran, with kube's Status: code 403, reason Invalid, message `policy 'P' with
binding 'B' denied request: <error>` and one cause per failure.

`reinvocationPolicy: IfNeeded` (`Rounds`): as kube's reinvocation context does, a policy that
changed the object makes every earlier IfNeeded invocation due again, and so does any change
by the mutating webhooks after the policies ran; `reinvoke` then runs the due invocations once
more (after the webhooks; kube's admission chain would also run the webhooks again after that
second round, tinykube's webhooks reinvoke only among themselves).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from tinykube.api import admission_policy as vap
from tinykube.api import errors, resources
from tinykube.api import mutating_policy as map_api
from tinykube.api.clone import clone
from tinykube.apiserver import admission_policies
from tinykube.apiserver.registry import Registry, defaulted

if TYPE_CHECKING:
    from tinykube.apiserver.admission import Admission, Request

Obj = dict[str, Any]
GROUP = map_api.GROUP
POLICIES = f"{GROUP}/mutatingadmissionpolicies"
BINDINGS = f"{GROUP}/mutatingadmissionpolicybindings"
EXEMPT = frozenset({"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"})
Key = tuple[str, str, str]  # (policy, binding, param namespace/name)


@dataclasses.dataclass
class Rounds:
    """One request's reinvocation state (kube's policyReinvokeContext)."""

    invoked: list[Key] = dataclasses.field(default_factory=list)  # IfNeeded ones, in order
    due: set[Key] = dataclasses.field(default_factory=set)
    last_output: Obj | None = None

    def require_previous(self) -> None:
        self.due.update(self.invoked)


@dataclasses.dataclass(frozen=True)
class _Invocation:
    policy: Obj
    binding: Obj
    param: Obj | None
    missing: bool = False  # params not found under Deny

    @property
    def key(self) -> Key:
        meta = (self.param or {}).get("metadata") or {}
        return (self.policy["metadata"]["name"], self.binding["metadata"]["name"],
                f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _invocations(admission: Admission, request: Request, attrs: vap.Attributes,
                 namespace: Obj | None) -> list[_Invocation]:
    store = admission.registry.store
    found: list[_Invocation] = []
    for entry in sorted(store.list(BINDINGS, None), key=lambda e: e.obj["metadata"]["name"]):
        binding = entry.obj
        bspec = binding.get("spec") or {}
        policy_entry = store.get(POLICIES, "", str(bspec.get("policyName") or ""))
        if policy_entry is None:
            continue
        policy = policy_entry.obj
        if not vap.matches((policy.get("spec") or {}).get("matchConstraints"), attrs,
                           namespace) or \
                not vap.matches(bspec.get("matchResources"), attrs, namespace):
            continue
        params = admission_policies.params(admission, policy, binding, request)
        if params is None:
            found.append(_Invocation(policy, binding, None, missing=True))
        found += [_Invocation(policy, binding, param) for param in params or []]
    return found


def _target(registry: Registry, request: Request) -> map_api.Target:
    res = request.res
    return map_api.Target(res.api_version, res.kind, registry.shape(res),
                          builtin=res.custom is None)


def _applies(request: Request) -> bool:
    return not (request.res.kind in EXEMPT and request.res.group == GROUP) and \
        resources.lookup(GROUP, map_api.VERSION, "mutatingadmissionpolicies") is not None


def mutate(admission: Admission, request: Request, rounds: Rounds) -> None:
    """The first round: every matching invocation, `request.obj` changed in place."""
    if _applies(request):
        _run(admission, request, rounds, reinvoking=False)


def reinvoke(admission: Admission, request: Request, rounds: Rounds) -> None:
    """The second round, after the mutating webhooks: the IfNeeded invocations now due."""
    if not _applies(request) or rounds.last_output is None:
        return
    if request.obj != rounds.last_output:  # the webhooks changed it
        rounds.require_previous()
    if rounds.due:
        _run(admission, request, rounds, reinvoking=True)


def _run(admission: Admission, request: Request, rounds: Rounds, *, reinvoking: bool) -> None:
    store = admission.registry.store
    if not store.list(BINDINGS, None):
        return
    attrs = admission_policies.attributes(request)
    ns_entry = store.get("core/namespaces", "", request.namespace) \
        if request.namespace and request.res.kind != "Namespace" else None
    namespace = ns_entry.obj if ns_entry is not None else None
    invocations = _invocations(admission, request, attrs, namespace)
    if invocations and not reinvoking:  # as kube decodes it: defaulted
        _replace(request, defaulted(request.res, request.obj))
    target = _target(admission.registry, request)
    configuration: list[tuple[_Invocation, str]] = []  # kube lists these first, as Forbidden
    failures: list[tuple[_Invocation, str]] = []
    for invocation in invocations:
        if invocation.missing:
            if not reinvoking:  # refused (or ignored) in the first round already
                configuration.append((invocation, "failed to configure binding: no params "
                                      "found for policy binding with `Deny` "
                                      "parameterNotFoundAction"))
            continue
        if reinvoking and invocation.key not in rounds.due:
            continue
        before = request.obj
        try:
            outcome = map_api.mutate(invocation.policy, dataclasses.replace(attrs, obj=before),
                                     invocation.param, namespace, target)
        except map_api.PolicyError as exc:
            failures.append((invocation, str(exc)))
            continue
        failures += [(invocation, message) for message in outcome.errors]
        result = outcome.obj
        if result is not None and result != before:
            _replace(request, defaulted(request.res, result))
            rounds.require_previous()
        spec = invocation.policy.get("spec") or {}
        if spec.get("reinvocationPolicy") == "IfNeeded" and invocation.key not in rounds.invoked:
            rounds.invoked.append(invocation.key)
    rounds.last_output = clone(request.obj)
    _refuse(request, _failing(configuration), _failing(failures))


def _failing(failures: list[tuple[_Invocation, str]]) -> list[tuple[_Invocation, str]]:
    return [(i, m) for i, m in failures
            if (i.policy.get("spec") or {}).get("failurePolicy") != "Ignore"]


def _replace(request: Request, obj: Obj) -> None:
    """The mutated object in place of `request.obj` (the caller holds that dict)."""
    request.obj.clear()
    request.obj.update(obj)


def _refuse(request: Request, configuration: list[tuple[_Invocation, str]],
            failures: list[tuple[_Invocation, str]]) -> None:
    """kube's policy denial: a Forbidden (403) whose message is the first failure's and whose
    reason is Invalid unless that failure is a configuration error (params not found)."""
    found = configuration + failures
    if not found:
        return
    messages = [f"policy '{i.policy['metadata']['name']}' with binding "
                f"'{i.binding['metadata']['name']}' denied request: {m}" for i, m in found]
    base = errors.Forbidden.for_object(request.res.plural, request.res.group,
                                       admission_policies.attrs_name(request),
                                       "admission request denied by policy")
    error = errors.Forbidden(messages[0], details={
        **(base.details or {}), "causes": [{"message": m} for m in messages]})
    if not configuration:
        error.reason = "Invalid"
    raise error
