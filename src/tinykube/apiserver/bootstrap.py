"""Objects a cluster has from the start, created through the registry if missing.

- Namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease`.
- Service `default/kubernetes` on the first address of the service range (port 443 -> the API
  server), as kube-apiserver creates it, with an Endpoints object and an EndpointSlice
  pointing at the API server's address and port. As kube-apiserver's endpoint reconciler,
  `reconcile_endpoints` writes both when they are missing or differ (a restart on another port,
  a user's edit or delete), at start and every `RECONCILE_INTERVAL` seconds; the Endpoints
  carry `endpointslice.kubernetes.io/skip-mirror: "true"` so that the mirroring controller
  leaves them to us.
- Service `kube-system/kube-dns` on the tenth address (53/UDP, 53/TCP, 9153/TCP), as kubeadm
  installs it for CoreDNS; tinykube's own DNS server answers on that address.
- RuntimeClasses `virtual`, `process`, `netns` and `container` (see architecture.md,
  "Pod runtimes").
- StorageClass `standard`, the default class, as kind installs it for its local-path
  provisioner (`rancher.io/local-path`, `WaitForFirstConsumer`, reclaim `Delete`); tinykube's
  own provisioner (controllers/volumes.py) serves it. Like every object here it is made only if
  missing: a user's changes to it are kept, and one who deletes it gets it back at the next start.
- What kube-apiserver creates for itself: the system PriorityClasses, the local APIServices and
  the mandatory flow-control objects (`system_objects`).

Running it again on an existing data directory changes nothing that is already there, except
the API server's endpoints when its address or port changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tinykube.api import errors, resources
from tinykube.apiserver import system_objects
from tinykube.apiserver.registry import Registry

log = logging.getLogger(__name__)
NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
RUNTIME_CLASSES = ("virtual", "process", "netns", "container")
RECONCILE_INTERVAL = 10.0  # seconds, kube-apiserver's --endpoint-reconciler interval
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
# The fields of each endpoints kind that the reconciler owns.
_OWNED = {"Endpoints": ("subsets",), "EndpointSlice": ("addressType", "endpoints", "ports")}


def _ensure(registry: Registry, res: resources.Resource, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    if registry.store.get(res.storage_key, meta.get("namespace", ""), meta["name"]) is None:
        with contextlib.suppress(errors.AlreadyExists):
            registry.create(res, obj)


def kubernetes_service(ip: str, api_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": ip, "ports": [
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]},
    }


def kube_dns_service(ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"}},
        "spec": {"clusterIP": ip, "selector": {"k8s-app": "kube-dns"}, "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
        ]},
    }


def kubernetes_endpoints(api_host: str, api_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {SKIP_MIRROR_LABEL: "true"}},
        "subsets": [{"addresses": [{"ip": api_host}],
                     "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}],
    }


def kubernetes_endpointslice(api_host: str, api_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes",
                                "endpointslice.kubernetes.io/managed-by":
                                    "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [api_host], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
    }


DEFAULT_STORAGE_CLASS = "standard"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"


def standard_storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": DEFAULT_STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
    }


def bootstrap(registry: Registry, *, api_host: str, api_port: int) -> None:
    """Create the cluster's built-in objects that are missing."""
    ns = resources.must("", "v1", "namespaces")
    for name in NAMESPACES:
        _ensure(registry, ns, {"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": name}})
    ips = registry.allocator.ips
    svc = resources.must("", "v1", "services")
    _ensure(registry, svc, kubernetes_service(ips.nth(1), api_port))
    _reconcile_service_ports(registry, svc, kubernetes_service(ips.nth(1), api_port))
    _ensure(registry, svc, kube_dns_service(ips.nth(10)))
    reconcile_endpoints(registry, api_host=api_host, api_port=api_port)
    runtime = resources.must("node.k8s.io", "v1", "runtimeclasses")
    for name in RUNTIME_CLASSES:
        _ensure(registry, runtime, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                    "metadata": {"name": name}, "handler": name})
    _ensure(registry, resources.must("storage.k8s.io", "v1", "storageclasses"),
            standard_storage_class())
    system_objects.ensure(registry)


def _reconcile(registry: Registry, res: resources.Resource, desired: dict[str, Any]) -> None:
    """Create `desired`, or update the fields and labels we own where they differ."""
    meta = desired["metadata"]
    entry = registry.store.get(res.storage_key, meta["namespace"], meta["name"])
    if entry is None:
        with contextlib.suppress(errors.AlreadyExists):
            registry.create(res, desired)
        return
    current = entry.obj
    labels = {**(current["metadata"].get("labels") or {}), **meta.get("labels", {})}
    owned = _OWNED[desired["kind"]]
    if labels == current["metadata"].get("labels") and \
            all(current.get(field) == desired[field] for field in owned):
        return
    updated = {**current, **{field: desired[field] for field in owned},
               "metadata": {**current["metadata"], "labels": labels}}
    registry.update(res, updated)


def _reconcile_service_ports(registry: Registry, res: resources.Resource,
                             desired: dict[str, Any]) -> None:
    """Point the `kubernetes` Service's port at the port this API server listens on."""
    entry = registry.store.get(res.storage_key, "default", "kubernetes")
    if entry is None or entry.obj.get("spec", {}).get("ports") == desired["spec"]["ports"]:
        return
    registry.update(res, {**entry.obj, "spec": {**entry.obj["spec"],
                                                "ports": desired["spec"]["ports"]}})


def reconcile_endpoints(registry: Registry, *, api_host: str, api_port: int) -> None:
    """Make `default/kubernetes` Endpoints and EndpointSlice point at this API server."""
    _reconcile(registry, resources.must("", "v1", "endpoints"),
               kubernetes_endpoints(api_host, api_port))
    _reconcile(registry, resources.must("discovery.k8s.io", "v1", "endpointslices"),
               kubernetes_endpointslice(api_host, api_port))


def reconcile_objects(registry: Registry, endpoints: dict[str, Any],
                      endpointslice: dict[str, Any]) -> None:
    """Make `default/kubernetes` Endpoints and EndpointSlice these (several API servers)."""
    _reconcile(registry, resources.must("", "v1", "endpoints"), endpoints)
    _reconcile(registry, resources.must("discovery.k8s.io", "v1", "endpointslices"),
               endpointslice)


async def reconcile_endpoints_forever(registry: Registry, *, api_host: str, api_port: int,
                                      interval: float = RECONCILE_INTERVAL) -> None:
    """`reconcile_endpoints` every `interval` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            reconcile_endpoints(registry, api_host=api_host, api_port=api_port)
        except errors.APIError as exc:  # e.g. the default namespace is being deleted
            log.warning("reconciling the kubernetes endpoints failed: %s", exc)
