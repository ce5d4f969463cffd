"""EndpointSlice controller: Service selector + Pods -> EndpointSlices (upstream behaviour).

Gather / decide / apply. Handlers enqueue service keys only: a Service event its own key, a
Pod event the keys of the Services in its namespace whose selector matches the pod (old and new
labels), an EndpointSlice event its `kubernetes.io/service-name` owner unless the event is the
echo of our own write. `sync(key)` reads the Service, its pods and its managed slices from the
caches, calls the pure `reconcile`, then applies the `Plan` through the REST client.

What a slice carries (dns-spec.md §4, upstream `podToEndpoint`):

- labels: the Service's labels, `kubernetes.io/service-name`, `endpointslice.kubernetes.io/
  managed-by: endpointslice-controller.k8s.io`, and `service.kubernetes.io/headless` for
  headless Services; `generateName: <svc>-`; a controller ownerReference to the Service.
- one set of slices per (address type, port mapping): a named `targetPort` is resolved per pod
  from its container ports, so pods that name the port differently land in different slices,
  and a pod where a name does not resolve is listed without that port.
- endpoints: `addresses`, `conditions` (ready = publishNotReadyAddresses or (Ready and not
  terminating); serving = Ready; terminating = deletionTimestamp set), `hostname` when the
  pod's hostname is set and its subdomain is the Service name, `nodeName`, `targetRef`.
  Pods without an IP or in phase Succeeded/Failed are left out.

Minimal writes (`plan_slices`, shared with the mirroring controller), numbered as in the code:
1. each existing slice keeps the endpoints still wanted (updated in place when they changed;
   an endpoint is identified by its pod, so a new pod IP is an in-place update); slices of a
   mapping no longer wanted are deleted;
2. new endpoints first fill slices that are being updated anyway, then slices step 1 emptied;
   slices still empty are deleted;
3. the rest go into new slices of at most `max_per_slice`, except that a last partial chunk
   goes into the unchanged slice with the most room if it fits there;
4. a Service with nothing to publish keeps one empty placeholder slice, as upstream does.
An unchanged input gives an empty plan. A Service being deleted gets no new slices (only
updates and deletes), so its foreground deletion cannot race the garbage collector.

Stale caches: the controller remembers the resourceVersions it wrote (`base.WriteTracker`) until
the informer shows them; a sync for a Service with writes still in flight raises
`StaleCacheError`, so it is retried rather than creating duplicate slices from an old view.

Pods by selector: a `label` index on the pod cache (`namespace/key=value` -> pod keys) makes
"pods of this Service" cost the size of its smallest label set instead of a scan of every pod;
the pod -> Services direction uses the selectors kept by the service handlers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tinykube.api import resources
from tinykube.api.clone import clone
from tinykube.api.meta import owner_reference
from tinykube.client import controller as base
from tinykube.client.controller import Obj, Plan
from tinykube.client.informer import Indexer, label_index
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
RESERVED_LABELS = frozenset({SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL})
MAX_ENDPOINTS_PER_SLICE = 100

# A port mapping: (addressType, ports sorted canonically).
PortKey = tuple[tuple[str, int, str, str], ...]
MappingKey = tuple[str, PortKey]
EndpointKey = tuple[str, str]  # (targetRef name, "") or ("", first address)


SERVICES = resources.must("", "v1", "services")
PODS = resources.must("", "v1", "pods")
ENDPOINT_SLICES = resources.must("discovery.k8s.io", "v1", "endpointslices")


# --- pods and services (also used by the Endpoints controller) ---------------------------------


def selector_of(service: Obj) -> dict[str, str]:
    """The Service's selector; empty means selector-less (its endpoints are user-managed)."""
    return dict(service.get("spec", {}).get("selector") or {})


def is_headless(service: Obj) -> bool:
    return bool(service.get("spec", {}).get("clusterIP") == "None")


def is_external_name(service: Obj) -> bool:
    return bool(service.get("spec", {}).get("type") == "ExternalName")


