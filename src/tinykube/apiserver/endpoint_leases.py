"""The `kubernetes` Service's endpoints when several API servers share etcd.

kube-apiserver's lease endpoint reconciler: each API server keeps a Lease of its own alive and
writes the `default/kubernetes` Endpoints and EndpointSlice to list every API server whose lease
is live, so clients inside the cluster reach any of them and a stopped one drops out within a
lease. The Lease is the API server identity lease (`kube-system/apiserver-<id>`, label
`apiserver.kubernetes.io/identity=kube-apiserver`, holder `apiserver-<id>_<uuid>`); kube keeps
the address in a TTL key `/registry/masterleases/<ip>` of its own, tinykube in the Lease's
annotation `tinykube.io/advertise-address` (`HOST:PORT`), since two API servers of one host
differ by port only. A lease is live for `leaseDurationSeconds` after its `renewTime`; each
server renews every `RENEW_INTERVAL` and deletes leases expired for a whole duration (kube's
identity lease garbage collector). Where the servers listen on different ports the Endpoints
have a subset per port; the EndpointSlice (one port list) names the servers of the first port.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from tinykube.api import errors, resources
from tinykube.apiserver import bootstrap
from tinykube.apiserver.registry import Registry

log = logging.getLogger(__name__)
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
IDENTITY = "kube-apiserver"
ADDRESS_ANNOTATION = "tinykube.io/advertise-address"
LEASE_SECONDS = 15  # kube's master lease TTL
RENEW_INTERVAL = 5.0
Obj = dict[str, Any]
Clock = Callable[[], datetime.datetime]
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def lease_name(host: str, port: int) -> str:
    return "apiserver-" + hashlib.sha256(f"{host}:{port}".encode()).hexdigest()[:26]


def lease_object(name: str, holder: str, host: str, port: int,
                 now: datetime.datetime) -> Obj:
    stamp = now.strftime(_MICRO)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {IDENTITY_LABEL: IDENTITY},
                         "annotations": {ADDRESS_ANNOTATION: f"{host}:{port}"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS,
                     "renewTime": stamp}}


def _expires(lease: Obj) -> datetime.datetime | None:
    spec = lease.get("spec") or {}
    try:
        renewed = datetime.datetime.strptime(spec["renewTime"], _MICRO)
    except (KeyError, TypeError, ValueError):
        return None
    seconds = int(spec.get("leaseDurationSeconds") or LEASE_SECONDS)
    return renewed.replace(tzinfo=datetime.UTC) + datetime.timedelta(seconds=seconds)


def live_addresses(leases: Iterable[Obj], now: datetime.datetime) -> list[tuple[str, int]]:
    """(host, port) of every API server whose identity lease is live, sorted."""
    found = set()
    for lease in leases:
        meta = lease.get("metadata") or {}
        if (meta.get("labels") or {}).get(IDENTITY_LABEL) != IDENTITY:
            continue
        expires = _expires(lease)
        host, _, port = ((meta.get("annotations") or {}).get(ADDRESS_ANNOTATION) or "") \
            .rpartition(":")
        if expires is not None and expires > now and host and port.isdigit():
            found.add((host, int(port)))
    return sorted(found)


def expired(leases: Iterable[Obj], now: datetime.datetime) -> list[str]:
    """Names of identity leases expired for a whole duration (to be deleted)."""
    names = []
    for lease in leases:
        expires = _expires(lease)
        labels = (lease.get("metadata") or {}).get("labels") or {}
        seconds = int((lease.get("spec") or {}).get("leaseDurationSeconds") or LEASE_SECONDS)
        if labels.get(IDENTITY_LABEL) == IDENTITY and expires is not None and \
                expires + datetime.timedelta(seconds=seconds) < now:
            names.append(lease["metadata"]["name"])
    return names


def endpoints(addresses: list[tuple[str, int]]) -> tuple[Obj, Obj]:
    """The Endpoints (a subset per port) and EndpointSlice for the live API servers."""
    ports = sorted({port for _, port in addresses})
    first = bootstrap.kubernetes_endpoints(addresses[0][0], addresses[0][1])
    first["subsets"] = [{"addresses": [{"ip": host} for host, p in addresses if p == port],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
                        for port in ports]
    slice_ = bootstrap.kubernetes_endpointslice(addresses[0][0], ports[0])
    slice_["endpoints"] = [{"addresses": [host], "conditions": {"ready": True}}
                           for host in sorted({h for h, p in addresses if p == ports[0]})]
    return first, slice_


class Reconciler:
    """One API server's lease and its share of keeping the endpoints right."""

    def __init__(self, registry: Registry, host: str, port: int) -> None:
        self.registry = registry
        self.host, self.port = host, port
        self.name = lease_name(host, port)
        self.holder = f"{self.name}_{uuid.uuid4()}"

    def __repr__(self) -> str:
        return f"Reconciler({self.name})"

    def reconcile(self) -> None:
        now = self.registry.clock()
        res = resources.must("coordination.k8s.io", "v1", "leases")
        store = self.registry.store
        wanted = lease_object(self.name, self.holder, self.host, self.port, now)
        entry = store.get(res.storage_key, "kube-system", self.name)
        if entry is None:
            self.registry.create(res, wanted)
        else:
            self.registry.update(res, {**entry.obj, "spec": wanted["spec"],
                                       "metadata": {**entry.obj["metadata"],
                                                    **{k: wanted["metadata"][k] for k in
                                                       ("labels", "annotations")}}})
        leases = [e.obj for e in store.list(res.storage_key, "kube-system")]
        for name in expired(leases, now):
            self.registry.delete(res, "kube-system", name, {})
        addresses = live_addresses(leases, now) or [(self.host, self.port)]
        if (self.host, self.port) not in addresses:
            addresses = sorted([*addresses, (self.host, self.port)])
        eps, slice_ = endpoints(addresses)
        bootstrap.reconcile_objects(self.registry, eps, slice_)


async def reconcile_forever(registry: Registry, *, api_host: str, api_port: int,
                            interval: float = RENEW_INTERVAL) -> None:
    reconciler = Reconciler(registry, api_host, api_port)
    while True:
        try:
            reconciler.reconcile()
            await registry.store.settle(0)
        except errors.APIError as exc:  # another server's write came first: next round
            log.info("reconciling the kubernetes endpoints: %s", exc)
        await asyncio.sleep(interval)
