"""Service ports as a kernel data plane sees them: every address, every endpoint, per node.

Pure, like `model` (which builds the userspace proxy's listeners): `service_ports(services,
slices)` returns one `ServicePort` per port of every proxied Service (ClusterIP, NodePort and
LoadBalancer with a cluster IP; TCP and UDP), with its cluster IPs, node port, external IPs,
session affinity, both traffic policies and every endpoint of its EndpointSlices with the
conditions and node name. `choose(port, node)` then makes kube-proxy's per-node choice
(`CategorizeEndpoints` in pkg/proxy/topology.go):

* cluster endpoints: the ready ones; when none is ready, the ones that are serving and
  terminating (a rolling update's old pods keep answering until new ones are ready);
* local endpoints: the same rule applied to the endpoints on this node (`nodeName`);
* internal traffic (to a cluster IP) uses the local endpoints when
  `internalTrafficPolicy: Local`, else the cluster ones; external traffic (node ports,
  external IPs) uses the local endpoints when `externalTrafficPolicy: Local`;
* `has_endpoints` says whether the port has a usable endpoint anywhere in the cluster
  (`hasAnyEndpoints`): without one kube-proxy rejects; with endpoints only on other nodes,
  traffic under a Local policy is dropped.

Conditions are read as kube-proxy reads them: `ready` and `serving` count when true or unset,
`terminating` only when true. Endpoint ports are found by port name and protocol, as in
`model`. Everything is sorted, so equal inputs give equal outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tinykube.proxy.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    NODE_PORT_TYPES,
    PROTOCOLS,
    is_proxied,
    service_key,
    slices_by_service,
)

Obj = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, with everything any node needs to forward it."""

    service: str  # namespace/name
    port_name: str
    protocol: str  # TCP or UDP
    port: int
    cluster_ips: tuple[str, ...]
    node_port: int | None = None
    external_ips: tuple[str, ...] = ()
    affinity_timeout: int | None = None  # seconds of ClientIP stickiness
    internal_local: bool = False  # internalTrafficPolicy: Local
    external_local: bool = False  # externalTrafficPolicy: Local (only if externally reachable)
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def externally_accessible(self) -> bool:
        return self.node_port is not None or bool(self.external_ips)


@dataclass(frozen=True)
class Choice:
    """Which endpoints one node sends this port's traffic to (see the module docstring)."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    internal: tuple[Endpoint, ...]  # for cluster IPs
    external: tuple[Endpoint, ...]  # for node ports and external IPs (not pod-originated)
    has_endpoints: bool


def usable(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """The ready endpoints, or if there are none the serving terminating ones."""
    candidates = tuple(endpoints)
    ready = tuple(e for e in candidates if e.ready)
    return ready or tuple(e for e in candidates if e.serving and e.terminating)


def choose(port: ServicePort, node: str) -> Choice:
    cluster = usable(port.endpoints)
    local = usable(e for e in port.endpoints if e.node == node)
    internal = local if port.internal_local else cluster
    external = local if port.external_local else cluster
    return Choice(cluster, local, internal, external, bool(cluster))


def _flag(conditions: Obj, name: str, unset: bool) -> bool:
    value = conditions.get(name)
    return unset if value is None else value is True


def _endpoints(slices: Iterable[Obj], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    found: dict[tuple[str, int], Endpoint] = {}
    for slice_ in slices:
        if slice_.get("addressType") != "IPv4":
            continue
        number = _slice_port(slice_, port_name, protocol)
        if number is None:
            continue
        for item in slice_.get("endpoints") or ():
            addresses = item.get("addresses") or ()
            if not addresses:
                continue
            conditions = item.get("conditions") or {}
            endpoint = Endpoint(str(addresses[0]), number, str(item.get("nodeName") or ""),
                                _flag(conditions, "ready", True),
                                _flag(conditions, "serving", True),
                                _flag(conditions, "terminating", False))
            found.setdefault((endpoint.ip, endpoint.port), endpoint)
    return tuple(sorted(found.values()))


def _slice_port(slice_: Obj, port_name: str, protocol: str) -> int | None:
    for slice_port in slice_.get("ports") or ():
        if (slice_port.get("name") or "") == port_name and \
                (slice_port.get("protocol") or "TCP") == protocol:
            number = slice_port.get("port")
            return number if isinstance(number, int) else None
    return None


def _affinity(spec: Obj) -> int | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return int(client_ip.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def _ipv4(addresses: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(a) for a in addresses if a and a != "None" and ":" not in str(a))


def ports_of(service: Obj, slices: list[Obj]) -> list[ServicePort]:
    """The ports of one Service (none if it is not proxied)."""
    if not is_proxied(service):
        return []
    spec = service.get("spec") or {}
    cluster_ips = _ipv4(spec.get("clusterIPs") or [spec.get("clusterIP")])
    external_ips = _ipv4(spec.get("externalIPs") or ())
    node_ports = spec.get("type") in NODE_PORT_TYPES
    found = []
    for port in spec.get("ports") or ():
        protocol, name = port.get("protocol") or "TCP", port.get("name") or ""
        if protocol not in PROTOCOLS:
            continue
        node_port = port.get("nodePort") if node_ports else None
        node_port = node_port if isinstance(node_port, int) and node_port else None
        exposed = node_port is not None or bool(external_ips)
        found.append(ServicePort(
            service_key(service), name, protocol, int(port.get("port") or 0), cluster_ips,
            node_port, external_ips, _affinity(spec),
            spec.get("internalTrafficPolicy") == "Local",
            exposed and spec.get("externalTrafficPolicy") == "Local",
            _endpoints(slices, name, protocol)))
    return found


def service_ports(services: Iterable[Obj], slices: Iterable[Obj]) -> list[ServicePort]:
    """Every proxied port of `services`, in Service key order."""
    grouped = slices_by_service(slices)
    found = []
    for service in sorted(services, key=service_key):
        found += ports_of(service, grouped.get(service_key(service), []))
    return found
