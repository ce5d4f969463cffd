"""Printers for the networking kinds: Service, Endpoints, EndpointSlice, Ingress and
NetworkPolicy.

Internal-type defaults the Go printers rely on (`type: ClusterIP`, `protocol: TCP`,
`clusterIPs` from `clusterIP`) are applied here when a field is missing. Endpoint lists show at
most three entries, then ` + N more...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api.printers.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    NONE,
    UNSET,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    format_label_selector,
    format_labels,
    get_path,
    name_of,
    wide,
)
from tinykube.api.printers.duration import UNKNOWN

_MAX_LISTED = 3  # endpoints / ports shown before " + N more..."


def _list_with_more(items: list[str], total: int) -> str:
    shown = ",".join(items)
    if total > _MAX_LISTED:
        return f"{shown} + {total - _MAX_LISTED} more..."
    return shown or UNSET


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _load_balancer_ips(svc: Mapping[str, Any]) -> list[str]:
    found: set[str] = set()
    for ingress in as_list(get_path(svc, "status", "loadBalancer", "ingress")):
        entry = as_dict(ingress)
        if entry.get("ip"):
            found.add(str(entry["ip"]))
        elif entry.get("hostname"):
            found.add(str(entry["hostname"]))
    return sorted(found)


def _service_external_ip(svc: Mapping[str, Any], svc_type: str) -> str:
    external = [str(ip) for ip in as_list(get_path(svc, "spec", "externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if svc_type == "LoadBalancer":
        return ",".join(_load_balancer_ips(svc) + external) or "<pending>"
    if svc_type == "ExternalName":
        return str(get_path(svc, "spec", "externalName") or "")
    return UNKNOWN


def _service_ports(svc: Mapping[str, Any]) -> str:
    pieces = []
    for raw in as_list(get_path(svc, "spec", "ports")):
        port = as_dict(raw)
        protocol = port.get("protocol") or "TCP"
        node_port = as_int(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{as_int(port.get('port'))}{middle}/{protocol}")
    return ",".join(pieces) or NONE


def _service_cells(svc: Mapping[str, Any], now: datetime) -> list[Cell]:
    svc_type = str(get_path(svc, "spec", "type") or "ClusterIP")
    cluster_ips = as_list(get_path(svc, "spec", "clusterIPs"))
    if not cluster_ips and get_path(svc, "spec", "clusterIP"):
        cluster_ips = [get_path(svc, "spec", "clusterIP")]
    cluster_ip = str(cluster_ips[0]) if cluster_ips else NONE
    return [name_of(svc), svc_type, cluster_ip, _service_external_ip(svc, svc_type),
            _service_ports(svc), age_of(svc, now), format_labels(get_path(svc, "spec", "selector"))]


# --- endpoints -------------------------------------------------------------------------------

def _endpoints_summary(ep: Mapping[str, Any]) -> str:
    subsets = [as_dict(s) for s in as_list(ep.get("subsets"))]
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for subset in subsets:
        ips = [str(as_dict(a).get("ip", "")) for a in as_list(subset.get("addresses"))]
        ports = [as_int(as_dict(p).get("port")) for p in as_list(subset.get("ports"))]
        entries = ips if not ports else [_join_host_port(ip, port) for port in ports for ip in ips]
        total += len(entries)
        shown.extend(entries[: _MAX_LISTED - len(shown)])
    return _list_with_more(shown, total) if total > _MAX_LISTED else ",".join(shown)


def _endpoints_cells(ep: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(ep), _endpoints_summary(ep), age_of(ep, now)]


def _slice_port(port: Mapping[str, Any]) -> str:
    if port.get("port") is not None:
        return str(as_int(port.get("port")))
    if port.get("name") is not None:
        return str(port["name"])
    return "*"


def _endpointslice_cells(eps: Mapping[str, Any], now: datetime) -> list[Cell]:
    ports = [_slice_port(as_dict(p)) for p in as_list(eps.get("ports"))]
    endpoints = [as_dict(e) for e in as_list(eps.get("endpoints"))]
    addresses = [str(a) for e in endpoints for a in as_list(e.get("addresses"))]
    return [name_of(eps), str(eps.get("addressType") or ""),
            _list_with_more(ports[:_MAX_LISTED], len(ports)),
            _list_with_more(addresses[:_MAX_LISTED], len(addresses)), age_of(eps, now)]


def _ingress_hosts(rules: list[Any]) -> str:
    """formatHosts: up to three hosts, `*` when none, then ` + N more...` (N counts rules)."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        more = more or len(hosts) == _MAX_LISTED
        if not more and as_dict(rule).get("host"):
            hosts.append(str(as_dict(rule)["host"]))
    if not hosts:
        return "*"
    return ",".join(hosts) + (f" + {len(rules) - _MAX_LISTED} more..." if more else "")


def _ingress_cells(ing: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(ing.get("spec"))
    addresses = [str(as_dict(i).get("ip") or as_dict(i).get("hostname") or "")
                 for i in as_list(get_path(ing, "status", "loadBalancer", "ingress"))]
    return [name_of(ing), str(spec.get("ingressClassName") or NONE),
            _ingress_hosts(as_list(spec.get("rules"))), ",".join(a for a in addresses if a),
            "80, 443" if as_list(spec.get("tls")) else "80", age_of(ing, now)]


def _network_policy_cells(policy: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(policy), format_label_selector(get_path(policy, "spec", "podSelector")),
            age_of(policy, now)]


NETWORK_PRINTERS: dict[str, Printer] = {
    "Service": Printer((
        NAME_COLUMN,
        Column("Type", "type determines how the Service is exposed."),
        Column("Cluster-IP", "clusterIP is the IP address of the service."),
        Column("External-IP", "externalIPs is a list of IP addresses for which nodes in the "
                              "cluster will also accept traffic for this service."),
        Column("Port(s)", "The list of ports that are exposed by this service."),
        AGE_COLUMN,
        wide("Selector", "Route service traffic to pods with label keys and values matching "
                         "this selector."),
    ), _service_cells),
    "Endpoints": Printer((
        NAME_COLUMN,
        Column("Endpoints", "The set of all endpoints is the union of all subsets."), AGE_COLUMN,
    ), _endpoints_cells),
    "EndpointSlice": Printer((
        NAME_COLUMN,
        Column("AddressType", "addressType specifies the type of address carried by this "
                              "EndpointSlice."),
        Column("Ports", "ports specifies the list of network ports exposed by each endpoint in "
                        "this slice."),
        Column("Endpoints", "endpoints is a list of unique endpoints in this slice."), AGE_COLUMN,
    ), _endpointslice_cells),
    "Ingress": Printer((
        NAME_COLUMN,
        Column("Class", "The name of the IngressClass resource that should be used for "
                        "additional configuration"),
        Column("Hosts", "Hosts that incoming requests are matched against before the ingress "
                        "rule"),
        Column("Address", "Address is a list containing ingress points for the load-balancer"),
        Column("Ports", "Ports of TLS configurations that open"), AGE_COLUMN,
    ), _ingress_cells),
    "NetworkPolicy": Printer((
        NAME_COLUMN,
        Column("Pod-Selector", "podSelector selects the pods to which this NetworkPolicy object "
                               "applies. The array of rules is applied to any pods selected by "
                               "this field. An empty selector matches all pods in the policy's "
                               "namespace. Multiple network policies can select the same set of "
                               "pods. In this case, the ingress rules for each are combined "
                               "additively. This field is optional. If it is not specified, it "
                               "defaults to an empty selector."), AGE_COLUMN,
    ), _network_policy_cells),
}
