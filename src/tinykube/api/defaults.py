"""Server-side defaulting: the fields kube-apiserver fills in before validation.

Objects are JSON-like dicts in their storage version (core/v1, apps/v1, discovery.k8s.io/v1, ...).
`apply_defaults(kind, obj)` deep-copies its input and fills what upstream's
`pkg/apis/*/v1/defaults.go` (plus the few REST-strategy and admission defaults that show up in
`kubectl get -o yaml`) would fill: a field is only set when absent, never overwritten, so
defaulting is idempotent and safe to run on every create and update.

Deliberately not here (they need state, not rules): ClusterIP and NodePort allocation, which run
after defaulting in the API server's allocators. `initial_pod_status` is separate because the
API server sets it on create only, whereas `apply_defaults` also runs on updates.

Layout: one `_default_<kind>` per kind in `_BY_KIND`; nested structures (pod spec, container,
probe, volume) have their own small functions so pod templates and pods share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinykube.api import defaults_policy, webhooks
from tinykube.api.apiextensions import defaults as crd_defaults
from tinykube.api.clone import clone

Obj = dict[str, Any]

DEFAULT_MODE = 420  # 0644, for configMap/secret/projected/downwardAPI volumes
CLIENT_IP_TIMEOUT = 10800  # 3 hours, ClientIP session affinity
_EXTERNALLY_ACCESSIBLE = ("NodePort", "LoadBalancer")


def apply_defaults(kind: str, obj: Obj, *, in_place: bool = False) -> Obj:
    """Return a defaulted deep copy of `obj` (a `kind` object in its storage version), or
    `obj` itself defaulted when `in_place` (for a caller whose object is already its own copy:
    the update path, which copies each object several times over otherwise)."""
    result = obj if in_place else clone(obj)
    defaulter = _BY_KIND.get(kind)
    if defaulter is not None:
        defaulter(result)
    return result


def initial_pod_status(pod: Obj) -> Obj:
    """The status the API server gives a new Pod: `Pending` with its QoS class."""
    return {"phase": "Pending", "qosClass": qos_class(pod.get("spec") or {})}


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' cpu/memory requests and limits."""
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for res in resources:
        limits = res.get("limits") or {}
        requests = res.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"


def _setdefault_path(obj: Obj, *path: str) -> Obj:
    """`obj[a][b]...`, creating empty dicts on the way (and replacing nulls)."""
    node = obj
    for key in path:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    return node


def _each(obj: Obj, key: str) -> list[Obj]:
    """The dict items of the list `obj[key]` (missing or null means none)."""
    return [item for item in obj.get(key) or [] if isinstance(item, dict)]


# --- Service ---------------------------------------------------------------------------------

def _default_service(svc: Obj) -> None:
    spec = _setdefault_path(svc, "spec")
    spec.setdefault("type", "ClusterIP")
    svc_type = spec["type"]
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = _setdefault_path(spec, "sessionAffinityConfig", "clientIP")
        client_ip.setdefault("timeoutSeconds", CLIENT_IP_TIMEOUT)
    for port in _each(spec, "ports"):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    externally_accessible = svc_type in _EXTERNALLY_ACCESSIBLE or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]


# --- Pod spec and everything inside it -------------------------------------------------------

def _image_pull_policy(image: str) -> str:
    """`Always` for `:latest` or an untagged image, otherwise `IfNotPresent` (digests count)."""
    if "@" in image:
        return "IfNotPresent"
    last_segment = image.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return "Always"
    return "Always" if last_segment.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_http_get(handler: Obj) -> None:
    http_get = handler.get("httpGet")
    if isinstance(http_get, dict):
        http_get.setdefault("path", "/")
        http_get.setdefault("scheme", "HTTP")


def _default_probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _default_http_get(probe)