def is_pod_ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def is_terminal(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status", {})
    ips = [entry["ip"] for entry in status.get("podIPs") or [] if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


@functools.lru_cache(maxsize=65536)  # pod IPs repeat on every reconcile of their Service
def address_type(ip: str) -> str | None:
    """`IPv4` or `IPv6`, or None for something that is not an IP address."""
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    """Upstream `ShouldSetHostname`: hostname set and subdomain == Service name, same ns."""
    spec, pod_meta, svc_meta = pod.get("spec", {}), pod["metadata"], service["metadata"]
    return (bool(spec.get("hostname")) and spec.get("subdomain") == svc_meta["name"]
            and pod_meta.get("namespace") == svc_meta.get("namespace"))


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """Resolve a Service port's targetPort for one pod (None when a name does not resolve)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec", {})
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def endpoint_ports(pod: Obj, service: Obj) -> list[dict[str, Any]]:
    """The slice ports of this pod: one per Service port whose target resolves, in order."""
    ports: list[dict[str, Any]] = []
    for service_port in service.get("spec", {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: dict[str, Any] = {"name": service_port.get("name") or "", "port": number,
                                "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def port_key(ports: Iterable[Obj] | None) -> PortKey:
    """Order-independent identity of a port list (the upstream endpointMeta hash)."""
    return tuple(sorted((p.get("name") or "", int(p.get("port") or -1), p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or []))


def target_ref(pod: Obj) -> dict[str, Any]:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", "")}


def service_families(service: Obj, pods: Sequence[Obj]) -> list[str]:
    """Address types to publish: the Service's ipFamilies, else those of the pod IPs."""
    families = list(service.get("spec", {}).get("ipFamilies") or [])
    if families:
        return families
    seen = {address_type(ip) for pod in pods for ip in pod_ips(pod)}
    return [f for f in ("IPv4", "IPv6") if f in seen] or ["IPv4"]


def pod_to_endpoint(pod: Obj, service: Obj, addresses: list[str]) -> dict[str, Any]:
    """One slice endpoint for a pod (upstream `podToEndpoint`)."""
    serving = is_pod_ready(pod)
    terminating = is_terminating(pod)
    publish = bool(service.get("spec", {}).get("publishNotReadyAddresses"))
    endpoint: dict[str, Any] = {
        "addresses": addresses,
        "conditions": {"ready": publish or (serving and not terminating),
                       "serving": serving, "terminating": terminating},
    }
    if should_set_hostname(pod, service):
        endpoint["hostname"] = pod["spec"]["hostname"]
    if pod.get("spec", {}).get("nodeName"):
        endpoint["nodeName"] = pod["spec"]["nodeName"]
    endpoint["targetRef"] = target_ref(pod)
    return endpoint


# --- the pure decision ------------------------------------------------------------------------


@dataclasses.dataclass
class EndpointGroup:
    """The desired endpoints of one port mapping."""

    address_type: str
    ports: list[dict[str, Any]]
    endpoints: dict[EndpointKey, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SliceTemplate:
    """What every slice of one owner carries besides its endpoints."""

    namespace: str
    generate_name: str
    labels: dict[str, str]
    owner_reference: dict[str, Any]
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)


def endpoint_key(endpoint: Obj) -> EndpointKey:
    """An endpoint's identity: its pod (so a new IP updates it in place), else its address."""
    name = (endpoint.get("targetRef") or {}).get("name")
    return (name, "") if name else ("", (endpoint.get("addresses") or [""])[0])


def project_endpoint(endpoint: Obj) -> dict[str, Any]:
    """The fields this controller writes, to compare a cached endpoint with a desired one."""
    projected: dict[str, Any] = {"addresses": list(endpoint.get("addresses") or [])}
    conditions = endpoint.get("conditions") or {}
    projected["conditions"] = {k: conditions[k] for k in ("ready", "serving", "terminating")
                               if conditions.get(k) is not None}
    for field in ("hostname", "nodeName"):
        if endpoint.get(field):
            projected[field] = endpoint[field]
    ref = endpoint.get("targetRef")
    if ref:
        projected["targetRef"] = {k: ref[k] for k in ("kind", "namespace", "name", "uid")
                                  if ref.get(k)}
    return projected


def slice_labels(service: Obj) -> dict[str, str]:
    labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items()
              if k not in RESERVED_LABELS}
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def service_template(service: Obj) -> SliceTemplate:
    meta = service["metadata"]
    return SliceTemplate(namespace=meta.get("namespace", ""), generate_name=f"{meta['name']}-",
                         labels=slice_labels(service),
                         owner_reference=owner_reference(service, kind="Service",
                                                         api_version="v1"))


def desired_groups(service: Obj, pods: Sequence[Obj]) -> dict[MappingKey, EndpointGroup]:
    """Group the endpoints of the selected pods by (address type, port mapping)."""
    groups: dict[MappingKey, EndpointGroup] = {}
    families = service_families(service, pods)
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if is_terminal(pod) or not pod_ips(pod):
            continue
        ports = endpoint_ports(pod, service)
        for family in families:
            addresses = [ip for ip in pod_ips(pod) if address_type(ip) == family]
            if not addresses:
                continue
            key = (family, port_key(ports))
            group = groups.setdefault(key, EndpointGroup(family, ports))
            endpoint = pod_to_endpoint(pod, service, addresses)
            group.endpoints.setdefault(endpoint_key(endpoint), endpoint)
    return groups


def reconcile(service: Obj, pods: Sequence[Obj], existing_slices: Sequence[Obj], *,
              max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """Decide the EndpointSlices of one Service.

    `pods` are the pods its selector matches (same namespace); `existing_slices` the slices
    this controller manages for it. Inputs are never modified.
    """
    if is_external_name(service):
        # ExternalName Services have no endpoints: remove whatever we published before.
        return Plan(delete=sorted(s["metadata"]["name"] for s in existing_slices))
    if not selector_of(service):
        return Plan()  # selector-less: endpoints are user-managed (see the mirroring controller)
    placeholder = EndpointGroup(service_families(service, pods)[0], [])
    return plan_slices(desired_groups(service, pods), existing_slices,
                       template=service_template(service), max_per_slice=max_per_slice,
                       placeholder=placeholder)


def plan_slices(groups: Mapping[MappingKey, EndpointGroup], existing_slices: Sequence[Obj], *,
                template: SliceTemplate, max_per_slice: int,
                placeholder: EndpointGroup | None = None) -> Plan:
    """Turn desired endpoint groups + existing slices into a minimal Plan (steps 1-4)."""
    remaining = {key: dict(group.endpoints) for key, group in groups.items()}
    plan = Plan()
    unchanged: list[tuple[MappingKey, Obj]] = []
    updating: list[tuple[MappingKey, dict[str, Any]]] = []
    emptied: list[tuple[MappingKey, Obj]] = []
    # 1. Keep wanted endpoints in their slice, drop the rest; emptied slices may be reused.
    for existing in sorted(existing_slices, key=lambda s: s["metadata"]["name"]):
        key = (existing.get("addressType", ""), port_key(existing.get("ports")))
        if key not in groups:
            plan.delete.append(existing["metadata"]["name"])
            continue
        kept, changed = _keep_wanted(existing, remaining[key])
        if not kept:
            emptied.append((key, existing))
        elif changed or not _meta_matches(existing, template):
            updating.append((key, _slice_body(template, groups[key], kept, existing)))
        else:
            unchanged.append((key, existing))
    # 2. Fill slices that are being written anyway, then emptied ones; delete the rest.
    for key, existing in emptied:
        if remaining[key]:
            updating.append((key, _slice_body(template, groups[key], [], existing)))
        else:
            plan.delete.append(existing["metadata"]["name"])
    for key, body in updating:
        _fill(body["endpoints"], remaining[key], max_per_slice)
    plan.delete.extend(body["metadata"]["name"] for _, body in updating if not body["endpoints"])
    updating = [(key, body) for key, body in updating if body["endpoints"]]
    # 3. New slices for the rest; a last partial chunk may top up an unchanged slice.
    for key, wanted in remaining.items():
        chunks = _chunks(list(wanted.values()), max_per_slice)
        if chunks and len(chunks[-1]) < max_per_slice:
            target = _roomiest(unchanged, key, len(chunks[-1]), max_per_slice)
            if target is not None:
                unchanged.remove((key, target))
                endpoints = [project_endpoint(e) for e in target.get("endpoints") or []]
                updating.append((key, _slice_body(template, groups[key],
                                                  endpoints + chunks.pop(), target)))
        plan.create.extend(_slice_body(template, groups[key], chunk) for chunk in chunks)
    plan.update.extend(body for _, body in updating)
    # 4. Keep one empty placeholder slice when nothing else would exist.
    if placeholder is not None and not unchanged and not plan.update and not plan.create:
        _keep_placeholder(plan, existing_slices, template, placeholder)
    return plan


def _keep_wanted(existing: Obj, wanted: dict[EndpointKey, dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], bool]:
    """Endpoints of `existing` still wanted (taken out of `wanted`), and whether any changed."""
    kept: list[dict[str, Any]] = []
    changed = False
    for endpoint in existing.get("endpoints") or []:
        desired = wanted.pop(endpoint_key(endpoint), None)
        if desired is None:
            changed = True  # no longer wanted, or a duplicate
            continue
        changed = changed or project_endpoint(endpoint) != project_endpoint(desired)
        kept.append(desired)
    return kept, changed


def _meta_matches(existing: Obj, template: SliceTemplate) -> bool:
    """Labels and annotations as the template says (ports already match: same mapping)."""
    meta = existing.get("metadata", {})
    return (dict(meta.get("labels") or {}) == template.labels
            and _annotations(meta) == template.annotations)


def _annotations(meta: Obj) -> dict[str, str]:
    return {k: v for k, v in (meta.get("annotations") or {}).items()
            if k != "endpoints.kubernetes.io/last-change-trigger-time"}


def _fill(endpoints: list[dict[str, Any]], wanted: dict[EndpointKey, dict[str, Any]],
          max_per_slice: int) -> None:
    while wanted and len(endpoints) < max_per_slice:
        endpoints.append(wanted.pop(next(iter(wanted))))


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _roomiest(candidates: list[tuple[MappingKey, Obj]], key: MappingKey, needed: int,
              max_per_slice: int) -> Obj | None:
    """The unchanged slice of this mapping with the most free room, if `needed` fits."""
    fitting = [s for k, s in candidates
               if k == key and max_per_slice - len(s.get("endpoints") or []) >= needed]
    return min(fitting, key=lambda s: len(s.get("endpoints") or []), default=None)


def _slice_body(template: SliceTemplate, group: EndpointGroup, endpoints: list[dict[str, Any]],
                existing: Obj | None = None) -> dict[str, Any]:
    """A full slice object; an update keeps the existing metadata (name, resourceVersion)."""
    if existing is not None:
        metadata = clone(dict(existing["metadata"]))
    else:
        metadata = {"generateName": template.generate_name, "namespace": template.namespace,
                    "ownerReferences": [dict(template.owner_reference)]}
    metadata["labels"] = dict(template.labels)
    if template.annotations or metadata.get("annotations"):
        metadata["annotations"] = dict(template.annotations)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": metadata,
            "addressType": group.address_type, "ports": clone(group.ports),
            "endpoints": endpoints}


def _keep_placeholder(plan: Plan, existing_slices: Sequence[Obj], template: SliceTemplate,
                      placeholder: EndpointGroup) -> None:
    """Upstream keeps one empty slice per Service; reuse a deleted one if it already is one."""
    for existing in existing_slices:
        name = existing["metadata"]["name"]
        if (name in plan.delete and not existing.get("endpoints")
                and existing.get("addressType") == placeholder.address_type
                and not existing.get("ports")
                and _meta_matches(existing, template)):
            plan.delete.remove(name)
            return
    plan.create.append(_slice_body(template, placeholder, []))


# --- wiring -----------------------------------------------------------------------------------


def service_name_index(slice_obj: Obj) -> list[str]:
    """Index value `namespace/service` of a slice's `kubernetes.io/service-name` label."""
    meta = slice_obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


class ServiceSelectors:
    """Selectors of the Services with one, indexed by one of their `namespace/key=value` pairs.

    `matching(pod)` looks only at the Services indexed under one of the pod's labels, so a pod
    event costs the number of its labels, not the number of Services in its namespace.
    """

    def __init__(self) -> None:
        self._selectors: dict[str, dict[str, str]] = {}  # service key -> selector
        self._by_pair: dict[str, set[str]] = {}  # "namespace/key=value" -> service keys

    def __repr__(self) -> str:
        return f"<ServiceSelectors services={len(self._selectors)}>"

    @staticmethod
    def _pair(service: Obj, selector: Mapping[str, str]) -> str:
        key = min(selector)
        return f"{service['metadata'].get('namespace', '')}/{key}={selector[key]}"

    def upsert(self, service: Obj) -> None:
        self.remove(service)
        selector = selector_of(service)
        if selector:
            key = base.object_key(service)
            self._selectors[key] = selector
            self._by_pair.setdefault(self._pair(service, selector), set()).add(key)

    def remove(self, service: Obj) -> None:
        key = base.object_key(service)
        selector = self._selectors.pop(key, None)
        if selector:
            pair = self._pair(service, selector)
            keys = self._by_pair.get(pair, set())
            keys.discard(key)
            if not keys:
                self._by_pair.pop(pair, None)

    def matching(self, pod: Obj) -> list[str]:
        """Keys of the Services in the pod's namespace whose selector matches its labels."""
        labels = pod["metadata"].get("labels") or {}
        namespace = pod["metadata"].get("namespace", "")
        found = []
        for label, value in labels.items():
            for key in self._by_pair.get(f"{namespace}/{label}={value}", ()):
                if all(labels.get(k) == v for k, v in self._selectors[key].items()):
                    found.append(key)
        return sorted(found)


def pod_changed(old: Obj, new: Obj) -> bool:
    """True when a field an endpoint is built from changed (labels handled separately)."""
    def view(pod: Obj) -> tuple[Any, ...]:
        spec = pod.get("spec", {})
        return (pod_ips(pod), is_pod_ready(pod), is_terminating(pod), is_terminal(pod),
                spec.get("hostname"), spec.get("subdomain"), spec.get("nodeName"),
                [c.get("ports") for c in spec.get("containers") or []],
                pod["metadata"].get("uid"))
    return view(old) != view(new)


class PodServiceMap:
    """Handler glue shared with the Endpoints controller: pod and service events -> keys.

    `pods` gets the `label` index (`informer.label_index`), which makes "pods of this Service"
    cost the size of its smallest label set instead of a scan of every pod.
    """

    def __init__(self, pods: Indexer, enqueue: Callable[[str], None]) -> None:
        self.pods = pods
        self.enqueue = enqueue
        self.selectors = ServiceSelectors()
        pods.add_index("label", label_index)

    def __repr__(self) -> str:
        return f"<PodServiceMap {self.selectors!r}>"

    def on_service(self, service: Obj) -> None:
        self.selectors.upsert(service)
        self.enqueue(base.object_key(service))

    def on_service_delete(self, service: Obj) -> None:
        self.selectors.remove(service)
        self.enqueue(base.object_key(service))

    def on_pod(self, pod: Obj) -> None:
        for key in self.selectors.matching(pod):
            self.enqueue(key)

    def on_pod_update(self, old: Obj, new: Obj) -> None:
        labels_changed = old["metadata"].get("labels") != new["metadata"].get("labels")
        if not labels_changed and not pod_changed(old, new):
            return
        keys = set(self.selectors.matching(new))
        if labels_changed:
            keys.update(self.selectors.matching(old))
        for key in sorted(keys):
            self.enqueue(key)

    def selected_pods(self, service: Obj) -> Sequence[Obj]:
        """The cached pods a Service's selector matches."""
        return self.pods.select(service["metadata"].get("namespace", ""), selector_of(service))


class EndpointSliceController(base.Controller):
    """Keeps the EndpointSlices of every Service with a selector."""

    name = "endpointslice-controller"

    def __init__(self, client: RESTClient, *, max_per_slice: int = MAX_ENDPOINTS_PER_SLICE
                 ) -> None:
        self.services = shared_informer(client, SERVICES)
        self.pods = shared_informer(client, PODS)
        self.slices = shared_informer(client, ENDPOINT_SLICES,
                               label_selector=f"{MANAGED_BY_LABEL}={CONTROLLER_NAME}")
        super().__init__(client, [self.services, self.pods, self.slices])
        self.max_per_slice = max_per_slice
        self.slices.cache.add_index("service", service_name_index)
        self.tracker = base.WriteTracker(self.slices.cache.get)
        self.glue = PodServiceMap(self.pods.cache, self.queue.add)
        self.services.add_handlers(on_add=self.glue.on_service,
                                   on_update=lambda _old, new: self.glue.on_service(new),
                                   on_delete=self.glue.on_service_delete)
        self.pods.add_handlers(on_add=self.glue.on_pod, on_update=self.glue.on_pod_update,
                               on_delete=self.glue.on_pod)
        self.slices.add_handlers(on_add=self._on_slice,
                                 on_update=lambda _old, new: self._on_slice(new),
                                 on_delete=lambda obj: self._on_slice(obj, deleted=True))

    def _on_slice(self, slice_obj: Obj, *, deleted: bool = False) -> None:
        """Resync the owning Service unless this is the echo of our own write."""
        for key in service_name_index(slice_obj):
            if not self.tracker.observed(key, slice_obj, deleted=deleted):
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        namespace, _ = base.split_key(key)
        service = self.services.cache.get(key)
        existing = self.slices.cache.by_index("service", key)
        if service is None:
            # Deleted. The garbage collector would remove the slices through their
            # ownerReference; deleting them here too keeps DNS right without it (idempotent).
            self.tracker.forget(key)
            plan = Plan(delete=[s["metadata"]["name"] for s in existing])
        elif self.tracker.is_stale(key):
            raise base.StaleCacheError(f"endpointslice cache behind our writes for {key}")
        else:
            plan = reconcile(service, self.glue.selected_pods(service), existing,
                             max_per_slice=self.max_per_slice)
            if service["metadata"].get("deletionTimestamp"):
                # A Service deleted in foreground waits for its slices: creating new ones
                # would race the garbage collector deleting them (upstream does the same).
                plan = dataclasses.replace(plan, create=[])
        if not plan:
            return
        applied = await base.apply_plan(self.client, ENDPOINT_SLICES, namespace, plan)
        self.tracker.wrote(key, namespace, applied)
        applied.raise_failures()


def start(client: RESTClient, *, workers: int = 2) -> list[asyncio.Task[None]]:
    """Run the EndpointSlice controller; cancel the returned tasks to stop it."""
    return EndpointSliceController(client).start(workers=workers)
