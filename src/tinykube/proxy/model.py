"""The desired forwarding table: Services + EndpointSlices in, listeners and endpoints out.

This module is pure (no I/O, no asyncio): `build_table(services, slices)` takes raw API dicts
and returns `{ListenKey: ServicePortRule}`, one entry per address the proxy must listen on:

* the cluster IP of every ClusterIP, NodePort and LoadBalancer Service, for each service port,
  when the address is local (`is_local`, by default the loopback ranges: tinykube allocates
  cluster IPs from 127.96.0.0/16; against a real cluster the 10.x addresses are not ours to
  bind and are skipped, as kube-proxy skips families it does not handle);
* `127.0.0.1:<nodePort>` for NodePort and LoadBalancer Services (the node address);
* each `spec.externalIPs` entry that is a local address.

Headless Services (`clusterIP: None`), ExternalName Services and ports of protocols other than
TCP and UDP are skipped. A Service port finds its endpoints' port in each EndpointSlice (those
labelled `kubernetes.io/service-name`) by port NAME and protocol, as kube-proxy does; the
target port of the Service is not consulted (the EndpointSlice controller already resolved it).
An endpoint counts when `conditions.ready` is true or unset and it is not `terminating`; its
first address is used. Endpoints are deduplicated and sorted so that equal inputs give equal
rules (the syncer diffs rules with `==`).

Two Services claiming one address (a duplicated externalIP, say) are resolved by Service key
order: the first keeps it and the conflict is returned in `Table.conflicts`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]
Endpoint = tuple[str, int]
ListenKey = tuple[str, int, str]  # (ip, port, protocol)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROXIED_TYPES = frozenset({"ClusterIP", "NodePort", "LoadBalancer"})
NODE_PORT_TYPES = frozenset({"NodePort", "LoadBalancer"})
PROTOCOLS = frozenset({"TCP", "UDP"})
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, the API default for ClientIP affinity
NODE_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class ServicePortRule:
    """What one listener does: forward to `endpoints` (ready ones only), maybe sticky."""

    service: str  # namespace/name
    port_name: str
    protocol: str
    endpoints: tuple[Endpoint, ...] = ()
    affinity_timeout: float | None = None  # seconds of ClientIP stickiness; None: no affinity


@dataclass
class Table:
    """The result of `build_table`: rules by listen address, and addresses claimed twice."""

    rules: dict[ListenKey, ServicePortRule] = field(default_factory=dict)
    conflicts: list[tuple[ListenKey, str]] = field(default_factory=list)  # (key, losing service)


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1, the addresses a host-mode proxy can always bind."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def service_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _ready(endpoint: Obj) -> bool:
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and conditions.get("terminating") is not True


def _affinity_timeout(spec: Obj) -> float | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return float(client_ip.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """Ready `(address, port)` pairs of the slices' port named `port_name`, sorted, unique."""
    found: set[Endpoint] = set()
    for slice_ in slices:
        if slice_.get("addressType") not in ("IPv4", "IPv6"):
            continue
        number = _slice_port(slice_, port_name, protocol)
        if number is None:
            continue
        for endpoint in slice_.get("endpoints") or ():
            addresses = endpoint.get("addresses") or ()
            if addresses and _ready(endpoint):
                found.add((str(addresses[0]), number))
    return tuple(sorted(found))


def _slice_port(slice_: Obj, port_name: str, protocol: str) -> int | None:
    for slice_port in slice_.get("ports") or ():
        same_name = (slice_port.get("name") or "") == port_name
        if same_name and (slice_port.get("protocol") or "TCP") == protocol:
            number = slice_port.get("port")
            return int(number) if isinstance(number, int) else None
    return None


def service_addresses(spec: Obj, port: Obj,
                      is_local: Callable[[str], bool]) -> list[tuple[str, int]]:
    """Every local `(ip, port)` one service port is reachable at."""
    number = int(port.get("port") or 0)
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    addresses = [(str(ip), number) for ip in cluster_ips if ip and is_local(str(ip))]
    node_port = port.get("nodePort")
    if spec.get("type") in NODE_PORT_TYPES and isinstance(node_port, int) and node_port:
        addresses.append((NODE_ADDRESS, node_port))
    addresses += [(str(ip), number) for ip in spec.get("externalIPs") or () if is_local(str(ip))]
    return addresses


def is_proxied(service: Obj) -> bool:
    """ClusterIP/NodePort/LoadBalancer with a cluster IP (not headless, not ExternalName)."""
    spec = service.get("spec") or {}
    cluster_ip = spec.get("clusterIP")
    return (spec.get("type") or "ClusterIP") in PROXIED_TYPES and bool(cluster_ip) \
        and cluster_ip != "None"


def slices_by_service(slices: Iterable[Obj]) -> dict[str, list[Obj]]:
    """EndpointSlices grouped by the `namespace/name` of the Service they belong to."""
    grouped: dict[str, list[Obj]] = {}
    for slice_ in slices:
        meta = slice_.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            grouped.setdefault(f"{meta.get('namespace', '')}/{owner}", []).append(slice_)
    return grouped


def service_rules(service: Obj, slices: list[Obj], is_local: Callable[[str], bool] = is_loopback
                  ) -> list[tuple[ListenKey, ServicePortRule]]:
    """The listeners one Service asks for (empty if it is not proxied)."""
    if not is_proxied(service):
        return []
    spec = service.get("spec") or {}
    key, affinity = service_key(service), _affinity_timeout(spec)
    rules = []
    for port in spec.get("ports") or ():
        protocol, name = port.get("protocol") or "TCP", port.get("name") or ""
        if protocol not in PROTOCOLS:
            continue
        rule = ServicePortRule(key, name, protocol, slice_endpoints(slices, name, protocol),
                               affinity)
        rules += [((ip, number, protocol), rule)
                  for ip, number in service_addresses(spec, port, is_local)]
    return rules


def build_table(services: Iterable[Obj], slices: Iterable[Obj],
                is_local: Callable[[str], bool] = is_loopback) -> Table:
    """The desired forwarding table (see the module docstring)."""
    grouped = slices_by_service(slices)
    table = Table()
    for service in sorted(services, key=service_key):
        for listen_key, rule in service_rules(service, grouped.get(service_key(service), []),
                                              is_local):
            if listen_key in table.rules:
                table.conflicts.append((listen_key, rule.service))
            else:
                table.rules[listen_key] = rule
    return table
