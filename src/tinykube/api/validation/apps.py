"""Replicated workloads: StatefulSet, Deployment, ReplicaSet and DaemonSet
(`pkg/apis/apps/validation`), and the core ReplicationController.

The apps kinds share `_validate_selector_and_template` (replicas, a non-empty selector matching the
template labels, the pod template). A StatefulSet's template mounts may name its
`volumeClaimTemplates` as well as its volumes: the controller adds one volume per claim to each
pod. (Upstream skips the template's pod spec for StatefulSets altogether for that reason, with a
TODO to check mounts against volumes plus claims; that union is what is checked here, so a mount
naming neither is still refused at once rather than as pods that can never be created.)
StatefulSets add the pod management policy, update strategy and PVC retention rules, and
allow only a few spec fields to change; Deployments add the strategy (Recreate /
RollingUpdate with int-or-percent bounds) and the deadline rules. The selector of a Deployment,
ReplicaSet or DaemonSet is immutable. DaemonSets have no replicas and add their update strategy
(RollingUpdate bounds as a Deployment's). A ReplicationController's selector is a plain label
map, required (it defaults to the template's labels) and mutable.
"""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.validation.meta import selector_matches, validate_label_selector
from tinykube.api.validation.names import (
    PERCENT_FMT,
    PERCENT_MSG,
    PERCENT_RE,
    Errors,
    Obj,
    check_non_negative,
    regex_error,
)
from tinykube.api.validation.pods import validate_template
from tinykube.api.validation.render import go_map, go_selector, go_str, raw