def _default_env(container: Obj) -> None:
    for env in _each(container, "env"):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _default_container(container: Obj) -> None:
    image = container.get("image")
    if isinstance(image, str) and image:
        container.setdefault("imagePullPolicy", _image_pull_policy(image))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in _each(container, "ports"):
        port.setdefault("protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(probe_key), dict):
            _default_probe(container[probe_key])
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_http_get(lifecycle[hook])
    _default_env(container)


_VOLUME_SOURCES_WITH_MODE = ("configMap", "secret", "projected", "downwardAPI")
_NON_SOURCE_VOLUME_KEYS = frozenset({"name"})


def _default_volume(volume: Obj) -> None:
    if not set(volume) - _NON_SOURCE_VOLUME_KEYS:
        volume["emptyDir"] = {}
    if "emptyDir" in volume and volume["emptyDir"] is None:
        volume["emptyDir"] = {}
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    for source in _VOLUME_SOURCES_WITH_MODE:
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", DEFAULT_MODE)


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    # `serviceAccount` is the deprecated alias of `serviceAccountName`: conversion reads it when
    # the name is empty and always writes it back from the name.
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec.get("serviceAccountName") or spec["serviceAccount"]
        spec["serviceAccount"] = spec["serviceAccountName"]
    for container in [*_each(spec, "initContainers"), *_each(spec, "containers")]:
        _default_container(container)
    for volume in _each(spec, "volumes"):
        _default_volume(volume)


def _default_requests_from_limits(container: Obj) -> None:
    """A pod's container that limits a resource without requesting it requests its limit
    (`SetDefaults_Pod`; templates are left as written)."""
    resources = container.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict) \
            and resources["limits"]:
        requests = resources.setdefault("requests", {})
        if isinstance(requests, dict):
            for name, limit in resources["limits"].items():
                requests.setdefault(name, limit)


def _default_pod(pod: Obj) -> None:
    spec = _setdefault_path(pod, "spec")
    _default_pod_spec(spec)
    for container in [*_each(spec, "initContainers"), *_each(spec, "containers")]:
        _default_requests_from_limits(container)
    # `priority` and `preemptionPolicy` are not defaults: the Priority admission plugin sets them.


def _default_template(spec: Obj) -> None:
    template = _setdefault_path(spec, "template")
    _default_pod_spec(_setdefault_path(template, "spec"))


# --- apps/v1 ---------------------------------------------------------------------------------

def _default_pvc(pvc: Obj) -> None:
    _setdefault_path(pvc, "spec").setdefault("volumeMode", "Filesystem")
    _setdefault_path(pvc, "status").setdefault("phase", "Pending")


