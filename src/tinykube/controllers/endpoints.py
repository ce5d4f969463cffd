"""Endpoints controller: Service selector + Pods -> the v1 Endpoints object named like the Service.

Same shape as the EndpointSlice controller (and the same pod -> Service glue): handlers enqueue
service keys, `sync` gathers from the caches, the pure `reconcile` decides, `apply_plan` writes.

What the object carries (upstream endpoints controller):

- one subset per distinct port set: each pod contributes its address once per Service port
  whose target port resolves for it, then addresses are regrouped by the set of ports they
  serve (`RepackSubsets`); addresses sorted by IP, subsets by ports;
- `addresses` when the pod is Ready or the Service has `publishNotReadyAddresses`, else
  `notReadyAddresses`; terminating pods are left out unless `publishNotReadyAddresses`;
  pods without an IP or in phase Succeeded/Failed are left out;
- per address: `ip` (the Service's primary IP family), `hostname` (pod hostname when its
  subdomain is the Service name), `nodeName`, `targetRef`;
- a headless Service without ports still lists its addresses (with no ports);
- labels: the Service's labels plus `service.kubernetes.io/headless` for headless Services;
- at most 1000 addresses: beyond that, addresses are cut per subset in proportion to its size,
  ready ones kept first, and `endpoints.kubernetes.io/over-capacity: truncated` is set.

Selector-less Services are left alone: their Endpoints are written by users (and mirrored into
EndpointSlices by `endpointslice_mirroring`). When a Service is deleted its Endpoints go too.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from tinykube.api import resources
from tinykube.client import controller as base
from tinykube.client.controller import Obj, Plan
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import endpointslice as slices

MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
ENDPOINTS = resources.must("", "v1", "endpoints")

AddressKey = tuple[str, str]  # (ip, targetRef uid or name)
PortTuple = tuple[str, int, str, str]  # (name, port, protocol, appProtocol)


def _port_tuple(service_port: Obj, number: int) -> PortTuple:
    return (service_port.get("name") or "", number, service_port.get("protocol") or "TCP",
            service_port.get("appProtocol") or "")


def _port_dict(port: PortTuple) -> dict[str, Any]:
    name, number, protocol, app_protocol = port
    out: dict[str, Any] = {"name": name} if name else {}
    out.update(port=number, protocol=protocol)
    if app_protocol:
        out["appProtocol"] = app_protocol
    return out


def primary_ip(pod: Obj, service: Obj) -> str | None:
    """The pod IP of the Service's primary family (any pod IP if the family is unknown)."""
    ips = slices.pod_ips(pod)
    families = service.get("spec", {}).get("ipFamilies") or []
    if families:
        ips = [ip for ip in ips if slices.address_type(ip) == families[0]]
    return ips[0] if ips else None


def pod_address(pod: Obj, service: Obj, ip: str) -> dict[str, Any]:
    address: dict[str, Any] = {"ip": ip}
    if slices.should_set_hostname(pod, service):
        address["hostname"] = pod["spec"]["hostname"]
    if pod.get("spec", {}).get("nodeName"):
        address["nodeName"] = pod["spec"]["nodeName"]
    address["targetRef"] = slices.target_ref(pod)
    return address


def _address_key(address: Obj) -> AddressKey:
    ref = address.get("targetRef") or {}
    return address.get("ip", ""), ref.get("uid") or ref.get("name") or ""


def build_subsets(service: Obj, pods: Sequence[Obj]) -> list[dict[str, Any]]:
    """Subsets for the selected pods, grouped by port set and sorted."""
    publish = bool(service.get("spec", {}).get("publishNotReadyAddresses"))
    service_ports = service.get("spec", {}).get("ports") or []
    # (address key, ready) -> (address, the ports it serves in that state)
    served: dict[tuple[AddressKey, bool], tuple[dict[str, Any], set[PortTuple]]] = {}
    for pod in pods:
        if slices.is_terminal(pod) or (slices.is_terminating(pod) and not publish):
            continue
        ip = primary_ip(pod, service)
        if ip is None:
            continue
        address = pod_address(pod, service, ip)
        ready = publish or slices.is_pod_ready(pod)
        ports = {_port_tuple(p, n) for p in service_ports
                 if (n := slices.find_port(pod, p)) is not None}
        if not ports and (service_ports or not slices.is_headless(service)):
            continue  # no port resolves; only a port-less headless Service lists bare IPs
        entry = served.setdefault((_address_key(address), ready), (address, set()))
        entry[1].update(ports)
    return _repack(served)


def _repack(served: Mapping[tuple[AddressKey, bool], tuple[dict[str, Any], set[PortTuple]]]
            ) -> list[dict[str, Any]]:
    """Group addresses serving the same set of ports into one subset (upstream RepackSubsets)."""
    by_ports: dict[tuple[PortTuple, ...], dict[str, list[dict[str, Any]]]] = {}
    for (_, ready), (address, served_ports) in served.items():
        lists = by_ports.setdefault(tuple(sorted(served_ports)),
                                    {"addresses": [], "notReadyAddresses": []})
        lists["addresses" if ready else "notReadyAddresses"].append(address)
    subsets: list[dict[str, Any]] = []
    for ports, lists in sorted(by_ports.items()):
        subset: dict[str, Any] = {}
        for field in ("addresses", "notReadyAddresses"):
            if lists[field]:
                subset[field] = sorted(lists[field], key=_address_key)
        if ports:
            subset["ports"] = [_port_dict(p) for p in ports]
        subsets.append(subset)
    return subsets


