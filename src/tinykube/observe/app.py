"""Assembling the observer in the components process: hub, tracer, hooks, HTTP endpoint.

Two calls from `components`: `Observer(client, ..., watch_client=DNS's client)` before the DNS
and the proxy start (so the tracer's informer handlers run before theirs and see each change
first: the DNS has a client and informers of its own, its identity's, and the observer shares
them; the host network's userspace proxy, as kube-proxy, has its own too), and
`observer.attach(dns, proxy_controller)` once they run: the tracer then hears the DNS model's
listener, the responder's built answers and the proxy's syncs. `observer.serve(host, port)`
starts the HTTP endpoint and writes `observe.json` (its URL) into the data directory.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from tinykube import private
from tinykube.client.rest import RESTClient
from tinykube.observe.explain import dns_name, from_explain_package
from tinykube.observe.hub import Hub
from tinykube.observe.server import ObserveServer
from tinykube.observe.traces import Tracer

INFO_FILE = "observe.json"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"


def _ours(slice_: Any) -> bool:
    labels = (slice_.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY) == CONTROLLER)


class Observer:
    """The hub, the tracer and (once served) the HTTP endpoint of one components process."""

    def __init__(self, client: RESTClient, token: str, *, dns: bool, proxy: bool,
                 controllers: bool = True, watch_client: RESTClient | None = None) -> None:
        """`watch_client` (default `client`) is the client whose shared informers feed the
        map and the tracer: the DNS's, so that the tracer's handlers run before the DNS
        model's on the same informers."""
        self.registry = CollectorRegistry()
        self.tracer = Tracer(dns=dns, proxy=proxy, registry=self.registry,
                             own_slices=_ours if controllers else lambda _s: False)
        self.hub = Hub(watch_client or client, self.tracer)
        self.client = client
        self.token = token
        self.dns: Any = None
        self.server: ObserveServer | None = None
        self.task: asyncio.Task[None] | None = None

    def attach(self, dns: Any = None, proxy_controller: Any = None) -> None:
        """Hook the tracer into the running DNS (a `RunningDNS`) and proxy controller."""
        tracer = self.tracer
        if dns is not None:
            self.dns = dns
            dns.model.add_listener(tracer.on_model)
            dns.server.responder.on_built = \
                lambda answer, labels: tracer.on_answer(answer.deps, ".".join(labels) + ".")
        if proxy_controller is not None:
            proxy_controller.after_sync.append(tracer.on_proxy_sync)

    async def serve(self, host: str, port: int, data_dir: Path | None = None) -> str:
        """Start the informers and the endpoint; its URL (also written to observe.json)."""
        self.task = asyncio.create_task(self.hub.run(), name="observer")
        names = lambda kind, ns, name: dns_name(self.hub.snapshot(), kind, ns, name)  # noqa: E731
        self.server = ObserveServer(self.hub, self.token, tracer=self.tracer,
                                    dns=lambda: self.dns, registry=self.registry,
                                    explain=from_explain_package(self.client, names))
        bound_host, bound_port = await self.server.start(host, port)
        url = f"http://{bound_host}:{bound_port}/"
        if data_dir is not None:
            private.write(data_dir / INFO_FILE, json.dumps({"url": url}))
        return url

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.server is not None:
            await self.server.close()