def _validate_selector_and_template(spec: Obj, kind_word: str,
                                    claims: frozenset[str] = frozenset()) -> Errors:
    selector = spec.get("selector")
    errors = check_non_negative("spec.replicas", spec.get("replicas"))
    selector_errors: Errors = []
    if not isinstance(selector, dict):
        errors.append(FieldError.required("spec.selector"))
    else:
        selector_errors = validate_label_selector(selector, "spec.selector")
        errors += selector_errors
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errors.append(raw("FieldValueInvalid", "spec.selector", go_selector(selector),
                              f"empty selector is invalid for {kind_word}"))
    template = spec.get("template")
    if isinstance(selector, dict) and isinstance(template, dict) and not selector_errors and (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        labels = (template.get("metadata") or {}).get("labels")
        if not selector_matches(selector, labels):
            errors.append(raw("FieldValueInvalid", "spec.template.metadata.labels",
                              go_map(labels or {}),
                              "`selector` does not match template `labels`"))
    errors += validate_template(spec, "spec.template", claims=claims)
    return errors


def _validate_sts_update_strategy(strategy: Obj) -> Errors:
    strategy_type, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not strategy_type:
        return [FieldError.required("spec.updateStrategy")]
    if strategy_type == "OnDelete" and rolling is not None:
        partition = rolling.get("partition", 0)
        rendered = (f"apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, "
                    "MaxUnavailable:(*intstr.IntOrString)(nil)}")
        return [raw("FieldValueInvalid", "spec.updateStrategy.rollingUpdate", rendered,
                    "only allowed for updateStrategy 'RollingUpdate'")]
    if strategy_type == "RollingUpdate":
        return check_non_negative("spec.updateStrategy.rollingUpdate.partition",
                                  (rolling or {}).get("partition"))
    if strategy_type != "OnDelete":
        rendered = (f"apps.StatefulSetUpdateStrategy{{Type:{go_str(strategy_type)}, "
                    "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}")
        return [raw("FieldValueInvalid", "spec.updateStrategy", rendered,
                    "must be 'RollingUpdate' or 'OnDelete'")]
    return []


def validate_statefulset(sts: Obj) -> Errors:
    spec = sts.get("spec") or {}
    errors: Errors = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        errors.append(FieldError.required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errors.append(FieldError.invalid("spec.podManagementPolicy", policy,
                                         "must be 'OrderedReady' or 'Parallel'"))
    errors += _validate_sts_update_strategy(spec.get("updateStrategy") or {})
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        value = retention.get(key)
        if value and value not in ("Retain", "Delete"):
            errors.append(FieldError.not_supported(
                f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, ["Retain", "Delete"]))
    errors += check_non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errors += _validate_selector_and_template(spec, "statefulset", _claim_names(spec))
    return errors


def _claim_names(spec: Obj) -> frozenset[str]:
    """The `volumeClaimTemplates` names: each becomes a volume of every pod of the set (its
    controller adds them), so the template's mounts may name them."""
    return frozenset(str((claim.get("metadata") or {}).get("name") or "")
                     for claim in spec.get("volumeClaimTemplates") or []
                     if isinstance(claim, dict)) - {""}


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
_STS_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def validate_statefulset_update(sts: Obj, old: Obj) -> Errors:
    spec, old_spec = sts.get("spec") or {}, old.get("spec") or {}
    frozen_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
    frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
    if frozen_new != frozen_old:
        return [FieldError.forbidden("spec", _STS_FORBIDDEN)]
    return []


def _int_or_percent_value(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and PERCENT_RE.match(value):
        return int(value[:-1])
    return None


def _validate_int_or_percent(value: Any, field: str) -> Errors:
    if isinstance(value, str):
        if not PERCENT_RE.match(value):
            return [raw("FieldValueInvalid", field, value,
                        regex_error(PERCENT_MSG, PERCENT_FMT, "1%", "93%"))]
        return []
    return check_non_negative(field, value)


def _validate_rolling_update(rolling: Obj, path: str) -> Errors:
    max_unavailable, max_surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errors = _validate_int_or_percent(max_unavailable, f"{path}.maxUnavailable")
    errors += _validate_int_or_percent(max_surge, f"{path}.maxSurge")
    if _int_or_percent_value(max_unavailable) == 0 and _int_or_percent_value(max_surge) == 0:
        errors.append(raw("FieldValueInvalid", f"{path}.maxUnavailable", str(max_unavailable),
                          "may not be 0 when `maxSurge` is 0"))
    if isinstance(max_unavailable, str) and (_int_or_percent_value(max_unavailable) or 0) > 100:
        errors.append(raw("FieldValueInvalid", f"{path}.maxUnavailable", max_unavailable,
                          "must not be greater than 100%"))
    return errors


def _validate_deployment_strategy(strategy: Obj) -> Errors:
    strategy_type, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if strategy_type == "Recreate":
        if rolling is not None:
            return [FieldError.forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if strategy_type == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [FieldError.required("spec.strategy.rollingUpdate",
                                        "this should be defaulted and never be nil")]
        return _validate_rolling_update(rolling, "spec.strategy.rollingUpdate")
    rendered_rolling = "(*apps.RollingUpdateDeployment)(nil)" if rolling is None else \
        "(*apps.RollingUpdateDeployment)(0xc000000000)"
    rendered = (f"apps.DeploymentStrategy{{Type:{go_str(strategy_type or '')}, "
                f"RollingUpdate:{rendered_rolling}}}")
    detail = 'supported values: "Recreate", "RollingUpdate"'
    return [raw("FieldValueNotSupported", "spec.strategy", rendered, detail)]


def validate_deployment(deploy: Obj) -> Errors:
    spec = deploy.get("spec") or {}
    errors = _validate_selector_and_template(spec, "deployment")
    errors += _validate_deployment_strategy(spec.get("strategy") or {})
    for key in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        errors += check_non_negative(f"spec.{key}", spec.get(key))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(deadline, int) and deadline <= min_ready:
        errors.append(FieldError.invalid("spec.progressDeadlineSeconds", deadline,
                                         "must be greater than minReadySeconds"))
    return errors


def validate_replicaset(rs: Obj) -> Errors:
    spec = rs.get("spec") or {}
    errors = _validate_selector_and_template(spec, "deployment")  # upstream's wording, sic
    errors += check_non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return errors


def validate_selector_update(obj: Obj, old: Obj) -> Errors:
    selector = (obj.get("spec") or {}).get("selector")
    if selector != (old.get("spec") or {}).get("selector"):
        return [raw("FieldValueInvalid", "spec.selector", go_selector(selector),
                    "field is immutable")]
    return []


def _validate_daemonset_strategy(strategy: Obj) -> Errors:
    strategy_type = strategy.get("type")
    if not strategy_type:
        return [FieldError.required("spec.updateStrategy.type")]
    if strategy_type not in ("RollingUpdate", "OnDelete"):
        return [FieldError.not_supported("spec.updateStrategy.type", strategy_type,
                                         ["OnDelete", "RollingUpdate"])]
    if strategy_type == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            return [FieldError.required("spec.updateStrategy.rollingUpdate")]
        return _validate_rolling_update(rolling, "spec.updateStrategy.rollingUpdate")
    return []


def validate_daemonset(ds: Obj) -> Errors:
    spec = ds.get("spec") or {}
    errors = _validate_selector_and_template(spec, "daemonset")
    errors += _validate_daemonset_strategy(spec.get("updateStrategy") or {})
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        errors += check_non_negative(f"spec.{key}", spec.get(key))
    return errors


def validate_replication_controller(rc: Obj) -> Errors:
    """`ValidateReplicationControllerSpec`: the selector is a plain label map (defaulted from
    the template's labels), which the template's labels must match."""
    spec = rc.get("spec") or {}
    errors = check_non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = spec.get("selector")
    if not selector:
        errors.append(FieldError.required("spec.selector"))
    errors += check_non_negative("spec.replicas", spec.get("replicas"))
    template = spec.get("template")
    if isinstance(template, dict) and selector:
        labels = (template.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            errors.append(raw("FieldValueInvalid", "spec.template.metadata.labels",
                              go_map(labels), "`selector` does not match template `labels`"))
    errors += validate_template(spec, "spec.template")
    return errors

