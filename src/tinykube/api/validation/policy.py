"""RBAC, PodDisruptionBudget, HorizontalPodAutoscaler, PriorityClass, CertificateSigningRequest,
IngressClass and APIService: the checks users meet, worded as kube-apiserver's validation
(`pkg/apis/rbac/validation`, `policy/validation`, `autoscaling/validation`,
`scheduling/validation`, `certificates/validation`, `networking/validation` and
kube-aggregator's).

- RBAC names are path segments (`system:controller:foo` is fine, `a/b` is not); a binding's
  `roleRef` names a Role or ClusterRole of rbac.authorization.k8s.io and cannot change;
  a ServiceAccount subject needs a namespace; a rule needs verbs, and resource rules an API group.
- A PDB sets at most one of `minAvailable` and `maxUnavailable`.
- An HPA has a target, `maxReplicas >= 1` and `minReplicas <= maxReplicas`.
- A PriorityClass's value and preemptionPolicy cannot change, `system-` names are kube's own
  (with kube's values), and a user's value is at most 1000000000.
- CertificateSigningRequest: see `validation.certificates`.
- An IngressClass's controller is required and immutable.
- An APIService is named `<version>.<group>`.
"""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.validation.names import Errors, Obj, check_one_of

RBAC_GROUP = "rbac.authorization.k8s.io"
_SUBJECT_KINDS = ["ServiceAccount", "User", "Group"]


def _dict(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def path_segment_errors(name: str) -> list[str]:
    """apimachinery's path.IsValidPathSegmentName (RBAC and APIService names)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _rules(rules: Any, *, namespaced: bool) -> Errors:
    errors: Errors = []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        rule = rule if isinstance(rule, dict) else {}
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            errors.append(FieldError.required(f"{path}.verbs",
                                              "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            if namespaced:
                errors.append(FieldError.invalid(f"{path}.nonResourceURLs",
                                                 rule["nonResourceURLs"],
                                                 "namespaced rules cannot apply to "
                                                 "non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errors.append(FieldError.invalid(
                    f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                    "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            errors.append(FieldError.required(f"{path}.apiGroups",
                                              "resource rules must supply at least one api "
                                              "group"))
        if not rule.get("resources"):
            errors.append(FieldError.required(f"{path}.resources",
                                              "resource rules must supply at least one "
                                              "resource"))
    return errors


def validate_role(role: Obj) -> Errors:
    return _rules(role.get("rules"), namespaced=True)


def validate_cluster_role(role: Obj) -> Errors:
    if role.get("aggregationRule") is not None and not (
            role["aggregationRule"] or {}).get("clusterRoleSelectors"):
        return [FieldError.required("aggregationRule.clusterRoleSelectors",
                                    "at least one clusterRoleSelector required if "
                                    "aggregationRule is non-nil")]
    return _rules(role.get("rules"), namespaced=False)


def _binding(binding: Obj, role_kinds: list[str]) -> Errors:
    errors: Errors = []
    ref = _dict(binding, "roleRef")
    if ref.get("apiGroup") != RBAC_GROUP:
        errors.append(FieldError.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""),
                                               [RBAC_GROUP]))
    if ref.get("kind") not in role_kinds:
        errors.append(FieldError.not_supported("roleRef.kind", ref.get("kind", ""),
                                               role_kinds))
    if not ref.get("name"):
        errors.append(FieldError.required("roleRef.name"))
    else:
        errors += [FieldError.invalid("roleRef.name", ref["name"], msg)
                   for msg in path_segment_errors(str(ref["name"]))]
    subjects = binding.get("subjects")
    for i, subject in enumerate(subjects if isinstance(subjects, list) else []):
        subject = subject if isinstance(subject, dict) else {}
        path = f"subjects[{i}]"
        if not subject.get("name"):
            errors.append(FieldError.required(f"{path}.name"))
        kind = subject.get("kind")
        if kind not in _SUBJECT_KINDS:
            errors.append(FieldError.not_supported(f"{path}.kind", kind or "", _SUBJECT_KINDS))
        elif kind == "ServiceAccount" and not subject.get("namespace"):
            errors.append(FieldError.required(f"{path}.namespace"))
    return errors


def validate_role_binding(binding: Obj) -> Errors:
    return _binding(binding, ["Role", "ClusterRole"])


def validate_cluster_role_binding(binding: Obj) -> Errors:
    return _binding(binding, ["ClusterRole"])


def validate_binding_update(new: Obj, old: Obj) -> Errors:
    if new.get("roleRef") != old.get("roleRef"):
        return [FieldError.invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def validate_pdb(pdb: Obj) -> Errors:
    spec = _dict(pdb, "spec")
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        return [FieldError.invalid("spec", spec,
                                   "minAvailable and maxUnavailable cannot be both set")]
    return []


def validate_hpa(hpa: Obj) -> Errors:
    spec = _dict(hpa, "spec")
    errors: Errors = []
    ref = _dict(spec, "scaleTargetRef")
    for field in ("kind", "name"):
        if not ref.get(field):
            errors.append(FieldError.required(f"spec.scaleTargetRef.{field}"))
    maximum, minimum = spec.get("maxReplicas"), spec.get("minReplicas")
    if not isinstance(maximum, int) or maximum < 1:
        errors.append(FieldError.invalid("spec.maxReplicas", maximum,
                                         "must be greater than or equal to 1"))
    elif isinstance(minimum, int) and minimum > maximum:
        errors.append(FieldError.invalid("spec.maxReplicas", maximum,
                                         "must be greater than or equal to `minReplicas`"))
    return errors


HIGHEST_USER_PRIORITY = 1000000000
SYSTEM_PRIORITY_VALUES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
PREEMPTION_POLICIES = ["Never", "PreemptLowerPriority"]


def _system_class_error(name: str, pc: Obj) -> str:
    """`IsKnownSystemPriorityClass`: "" for one of kube's own, as kube defines it."""
    if name not in SYSTEM_PRIORITY_VALUES:
        return f"{name} is not a known system priority class"
    if pc.get("value") != SYSTEM_PRIORITY_VALUES[name]:
        return f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_VALUES[name]}"
    if pc.get("globalDefault", False) is not False:
        return f"globalDefault of {name} PriorityClass must be false"
    return ""


