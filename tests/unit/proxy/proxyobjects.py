"""Builders of the raw API dicts the proxy reads (Services and EndpointSlices)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def port(number: int, name: str = "", protocol: str = "TCP", node_port: int | None = None
         ) -> Obj:
    spec: Obj = {"name": name, "port": number, "protocol": protocol}
    if node_port is not None:
        spec["nodePort"] = node_port
    return spec


def service(name: str, cluster_ip: str | None, *ports: Obj, namespace: str = "default",
            type_: str = "ClusterIP", affinity_timeout: int | None = None,
            external_ips: tuple[str, ...] = ()) -> Obj:
    spec: Obj = {"type": type_, "ports": list(ports) or [port(80, "http")]}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = [cluster_ip]
    if affinity_timeout is not None:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity_timeout}}
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint(ip: str, ready: bool | None = True, terminating: bool | None = None) -> Obj:
    conditions: Obj = {}
    if ready is not None:
        conditions["ready"] = ready
    if terminating is not None:
        conditions["terminating"] = terminating
    return {"addresses": [ip], "conditions": conditions}


def endpoint_slice(service_name: str, endpoints: list[Obj], ports: list[Obj], *,
                   name: str | None = None, namespace: str = "default",
                   address_type: str = "IPv4") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service_name}-abc", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": address_type, "endpoints": endpoints, "ports": ports}
