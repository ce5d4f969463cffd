"""Slim, frozen projections of the API objects the cluster DNS serves.

The DNS server keeps only the fields that can change an answer (CoreDNS's `object` package does
the same: every extra field costs memory at scale). The views are frozen dataclasses, so
"did this update change anything DNS-visible?" is plain `old != new`: status-only or label-only
updates of a Service or Pod compare equal and cost nothing downstream.

Each `*_view` function takes the raw API dict (as the API server returns it) and returns the view,
or None when the object contributes nothing to DNS (a Pod without IPs, a Service of an unknown
type). They never raise on odd input: missing or mistyped fields are treated as absent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


@dataclass(frozen=True, slots=True)
class PortView:
    name: str  # "" for an unnamed port
    protocol: str  # lower-cased: "tcp", "udp", "sctp"
    port: int


@dataclass(frozen=True, slots=True)
class ServiceView:
    namespace: str
    name: str
    kind: str  # "ClusterIP" (also NodePort/LoadBalancer), "Headless" or "ExternalName"
    cluster_ips: tuple[str, ...]
    external_name: str  # lower-cased, without the trailing dot; "" unless ExternalName
    ports: tuple[PortView, ...]


@dataclass(frozen=True, slots=True)
class EndpointView:
    addresses: tuple[str, ...]
    hostname: str  # "" when the endpoint has none
    ready: bool


@dataclass(frozen=True, slots=True)
class SliceView:
    namespace: str
    name: str
    service: str  # the kubernetes.io/service-name label
    ports: tuple[PortView, ...]
    endpoints: tuple[EndpointView, ...]


@dataclass(frozen=True, slots=True)
class PodView:
    namespace: str
    name: str
    ips: tuple[str, ...]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def canonical_ip(text: str) -> str:
    """The canonical text form of an IP address, or "" if `text` is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _ports(items: Any) -> tuple[PortView, ...]:
    ports = []
    for item in _list(items):
        item = _dict(item)
        number = item.get("port")
        if isinstance(number, int) and not isinstance(number, bool):
            protocol = (_str(item.get("protocol")) or "TCP").lower()
            ports.append(PortView(_str(item.get("name")).lower(), protocol, number))
    return tuple(ports)


def service_view(obj: dict[str, Any]) -> ServiceView | None:
    meta, spec = _dict(obj.get("metadata")), _dict(obj.get("spec"))
    namespace, name = _str(meta.get("namespace")), _str(meta.get("name"))
    if not namespace or not name:
        return None
    svc_type = _str(spec.get("type")) or "ClusterIP"
    if svc_type == "ExternalName":
        external = _str(spec.get("externalName")).rstrip(".").lower()
        return ServiceView(namespace, name, "ExternalName", (), external, ())
    ips = [_str(ip) for ip in _list(spec.get("clusterIPs"))] or [_str(spec.get("clusterIP"))]
    kind = "Headless" if ips[0] in ("None", "") else "ClusterIP"
    cluster_ips = () if kind == "Headless" else tuple(filter(None, map(canonical_ip, ips)))
    return ServiceView(namespace, name, kind, cluster_ips, "", _ports(spec.get("ports")))


def _endpoint(item: Any) -> EndpointView | None:
    item = _dict(item)
    addresses = tuple(filter(None, (canonical_ip(_str(a)) for a in _list(item.get("addresses")))))
    if not addresses:
        return None
    ready = _dict(item.get("conditions")).get("ready")
    # The API rule: an unset condition means "unknown", which consumers treat as ready.
    return EndpointView(addresses, _str(item.get("hostname")).lower(), ready is not False)


def slice_view(obj: dict[str, Any]) -> SliceView | None:
    meta = _dict(obj.get("metadata"))
    namespace, name = _str(meta.get("namespace")), _str(meta.get("name"))
    service = _str(_dict(meta.get("labels")).get(SERVICE_NAME_LABEL))
    if not namespace or not name or not service:
        return None
    endpoints = tuple(filter(None, map(_endpoint, _list(obj.get("endpoints")))))
    return SliceView(namespace, name, service, _ports(obj.get("ports")), endpoints)


def pod_view(obj: dict[str, Any]) -> PodView | None:
    meta, status = _dict(obj.get("metadata")), _dict(obj.get("status"))
    ips = [_str(_dict(item).get("ip")) for item in _list(status.get("podIPs"))]
    ips = ips or [_str(status.get("podIP"))]
    canonical = tuple(filter(None, map(canonical_ip, ips)))
    if not canonical:
        return None
    return PodView(_str(meta.get("namespace")), _str(meta.get("name")), canonical)


def namespace_name(obj: dict[str, Any]) -> str:
    return _str(_dict(obj.get("metadata")).get("name"))


def trigger_time(obj: dict[str, Any]) -> str:
    """The EndpointSlice's last-change-trigger-time annotation (RFC 3339), or ""."""
    annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
    return _str(annotations.get(TRIGGER_TIME_ANNOTATION))