def truncate(subsets: list[dict[str, Any]], capacity: int = MAX_CAPACITY) -> bool:
    """Cut `subsets` in place to `capacity` addresses; True if anything was cut.

    Ready addresses are kept first. The field being cut (notReady, or ready when the ready
    ones alone exceed capacity) loses addresses in proportion to each subset's share, rounded
    up, so the last subsets may get fewer than their share.
    """
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready + not_ready <= capacity:
        return False
    cut_ready = ready > capacity
    field, total = ("addresses", ready) if cut_ready else ("notReadyAddresses", not_ready)
    room = capacity if cut_ready else capacity - ready
    left = room
    for subset in subsets:
        share = min(math.ceil(len(subset.get(field) or []) / total * room), left)
        subset[field] = (subset.get(field) or [])[:share]
        if cut_ready:
            subset.pop("notReadyAddresses", None)
        left -= share
        for name in ("addresses", "notReadyAddresses"):
            if name in subset and not subset[name]:
                del subset[name]
    return True


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items()
              if k != slices.HEADLESS_LABEL}
    if slices.is_headless(service):
        labels[slices.HEADLESS_LABEL] = ""
    return labels


def _address_view(address: Obj) -> tuple[str, str, str, tuple[str, ...]]:
    ref = address.get("targetRef") or {}
    return (address.get("ip", ""), address.get("hostname") or "", address.get("nodeName") or "",
            tuple(ref.get(k) or "" for k in ("kind", "namespace", "name", "uid")))


def _canonical(subsets: Sequence[Obj] | None) -> list[Any]:
    """Subsets in a comparable form (absent and empty lists are the same)."""
    return sorted((sorted(map(_address_view, s.get("addresses") or [])),
                   sorted(map(_address_view, s.get("notReadyAddresses") or [])),
                   slices.port_key(s.get("ports"))) for s in subsets or [])


def reconcile(service: Obj, pods: Sequence[Obj], existing: Obj | None) -> Plan:
    """Decide the Endpoints object of one Service (`pods`: those its selector matches)."""
    if not slices.selector_of(service):
        return Plan()  # selector-less: user-managed Endpoints
    subsets = build_subsets(service, pods)
    truncated = truncate(subsets)
    meta = service["metadata"]
    annotations = {k: v for k, v in ((existing or {}).get("metadata", {})
                                     .get("annotations") or {}).items() if k != OVER_CAPACITY}
    if truncated:
        annotations[OVER_CAPACITY] = "truncated"
    labels = endpoints_labels(service)
    if existing is None:
        metadata: dict[str, Any] = {"name": meta["name"], "namespace": meta.get("namespace", "")}
    else:
        old_meta = existing["metadata"]
        if (_canonical(existing.get("subsets")) == _canonical(subsets)
                and dict(old_meta.get("labels") or {}) == labels
                and (old_meta.get("annotations") or {}).get(OVER_CAPACITY)
                == annotations.get(OVER_CAPACITY)):
            return Plan()
        metadata = copy.deepcopy(dict(old_meta))
    metadata["labels"] = labels
    if annotations or metadata.get("annotations"):
        metadata["annotations"] = annotations
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata}
    if subsets:
        body["subsets"] = subsets
    return Plan(create=[body]) if existing is None else Plan(update=[body])


class EndpointsController(base.Controller):
    """Keeps the Endpoints object of every Service with a selector."""

    name = "endpoints-controller"

    def __init__(self, client: RESTClient) -> None:
        self.services = shared_informer(client, slices.SERVICES)
        self.pods = shared_informer(client, slices.PODS)
        self.endpoints = shared_informer(client, ENDPOINTS)
        super().__init__(client, [self.services, self.pods, self.endpoints])
        self.tracker = base.WriteTracker(self.endpoints.cache.get)
        self.glue = slices.PodServiceMap(self.pods.cache, self.queue.add)
        self.services.add_handlers(on_add=self.glue.on_service,
                                   on_update=lambda _old, new: self.glue.on_service(new),
                                   on_delete=self.glue.on_service_delete)
        self.pods.add_handlers(on_add=self.glue.on_pod, on_update=self.glue.on_pod_update,
                               on_delete=self.glue.on_pod)
        self.endpoints.add_handlers(on_add=self._on_endpoints_added,
                                    on_update=lambda _old, new: self._on_endpoints(new),
                                    on_delete=lambda obj: self._on_endpoints(obj, deleted=True))

    def _on_endpoints_added(self, endpoints: Obj) -> None:
        """Only settle our own creations: a hand-written Endpoints made before its Service
        must not be queued (and so deleted) by its arrival."""
        self.tracker.observed(base.object_key(endpoints), endpoints)

    def _on_endpoints(self, endpoints: Obj, *, deleted: bool = False) -> None:
        """Repair edits to (or deletion of) an Endpoints object we own; ignore our echoes."""
        key = base.object_key(endpoints)
        if self.tracker.observed(key, endpoints, deleted=deleted):
            return
        service = self.services.cache.get(key)
        if service is not None and slices.selector_of(service):
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        namespace, name = base.split_key(key)
        service = self.services.cache.get(key)
        existing = self.endpoints.cache.get(key)
        if service is None:
            # The Service is gone: its Endpoints go with it (whoever wrote them).
            self.tracker.forget(key)
            plan = Plan(delete=[name]) if existing is not None else Plan()
        elif self.tracker.is_stale(key):
            raise base.StaleCacheError(f"endpoints cache behind our writes for {key}")
        else:
            plan = reconcile(service, self.glue.selected_pods(service), existing)
        if not plan:
            return
        applied = await base.apply_plan(self.client, ENDPOINTS, namespace, plan)
        self.tracker.wrote(key, namespace, applied)
        applied.raise_failures()


def start(client: RESTClient, *, workers: int = 2) -> list[asyncio.Task[None]]:
    """Run the Endpoints controller; cancel the returned tasks to stop it."""
    return EndpointsController(client).start(workers=workers)
