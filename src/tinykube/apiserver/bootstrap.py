"""Objects a cluster has from the start, created through the registry if missing.

- Namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease`.
- Service `default/kubernetes` on the first address of the service range (port 443 -> the API
  server), as kube-apiserver creates it, with an EndpointSlice pointing at the API server.
- Service `kube-system/kube-dns` on the tenth address (53/UDP, 53/TCP, 9153/TCP), as kubeadm
  installs it for CoreDNS; tinykube's own DNS server answers on that address.
- RuntimeClasses `virtual`, `process` and `netns` (see architecture.md, "Pod runtimes").

Running it again on an existing data directory changes nothing that is already there.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tinykube.api import errors, resources
from tinykube.apiserver.registry import Registry

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
RUNTIME_CLASSES = ("virtual", "process", "netns")



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


def bootstrap(registry: Registry, *, api_host: str, api_port: int) -> None:
    """Create the cluster's built-in objects that are missing."""
    ns = resources.must("", "v1", "namespaces")
    for name in NAMESPACES:
        _ensure(registry, ns, {"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": name}})
    ips = registry.allocator.ips
    svc = resources.must("", "v1", "services")
    _ensure(registry, svc, kubernetes_service(ips.nth(1), api_port))
    _ensure(registry, svc, kube_dns_service(ips.nth(10)))
    _ensure(registry, resources.must("discovery.k8s.io", "v1", "endpointslices"),
            kubernetes_endpointslice(api_host, api_port))
    runtime = resources.must("node.k8s.io", "v1", "runtimeclasses")
    for name in RUNTIME_CLASSES:
        _ensure(registry, runtime, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                    "metadata": {"name": name}, "handler": name})
