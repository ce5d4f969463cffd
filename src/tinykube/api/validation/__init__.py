"""Validation of served kinds, worded as kube-apiserver words it.

`validate(kind, obj, old)` returns a list of `FieldError`s (empty means valid) for a create
(`old is None`) or an update. Objects are JSON-like dicts in their storage version and are
expected to be defaulted already (`api.defaults`), as upstream validates after defaulting: a
missing `spec.type` is therefore reported as `Required value`, just as upstream would.

Messages follow `pkg/apis/core/validation`, `pkg/apis/apps/validation` and apimachinery's
`util/validation` (names, labels, ports, IPs) so that kubectl prints the familiar lines.

Deliberately left to the caller: generateName, `resourceVersion` on create (a storage error
upstream, not a field error), carrying allocated/system fields from the old object into an
update (uid, creationTimestamp, clusterIP); empty values of those are not reported as changes.

The package, bottom up: `render` (Go `%#v` rendering), `names` (name/label/port/IP
primitives), `meta` (ObjectMeta and label selectors), then one module per group of kinds:
`pods`, `services`, `apps`, `batch`, `storage`, `ingress`, `netpol`, `other`, `policy`. A kind
without an entry in the tables still gets the structural schema's checks (`api.schema`, in the
codec) and the metadata rules: a new kind is a `resources` entry plus what is special about it.
This module holds the `_VALIDATORS` tables that `validate` dispatches on, and re-exports the
public helpers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from tinykube.api import resources
from tinykube.api.errors import FieldError
from tinykube.api.validation.apps import (
    validate_daemonset,
    validate_deployment,
    validate_replicaset,
    validate_replication_controller,
    validate_selector_update,
    validate_statefulset,
    validate_statefulset_update,
)
from tinykube.api.validation.batch import validate_cronjob, validate_job
from tinykube.api.validation.certificates import validate_csr, validate_csr_update
from tinykube.api.validation.ingress import validate_ingress
from tinykube.api.validation.meta import (
    NameCheck,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_meta,
    validate_meta_update,
)
from tinykube.api.validation.names import (
    Errors,
    Obj,
    config_key_errors,
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    port_name_errors,
    qualified_name_errors,
)
from tinykube.api.validation.netpol import validate_network_policy
from tinykube.api.validation.other import (
    validate_configmap,
    validate_endpoints,
    validate_endpointslice,
    validate_endpointslice_update,
    validate_immutable_data,
    validate_secret,
    validate_secret_update,
)
from tinykube.api.validation.pods import validate_pod, validate_pod_spec, validate_pod_update
from tinykube.api.validation.policy import (
    path_segment_errors,
    validate_api_service,
    validate_binding_update,
    validate_cluster_role,
    validate_cluster_role_binding,
    validate_hpa,
    validate_ingress_class,
    validate_ingress_class_update,
    validate_pdb,
    validate_priority_class,
    validate_priority_class_update,
    validate_role,
    validate_role_binding,
)
from tinykube.api.validation.services import validate_service, validate_service_update
from tinykube.api.validation.storage import (
    validate_persistent_volume,
    validate_storage_class,
    validate_storage_class_update,
)
from tinykube.api.validation.webhooks import (
    validate_mutating_configuration,
    validate_validating_configuration,
)

__all__ = [
    "Errors",
    "NameCheck",
    "Obj",
    "UpdateValidator",
    "Validator",
    "config_key_errors",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "label_value_errors",
    "port_name_errors",
    "qualified_name_errors",
    "validate",
    "validate_annotations",
    "validate_label_selector",
    "validate_labels",
    "validate_pod_spec",
]


Validator = Callable[[Obj], Errors]
UpdateValidator = Callable[[Obj, Obj], Errors]
# Kinds whose update rules depend on the subresource written (new, old, subresource).
SubresourceUpdateValidator = Callable[[Obj, Obj, str], Errors]

_NAME_CHECKS: dict[str, NameCheck] = {
    "Service": dns1035_label_errors,
    "Namespace": dns1123_label_errors,
    "Role": path_segment_errors,
    "ClusterRole": path_segment_errors,
    "RoleBinding": path_segment_errors,
    "ClusterRoleBinding": path_segment_errors,
    "APIService": path_segment_errors,
    "CertificateSigningRequest": lambda _name: [],  # "we don't care what you call" them
}

_VALIDATORS: dict[str, Validator] = {
    "Pod": validate_pod,
    "Service": validate_service,
    "StatefulSet": validate_statefulset,
    "Deployment": validate_deployment,
    "ReplicaSet": validate_replicaset,
    "ConfigMap": validate_configmap,
    "Secret": validate_secret,
    "EndpointSlice": validate_endpointslice,
    "Endpoints": validate_endpoints,
    "DaemonSet": validate_daemonset,
    "ReplicationController": validate_replication_controller,
    "Job": validate_job,
    "CronJob": validate_cronjob,
    "PersistentVolume": validate_persistent_volume,
    "Ingress": validate_ingress,
    "NetworkPolicy": validate_network_policy,
    "StorageClass": validate_storage_class,
    "Role": validate_role,
    "ClusterRole": validate_cluster_role,
    "RoleBinding": validate_role_binding,
    "ClusterRoleBinding": validate_cluster_role_binding,
    "PodDisruptionBudget": validate_pdb,
    "HorizontalPodAutoscaler": validate_hpa,
    "PriorityClass": validate_priority_class,
    "CertificateSigningRequest": validate_csr,
    "IngressClass": validate_ingress_class,
    "APIService": validate_api_service,
    "CustomResourceDefinition": lambda obj: _crd_validation().validate_crd(obj),
    "ValidatingWebhookConfiguration": validate_validating_configuration,
    "MutatingWebhookConfiguration": validate_mutating_configuration,
    "ValidatingAdmissionPolicy": lambda obj: _policy_validation().spec_errors(obj),
    "ValidatingAdmissionPolicyBinding": lambda obj: _policy_validation().binding_errors(obj),
    "MutatingAdmissionPolicy": lambda obj: _mutating_validation().spec_errors(obj),
    "MutatingAdmissionPolicyBinding": lambda obj: _mutating_validation().binding_errors(obj),
}

_UPDATE_VALIDATORS: dict[str, UpdateValidator] = {
    "Pod": validate_pod_update,
    "Service": validate_service_update,
    "StatefulSet": validate_statefulset_update,
    "Deployment": validate_selector_update,
    "ReplicaSet": validate_selector_update,
    "ConfigMap": validate_immutable_data,
    "Secret": validate_secret_update,
    "EndpointSlice": validate_endpointslice_update,
    "DaemonSet": validate_selector_update,
    "Job": validate_selector_update,
    "StorageClass": validate_storage_class_update,
    "RoleBinding": validate_binding_update,
    "ClusterRoleBinding": validate_binding_update,
    "PriorityClass": validate_priority_class_update,
    "IngressClass": validate_ingress_class_update,
    "CustomResourceDefinition": lambda obj, old: _crd_validation().validate_crd_update(obj, old),
}

_SUBRESOURCE_UPDATE_VALIDATORS: dict[str, SubresourceUpdateValidator] = {
    "CertificateSigningRequest": validate_csr_update,
}


def _crd_validation() -> ModuleType:
    """`api.apiextensions.validation`, imported on first use: it builds on this package."""
    return importlib.import_module("tinykube.api.apiextensions.validation")


def _policy_validation() -> ModuleType:
    """`api.admission_policy`, imported on first use (it loads the CEL engine)."""
    return importlib.import_module("tinykube.api.admission_policy")


def _mutating_validation() -> ModuleType:
    """`api.mutating_policy`, imported on first use (it loads the CEL engine)."""
    return importlib.import_module("tinykube.api.mutating_policy")


def _is_namespaced(kind: str) -> bool:
    for resource in resources.preferred():
        if resource.kind == kind:
            return resource.namespaced
    return True


def validate(kind: str, obj: Obj, old: Obj | None = None, *,
             subresource: str = "") -> list[FieldError]:
    """Field errors for creating (`old is None`) or updating a defaulted `kind` object (or,
    with `subresource`, writing that subresource of it)."""
    errors: Errors = []
    if old is not None:
        errors += validate_meta_update(obj, old)
        update_check = _UPDATE_VALIDATORS.get(kind)
        if update_check is not None:
            errors += update_check(obj, old)
    errors += validate_meta(obj, namespaced=_is_namespaced(kind),
                            name_check=_NAME_CHECKS.get(kind, dns1123_subdomain_errors))
    check = _VALIDATORS.get(kind)
    if old is not None and kind in _SUBRESOURCE_UPDATE_VALIDATORS:
        errors += _SUBRESOURCE_UPDATE_VALIDATORS[kind](obj, old, subresource)
    elif check is not None:
        errors += check(obj)
    return _dedupe(errors)


def _dedupe(errors: Errors) -> Errors:
    """Drop repeated messages, as `field.ErrorList.ToAggregate` does."""
    seen: set[str] = set()
    unique: Errors = []
    for error in errors:
        text = str(error)
        if text not in seen:
            seen.add(text)
            unique.append(error)
    return unique
