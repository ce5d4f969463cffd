"""What the observer sees: the cluster map, the pod of an address, and the tracer's feed.

`Hub` reads the shared informers of the components process (Pods, Services, EndpointSlices:
no extra watch when the controllers already run them) and keeps a `version` that every change
bumps, with an `asyncio.Event` the live map's streams wait on. `cluster_map` is a pure function
of the three caches: per namespace, each Service with its DNS name, its EndpointSlices and their
endpoints (the pod, its IP, ready/serving/terminating, node, DNS names), and the pods no Service
selects. `pod_index()` names the pod of each address, for the DNS query log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tinykube.api import resources
from tinykube.client.informer import Informer
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.observe.traces import SERVICE_LABEL, Tracer, pod_ready

Obj = dict[str, Any]
DOMAIN = "cluster.local"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def pod_dns_names(pod: Mapping[str, Any], headless: set[tuple[str, str]],
                  domain: str = DOMAIN) -> list[str]:
    """The names cluster DNS answers for this pod: hostname.subdomain (when the subdomain
    names a headless Service of its namespace) and the dashed-IP pod record."""
    ns, spec = str(_meta(pod).get("namespace") or ""), _spec(pod)
    names = []
    hostname, subdomain = spec.get("hostname"), spec.get("subdomain")
    if hostname and subdomain and (ns, subdomain) in headless:
        names.append(f"{hostname}.{subdomain}.{ns}.svc.{domain}")
    ip = (pod.get("status") or {}).get("podIP")
    if ip:
        names.append(f"{ip.replace('.', '-').replace(':', '-')}.{ns}.pod.{domain}")
    return names


def _pod_row(pod: Mapping[str, Any], headless: set[tuple[str, str]]) -> Obj:
    status = pod.get("status") or {}
    return {"name": _meta(pod).get("name"), "ip": status.get("podIP") or "",
            "ready": bool(pod_ready(pod)), "phase": status.get("phase") or "",
            "node": _spec(pod).get("nodeName") or "", "dns": pod_dns_names(pod, headless)}


def _endpoint_row(endpoint: Mapping[str, Any], pods: Mapping[tuple[str, str], Obj], ns: str,
                  service: str, is_headless: bool, domain: str) -> Obj:
    ref = endpoint.get("targetRef") or {}
    cond = endpoint.get("conditions") or {}
    ready = cond.get("ready")
    pod = pods.get((str(ref.get("namespace") or ns), str(ref.get("name") or "")))
    hostname = endpoint.get("hostname")
    return {"pod": ref.get("name") or "", "addresses": list(endpoint.get("addresses") or ()),
            "ready": ready is None or bool(ready),
            "serving": bool(cond.get("serving", ready is None or ready)),
            "terminating": bool(cond.get("terminating", False)),
            "node": endpoint.get("nodeName") or (_spec(pod).get("nodeName") if pod else "")
            or "",
            "dns": f"{hostname}.{service}.{ns}.svc.{domain}" if hostname and is_headless else ""}


def _service_row(svc: Mapping[str, Any], slices: list[Obj], pods: Mapping[tuple[str, str], Obj],
                 domain: str) -> Obj:
    meta, spec = _meta(svc), _spec(svc)
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    headless = spec.get("clusterIP") == "None"
    return {
        "name": name, "type": spec.get("type") or "ClusterIP",
        "clusterIP": spec.get("clusterIP") or "", "headless": headless,
        "externalName": spec.get("externalName") or "",
        "selector": spec.get("selector") or {},
        "ports": [f"{p.get('name') or '-'}:{p.get('port')}/{p.get('protocol') or 'TCP'}"
                  for p in spec.get("ports") or ()],
        "dns": f"{name}.{ns}.svc.{domain}",
        "slices": [{"name": _meta(s).get("name"),
                    "endpoints": [_endpoint_row(e, pods, ns, name, headless, domain)
                                  for e in s.get("endpoints") or ()]}
                   for s in sorted(slices, key=lambda s: str(_meta(s).get("name")))],
    }


def cluster_map(services: Iterable[Obj], slices: Iterable[Obj], pods: Iterable[Obj],
                domain: str = DOMAIN) -> Obj:
    """The live map's document (see the module docstring)."""
    by_key = {(str(_meta(p).get("namespace")), str(_meta(p).get("name"))): p for p in pods}
    slices_of: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        label = (_meta(s).get("labels") or {}).get(SERVICE_LABEL)
        if label:
            slices_of.setdefault((str(_meta(s).get("namespace")), label), []).append(s)
    headless = {(str(_meta(s).get("namespace")), str(_meta(s).get("name"))) for s in services
                if _spec(s).get("clusterIP") == "None"}
    namespaces: dict[str, Obj] = {}
    shown: set[tuple[str, str]] = set()
    for svc in sorted(services, key=lambda s: (_meta(s).get("namespace"), _meta(s).get("name"))):
        ns, name = str(_meta(svc).get("namespace")), str(_meta(svc).get("name"))
        row = _service_row(svc, slices_of.get((ns, name), []), by_key, domain)
        namespaces.setdefault(ns, {"name": ns, "services": [], "pods": []})["services"].append(row)
        shown |= {(ns, e["pod"]) for s in row["slices"] for e in s["endpoints"] if e["pod"]}
    for key, pod in sorted(by_key.items()):
        entry = namespaces.setdefault(key[0], {"name": key[0], "services": [], "pods": []})
        row = _pod_row(pod, headless)
        row["inService"] = key in shown
        entry["pods"].append(row)
    return {"namespaces": [namespaces[n] for n in sorted(namespaces)]}


