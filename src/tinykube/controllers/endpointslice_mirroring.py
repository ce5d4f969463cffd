"""EndpointSlice mirroring controller: hand-written Endpoints -> EndpointSlices.

DNS and the proxy read EndpointSlices only, so the Endpoints a user writes for a selector-less
Service are mirrored into slices, as upstream's endpointslicemirroring controller does:

- mirrored only when the Service exists, has no selector, and the Endpoints is not labelled
  `endpointslice.kubernetes.io/skip-mirror: "true"`; otherwise mirrored slices are deleted;
- one set of slices per (address type, subset ports); `addresses` -> `ready: true`,
  `notReadyAddresses` -> `ready: false`; `hostname`, `nodeName`, `targetRef` copied; addresses
  that are not IPs are skipped; at most 1000 addresses per subset are mirrored;
- labels: the Endpoints' labels plus `kubernetes.io/service-name` and `managed-by:
  endpointslicemirroring-controller.k8s.io`; annotations copied except the trigger time and
  kubectl's last-applied-configuration; a controller ownerReference to the Endpoints.

Keys are `namespace/name` of the Service and Endpoints pair. Writes reuse
`endpointslice.plan_slices`, so unchanged input gives an empty plan and slices are reused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tinykube.api import resources
from tinykube.api.meta import owner_reference
from tinykube.client import controller as base
from tinykube.client.controller import Obj, Plan
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import endpointslice as slices

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
MAX_ENDPOINTS_PER_SUBSET = 1000
ENDPOINTS = resources.must("", "v1", "endpoints")
_NOT_COPIED_ANNOTATIONS = frozenset({"endpoints.kubernetes.io/last-change-trigger-time",
                                     "kubectl.kubernetes.io/last-applied-configuration"})


def should_mirror(endpoints: Obj | None, service: Obj | None) -> bool:
    if endpoints is None or service is None or slices.selector_of(service):
        return False
    labels = endpoints["metadata"].get("labels") or {}
    return labels.get(SKIP_MIRROR_LABEL) != "true"


def mirror_template(endpoints: Obj) -> slices.SliceTemplate:
    meta = endpoints["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k not in slices.RESERVED_LABELS}
    labels[slices.SERVICE_NAME_LABEL] = meta["name"]
    labels[slices.MANAGED_BY_LABEL] = CONTROLLER_NAME
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in _NOT_COPIED_ANNOTATIONS}
    return slices.SliceTemplate(namespace=meta.get("namespace", ""),
                                generate_name=f"{meta['name']}-", labels=labels,
                                owner_reference=owner_reference(endpoints, kind="Endpoints",
                                                                api_version="v1"),
                                annotations=annotations)


def _subset_ports(subset: Obj) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    for port in subset.get("ports") or []:
        out: dict[str, Any] = {"name": port.get("name") or "", "port": port.get("port"),
                               "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol"):
            out["appProtocol"] = port["appProtocol"]
        ports.append(out)
    return ports


def address_to_endpoint(address: Obj, ready: bool) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
    for field in ("hostname", "nodeName"):
        if address.get(field):
            endpoint[field] = address[field]
    if address.get("targetRef"):
        endpoint["targetRef"] = dict(address["targetRef"])
    return endpoint


def mirrored_groups(endpoints: Obj) -> dict[slices.MappingKey, slices.EndpointGroup]:
    groups: dict[slices.MappingKey, slices.EndpointGroup] = {}
    for subset in endpoints.get("subsets") or []:
        ports = _subset_ports(subset)
        listed = [(a, True) for a in subset.get("addresses") or []]
        listed += [(a, False) for a in subset.get("notReadyAddresses") or []]
        for address, ready in listed[:MAX_ENDPOINTS_PER_SUBSET]:
            family = slices.address_type(str(address.get("ip", "")))
            if family is None:
                continue
            group = groups.setdefault((family, slices.port_key(ports)),
                                      slices.EndpointGroup(family, ports))
            endpoint = address_to_endpoint(address, ready)
            group.endpoints.setdefault(slices.endpoint_key(endpoint), endpoint)
    return groups


def reconcile(endpoints: Obj | None, service: Obj | None, existing_slices: Sequence[Obj], *,
              max_per_slice: int = slices.MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """Decide the mirrored slices of one Endpoints object (inputs are never modified)."""
    if endpoints is None or not should_mirror(endpoints, service):
        return Plan(delete=sorted(s["metadata"]["name"] for s in existing_slices))
    return slices.plan_slices(mirrored_groups(endpoints), existing_slices,
                              template=mirror_template(endpoints), max_per_slice=max_per_slice)


class MirroringController(base.Controller):
    """Mirrors the Endpoints of selector-less Services into EndpointSlices."""

    name = "endpointslice-mirroring-controller"

    def __init__(self, client: RESTClient) -> None:
        self.services = shared_informer(client, slices.SERVICES)
        self.endpoints = shared_informer(client, ENDPOINTS)
        self.slices = shared_informer(client, slices.ENDPOINT_SLICES,
                               label_selector=f"{slices.MANAGED_BY_LABEL}={CONTROLLER_NAME}")
        super().__init__(client, [self.services, self.endpoints, self.slices])
        self.slices.cache.add_index("service", slices.service_name_index)
        self.tracker = base.WriteTracker(self.slices.cache.get)
        for informer in (self.services, self.endpoints):
            informer.add_handlers(on_add=self.enqueue,
                                  on_update=lambda _old, new: self.enqueue(new),
                                  on_delete=self.enqueue)
        self.slices.add_handlers(on_add=self._on_slice,
                                 on_update=lambda _old, new: self._on_slice(new),
                                 on_delete=lambda obj: self._on_slice(obj, deleted=True))

    def _on_slice(self, slice_obj: Obj, *, deleted: bool = False) -> None:
        for key in slices.service_name_index(slice_obj):
            if not self.tracker.observed(key, slice_obj, deleted=deleted):
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        namespace, _ = base.split_key(key)
        if self.tracker.is_stale(key):
            raise base.StaleCacheError(f"mirrored slices cache behind our writes for {key}")
        plan = reconcile(self.endpoints.cache.get(key), self.services.cache.get(key),
                         self.slices.cache.by_index("service", key))
        if not plan:
            return
        applied = await base.apply_plan(self.client, slices.ENDPOINT_SLICES, namespace, plan)
        self.tracker.wrote(key, namespace, applied)
        applied.raise_failures()


def start(client: RESTClient, *, workers: int = 1) -> list[asyncio.Task[None]]:
    """Run the mirroring controller; cancel the returned tasks to stop it."""
    return MirroringController(client).start(workers=workers)
