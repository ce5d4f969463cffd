"""Wires API informers to the DNS cluster model.

One informer per resource the DNS reads: Services, EndpointSlices (discovery.k8s.io/v1),
Namespaces, and Pods only in `verified` pod-record mode (CoreDNS watches pods only then too).
Handlers are quick: they project the object into a slim view and let the model invalidate the
affected answers; no-op updates stop at the view comparison. When every informer has synced the
model is marked synced, which ends the "SERVFAIL instead of NXDOMAIN" start-up period.

The programming latency (API change to DNS answer) is observed for EndpointSlices that carry the
`endpoints.kubernetes.io/last-change-trigger-time` annotation: the answer cache is invalidated in
the handler, so the next query already sees the change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tinykube.api import resources
from tinykube.api.resources import Resource
from tinykube.client.informer import Informer
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.dns.metrics import DNSMetrics
from tinykube.dns.views import trigger_time
from tinykube.dns.zone import ClusterModel

log = logging.getLogger(__name__)
Apply = Callable[[dict[str, Any]], bool]



def parse_time(text: str) -> float | None:
    """Unix seconds of an RFC 3339 timestamp, or None."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _connect(informer: Informer, apply: Apply, delete: Apply) -> None:
    """Route an informer's events to the model (the handlers' results are not needed)."""

    def on_add(obj: dict[str, Any]) -> None:
        apply(obj)

    def on_update(_old: dict[str, Any], new: dict[str, Any]) -> None:
        apply(new)

    def on_delete(obj: dict[str, Any]) -> None:
        delete(obj)

    informer.add_handlers(on_add=on_add, on_update=on_update, on_delete=on_delete)


class DNSController:
    """Keeps a ClusterModel in step with the API server."""

    def __init__(self, client: RESTClient, model: ClusterModel, *, pod_records: str = "insecure",
                 metrics: DNSMetrics | None = None,
                 clock: Callable[[], float] = time.time,
                 drills: tuple[Apply, Apply] | None = None,
                 querylog: tuple[Apply, Apply] | None = None) -> None:
        self.model, self.metrics, self.clock = model, metrics, clock
        watched: list[tuple[Resource, Apply, Apply]] = [
            (resources.must("", "v1", "namespaces"), model.apply_namespace, model.delete_namespace),
            (resources.must("", "v1", "services"), model.apply_service, model.delete_service),
            (resources.must("discovery.k8s.io", "v1", "endpointslices"), self._apply_slice,
             model.delete_slice),
        ]
        if pod_records == "verified":
            watched.append((resources.must("", "v1", "pods"), model.apply_pod, model.delete_pod))
        self.informers: list[Informer] = []
        for res, apply, delete in watched:
            informer = shared_informer(client, res)
            _connect(informer, apply, delete)
            self.informers.append(informer)
        if drills is not None:  # dns.drills: the one ConfigMap of fault drills
            from tinykube.dns.drills import CONFIGMAP, NAMESPACE

            informer = shared_informer(client, resources.must("", "v1", "configmaps"),
                                       namespace=NAMESPACE,
                                       field_selector=f"metadata.name={CONFIGMAP}")
            _connect(informer, *drills)
            self.informers.append(informer)
        if querylog is not None:  # dns.querylog: its settings, a ConfigMap beside the drills'
            from tinykube.dns import querylog as qlog

            informer = shared_informer(client, resources.must("", "v1", "configmaps"),
                                       namespace=qlog.NAMESPACE,
                                       field_selector=f"metadata.name={qlog.CONFIGMAP}")
            _connect(informer, *querylog)
            self.informers.append(informer)

    def _apply_slice(self, obj: dict[str, Any]) -> bool:
        changed = self.model.apply_slice(obj)
        if changed and self.metrics is not None:
            triggered = parse_time(trigger_time(obj))
            if triggered is not None:
                latency = max(0.0, self.clock() - triggered)
                self.metrics.programming.labels("endpointslice").observe(latency)
        return changed

    async def run(self) -> None:
        """Run every informer until cancelled; mark the model synced once all have listed."""
        tasks = [asyncio.create_task(informer.run()) for informer in self.informers]
        try:
            await asyncio.gather(*(informer.wait_synced() for informer in self.informers))
            self.model.mark_synced()
            log.info("cluster DNS synced with the API server")
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
