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

Workers (`workers` > 1, `dns.workers`): this server binds with SO_REUSEPORT and starts the
others as `tinykube dns --join` processes on the address it got; a joining worker binds only
once its informers have listed. The netns mode has one process (its sockets are made inside
the node namespaces).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinykube.dns.forward import Forwarder
from tinykube.dns.handler import Resolver
from tinykube.dns.metrics import DNSMetrics, serve_metrics
from tinykube.dns.options import DNSOptions as DNSOptions  # re-exported
from tinykube.dns.records import ZoneConfig
from tinykube.dns.server import DNSServer
from tinykube.dns.wire import Responder
from tinykube.dns.workers import READY_TIMEOUT, DNSWorkers, worker_argv
from tinykube.dns.zone import ClusterModel, DepKey

log = logging.getLogger(__name__)
BIND_ERRORS = (errno.EACCES, errno.EPERM, errno.EADDRNOTAVAIL, errno.EADDRINUSE)


@dataclass
class RunningDNS:
    model: ClusterModel
    server: DNSServer
    metrics: DNSMetrics
    address: tuple[str, int]
    metrics_runner: Any = None
    controller_task: asyncio.Task[None] | None = None
    others: list[DNSServer] = field(default_factory=list)  # the listeners of further netns
    workers: DNSWorkers | None = None  # further processes on `address` (`--dns-workers`)

    async def close(self) -> None:
        if self.workers is not None:
            await self.workers.close()
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
    reuse_port = options.join or options.workers > 1
    try:
        return await server.start(host, port, reuse_port=reuse_port)
    except OSError as error:
        if options.fallback_port is None or error.errno not in BIND_ERRORS:
            raise
        log.warning("cannot bind DNS on %s:%d (%s); using port %d", host, port,
                    error.strerror, options.fallback_port)
        return await server.start(host, options.fallback_port, reuse_port=reuse_port)


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
    """Start the DNS listeners (and informers, given an API client); returns where it listens.
    A worker (`options.join`) binds only once its informers have listed; with `workers` > 1
    the further processes are started once this one listens (`dns.workers`)."""
    model = ClusterModel()
    server = build_server(options, model)
    others: list[DNSServer] = []
    controller_task = _start_controller(client, model, options, lambda: [server, *others]) \
        if client is not None else None
    try:
        if options.join and controller_task is not None:
            await _synced(model, controller_task)
        if options.netns:
            others += (await _serve_in_namespaces(server, options))[1:]
            address = server.address
        else:
            address = await _bind(server, options)
    except BaseException:
        if controller_task is not None:
            controller_task.cancel()
            await asyncio.gather(controller_task, return_exceptions=True)
        raise
    running = RunningDNS(model, server, server.metrics, address, others=others,
                         controller_task=controller_task)
    try:
        if options.metrics is not None:
            running.metrics_runner = await serve_metrics(server.metrics, *options.metrics)
        if options.workers > 1 and not options.join:
            running.workers = DNSWorkers(worker_argv(options, address, options.kubeconfig),
                                         options.workers - 1)
            await running.workers.start()
    except BaseException:
        await running.close()
        raise
    return running


def _start_controller(client: Any, model: ClusterModel, options: DNSOptions,
                      servers: Callable[[], list[DNSServer]]) -> asyncio.Task[None]:
    from tinykube.dns.controller import DNSController
    from tinykube.dns.drills import DrillSync
    from tinykube.dns.querylog import LogSync

    sync, logs = DrillSync(servers), LogSync(servers)
    controller = DNSController(client, model, pod_records=options.pod_records,
                               metrics=servers()[0].metrics, drills=(sync.apply, sync.delete),
                               querylog=(logs.apply, logs.delete))
    return asyncio.create_task(controller.run())


async def _synced(model: ClusterModel, controller: asyncio.Task[None]) -> None:
    """Wait until the informers have listed (or the controller failed: its error)."""
    synced: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def listener(keys: set[DepKey]) -> None:
        if ("synced",) in keys and not synced.done():
            synced.set_result(None)
    if model.synced:
        return
    model.add_listener(listener)
    try:
        done, _ = await asyncio.wait({synced, controller}, timeout=READY_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        model.remove_listener(listener)  # not on every later change of the model
    if controller in done:
        controller.result()  # its exception
        raise RuntimeError("the DNS controller stopped before it synced")
    if synced not in done:
        raise TimeoutError(f"the DNS informers did not list within {READY_TIMEOUT:.0f} s")


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
