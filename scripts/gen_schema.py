#!/usr/bin/env python3
"""Generate `src/tinykube/api/schema_data.json`, the structural schema `api.schema` checks against.

The source of truth is the official `kubernetes` Python client (a test/dev dependency only):
every model class has `openapi_types` (python attribute -> type string such as
`List[V1ContainerPort]`, `Dict[str, str]`, `int`, `object`) and `attribute_map` (python
attribute -> JSON name). We walk every type reachable from the kinds tinykube serves and write

    {"kinds": {"v1/Pod": "V1Pod", "apps/v1/StatefulSet": "V1StatefulSet", ...},
     "types": {"V1Pod": {"apiVersion": "string", "spec": "V1PodSpec", ...}, ...}}

with JSON field names. Type strings: `string`, `int32`, `int64`, `bool`, `float64`, `bytes`
(base64 in JSON), `intstr`, `quantity`, `object` (anything), a model name, `[]T`, `map[T]`
(keys are always strings).

The client loses three distinctions the Go types make, so they are restored from the tables
below: IntOrString fields come out as `object` (every `object` field must be listed as
either intstr or free-form, so a new client cannot slip one through), Quantity fields come
out as `str`, and every integer is `int` (int64 fields are listed; the rest are int32).

It also writes `schema_descriptions.json`: each type's and field's description, taken from the
client's models (the API's own documentation), which the OpenAPI documents carry for
`kubectl explain`.

Usage: scripts/gen_schema.py [--check]   (--check exits 1 if a committed file is stale)
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "tinykube" / "api" / "schema_data.json"
DESCRIPTIONS = OUTPUT.with_name("schema_descriptions.json")

# apiVersion/Kind -> client model class, for every kind whose body the API server decodes.
KINDS: dict[str, str] = {
    "v1/ConfigMap": "V1ConfigMap",
    "v1/Endpoints": "V1Endpoints",
    "v1/Event": "CoreV1Event",
    "v1/Namespace": "V1Namespace",
    "v1/Node": "V1Node",
    "v1/PersistentVolume": "V1PersistentVolume",
    "v1/PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "v1/Pod": "V1Pod",
    "v1/ReplicationController": "V1ReplicationController",
    "v1/Secret": "V1Secret",
    "v1/Service": "V1Service",
    "v1/ServiceAccount": "V1ServiceAccount",
    "apps/v1/ControllerRevision": "V1ControllerRevision",
    "apps/v1/DaemonSet": "V1DaemonSet",
    "apps/v1/Deployment": "V1Deployment",
    "apps/v1/ReplicaSet": "V1ReplicaSet",
    "apps/v1/StatefulSet": "V1StatefulSet",
    "batch/v1/CronJob": "V1CronJob",
    "batch/v1/Job": "V1Job",
    "coordination.k8s.io/v1/Lease": "V1Lease",
    "discovery.k8s.io/v1/EndpointSlice": "V1EndpointSlice",
    "networking.k8s.io/v1/Ingress": "V1Ingress",
    "networking.k8s.io/v1/NetworkPolicy": "V1NetworkPolicy",
    "node.k8s.io/v1/RuntimeClass": "V1RuntimeClass",
    "storage.k8s.io/v1/StorageClass": "V1StorageClass",
    "policy/v1/Eviction": "V1Eviction",
    "autoscaling/v1/Scale": "V1Scale",
    "v1/Binding": "V1Binding",
    "v1/ComponentStatus": "V1ComponentStatus",
    "v1/LimitRange": "V1LimitRange",
    "v1/PodTemplate": "V1PodTemplate",
    "v1/ResourceQuota": "V1ResourceQuota",
    "authentication.k8s.io/v1/TokenRequest": "AuthenticationV1TokenRequest",
    "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":
        "V1MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicy":
        "V1alpha1MutatingAdmissionPolicy",
    "admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicyBinding":
        "V1alpha1MutatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy": "V1ValidatingAdmissionPolicy",
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding":
        "V1ValidatingAdmissionPolicyBinding",
    "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
        "V1ValidatingWebhookConfiguration",
    "apiextensions.k8s.io/v1/CustomResourceDefinition": "V1CustomResourceDefinition",
    "apiregistration.k8s.io/v1/APIService": "V1APIService",
    "autoscaling/v1/HorizontalPodAutoscaler": "V1HorizontalPodAutoscaler",
    "autoscaling/v2/HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
    "certificates.k8s.io/v1/CertificateSigningRequest": "V1CertificateSigningRequest",
    "events.k8s.io/v1/Event": "EventsV1Event",
    "flowcontrol.apiserver.k8s.io/v1/FlowSchema": "V1FlowSchema",
    "flowcontrol.apiserver.k8s.io/v1/PriorityLevelConfiguration": "V1PriorityLevelConfiguration",
    "networking.k8s.io/v1/IngressClass": "V1IngressClass",
    "policy/v1/PodDisruptionBudget": "V1PodDisruptionBudget",
    "rbac.authorization.k8s.io/v1/ClusterRole": "V1ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "V1ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1/Role": "V1Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "V1RoleBinding",
    "scheduling.k8s.io/v1/PriorityClass": "V1PriorityClass",
    "storage.k8s.io/v1/CSIDriver": "V1CSIDriver",
    "storage.k8s.io/v1/CSINode": "V1CSINode",
    "storage.k8s.io/v1/CSIStorageCapacity": "V1CSIStorageCapacity",
    "storage.k8s.io/v1/VolumeAttachment": "V1VolumeAttachment",
    # kubectl sends DeleteOptions as "v1"; "meta.k8s.io/v1" is the canonical group.
    "v1/DeleteOptions": "V1DeleteOptions",
    "meta.k8s.io/v1/DeleteOptions": "V1DeleteOptions",
}

# (model, JSON field) of every `object` field that is an intstr.IntOrString.
INT_OR_STRING = {
    ("V1HTTPGetAction", "port"),
    ("V1NetworkPolicyPort", "port"),
    ("V1PodDisruptionBudgetSpec", "maxUnavailable"),
    ("V1PodDisruptionBudgetSpec", "minAvailable"),
    ("V1RollingUpdateDaemonSet", "maxSurge"),
    ("V1RollingUpdateDaemonSet", "maxUnavailable"),
    ("V1RollingUpdateDeployment", "maxSurge"),
    ("V1RollingUpdateDeployment", "maxUnavailable"),
    ("V1RollingUpdateStatefulSetStrategy", "maxUnavailable"),
    ("V1ServicePort", "targetPort"),
    ("V1TCPSocketAction", "port"),
}
# (model, JSON field) of every `object` field that takes any JSON (RawExtension, FieldsV1).
FREE_FORM = {
    ("V1ControllerRevision", "data"),
    # JSONSchemaProps: a bool or a schema, a schema or a list, or any JSON value.
    ("V1JSONSchemaProps", "additionalItems"),
    ("V1JSONSchemaProps", "additionalProperties"),
    ("V1JSONSchemaProps", "default"),
    ("V1JSONSchemaProps", "dependencies"),
    ("V1JSONSchemaProps", "enum"),
    ("V1JSONSchemaProps", "example"),
    ("V1JSONSchemaProps", "items"),
    ("V1CustomResourceSubresources", "status"),  # an empty struct
    ("V1ManagedFieldsEntry", "fieldsV1"),
    # Empty marker structs of an alpha field of JobSpec (after v1.32; the client is newer).
    ("V1alpha3WorkloadPodGroupDisruptionMode", "all"),
    ("V1alpha3WorkloadPodGroupDisruptionMode", "single"),
    ("V1alpha3WorkloadPodGroupSchedulingPolicy", "basic"),
}
# (model, JSON field) of resource.Quantity fields and ResourceList (map of Quantity) fields.
QUANTITY = {
    ("V1ContainerStatus", "allocatedResources"),
    ("V1CSIStorageCapacity", "capacity"),
    ("V1CSIStorageCapacity", "maximumVolumeSize"),
    ("V1LimitRangeItem", "default"),
    ("V1LimitRangeItem", "defaultRequest"),
    ("V1LimitRangeItem", "max"),
    ("V1LimitRangeItem", "maxLimitRequestRatio"),
    ("V1LimitRangeItem", "min"),
    ("V1ResourceQuotaSpec", "hard"),
    ("V1ResourceQuotaStatus", "hard"),
    ("V1ResourceQuotaStatus", "used"),
    ("V2MetricTarget", "averageValue"),
    ("V2MetricTarget", "value"),
    ("V2MetricValueStatus", "averageValue"),
    ("V2MetricValueStatus", "value"),
    ("V1EmptyDirVolumeSource", "sizeLimit"),
    ("V1NodeAllocatableMappedResources", "quantity"),
    ("V1NodeAllocatableOverheadResources", "perContainer"),
    ("V1NodeAllocatableOverheadResources", "perPod"),
    ("V1NodeStatus", "allocatable"),
    ("V1NodeStatus", "capacity"),
    ("V1Overhead", "podFixed"),
    ("V1PersistentVolumeSpec", "capacity"),
    ("V1PersistentVolumeClaimStatus", "allocatedResources"),
    ("V1PersistentVolumeClaimStatus", "capacity"),
    ("V1PodSpec", "overhead"),
    ("V1PodStatus", "allocatedResources"),
    ("V1ResourceFieldSelector", "divisor"),
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
}
# (model, JSON field) of int64 (or []int64) fields; every other integer is int32.
INT64 = {
    ("V1ClusterTrustBundleProjection", "user"),
    ("V1Condition", "observedGeneration"),
    ("V1ConfigMapVolumeSource", "defaultUser"),
    ("V1ContainerImage", "sizeBytes"),
    ("V1ControllerRevision", "revision"),
    ("V1CronJobSpec", "startingDeadlineSeconds"),
    ("V1DaemonSetStatus", "observedGeneration"),
    ("V1DeleteOptions", "gracePeriodSeconds"),
    ("V1DeploymentStatus", "observedGeneration"),
    ("V1DownwardAPIVolumeFile", "user"),
    ("V1JobSpec", "activeDeadlineSeconds"),
    ("V1JSONSchemaProps", "maxItems"),
    ("V1JSONSchemaProps", "maxLength"),
    ("V1JSONSchemaProps", "maxProperties"),
    ("V1JSONSchemaProps", "minItems"),
    ("V1JSONSchemaProps", "minLength"),
    ("V1JSONSchemaProps", "minProperties"),
    ("V1DownwardAPIVolumeSource", "defaultUser"),
    ("V1KeyToPath", "user"),
    ("V1LinuxContainerUser", "gid"),
    ("V1LinuxContainerUser", "supplementalGroups"),
    ("V1LinuxContainerUser", "uid"),
    ("V1NodeSwapStatus", "capacity"),
    ("V1ObjectMeta", "deletionGracePeriodSeconds"),
    ("V1ObjectMeta", "generation"),
    ("V1PodCertificateProjection", "user"),
    ("V1PodCondition", "observedGeneration"),
    ("V1PodDisruptionBudgetStatus", "observedGeneration"),
    ("V1PodSecurityContext", "fsGroup"),
    ("V1PodSecurityContext", "runAsGroup"),
    ("V1PodSecurityContext", "runAsUser"),
    ("V1PodSecurityContext", "supplementalGroups"),
    ("V1PodSpec", "activeDeadlineSeconds"),
    ("V1PodSpec", "terminationGracePeriodSeconds"),
    ("V1PodStatus", "observedGeneration"),
    ("V1Probe", "terminationGracePeriodSeconds"),
    ("V1ProjectedVolumeSource", "defaultUser"),
    ("V1ReplicaSetStatus", "observedGeneration"),
    ("V1ReplicationControllerStatus", "observedGeneration"),
    ("V1SecretVolumeSource", "defaultUser"),
    ("V1SecurityContext", "runAsGroup"),
    ("V1SecurityContext", "runAsUser"),
    ("V1ServiceAccountTokenProjection", "expirationSeconds"),
    ("V1ServiceAccountTokenProjection", "user"),
    ("V1SleepAction", "seconds"),
    ("V1StatefulSetStatus", "observedGeneration"),
    ("V1Toleration", "tolerationSeconds"),
    ("StorageV1TokenRequest", "expirationSeconds"),
    ("V1HorizontalPodAutoscalerStatus", "observedGeneration"),
    ("V1PodDisruptionBudgetStatus", "observedGeneration"),
    ("V1TokenRequestSpec", "expirationSeconds"),
    ("V1ValidatingAdmissionPolicyStatus", "observedGeneration"),
    ("V2HorizontalPodAutoscalerCondition", "observedGeneration"),
    ("V2HorizontalPodAutoscalerStatus", "observedGeneration"),
}

_SCALARS = {"str": "string", "bool": "bool", "float": "float64", "bytes": "bytes",
            "datetime": "string", "date": "string"}
_LIST = re.compile(r"^(?:List\[|list\[)(.*)\]$")
_DICT = re.compile(r"^(?:Dict\[str, |dict\(str, )(.*)[\])]$")


def _models() -> Any:
    import kubernetes.client  # dev-only dependency, imported only when run

    return kubernetes.client


def _convert(client_type: str, model: str, field: str) -> tuple[str, list[str]]:
    """Our type string for one client type string, and the model names it refers to."""
    if match := _LIST.match(client_type):
        inner, refs = _convert(match.group(1), model, field)
        return "[]" + inner, refs
    if match := _DICT.match(client_type):
        inner, refs = _convert(match.group(1), model, field)
        return f"map[{inner}]", refs
    if client_type == "int":
        return ("int64" if (model, field) in INT64 else "int32"), []
    if client_type == "object":
        if (model, field) in INT_OR_STRING:
            return "intstr", []
        if (model, field) in FREE_FORM:
            return "object", []
        raise SystemExit(f"gen_schema: unclassified object field {model}.{field}: "
                         "add it to INT_OR_STRING or FREE_FORM")
    if client_type in _SCALARS:
        if (model, field) in QUANTITY:
            return "quantity", []
        return _SCALARS[client_type], []
    return client_type, [client_type]


def build_schema() -> dict[str, Any]:
    """Walk the client models reachable from KINDS and return the schema document."""
    client = _models()
    types: dict[str, dict[str, str]] = {}
    pending = sorted(set(KINDS.values()))
    while pending:
        model = pending.pop()
        if model in types:
            continue
        cls = getattr(client, model)
        fields: dict[str, str] = {}
        for attribute, client_type in cls.openapi_types.items():
            json_name = cls.attribute_map[attribute]
            fields[json_name], refs = _convert(client_type, model, json_name)
            pending.extend(ref for ref in refs if ref not in types)
        types[model] = dict(sorted(fields.items()))
    return {"kinds": dict(sorted(KINDS.items())), "types": dict(sorted(types.items()))}


def build_descriptions(schema: dict[str, Any]) -> dict[str, dict[str, str]]:
    """For `kubectl explain`: each type's description ("") and its fields', from the client's
    model docstrings and field descriptions (the API's own documentation)."""
    client = _models()
    descriptions: dict[str, dict[str, str]] = {}
    for model in sorted(schema["types"]):
        cls = getattr(client, model)
        texts = {"": inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]}
        fields = getattr(cls, "model_fields", {})
        for attribute, json_name in sorted(cls.attribute_map.items(), key=lambda kv: kv[1]):
            field = fields.get(attribute)
            texts[json_name] = (field.description if field is not None else "") or ""
        descriptions[model] = texts
    return descriptions


def render_descriptions(descriptions: dict[str, dict[str, str]]) -> str:
    """One type per line, as `render` writes the schema."""
    lines = [f"  {json.dumps(name)}: {json.dumps(texts)}" for name, texts in descriptions.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def render(schema: dict[str, Any]) -> str:
    """The committed text: one type per line, so diffs stay readable."""
    lines = ["{", ' "kinds": ' + json.dumps(schema["kinds"], sort_keys=True) + ",", ' "types": {']
    names = sorted(schema["types"])
    for index, name in enumerate(names):
        comma = "," if index < len(names) - 1 else ""
        lines.append(f"  {json.dumps(name)}: {json.dumps(schema['types'][name])}{comma}")
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    args = parser.parse_args(argv)
    schema = build_schema()
    outputs = {OUTPUT: render(schema),
               DESCRIPTIONS: render_descriptions(build_descriptions(schema))}
    if args.check:
        stale = [path for path, text in outputs.items()
                 if (path.read_text() if path.exists() else "") != text]
        for path in stale:
            print(f"{path} is out of date: run scripts/gen_schema.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
