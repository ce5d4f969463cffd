"""Builders for the Services, Pods, Endpoints and EndpointSlices the controller tests use."""

from __future__ import annotations

from typing import Any

NS = "default"


def service(name: str = "web", *, selector: dict[str, str] | None = None,
            ports: list[dict[str, Any]] | None = None, headless: bool = False,
            publish_not_ready: bool = False, type_: str = "ClusterIP",
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"app": name} if selector is None else selector,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
        if ports is None else ports,
        "clusterIP": "None" if headless else "10.96.0.10",
        "type": type_, "ipFamilies": ["IPv4"],
    }
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-svc-{name}",
                            "resourceVersion": "1"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def pod(name: str, ip: str | None = "10.244.0.1", *, app: str = "web", ready: bool = True,
        terminating: bool = False, phase: str = "Running", node: str = "node1",
        hostname: str | None = None, subdomain: str | None = None,
        container_ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}",
                            "labels": {"app": app}, "resourceVersion": "1"}
    if terminating:
        meta["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    spec: dict[str, Any] = {"nodeName": node, "containers": [
        {"name": "c", "image": "nginx", "ports": container_ports or []}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def as_existing(body: dict[str, Any], name: str, resource_version: str = "5") -> dict[str, Any]:
    """What the API server would return for a created object (name and RV assigned)."""
    obj = {**body, "metadata": {**body["metadata"], "name": name,
                                "resourceVersion": resource_version}}
    obj["metadata"].pop("generateName", None)
    return obj


def endpoints(name: str = "ext", subsets: list[dict[str, Any]] | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-ep-{name}",
                            "resourceVersion": "3"}
    if labels:
        meta["labels"] = labels
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
    if subsets is not None:
        obj["subsets"] = subsets
    return obj
