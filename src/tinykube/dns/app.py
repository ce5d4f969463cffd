"""Assembling the cluster DNS: model, resolver, caches, listeners, metrics and informers.

`start_dns(options, client)` builds and starts everything and returns a `RunningDNS` that says
where it listens; `run_dns(options, client)` does the same and runs until cancelled (this is what
`tinykube up` and `tinykube dns` call). With `client=None` the model is fed by the caller (tests,
benchmarks) and marked synced by it.

Binding: the preferred address is the kube-dns Service IP on port 53; when that is not allowed
(no privilege for port 53, address not local) the server falls back to `fallback_port`. With
`netns` (the `--network netns` mode) it listens on that address inside each of those network
namespaces instead (the nodes', where pods' queries arrive), all answering from one model and
one cache: the sockets are made in each namespace (`network.netns.bound_socket_in`) and served
by this process's event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
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
    netns: tuple[str, ...] = ()  # network namespaces (paths) to listen in, instead of here


@dataclass
class RunningDNS:
    model: ClusterModel
    server: DNSServer
    metrics: DNSMetrics
    address: tuple[str, int]
    metrics_runner: Any = None
    controller_task: asyncio.Task[None] | None = None
    others: list[DNSServer] = field(default_factory=list)  # the listeners of further netns

    async def close(self) -> None:
        if self.controller_task is not None:
            self.controller_task.cancel()
            await asyncio.gather(self.controller_task, return_exceptions=True)
        for server in [self.server, *self.others]:
            await server.close()
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


async def _serve_in_namespaces(first: DNSServer, options: DNSOptions) -> list[DNSServer]:
    """Listen on `options.listen` in every namespace of `options.netns` (the first by
    `first`, the others by servers sharing its responder, forwarder and metrics)."""
    from tinykube.network.netns import bound_socket_in

    servers: list[DNSServer] = []
    for path in options.netns:
        server = first if not servers else DNSServer(
            first.responder, forwarder=first.forwarder, metrics=first.metrics,
            log_queries=first.log_queries, tcp=first.tcp_limits)
        family = socket.AF_INET6 if ":" in options.listen[0] else socket.AF_INET
        udp = bound_socket_in(path, family, socket.SOCK_DGRAM, options.listen)
        tcp = bound_socket_in(path, family, socket.SOCK_STREAM, options.listen)
        await server.serve_sockets(udp, tcp)
        servers.append(server)
    return servers


async def start_dns(options: DNSOptions, client: Any = None) -> RunningDNS:
    """Start the DNS listeners (and informers, given an API client); returns where it listens."""
    model = ClusterModel()
    server = build_server(options, model)
    others: list[DNSServer] = []
    if options.netns:
        others = (await _serve_in_namespaces(server, options))[1:]
        address = server.address
    else:
        address = await _bind(server, options)
    running = RunningDNS(model, server, server.metrics, address, others=others)
    if options.metrics is not None:
        running.metrics_runner = await serve_metrics(server.metrics, *options.metrics)
    if client is not None:
        from tinykube.dns.controller import DNSController
        from tinykube.dns.drills import DrillSync
        from tinykube.dns.querylog import LogSync

        sync = DrillSync(lambda: [server, *others])
        logs = LogSync(lambda: [server, *others])
        controller = DNSController(client, model, pod_records=options.pod_records,
                                   metrics=server.metrics, drills=(sync.apply, sync.delete),
                                   querylog=(logs.apply, logs.delete))
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
