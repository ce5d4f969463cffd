"""The ValidatingAdmissionPolicy plugin: every binding's policy over each create and update.

kube-apiserver runs it in the validating phase (after mutation and schema validation, before
the validating webhooks and ResourceQuota). Here it is a `validate` row of the admission chain
(`admission.PLUGINS`): for each ValidatingAdmissionPolicyBinding whose policy exists and
matches the write, it looks up the namespace and the params (`paramKind` / `paramRef`) and
asks `api.admission_policy` for the decisions. The first Deny refuses the write with kube's
Status (reason from the validation, default Invalid: 422, `deployments.apps "web" is
forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression:
object.spec.replicas <= 5`); each Warn becomes a Warning header; the first Audit becomes the
audit event's `validation.policy.admission.k8s.io/validation_failure` annotation (a JSON list
of one failure: message, policy, binding, expressionIndex, validationActions; kube keeps the
first value a key gets). Each policy's `auditAnnotations` are published as `POLICY/KEY`, the
distinct values of its bindings (and params) joined with ", ", also when the write is denied.
Writes of the policies and bindings themselves are not checked by policies (kube exempts them
too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tinykube.api import admission_policy as vap
from tinykube.api import errors, resources, selectors
from tinykube.apiserver import access, audit

if TYPE_CHECKING:
    from tinykube.apiserver.admission import Admission, Request

Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
POLICIES = f"{GROUP}/validatingadmissionpolicies"
BINDINGS = f"{GROUP}/validatingadmissionpolicybindings"
EXEMPT = frozenset({"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"})


def attributes(request: Request) -> vap.Attributes:
    res, meta = request.res, request.obj.get("metadata") or {}
    current = access.current()
    user = current[0] if current is not None else access.ADMIN
    return vap.Attributes(
        operation=request.operation, group=res.group, version=res.version,
        resource=res.plural, kind=res.kind, namespaced=res.namespaced,
        namespace=request.namespace, name=str(meta.get("name") or ""), obj=request.obj,
        old=request.old, user={"username": user.name, "uid": user.uid,
                               "groups": list(user.groups)}, dry_run=request.dry_run,
        authorize=access.cel_authorizer())


def params(admission: Admission, policy: Obj, binding: Obj,
            request: Request) -> list[Obj | None] | None:
    """The params to evaluate the policy with ([None] without a paramKind), or None when
    they are missing and the binding says Deny."""
    kind = (policy.get("spec") or {}).get("paramKind")
    if not kind:
        return [None]
    ref = (binding.get("spec") or {}).get("paramRef") or {}
    res = resources.by_api_version(str(kind.get("apiVersion", "")), str(kind.get("kind", "")))
    found: list[Obj | None] = []
    if res is not None:
        store = admission.registry.store
        namespace = (ref.get("namespace") or request.namespace) if res.namespaced else ""
        if ref.get("name"):
            entry = store.get(res.storage_key, namespace, ref["name"])
            found = [entry.obj] if entry is not None else []
        elif ref.get("selector") is not None:
            selector = selectors.from_label_selector(ref["selector"])
            found = [e.obj for e in store.list(res.storage_key, namespace or None)
                     if selectors.match_labels(selector, e.obj["metadata"].get("labels"))]
    if found:
        return found
    return [] if ref.get("parameterNotFoundAction") == "Allow" else None


def validate(admission: Admission, request: Request) -> None:
    """Refuse the write on the first Deny; add a warning per Warn."""
    if request.res.kind in EXEMPT and request.res.group == GROUP:
        return
    store = admission.registry.store
    bindings = store.list(BINDINGS, None)
    if not bindings:
        return
    attrs = attributes(request)
    ns_entry = store.get("core/namespaces", "", request.namespace) if request.namespace \
        else None
    namespace = ns_entry.obj if ns_entry is not None else None
    denied: list[vap.Decision] = []
    published: dict[str, list[str]] = {}  # POLICY/KEY -> distinct values, in order
    for entry in sorted(bindings, key=lambda e: e.obj["metadata"]["name"]):
        binding = entry.obj
        name = (binding.get("spec") or {}).get("policyName", "")
        policy_entry = store.get(POLICIES, "", name)
        if policy_entry is None:
            continue
        policy = policy_entry.obj
        if not vap.matches((policy.get("spec") or {}).get("matchConstraints"), attrs,
                           namespace) or \
                not vap.matches((binding.get("spec") or {}).get("matchResources"), attrs,
                                namespace):
            continue
        outcome = vap.evaluate(policy, binding, attrs,
                               params(admission, policy, binding, request), namespace)
        for decision in outcome.decisions:
            if decision.action == "Deny":
                denied.append(decision)
            elif decision.action == "Warn":
                request.warnings.append(decision.warning)
            elif decision.action == "Audit":
                audit.annotate(VALIDATION_FAILURE, _failure_value(binding, decision))
        for key, value in outcome.annotations:
            values = published.setdefault(f"{name}/{key}", [])
            if value not in values:
                values.append(value)
    for key, values in published.items():
        audit.annotate(key, ", ".join(values))
    if denied:
        raise _refusal(request, denied[0])


VALIDATION_FAILURE = "validation.policy.admission.k8s.io/validation_failure"


def _failure_value(binding: Obj, decision: vap.Decision) -> str:
    """kube's ValidationFailureValue list, as Go's encoding/json writes it (compact, UTF-8,
    with `<`, `>`, `&`, U+2028 and U+2029 escaped)."""
    spec = binding.get("spec") or {}
    text = json.dumps([{"message": decision.message, "policy": spec.get("policyName", ""),
                        "binding": decision.binding, "expressionIndex": decision.index,
                        "validationActions": list(spec.get("validationActions") or [])}],
                      separators=(",", ":"), ensure_ascii=False)
    return text.translate(_GO_ESCAPES)


_GO_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"}


class _Denied(errors.APIError):
    """A policy's denial: Forbidden's message with the validation's reason and code."""


def _refusal(request: Request, decision: vap.Decision) -> errors.APIError:
    base = errors.Forbidden.for_object(request.res.plural, request.res.group,
                                       attrs_name(request), decision.text)
    error = _Denied(base.message, details={**(base.details or {}),
                                           "causes": [{"message": decision.text}]})
    error.reason = decision.reason
    error.code = vap.REASON_CODES.get(decision.reason, 500)
    return error


def attrs_name(request: Request) -> str:
    meta = request.obj.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "")
