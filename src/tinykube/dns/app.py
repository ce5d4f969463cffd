"""Assembling the cluster DNS: model, resolver, caches, listeners, metrics and informers.

`start_dns(options, client)` builds and starts everything and returns a `RunningDNS` that says
where it listens; `run_dns(options, client)` does the same and runs until cancelled (this is what
`tinykube up` and `tinykube dns` call). With `client=None` the model is fed by the caller (tests,
benchmarks) and marked synced by it.

Binding: the preferred address is the kube-dns Service IP on port 53; when that is not allowed
(no privilege for port 53, address not local) the server falls back to `fallback_port`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass, field
from typing import Any

from tinykube.dns.forward import Forwarder, read_resolv_conf
from tinykube.dns.handler import Resolver
from tinykube.dns.metrics import DNSMetrics, serve_metrics
from tinykube.dns.records import ZoneConfig
from tinykube.dns.server import DNSServer
from tinykube.dns.wire import Responder
from tinykube.dns.zone import ClusterModel

log = logging.getLogger(__name__)
BIND_ERRORS = (errno.EACCES, errno.EPERM, errno.EADDRNOTAVAIL, errno.EADDRINUSE)


@dataclass(frozen=True)
class DNSOptions:
    listen: tuple[str, int] = ("127.96.0.10", 53)
    fallback_port: int | None = 10053  # used when `listen` cannot be bound; None: fail instead
    domain: str = "cluster.local"
    ttl: int = 5
    pod_records: str = "insecure"
    upstream: list[tuple[str, int]] | None = field(default_factory=read_resolv_conf)  # None: refuse
    metrics: tuple[str, int] | None = None
    log_queries: bool = False


@dataclass
class RunningDNS:
    model: ClusterModel
    server: DNSServer
    metrics: DNSMetrics
    address: tuple[str, int]
    metrics_runner: Any = None
    controller_task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.controller_task is not None:
            self.controller_task.cancel()
            await asyncio.gather(self.controller_task, return_exceptions=True)
        await self.server.close()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()


def build_server(options: DNSOptions, model: ClusterModel) -> DNSServer:
    host = options.listen[0]
    upstreams = [u for u in options.upstream or () if u != options.listen]
    config = ZoneConfig(domain=options.domain, ttl=options.ttl, pod_records=options.pod_records,
                        upstream=options.upstream is not None, ns_addresses=(host,))
    responder = Responder(Resolver(model, config))
    metrics = DNSMetrics(lambda: (responder.hits, responder.misses))
    forwarder = Forwarder(upstreams) if options.upstream is not None else None
    return DNSServer(responder, forwarder=forwarder, metrics=metrics,
                     log_queries=options.log_queries)


async def _bind(server: DNSServer, options: DNSOptions) -> tuple[str, int]:
    host, port = options.listen
    try:
        return await server.start(host, port)
    except OSError as error:
        if options.fallback_port is None or error.errno not in BIND_ERRORS:
            raise
        log.warning("cannot bind DNS on %s:%d (%s); using port %d", host, port,
                    error.strerror, options.fallback_port)
        return await server.start(host, options.fallback_port)


async def start_dns(options: DNSOptions, client: Any = None) -> RunningDNS:
    """Start the DNS listeners (and informers, given an API client); returns where it listens."""
    model = ClusterModel()
    server = build_server(options, model)
    address = await _bind(server, options)
    running = RunningDNS(model, server, server.metrics, address)
    if options.metrics is not None:
        running.metrics_runner = await serve_metrics(server.metrics, *options.metrics)
    if client is not None:
        from tinykube.dns.controller import DNSController

        controller = DNSController(client, model, pod_records=options.pod_records,
                                   metrics=server.metrics)
        running.controller_task = asyncio.create_task(controller.run())
    return running


async def run_dns(options: DNSOptions, client: Any, *, announce: Any = None) -> None:
    """Run the cluster DNS until cancelled; `announce(running)` is called once it listens."""
    running = await start_dns(options, client)
    if announce is not None:
        announce(running)
    try:
        if running.controller_task is not None:
            await running.controller_task
        else:
            await asyncio.Event().wait()
    finally:
        await running.close()
