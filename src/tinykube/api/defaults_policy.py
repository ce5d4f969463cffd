"""kube's defaults for the policy and cluster-configuration kinds, on their storage shape.

- PriorityClass: `preemptionPolicy: PreemptLowerPriority` (`SetDefaults_PriorityClass`), and
  `value: 0` when absent (a plain int32 in Go: a manifest without it decodes as 0).
- HorizontalPodAutoscaler (autoscaling/v2, the storage version of v1 too): `minReplicas: 1`
  and, without metrics, the CPU utilization target of 80% that the controller would otherwise
  assume; a `behavior` that is given gets its missing scale-up and scale-down rules filled
  (`SetDefaults_HorizontalPodAutoscalerBehavior`).
- FlowSchema: `matchingPrecedence: 1000`; PriorityLevelConfiguration: a Limited level's
  `nominalConcurrencyShares: 30`, `lendablePercent: 0` and, for `Queue`, `queues: 64`,
  `handSize: 8`, `queueLengthLimit: 50`.
- CertificateSigningRequest: nothing (usages are required in v1).
- MutatingAdmissionPolicy (v1alpha1): `failurePolicy: Fail`, and in its `matchConstraints` (and
  a binding's `matchResources`) `matchPolicy: Equivalent`, empty selectors, rules' `scope: "*"`.
  `reinvocationPolicy` has no default (it is required).

`DEFAULTERS` is merged into `api.defaults`' table; each function mutates a copy it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]

DEFAULT_CPU_UTILIZATION = 80
_SCALE_UP: Obj = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN: Obj = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _dict(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _priority_class(pc: Obj) -> None:
    pc.setdefault("value", 0)
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _rules(rules: Any, defaults: Obj) -> Obj:
    if not isinstance(rules, dict):
        return {key: [dict(p) for p in value] if isinstance(value, list) else value
                for key, value in defaults.items()}
    for key, value in defaults.items():
        if rules.get(key) is None:
            rules[key] = [dict(p) for p in value] if isinstance(value, list) else value
    return rules


def _hpa(hpa: Obj) -> None:
    spec = _dict(hpa, "spec")
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _rules(behavior.get("scaleDown"), _SCALE_DOWN)


def _flow_schema(fs: Obj) -> None:
    _dict(fs, "spec").setdefault("matchingPrecedence", 1000)


def _priority_level(plc: Obj) -> None:
    spec = _dict(plc, "spec")
    limited = spec.get("limited")
    if spec.get("type") != "Limited" or not isinstance(limited, dict):
        return
    limited.setdefault("nominalConcurrencyShares", 30)
    limited.setdefault("lendablePercent", 0)
    response = limited.get("limitResponse")
    if isinstance(response, dict) and response.get("type") == "Queue":
        queuing = _dict(response, "queuing")
        for key, value in (("queues", 64), ("handSize", 8), ("queueLengthLimit", 50)):
            queuing.setdefault(key, value)


def _default_match(match: Any) -> None:
    if not isinstance(match, dict):
        return
    match.setdefault("matchPolicy", "Equivalent")
    match.setdefault("namespaceSelector", {})
    match.setdefault("objectSelector", {})
    for rule in match.get("resourceRules") or []:
        if isinstance(rule, dict):
            rule.setdefault("scope", "*")


def _default_policy(policy: Obj) -> None:
    spec = policy.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("failurePolicy", "Fail")
        _default_match(spec.get("matchConstraints"))


def _default_binding(binding: Obj) -> None:
    spec = binding.get("spec")
    if isinstance(spec, dict):
        _default_match(spec.get("matchResources"))


DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "MutatingAdmissionPolicy": _default_policy,
    "MutatingAdmissionPolicyBinding": _default_binding,
    "PriorityClass": _priority_class,
    "HorizontalPodAutoscaler": _hpa,
    "FlowSchema": _flow_schema,
    "PriorityLevelConfiguration": _priority_level,
}