class Hub:
    """The observer's informers, the map's change signal, and the tracer's informer feed."""

    def __init__(self, client: RESTClient, tracer: Tracer | None = None) -> None:
        self.tracer = tracer
        self.version = 0
        self.changed = asyncio.Event()
        self.pods = shared_informer(client, resources.must("", "v1", "pods"))
        self.services = shared_informer(client, resources.must("", "v1", "services"))
        self.slices = shared_informer(
            client, resources.must("discovery.k8s.io", "v1", "endpointslices"))
        feeds: list[tuple[Informer, Callable[[Obj | None, Obj], None] | None]] = [
            (self.pods, tracer.on_pod if tracer else None),
            (self.services, tracer.on_service if tracer else None),
            (self.slices, tracer.on_slice if tracer else None)]
        for informer, feed in feeds:
            self._connect(informer, feed)

    def _connect(self, informer: Informer, feed: Callable[[Obj | None, Obj], None] | None
                 ) -> None:
        def on_add(obj: Obj) -> None:
            if feed is not None and informer.has_synced and not replaying:
                feed(None, obj)  # objects of the first list, or replayed, start no trace
            self._bump()

        def on_update(old: Obj, new: Obj) -> None:
            if feed is not None:
                feed(old, new)
            self._bump()

        def on_delete(_obj: Obj) -> None:
            self._bump()

        replaying = True  # add_handlers replays a synced cache through on_add
        informer.add_handlers(on_add=on_add, on_update=on_update, on_delete=on_delete)
        replaying = False

    def _bump(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(i.run() for i in (self.pods, self.services, self.slices)))

    def snapshot(self) -> Obj:
        return {"version": self.version, **cluster_map(
            self.services.cache.list(), self.slices.cache.list(), self.pods.cache.list())}

    def pod_index(self) -> dict[str, str]:
        """Pod IP -> "namespace/name", for the pods with their own address (not host network)."""
        index = {}
        for pod in self.pods.cache.list():
            status = pod.get("status") or {}
            if _spec(pod).get("hostNetwork"):
                continue
            name = f"{_meta(pod).get('namespace')}/{_meta(pod).get('name')}"
            for ip in {status.get("podIP"), *(p.get("ip") for p in status.get("podIPs") or ())}:
                if ip:
                    index[ip] = name
        return index
