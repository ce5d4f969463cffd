"""The per-field metadata strategic merge patch needs, as data.

Upstream reads it from Go struct tags. Here `FIELDS` maps a type name to the fields that have a
patch strategy (`PodSpec.containers` merges by `name`, `ObjectMeta.finalizers` is a set), and
`KIND_PATHS` says, per kind, at which dotted path each type sits (a Pod's `PodSpec` is at
`spec`, a StatefulSet's at `spec.template.spec`). The walker carries a `Where` (kind, path,
type) down the object; a field's entry gives the strategy and the type of its value, so
`Container.ports` is found below any PodSpec without listing every path. Fields with no entry
are atomic: lists are replaced, maps merge. Kinds without an entry (custom resources) therefore
get JSON-merge semantics for lists.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FieldMeta:
    """The patch strategy of one field, as its Go struct tags declare it."""

    merge: bool = False  # patchStrategy "merge": lists merge (by merge_key, or as a set)
    merge_key: str | None = None  # patchMergeKey; None for primitive sets
    retain_keys: bool = False  # patchStrategy "retainKeys": kubectl sends `$retainKeys` here
    type: str | None = None  # the type of the value (of the items, for lists)


def _by(key: str, type_: str | None = None, *, retain_keys: bool = False) -> FieldMeta:
    return FieldMeta(merge=True, merge_key=key, retain_keys=retain_keys, type=type_)


_SET = FieldMeta(merge=True)
_ATOMIC = FieldMeta()
_CONDITIONS = {"conditions": _by("type")}

# Type name -> fields with a patch strategy (k8s.io/api v0.32.4; kubectl-compat.md §6.3).
FIELDS: dict[str, dict[str, FieldMeta]] = {
    "ObjectMeta": {"ownerReferences": _by("uid"), "finalizers": _SET},
    "PodSpec": {
        "containers": _by("name", "Container"),
        "initContainers": _by("name", "Container"),
        "ephemeralContainers": _by("name", "Container"),
        "volumes": _by("name", retain_keys=True),
        "imagePullSecrets": _by("name"),
        "hostAliases": _by("ip"),
        "topologySpreadConstraints": _by("topologyKey"),
        "schedulingGates": _by("name"),
        "resourceClaims": _by("name", retain_keys=True),
    },
    "Container": {
        "ports": _by("containerPort"),
        "env": _by("name"),
        "volumeMounts": _by("mountPath"),
        "volumeDevices": _by("devicePath"),
    },
    "PodStatus": {**_CONDITIONS, "podIPs": _by("ip"), "hostIPs": _by("ip")},
    "ServiceSpec": {"ports": _by("port")},  # not port+protocol: 53/TCP and 53/UDP collide
    "ServiceAccount": {"secrets": _by("name")},
    "NodeSpec": {"podCIDRs": _SET},
    "NodeStatus": {**_CONDITIONS, "addresses": _by("type")},
    "ConditionsStatus": _CONDITIONS,  # Namespace, PVC, StatefulSet, Deployment, ... status
    "DeploymentSpec": {"strategy": FieldMeta(retain_keys=True)},
    # Mutating- and ValidatingWebhookConfiguration
    "WebhookConfiguration": {"webhooks": _by("name")},
}

_POD_TEMPLATE = {"spec.template.metadata": "ObjectMeta", "spec.template.spec": "PodSpec"}
_WORKLOAD = {**_POD_TEMPLATE, "status": "ConditionsStatus"}

_KIND_SPECIFIC: dict[str, dict[str, str]] = {
    "Pod": {"spec": "PodSpec", "status": "PodStatus"},
    "StatefulSet": _WORKLOAD,
    "Deployment": {**_WORKLOAD, "spec": "DeploymentSpec"},
    "ReplicaSet": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "Job": _POD_TEMPLATE,
    "CronJob": {"spec.jobTemplate.spec.template.metadata": "ObjectMeta",
                "spec.jobTemplate.spec.template.spec": "PodSpec"},
    "Service": {"spec": "ServiceSpec"},
    "ServiceAccount": {"": "ServiceAccount"},
    "MutatingWebhookConfiguration": {"": "WebhookConfiguration"},
    "ValidatingWebhookConfiguration": {"": "WebhookConfiguration"},
    "Node": {"spec": "NodeSpec", "status": "NodeStatus"},
    "Namespace": {"status": "ConditionsStatus"},
    "PersistentVolumeClaim": {"status": "ConditionsStatus"},
    **{kind: {} for kind in ("ConfigMap", "Secret", "Endpoints", "EndpointSlice", "Event",
                             "Lease", "ControllerRevision", "RuntimeClass", "Scale",
                             "StorageClass")},
}
# Kind -> dotted path -> the type found there ("" is the object itself).
KIND_PATHS: dict[str, dict[str, str]] = {
    kind: {"metadata": "ObjectMeta", **paths} for kind, paths in _KIND_SPECIFIC.items()
}


@dataclasses.dataclass(frozen=True)
class Where:
    """Where the walker is: the kind, the dotted path of the current map, and its type."""

    kind: str
    path: str
    type: str | None

    def field(self, key: str) -> FieldMeta:
        return FIELDS.get(self.type or "", {}).get(key, _ATOMIC)

    def child(self, key: str) -> Where:
        path = f"{self.path}.{key}" if self.path else key
        anchored = KIND_PATHS.get(self.kind, {}).get(path)
        return Where(self.kind, path, anchored or self.field(key).type)
