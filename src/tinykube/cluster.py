"""The composition root: one process that runs a whole cluster (`tinykube up`).

Order matters only at start: the API server first (it must answer before anything lists), then
one client shared by every component, the nodes (registered before the scheduler looks for
them), the controllers, the cluster DNS and the service proxy. Every component is an ordinary
API client, exactly as it would be against a real cluster; this module only starts them and
stops them together: if one fails, the others are cancelled and the error is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from tinykube.apiserver.server import APIServerOptions, RunningAPIServer, open_apiserver
from tinykube.client import config as client_config
from tinykube.client.controller import Controller
from tinykube.client.rest import RESTClient
from tinykube.controllers.deployment import DeploymentController
from tinykube.controllers.endpoints import EndpointsController
from tinykube.controllers.endpointslice import EndpointSliceController
from tinykube.controllers.endpointslice_mirroring import MirroringController
from tinykube.controllers.gc import GarbageCollector
from tinykube.controllers.namespace import NamespaceController
from tinykube.controllers.replicaset import ReplicaSetController
from tinykube.controllers.scheduler import Scheduler
from tinykube.controllers.statefulset import StatefulSetController
from tinykube.dns.app import DNSOptions, RunningDNS, start_dns
from tinykube.kubelet.agent import NodeAgent
from tinykube.proxy.app import (
    ProxyOptions,
    RunningProxy,
    bind_failure_reporter,
    is_local_address,
    start_proxy,
)

log = logging.getLogger(__name__)
DEFAULT_POD_CIDR = "127.244.0.0/16"


@dataclasses.dataclass
class NodeSpec:
    name: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ClusterOptions:
    api: APIServerOptions
    nodes: list[NodeSpec] = dataclasses.field(
        default_factory=lambda: [NodeSpec(socket.gethostname().lower())])
    pod_cidr: str = DEFAULT_POD_CIDR
    dns: DNSOptions | None = dataclasses.field(default_factory=DNSOptions)
    proxy: bool = True
    default_runtime: str = "virtual"  # the runtime of pods without a runtimeClassName


def node_pod_cidrs(cluster_cidr: str, count: int) -> list[str]:
    """One /24 per node carved from the cluster pod range, in order."""
    network = ipaddress.ip_network(cluster_cidr, strict=False)
    subnets = network.subnets(new_prefix=24) if network.prefixlen < 24 else iter([network])
    return [str(next(subnets)) for _ in range(count)]


@dataclasses.dataclass
class RunningCluster:
    api: RunningAPIServer
    client: RESTClient
    dns: RunningDNS | None
    proxy: RunningProxy | None
    tasks: list[asyncio.Task[Any]]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.proxy is not None:
            await self.proxy.close()
        if self.dns is not None:
            await self.dns.close()
        await self.client.close()
        await self.api.stop()


def _controllers(client: RESTClient) -> list[Controller]:
    return [Scheduler(client), StatefulSetController(client), DeploymentController(client),
            ReplicaSetController(client), EndpointSliceController(client),
            EndpointsController(client), MirroringController(client),
            NamespaceController(client), GarbageCollector(client)]


def _proxy_options(dns: RunningDNS | None) -> ProxyOptions:
    """The DNS server answers on the kube-dns Service IP itself: the proxy leaves that IP alone."""
    if dns is None:
        return ProxyOptions()
    served = dns.address[0]
    return ProxyOptions(is_local=lambda address: address != served and is_local_address(address))


async def start_cluster(options: ClusterOptions,
                        announce: Callable[[str], None] = print) -> RunningCluster:
    api = await open_apiserver(options.api)
    client = RESTClient(client_config.load(str(api.kubeconfig)))
    tasks: list[asyncio.Task[Any]] = []
    cidrs = node_pod_cidrs(options.pod_cidr, len(options.nodes))
    agents = []
    for node, cidr in zip(options.nodes, cidrs, strict=True):
        agent = NodeAgent(client, node.name, pod_cidr=cidr, labels=node.labels,
                          host_ip=options.api.host, default_runtime=options.default_runtime,
                          root_dir=options.api.data_dir / "kubelet" / node.name)
        agents.append(agent)
        await agent.register()
        tasks += agent.start(workers=4)
        tasks.append(asyncio.create_task(agent.renew_lease_forever(), name=f"lease/{node.name}"))
    for controller in _controllers(client):
        tasks += controller.start(workers=8)
    dns = None
    if options.dns is not None:
        dns = await start_dns(options.dns, client)
        host, port = dns.address
        announce(f"cluster DNS listening on {host}:{port} (udp+tcp)")
        for agent in agents:  # process pods' resolv.conf names it
            agent.cluster_dns = dns.address
    proxy = None
    if options.proxy:
        proxy = await start_proxy(client, _proxy_options(dns),
                                  on_bind_failure=bind_failure_reporter(client, announce))
        announce(f"service proxy forwarding {len(proxy.listening)} service ports "
                 f"({len(proxy.failing)} could not be bound)")
    return RunningCluster(api, client, dns, proxy, tasks)


async def run_until(cluster: RunningCluster, stop: asyncio.Event) -> None:
    """Run until `stop` is set or a component dies; then stop everything."""
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *cluster.tasks],
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception() is not None:
                log.error("component %s failed: %s", task.get_name(), task.exception())
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        await cluster.stop()


def run_forever(coro_factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(coro_factory())
    else:
        uvloop.run(coro_factory())


__all__ = ["ClusterOptions", "NodeSpec", "run_until", "start_cluster"]
