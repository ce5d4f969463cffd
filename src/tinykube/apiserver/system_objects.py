"""Cluster-scoped objects kube-apiserver creates for itself at startup, from the registry.

- **PriorityClasses** `system-node-critical` (2000001000) and `system-cluster-critical`
  (2000000000), with kube's descriptions (the scheduling REST storage's post-start hook).
- **APIServices**: one `Local` APIService per served group-version (`v1.`, `v1.apps`,
  `v2.autoscaling`, ...), with kube's group and version priorities and an `Available` condition
  (reason `Local`), as the aggregator's autoregister controller keeps them. Ones for
  group-versions tinykube no longer serves are left alone (a user's aggregated APIService has
  a `spec.service` and is never touched).
- **API priority and fairness**: the mandatory PriorityLevelConfigurations `exempt` and
  `catch-all` and FlowSchemas `exempt` (system:masters) and `catch-all` (everyone else), with
  `apf.kubernetes.io/autoupdate-spec: "true"`. tinykube does not queue requests by them; they
  are there for tools that read them (`kubectl get flowschemas`).

`ensure` creates what is missing and leaves existing objects as they are; it runs on every
start, after the namespaces exist.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tinykube.api import errors, resources
from tinykube.api.meta import rfc3339
from tinykube.api.resources import Resource
from tinykube.apiserver.registry import Registry

Obj = dict[str, Any]

PRIORITY_CLASSES: tuple[tuple[str, int, str], ...] = (
    ("system-node-critical", 2000001000,
     "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2000000000,
     "Used for system critical pods that must run in the cluster, but can be moved to another "
     "node if necessary."),
)
# kube-aggregator's apiVersionPriorities: group priority, version priority.
_GROUP_PRIORITY = {
    "": 18000, "apps": 17800, "events.k8s.io": 17750, "authentication.k8s.io": 17700,
    "authorization.k8s.io": 17600, "autoscaling": 17500, "batch": 17400,
    "certificates.k8s.io": 17300, "networking.k8s.io": 17200, "policy": 17100,
    "rbac.authorization.k8s.io": 17000, "storage.k8s.io": 16800,
    "admissionregistration.k8s.io": 16700, "apiextensions.k8s.io": 16400,
    "scheduling.k8s.io": 16600, "coordination.k8s.io": 16500, "node.k8s.io": 16300,
    "discovery.k8s.io": 16200, "flowcontrol.apiserver.k8s.io": 16100,
    "apiregistration.k8s.io": 18000,
}
_VERSION_PRIORITY = {("", "v1"): 1, ("autoscaling", "v2"): 30, ("apps", "v1beta2"): 9,
                     ("apps", "v1beta1"): 1}
_EVERYTHING: Obj = {
    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                       "clusterScope": True, "namespaces": ["*"]}],
    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
}
_AUTOUPDATE = {"apf.kubernetes.io/autoupdate-spec": "true"}
FLOWCONTROL = "flowcontrol.apiserver.k8s.io/v1"


def _create(registry: Registry, res: resources.Resource, obj: Obj) -> bool:
    """Create `obj` unless an object of its name exists; True if it was created."""
    if registry.store.get(res.storage_key, "", obj["metadata"]["name"]) is not None:
        return False
    with contextlib.suppress(errors.AlreadyExists):
        registry.create(res, obj)
        return True
    return False


def priority_classes() -> list[Obj]:
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
             "metadata": {"name": name}, "value": value, "description": description,
             "globalDefault": False}
            for name, value, description in PRIORITY_CLASSES]


def api_services() -> list[Obj]:
    """The local APIService of every built-in group-version (those of CRDs come and go with
    them: `apiserver.crds`)."""
    services = []
    for group, versions in resources.GROUP_VERSIONS.items():
        for version in versions:
            row = next(r for r in resources.ALL if (r.group, r.version) == (group, version))
            if row.custom is not None:
                continue
            services.append({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": f"{version}.{group}",
                             "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                "spec": {"group": group, "version": version,
                         "groupPriorityMinimum": _GROUP_PRIORITY.get(group, 1000),
                         "versionPriority": _VERSION_PRIORITY.get((group, version), 15)}})
    return services


def available(now: str) -> Obj:
    return {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": now,
                            "reason": "Local",
                            "message": "Local APIServices are always available"}]}


def flow_control() -> list[tuple[str, Obj]]:
    """(plural, object) of the mandatory API priority and fairness configuration."""
    def level(name: str, spec: Obj) -> tuple[str, Obj]:
        return "prioritylevelconfigurations", {
            "apiVersion": FLOWCONTROL, "kind": "PriorityLevelConfiguration",
            "metadata": {"name": name, "annotations": dict(_AUTOUPDATE)}, "spec": spec}

    def schema(name: str, precedence: int, groups: list[str], extra: Obj) -> tuple[str, Obj]:
        return "flowschemas", {
            "apiVersion": FLOWCONTROL, "kind": "FlowSchema",
            "metadata": {"name": name, "annotations": dict(_AUTOUPDATE)},
            "spec": {"matchingPrecedence": precedence,
                     "priorityLevelConfiguration": {"name": name}, **extra,
                     "rules": [{"subjects": [{"kind": "Group", "group": {"name": g}}
                                             for g in groups], **_EVERYTHING}]}}

    return [
        level("exempt", {"type": "Exempt",
                         "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
        level("catch-all", {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 5, "lendablePercent": 0,
            "limitResponse": {"type": "Reject"}}}),
        schema("exempt", 1, ["system:masters"], {}),
        schema("catch-all", 10000, ["system:unauthenticated", "system:authenticated"],
               {"distinguisherMethod": {"type": "ByUser"}}),
    ]


def ensure(registry: Registry) -> None:
    pcs = resources.must("scheduling.k8s.io", "v1", "priorityclasses")
    for pc in priority_classes():
        _create(registry, pcs, pc)
    apis = resources.must("apiregistration.k8s.io", "v1", "apiservices")
    now = rfc3339(registry.clock())
    for service in api_services():
        if _create(registry, apis, service):
            entry = registry.store.get(apis.storage_key, "", service["metadata"]["name"])
            if entry is not None:
                registry.update(apis, {**entry.obj, "status": available(now)},
                                subresource="status")
    _forget_gated(registry, apis)
    for plural, obj in flow_control():
        _create(registry, resources.must("flowcontrol.apiserver.k8s.io", "v1", plural), obj)


def _forget_gated(registry: Registry, apis: Resource) -> None:
    """The local APIService of a version served only behind a gate goes when this server
    does not serve it (a restart without the gate), as kube's autoregister drops it."""
    for row in resources.MUTATING_POLICIES[:1]:
        name = f"{row.version}.{row.group}"
        entry = registry.store.get(apis.storage_key, "", name)
        if entry is None or resources.lookup(row.group, row.version, row.plural) is not None:
            continue
        if (entry.obj["metadata"].get("labels") or {}).get(
                "kube-aggregator.kubernetes.io/automanaged") == "onstart":
            with contextlib.suppress(errors.NotFound):
                registry.delete(apis, "", name, {})