def validate_priority_class(pc: Obj) -> Errors:
    name = str((pc.get("metadata") or {}).get("name") or "")
    errors: Errors = []
    value = pc.get("value")
    if name.startswith("system-"):
        error = _system_class_error(name, pc)
        if error:
            errors.append(FieldError.forbidden(
                "metadata.name", "priority class names with 'system-' prefix are reserved for "
                                 f"system use only. error: {error}"))
    elif isinstance(value, int) and value > HIGHEST_USER_PRIORITY:
        errors.append(FieldError.forbidden("value", "maximum allowed value of a user defined "
                                                    f"priority is {HIGHEST_USER_PRIORITY}"))
    if pc.get("preemptionPolicy") is not None:
        errors += check_one_of("preemptionPolicy", pc["preemptionPolicy"], PREEMPTION_POLICIES)
    return errors


def validate_priority_class_update(new: Obj, old: Obj) -> Errors:
    errors: Errors = []
    if new.get("value") != old.get("value"):
        errors.append(FieldError.forbidden("value", "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        errors.append(FieldError.invalid("preemptionPolicy", new.get("preemptionPolicy"),
                                         "field is immutable"))
    return errors


def validate_ingress_class(ic: Obj) -> Errors:
    spec = _dict(ic, "spec")
    if not spec.get("controller"):
        return [FieldError.required("spec.controller")]
    return []


def validate_ingress_class_update(new: Obj, old: Obj) -> Errors:
    controller = (new.get("spec") or {}).get("controller")
    if controller != (old.get("spec") or {}).get("controller"):
        return [FieldError.invalid("spec.controller", controller,
                                   "field is immutable")]
    return []


def validate_api_service(service: Obj) -> Errors:
    spec = _dict(service, "spec")
    name = str((service.get("metadata") or {}).get("name") or "")
    required = f"{spec.get('version', '')}.{spec.get('group', '')}"
    errors: Errors = []
    if name != required:
        errors.append(FieldError.invalid("metadata.name", name,
                                         f'must be `spec.version+"."+spec.group`: "{required}"'))
    if not spec.get("version"):
        errors.append(FieldError.required("spec.version"))
    return errors