def _default_statefulset(sts: Obj) -> None:
    spec = _setdefault_path(sts, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _setdefault_path(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _setdefault_path(strategy, "rollingUpdate").setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = _setdefault_path(spec, "persistentVolumeClaimRetentionPolicy")
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    _default_template(spec)
    for claim in _each(spec, "volumeClaimTemplates"):
        _default_pvc(claim)


def _default_deployment(deploy: Obj) -> None:
    spec = _setdefault_path(deploy, "spec")
    spec.setdefault("replicas", 1)
    strategy = _setdefault_path(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _setdefault_path(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_replicaset(rs: Obj) -> None:
    spec = _setdefault_path(rs, "spec")
    spec.setdefault("replicas", 1)
    _default_template(spec)


def _default_daemonset(ds: Obj) -> None:
    spec = _setdefault_path(ds, "spec")
    strategy = _setdefault_path(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _setdefault_path(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _default_replication_controller(rc: Obj) -> None:
    """An RC's selector and labels default to its template's labels (`SetDefaults_RC`)."""
    spec = _setdefault_path(rc, "spec")
    spec.setdefault("replicas", 1)
    template = spec.get("template")
    labels = ((template.get("metadata") or {}).get("labels") or {}) \
        if isinstance(template, dict) else {}
    if labels:
        if not spec.get("selector"):
            spec["selector"] = clone(labels)
        meta = _setdefault_path(rc, "metadata")
        if not meta.get("labels"):
            meta["labels"] = clone(labels)
    if isinstance(template, dict):
        _default_pod_spec(_setdefault_path(template, "spec"))


# --- batch/v1 --------------------------------------------------------------------------------

def _default_job(job: Obj) -> None:
    spec = _setdefault_path(job, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimitPerIndex") is None:
        spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy",
                    "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    _generate_job_selector(job, spec)
    _default_template(spec)


def _generate_job_selector(job: Obj, spec: Obj) -> None:
    """The Job strategy's `generateSelector`: unless `manualSelector`, select the pods by the
    Job's uid (known once the API server has assigned it) and label the template to match."""
    uid = (job.get("metadata") or {}).get("uid")
    if spec.get("manualSelector") is True or spec.get("selector") or not uid:
        return
    name = job["metadata"].get("name", "")
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = _setdefault_path(_setdefault_path(spec, "template"), "metadata", "labels")
    for key, value in (("batch.kubernetes.io/controller-uid", uid),
                       ("batch.kubernetes.io/job-name", name),
                       ("controller-uid", uid), ("job-name", name)):
        labels.setdefault(key, value)


def _default_cronjob(cj: Obj) -> None:
    spec = _setdefault_path(cj, "spec")
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    _default_template(_setdefault_path(spec, "jobTemplate", "spec"))


# --- the rest --------------------------------------------------------------------------------

def _default_namespace(ns: Obj) -> None:
    meta = _setdefault_path(ns, "metadata")
    if meta.get("name"):
        _setdefault_path(meta, "labels")["kubernetes.io/metadata.name"] = meta["name"]
    _setdefault_path(ns, "spec").setdefault("finalizers", ["kubernetes"])
    _setdefault_path(ns, "status").setdefault("phase", "Active")


def _default_endpointslice(slice_: Obj) -> None:
    for port in _each(slice_, "ports"):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


def _default_endpoints(endpoints: Obj) -> None:
    for subset in _each(endpoints, "subsets"):
        for port in _each(subset, "ports"):
            port.setdefault("protocol", "TCP")


def _default_secret(secret: Obj) -> None:
    secret.setdefault("type", "Opaque")


def _default_network_policy(policy: Obj) -> None:
    """`SetDefaults_NetworkPolicy`: no policyTypes means Ingress, plus Egress when there are
    egress rules; a port's protocol defaults to TCP. The empty podSelector is written out (the
    Go struct is not a pointer: it always serializes)."""
    spec = _setdefault_path(policy, "spec")
    spec.setdefault("podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        for rule in rules if isinstance(rules, list) else []:
            ports = rule.get("ports") if isinstance(rule, dict) else None
            for port in ports if isinstance(ports, list) else []:
                if isinstance(port, dict) and port.get("protocol") is None:
                    port["protocol"] = "TCP"


def _default_pv(pv: Obj) -> None:
    """`SetDefaults_PersistentVolume`: a new volume is `Pending` until the PV controller has
    looked at it (then `Available`, or `Bound` to the claim its `claimRef` names)."""
    spec = _setdefault_path(pv, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    _setdefault_path(pv, "status").setdefault("phase", "Pending")


def _default_storage_class(sc: Obj) -> None:
    """`SetDefaults_StorageClass`: reclaimPolicy Delete, volumeBindingMode Immediate."""
    sc.setdefault("reclaimPolicy", "Delete")
    sc.setdefault("volumeBindingMode", "Immediate")


def _default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, dict) and "capacity" in status and "allocatable" not in status:
        status["allocatable"] = clone(status["capacity"])


def _default_limit_range(limit_range: Obj) -> None:
    """`SetDefaults_LimitRangeItem`: a Container item's `default` falls back to its `max`,
    its `defaultRequest` to its `default`, then to its `min`."""
    for item in _each(_setdefault_path(limit_range, "spec"), "limits"):
        if item.get("type") != "Container":
            continue
        default = item["default"] = dict(item.get("default") or {})
        request = item["defaultRequest"] = dict(item.get("defaultRequest") or {})
        for name, value in (item.get("max") or {}).items():
            default.setdefault(name, value)
        for source in (default, item.get("min") or {}):
            for name, value in source.items():
                request.setdefault(name, value)
        for field in ("default", "defaultRequest"):  # Go's omitempty
            if not item[field]:
                del item[field]


_BY_KIND: dict[str, Callable[[Obj], None]] = {
    "LimitRange": _default_limit_range,
    "Service": _default_service,
    "Pod": _default_pod,
    "StatefulSet": _default_statefulset,
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replicaset,
    "Namespace": _default_namespace,
    "EndpointSlice": _default_endpointslice,
    "Endpoints": _default_endpoints,
    "Secret": _default_secret,
    "Node": _default_node,
    "PersistentVolumeClaim": _default_pvc,
    "PersistentVolume": _default_pv,
    "DaemonSet": _default_daemonset,
    "ReplicationController": _default_replication_controller,
    "Job": _default_job,
    "CronJob": _default_cronjob,
    "NetworkPolicy": _default_network_policy,
    "StorageClass": _default_storage_class,
    **defaults_policy.DEFAULTERS,
    **webhooks.DEFAULTERS,
    "CustomResourceDefinition": crd_defaults.default_crd,
}
