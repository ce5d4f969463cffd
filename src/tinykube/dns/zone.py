"""The cluster model: what the DNS server knows about Services, EndpointSlices, Pods, Namespaces.

It is fed raw API dicts (`apply_service`, `delete_slice`, ...), keeps slim views of them
(`views.py`) and a few indexes the resolver needs (slices per Service, owners of an IP), and
tells its listeners which *dependency keys* an update touched, so the answer cache drops only the
answers that read those keys:

    ("ns", namespace)          the namespace exists or not
    ("svc", namespace, name)   the Service or any of its EndpointSlices
    ("ip", address)            reverse lookups of that address
    ("pod", namespace, ip)     `verified` pod records
    ("apex",)                  the apex SOA (its serial changes on every update)

No-op updates (an object whose DNS-visible projection did not change) notify nobody. The SOA serial
is the unix time of the last change, as in CoreDNS.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from tinykube.dns.views import (
    PodView,
    ServiceView,
    SliceView,
    namespace_name,
    pod_view,
    service_view,
    slice_view,
)

DepKey = tuple[str, ...]
Listener = Callable[[set[DepKey]], None]
Key = tuple[str, str]


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ClusterModel:
    """Slim views of the watched objects plus the indexes the resolver reads."""

    def __init__(self) -> None:
        self.services: dict[Key, ServiceView] = {}
        self.slices: dict[Key, SliceView] = {}
        self.pods: dict[Key, PodView] = {}
        self.namespaces: set[str] = set()
        self.serial = int(time.time())
        self.synced = False
        self._listeners: list[Listener] = []
        self._slices_of: dict[Key, dict[str, SliceView]] = {}  # (ns, service) -> slices
        self._services_in: Counter[str] = Counter()  # namespace -> number of services
        self._cluster_ip_owners: dict[str, dict[Key, None]] = {}  # ip -> services, in order
        self._slice_ip_owners: dict[str, dict[Key, None]] = {}  # ip -> slices holding it
        self._pod_ips: Counter[tuple[str, str]] = Counter()  # (ns, ip) -> number of pods

    # ---- listeners -------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(dep_keys)` after every change that can alter an answer."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def mark_synced(self) -> None:
        """Every informer has listed once: from now on, not found means NXDOMAIN."""
        if not self.synced:
            self.synced = True
            self._notify({("apex",), ("synced",)})

    def _notify(self, keys: set[DepKey]) -> None:
        self.serial = max(self.serial, int(time.time()))
        keys.add(("apex",))
        for listener in self._listeners:
            listener(keys)

    # ---- queries (used by the resolver) ----------------------------------------------------

    def namespace_exists(self, namespace: str) -> bool:
        # .get: Counter's __missing__ is a Python call, and names that exist nowhere are asked
        return namespace in self.namespaces or self._services_in.get(namespace, 0) > 0

    def service(self, namespace: str, name: str) -> ServiceView | None:
        return self.services.get((namespace, name))

    def slices_of(self, namespace: str, service: str) -> Iterable[SliceView]:
        return self._slices_of.get((namespace, service), {}).values()

    def services_with_cluster_ip(self, ip: str) -> list[ServiceView]:
        return [self.services[k] for k in self._cluster_ip_owners.get(ip, {})]

    def slices_with_ip(self, ip: str) -> list[SliceView]:
        return [self.slices[k] for k in self._slice_ip_owners.get(ip, {})]

    def pod_ip_exists(self, namespace: str, ip: str) -> bool:
        return self._pod_ips[(namespace, ip)] > 0

    # ---- services --------------------------------------------------------------------------

    def apply_service(self, obj: dict[str, Any]) -> bool:
        """Add or update a Service; returns whether anything DNS-visible changed."""
        key, view = _key(obj), service_view(obj)
        if view is None:
            return self.delete_service(obj)
        old = self.services.get(key)
        if old == view:
            return False
        existed = self.namespace_exists(key[0])
        self._unindex_service(key, old)
        self.services[key] = view
        self._services_in[key[0]] += 1
        for ip in view.cluster_ips:
            self._cluster_ip_owners.setdefault(ip, {})[key] = None
        self._notify(self._service_deps(key, existed, old, view))
        return True

    def delete_service(self, obj: dict[str, Any]) -> bool:
        key = _key(obj)
        existed = self.namespace_exists(key[0])
        old = self.services.pop(key, None)
        if old is None:
            return False
        self._unindex_service(key, old)
        self._notify(self._service_deps(key, existed, old, None))
        return True

    def _unindex_service(self, key: Key, old: ServiceView | None) -> None:
        if old is None:
            return
        self._services_in[key[0]] -= 1
        for ip in old.cluster_ips:
            owners = self._cluster_ip_owners.get(ip, {})
            owners.pop(key, None)
            if not owners:
                self._cluster_ip_owners.pop(ip, None)

    def _service_deps(self, key: Key, existed: bool, *views: ServiceView | None) -> set[DepKey]:
        """What a Service change touches: its names, its IPs' reverse names and, only if the
        namespace appeared or vanished with it, the namespace (a namespace with a Service
        exists even before the Namespace informer reports it)."""
        deps: set[DepKey] = {("svc", *key)}
        if existed != self.namespace_exists(key[0]):
            deps.add(("ns", key[0]))
        for view in views:
            deps.update(("ip", ip) for ip in (view.cluster_ips if view else ()))
        return deps

    # ---- endpoint slices -------------------------------------------------------------------

    def apply_slice(self, obj: dict[str, Any]) -> bool:
        key, view = _key(obj), slice_view(obj)
        if view is None:
            return self.delete_slice(obj)
        old = self.slices.get(key)
        if old == view:
            return False
        self._unindex_slice(key, old)
        self.slices[key] = view
        self._slices_of.setdefault((view.namespace, view.service), {})[view.name] = view
        for ip in _slice_ips(view):
            self._slice_ip_owners.setdefault(ip, {})[key] = None
        self._notify(_slice_deps(old, view))
        return True

    def delete_slice(self, obj: dict[str, Any]) -> bool:
        key = _key(obj)
        old = self.slices.pop(key, None)
        if old is None:
            return False
        self._unindex_slice(key, old)
        self._notify(_slice_deps(old, None))
        return True

    def _unindex_slice(self, key: Key, old: SliceView | None) -> None:
        if old is None:
            return
        siblings = self._slices_of.get((old.namespace, old.service), {})
        siblings.pop(old.name, None)
        if not siblings:
            self._slices_of.pop((old.namespace, old.service), None)
        for ip in _slice_ips(old):
            owners = self._slice_ip_owners.get(ip, {})
            owners.pop(key, None)
            if not owners:
                self._slice_ip_owners.pop(ip, None)

    # ---- pods and namespaces ---------------------------------------------------------------

    def apply_pod(self, obj: dict[str, Any]) -> bool:
        key, view = _key(obj), pod_view(obj)
        if view is None:
            return self.delete_pod(obj)
        old = self.pods.get(key)
        if old == view:
            return False
        self._unindex_pod(old)
        self.pods[key] = view
        for ip in view.ips:
            self._pod_ips[(view.namespace, ip)] += 1
        self._notify(_pod_deps(old, view))
        return True

    def delete_pod(self, obj: dict[str, Any]) -> bool:
        old = self.pods.pop(_key(obj), None)
        if old is None:
            return False
        self._unindex_pod(old)
        self._notify(_pod_deps(old, None))
        return True

    def _unindex_pod(self, old: PodView | None) -> None:
        if old is None:
            return
        for ip in old.ips:
            slot = (old.namespace, ip)
            self._pod_ips[slot] -= 1
            if self._pod_ips[slot] <= 0:
                del self._pod_ips[slot]

    def apply_namespace(self, obj: dict[str, Any]) -> bool:
        name = namespace_name(obj)
        if not name or name in self.namespaces:
            return False
        self.namespaces.add(name)
        self._notify({("ns", name)})
        return True

    def delete_namespace(self, obj: dict[str, Any]) -> bool:
        name = namespace_name(obj)
        if name not in self.namespaces:
            return False
        self.namespaces.discard(name)
        self._notify({("ns", name)})
        return True


def _slice_ips(view: SliceView) -> set[str]:
    return {ip for endpoint in view.endpoints for ip in endpoint.addresses}


def _slice_deps(*views: SliceView | None) -> set[DepKey]:
    deps: set[DepKey] = set()
    for view in views:
        if view is not None:
            deps.add(("svc", view.namespace, view.service))
            deps.update(("ip", ip) for ip in _slice_ips(view))
    return deps


def _pod_deps(*views: PodView | None) -> set[DepKey]:
    return {("pod", v.namespace, ip) for v in views if v is not None for ip in v.ips}
