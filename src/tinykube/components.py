"""The second composition root: everything of a cluster but the API server, as API clients.

`start_components` runs the nodes (each a `NodeAgent`, registered before the scheduler looks for
them), the controllers, the cluster DNS and the service proxy against any API server, given its
kubeconfig. `tinykube up` runs them in a child process of its own (`python -m
tinykube.components`), as a real cluster runs kube-apiserver apart from the controller manager,
the scheduler and the kubelets: the two processes meet only over HTTP, exactly as in-process
clients already did, so the split costs no extra serialization and gives the second core work.
The child talks to the API server over a private unix socket with plain HTTP (the API server's
`local_socket`), so neither side spends time on TLS; it still authenticates with the token.

The child protocol is three lines of text:

  * the parent starts the child at once, so its imports overlap the API server's start-up;
  * the child, imports done, reads one line from stdin: the `ComponentOptions` as JSON, written
    once the API server answers;
  * the child writes its announcements (where DNS listens, what the proxy forwards) to stdout, one
    per line, then `READY` (or `FAILED <reason>` if it cannot start, e.g. an address in use).
    Afterwards stdin stays open: its end of file (the parent is gone, even killed) stops the
    child, as does SIGTERM or SIGINT. Logs go to stderr, shared with the parent.
  * with `--test-clock`, the parent steps the child's clock: `CLOCK {"to": t}` on stdin; the
    child sets its clock to t, settles (`clock.settle`) and answers `CLOCK {"next": t2}` (when
    its next timer is due, or null) on stdout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import shutil
import signal
import socket
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinykube import clock as clocks
from tinykube import identities, private
from tinykube.client import config as client_config
from tinykube.client import leaderelection
from tinykube.client.controller import Controller
from tinykube.client.rest import RESTClient
from tinykube.component_options import ComponentOptions as ComponentOptions  # re-exported
from tinykube.component_options import NodeSpec as NodeSpec
from tinykube.controllers import nodeipam
from tinykube.controllers.cronjob import CronJobController
from tinykube.controllers.csrapproving import CSRApprovingController
from tinykube.controllers.csrsigning import CSRSigningController
from tinykube.controllers.daemonset import DaemonSetController
from tinykube.controllers.deployment import DeploymentController
from tinykube.controllers.disruption import DisruptionController
from tinykube.controllers.endpoints import EndpointsController
from tinykube.controllers.endpointslice import EndpointSliceController
from tinykube.controllers.endpointslice_mirroring import MirroringController
from tinykube.controllers.gc import GarbageCollector
from tinykube.controllers.hpa import HorizontalPodAutoscalerController
from tinykube.controllers.job import JobController
from tinykube.controllers.localpath import LocalPathProvisioner
from tinykube.controllers.namespace import NamespaceController
from tinykube.controllers.nodelifecycle import NodeLifecycleController
from tinykube.controllers.persistentvolume import PersistentVolumeController
from tinykube.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from tinykube.controllers.resourcequota import ResourceQuotaController
from tinykube.controllers.scheduler import Scheduler
from tinykube.controllers.selectorwatch import SelectorWatchController
from tinykube.controllers.serviceaccounts import ServiceAccountsController
from tinykube.controllers.statefulset import StatefulSetController
from tinykube.controllers.token_secrets import TokenSecretsController
from tinykube.controllers.tokencleaner import TokenCleaner
from tinykube.controllers.ttl_after_finished import TTLAfterFinishedController
from tinykube.controllers.volume_protection import PVCProtectionController, PVProtectionController
from tinykube.dns.app import RunningDNS, start_dns
from tinykube.images import gc as image_gc
from tinykube.kubelet.agent import NodeAgent
from tinykube.kubelet.noderoutes import NodeRoutes
from tinykube.kubelet.podnet import PodNetworking
from tinykube.launch import CLOCK, FAILED, READY, run_until, tune_gc
from tinykube.network import netns
from tinykube.network.plan import (
    API_RELAY_ADDRESS,
    ClusterNetwork,
    cluster_network,
    cluster_prefix,
    joined_network,
)
from tinykube.observe.app import Observer
from tinykube.proxy.app import (
    ProxyOptions,
    RunningProxy,
    bind_failure_reporter,
    is_local_address,
    refusal_reporter,
    start_proxy,
)

if TYPE_CHECKING:  # the netns mode's, imported where that mode starts them (not at start-up)
    from tinykube.network.hostsockets import HostSockets
    from tinykube.network.relay import Relay
    from tinykube.proxy.nftproxy import RunningNftProxy

log = logging.getLogger(__name__)


def node_pod_cidrs(cluster_cidr: str, count: int) -> list[str]:
    """One /24 per node carved from the cluster pod range, in order."""
    network = ipaddress.ip_network(cluster_cidr, strict=False)
    subnets = network.subnets(new_prefix=24) if network.prefixlen < 24 else iter([network])
    return [str(next(subnets)) for _ in range(count)]


async def node_ranges(client: RESTClient, options: ComponentOptions) -> list[str]:
    """The pod range of each node to run: a joining node's own (`pod_cidr`, with
    `cluster_cidr` the whole range); for `up`'s nodes, the one each Node has (a restart), else
    the next /24 of the cluster range no Node holds, through node IPAM's `CIDRSet` (its
    controller starts later and occupies them)."""
    if options.cluster_cidr or not options.nodes:
        return node_pod_cidrs(options.pod_cidr, len(options.nodes))
    held = {n["metadata"]["name"]: nodeipam.node_cidr(n)
            for n in (await client.list(nodeipam.NODES))["items"]}
    cidrs = nodeipam.CIDRSet(options.pod_cidr)
    for name, cidr in held.items():
        if cidr is not None:
            cidrs.occupy(name, cidr)
    return [held.get(n.name) or cidrs.allocate(n.name) for n in options.nodes]


VOLUMES_DIR = "volumes"  # the local-path provisioner's directories, one per node beneath


#: Makes the client a controller writes with, reading the shared informers of the client given.
OwnClient = Callable[[str, RESTClient], RESTClient]


def _controllers(base: RESTClient, own: Callable[[str], RESTClient], data_dir: Path,
                 options: ComponentOptions) -> list[Controller]:
    """kube-controller-manager's controllers (the scheduler, elected apart, is not here); each
    writes with `own(its name)`, the token controller with the manager's `base` (upstream's
    runs with the manager's own credentials too)."""
    return [HorizontalPodAutoscalerController(own("horizontal-pod-autoscaler"),
                                              sync_period=options.hpa_sync_period),
            NodeLifecycleController(own("node-lifecycle-controller"),
                                    grace_period=options.node_monitor_grace_period),
            nodeipam.NodeIPAMController(own("node-ipam"), options.cluster_cidr or options.pod_cidr),
            StatefulSetController(own("statefulset-controller")),
            DeploymentController(own("deployment-controller")),
            PersistentVolumeController(own("persistentvolume-binder")),
            LocalPathProvisioner(own("local-path-provisioner"), data_dir / VOLUMES_DIR),
            PVCProtectionController(own("pvc-protection-controller")),
            PVProtectionController(own("pv-protection-controller")),
            ReplicaSetController(own("replicaset-controller")),
            ReplicationControllerController(own("replication-controller")),
            DaemonSetController(own("daemonset-controller")),
            DisruptionController(own("disruption-controller")),
            EndpointSliceController(own("endpointslice-controller")),
            EndpointsController(own("endpoints-controller")),
            MirroringController(own("endpointslice-mirroring-controller")),
            NamespaceController(own("namespace-controller")),
            ServiceAccountsController(own("serviceaccounts-controller"),
                                      root_ca_client=own("root-ca-cert-publisher")),
            JobController(own("job-controller")), CronJobController(own("cronjob-controller")),
            TTLAfterFinishedController(own("ttl-after-finished-controller")),
            CSRApprovingController(own("csrapproving-controller")),
            CSRSigningController(own("csrsigning-controller"), data_dir),
            GarbageCollector(own("garbage-collector")),
            ResourceQuotaController(own("resourcequota-controller")),
            SelectorWatchController(own("service-selector-watch")),
            TokenCleaner(own("token-cleaner")),
            TokenSecretsController(base, data_dir)]


#: The Leases the controllers and the scheduler are elected on, as kube's two components.
CONTROLLER_LEASE, SCHEDULER_LEASE = "kube-controller-manager", "kube-scheduler"


def own_clients(tokens: dict[str, str]) -> OwnClient:
    """`own(controller, base)`: a client with the controller's own token (`identities`) that
    reads `base`'s shared informers; `base` itself for a controller without a token."""
    def own(controller: str, base: RESTClient) -> RESTClient:
        component = identities.controller_component(controller)
        token = tokens.get(component)
        if token is None:
            return base
        config = dataclasses.replace(base.config, token=token, token_file=None)
        return RESTClient(config, user_agent=identities.user_agent(component), informers=base)
    return own


def _start_controllers(options: ComponentOptions, announce: Callable[[str], None],
                       manager_client: RESTClient, scheduler_client: RESTClient,
                       own: OwnClient) -> list[asyncio.Task[Any]]:
    """The controllers and the scheduler: started at once, or each group while this process
    holds its Lease (stopped the moment it is lost, started afresh when won again). Each group
    is elected with its component's own client, as kube-controller-manager and kube-scheduler
    hold their Leases as their own users."""
    def controllers(base: RESTClient) -> tuple[list[Controller], list[RESTClient]]:
        made: dict[str, RESTClient] = {}

        def client_of(controller: str) -> RESTClient:
            made[controller] = made.get(controller) or own(controller, base)
            return made[controller]
        built = _controllers(base, client_of, options.data_dir, options)
        return built, [c for c in made.values() if c is not base]

    def scheduler(base: RESTClient) -> tuple[list[Controller], list[RESTClient]]:
        return [Scheduler(base)], []

    bases = {CONTROLLER_LEASE: manager_client, SCHEDULER_LEASE: scheduler_client}
    groups = ((CONTROLLER_LEASE, controllers), (SCHEDULER_LEASE, scheduler))
    if not options.leader_elect:  # one term each, for as long as the process runs
        return [asyncio.create_task(_terms(bases[lease], make)(), name=f"{lease}/controllers")
                for lease, make in groups]
    identity = options.leader_identity or (
        f"{socket.gethostname()}_tinykube-{cluster_prefix(str(options.data_dir.resolve()))}")
    timing = leaderelection.Timing(*options.leader_election)
    tasks = []
    for lease, make in groups:
        elector = leaderelection.LeaderElector(
            bases[lease], lease, identity=identity, timing=timing,
            on_change=_announcer(announce, lease, identity))
        tasks.append(asyncio.create_task(elector.run(_terms(bases[lease], make)),
                                         name=f"{lease}/election"))
    return tasks


def _announcer(announce: Callable[[str], None], lease: str,
               identity: str) -> Callable[[str], None]:
    return lambda what: announce(f"leader election: {what} {lease} as {identity}")


def _terms(client: RESTClient,
           make: Callable[[RESTClient], tuple[list[Controller], list[RESTClient]]]
           ) -> leaderelection.Work:
    """Each term's work: fresh controllers, run until cancelled. The first term shares the
    component's client (and so its informers); a later one has a base client of its own, so
    that nothing of a lost term's controllers (handlers on shared informers, queues) lives on
    into the next: its informers stop with it. `make` also returns the clients it made for
    the term (the controllers' own), closed at the term's end."""
    terms = 0

    async def work() -> None:
        nonlocal terms
        terms += 1
        own = RESTClient(client.config, user_agent=client.user_agent) if terms > 1 else None
        controllers, clients = make(own or client)
        tasks = [t for c in controllers for t in c.start(workers=8)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for made in clients:
                await made.close()
            if own is not None:
                await own.close()
    return work


def _proxy_options(dns: RunningDNS | None) -> ProxyOptions:
    """The DNS server answers on the kube-dns Service IP itself: the proxy leaves that IP alone."""
    if dns is None:
        return ProxyOptions()
    served = dns.address[0]
    return ProxyOptions(is_local=lambda address: address != served and is_local_address(address))


@dataclasses.dataclass
class RunningComponents:
    client: RESTClient
    dns: RunningDNS | None
    proxy: RunningProxy | None
    tasks: list[asyncio.Task[Any]]
    network: ClusterNetwork | None = None  # the netns mode's namespaces, removed at stop
    nft_proxy: RunningNftProxy | None = None  # the netns mode's service proxy
    api_relay: Relay | None = None  # the netns mode's way from the nodes to the API server
    relay_sockets: netns.SocketsIn | None = None  # the NodePort relay's way into its node
    host_sockets: HostSockets | None = None  # rootless: sockets of the host's namespace
    observer: Observer | None = None  # the live map, DNS query log and traces (observe/)
    # the clients of components with identities of their own (`identities`), by component
    own_clients: dict[str, RESTClient] = dataclasses.field(default_factory=dict)

    def client_of(self, component: str) -> RESTClient:
        return self.own_clients.get(component, self.client)

    async def stop(self) -> None:
        if self.observer is not None:
            await self.observer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.proxy is not None:
            await self.proxy.close()
        if self.nft_proxy is not None:
            await self.nft_proxy.close()
        if self.relay_sockets is not None:
            self.relay_sockets.close()
        if self.api_relay is not None:
            await self.api_relay.close()
        if self.dns is not None:
            await self.dns.close()
        await self.client.close()
        for own in self.own_clients.values():
            await own.close()
        if self.network is not None:
            await asyncio.to_thread(netns.destroy_cluster, self.network)
        if self.host_sockets is not None:
            self.host_sockets.close()


def _token_kubeconfig(admin: Path, path: Path, token: str) -> Path:
    """A kubeconfig at `path` (0600): the admin kubeconfig's server and CA, `token` its user."""
    from tinykube import join  # only with DNS workers

    config = client_config.load(str(admin))
    path.touch(mode=0o600)
    path.write_text(join.kubeconfig(config.server, config.ca_data or b"", {"token": token},
                                    "tinykube-dns"))
    return path


NETWORK_FILE = "network.json"  # node name -> its namespace, for `tinykube node exec` (cli/node)


async def _make_network(options: ComponentOptions, cidrs: list[str]) -> ClusterNetwork:
    """The netns mode's namespaces (an earlier run's leftovers removed first), recorded in the
    data directory for `tinykube node exec`."""
    dns_ip = options.dns.listen[0] if options.dns is not None else ""
    prefix = cluster_prefix(str(options.data_dir.resolve()))
    if options.underlay_netns is not None:  # one node joining another cluster's underlay
        assert options.node_address is not None
        plan = joined_network(prefix, options.nodes[0].name, cidrs[0], options.node_address,
                              options.underlay_netns, dns_ip, options.service_cidr)
        if await asyncio.to_thread(netns.join_cluster, plan):
            log.info("node %s keeps the network namespaces of its earlier run",
                     options.nodes[0].name)
    else:
        plan = cluster_network(prefix, [n.name for n in options.nodes], cidrs, dns_ip,
                               options.service_cidr)
        await asyncio.to_thread(netns.create_cluster, plan)
    private.write(options.data_dir / NETWORK_FILE, json.dumps(
        {"prefix": plan.prefix, "nodes": {n.name: n.netns for n in plan.nodes},
         "holder": options.holder_pid}))
    return plan


async def start_components(options: ComponentOptions,
                           announce: Callable[[str], None] = print) -> RunningComponents:
    """Start every component; if one cannot start, stop those already running and raise."""
    config = client_config.load(str(options.kubeconfig))
    if options.api_socket:
        config = dataclasses.replace(config, server="http://localhost",
                                     unix_socket=options.api_socket)
    running = RunningComponents(RESTClient(config), None, None, [])
    running.own_clients = {name: RESTClient(dataclasses.replace(config, token=token,
                                                                token_file=None),
                                            user_agent=identities.user_agent(name))
                           for name, token in options.identities.items()
                           if "/" not in name  # a controller's: made by its term
                           or name.startswith(f"{identities.KUBELET}/")}

    try:
        await _start(running, options, announce)
    except BaseException:
        await running.stop()
        raise
    return running


async def _start(running: RunningComponents, options: ComponentOptions,
                 announce: Callable[[str], None]) -> None:
    client, tasks = running.client, running.tasks
    cidrs = await node_ranges(client, options)
    if options.host_sockets is not None:  # rootless: the host's sockets come from `up`
        from tinykube.network.hostsockets import HostSockets

        running.host_sockets = HostSockets(options.host_sockets)
    hosts = running.host_sockets
    plan = None
    if options.network == "netns":
        running.network = plan = await _make_network(options, cidrs)
        announce(f"pod network: {len(plan.nodes)} node namespaces ({plan.prefix}-*), pods in "
                 f"{options.pod_cidr}")
    agents: list[NodeAgent] = []
    for node, cidr in zip(options.nodes, cidrs, strict=True):
        networking = PodNetworking(plan.node(node.name), plan.prefix) if plan else None
        # as its node, `system:node:NAME` (a joined node: its kubeconfig's certificate)
        agent = NodeAgent(running.client_of(identities.node_component(node.name)), node.name,
                          pod_cidr=cidr, labels=node.labels,
                          host_ip=options.host_ip, default_runtime=options.default_runtime,
                          root_dir=options.data_dir / "kubelet" / node.name,
                          kubelet_token=options.kubelet_token, network=networking,
                          virtual_job_seconds=options.virtual_job_seconds,
                          insecure_registries=options.insecure_registries,
                          registry_mirrors=options.registry_mirrors,
                          resolv_conf=options.resolv_conf,
                          listen_socket=hosts.bound if hosts else None,
                          image_gc_policy=image_gc.Policy(
                              high=options.image_gc_high, low=options.image_gc_low,
                              min_age=options.image_min_age,
                              capacity=options.image_cache_size),
                          shared_reads=agents[0].client if agents else None)
        agents.append(agent)
        await agent.register()
        tasks += agent.start(workers=4)
        tasks.append(asyncio.create_task(agent.renew_lease_forever(), name=f"lease/{node.name}"))
    if plan is not None:  # routes to the pods of nodes that joined from elsewhere
        tasks += NodeRoutes(running.client_of("kube-proxy"), list(plan.nodes)).start()
    if options.controllers:
        tasks += _start_controllers(options, announce,
                                    running.client_of(identities.CONTROLLER_MANAGER),
                                    running.client_of("kube-scheduler"),
                                    own_clients(options.identities))
    if options.controllers and options.ui_listen:  # before DNS and proxy: traces see first
        # On the DNS's client, so its informers are the DNS's own, with the tracer's handlers
        # first: a slice reaches the tracer before the DNS model, whichever watch is faster.
        watcher = running.client_of("coredns") if options.dns is not None else client
        running.observer = Observer(client, client.config.current_token() or "",
                                    dns=options.dns is not None, proxy=options.proxy,
                                    watch_client=watcher)
    elif options.controllers:  # no live map: no stale link for `tinykube ui`
        (options.data_dir / "observe.json").unlink(missing_ok=True)
    if options.dns is not None:
        dns_client = running.client_of("coredns")
        dns_options = options.dns
        if dns_options.workers > 1:  # they run as DNS runs: coredns's own credential
            dns_options = dataclasses.replace(dns_options, kubeconfig=str(_token_kubeconfig(
                options.kubeconfig, options.data_dir / "dns-workers.kubeconfig",
                dns_client.config.current_token() or "")))
        if plan is not None:
            dns_options = dataclasses.replace(dns_options, netns=tuple(
                n.netns_path for n in plan.nodes), metrics=None)
        running.dns = dns = await start_dns(dns_options, dns_client)
        host, port = dns.address
        where = " in every node namespace" if plan is not None else ""
        workers = f", {dns_options.workers} processes" if dns_options.workers > 1 else ""
        announce(f"cluster DNS listening on {host}:{port}{where} (udp+tcp{workers})")
        for agent in agents:  # process pods' resolv.conf names it
            agent.cluster_dns = dns.address
    if plan is not None:
        await _start_netns_services(running, options, plan, announce)
    elif options.proxy:
        proxy_client = running.client_of("kube-proxy")
        running.proxy = proxy = await start_proxy(
            proxy_client, _proxy_options(running.dns),
            on_bind_failure=bind_failure_reporter(proxy_client, announce),
            on_refusal=refusal_reporter(proxy_client, announce))
        announce(f"service proxy forwarding {len(proxy.listening)} service ports "
                 f"({len(proxy.failing)} could not be bound)")
    if running.observer is not None:
        await _start_observer(running, options, announce)


async def _start_observer(running: RunningComponents, options: ComponentOptions,
                          announce: Callable[[str], None]) -> None:
    observer = running.observer
    assert observer is not None
    proxy = running.proxy or running.nft_proxy
    observer.attach(running.dns, proxy.controller if proxy is not None else None)
    host, _, port = options.ui_listen.rpartition(":")
    url = await observer.serve(host.strip("[]") or "127.0.0.1", int(port or 0),
                               options.data_dir)
    announce(f"live map, DNS query log and traces at {url} (`tinykube ui` prints the link)")


async def _start_netns_services(running: RunningComponents, options: ComponentOptions,
                                plan: ClusterNetwork, announce: Callable[[str], None]) -> None:
    """The netns mode's API relay (the `kubernetes` Service's endpoint on every node), its
    nftables service proxy in every node namespace, and the host's NodePort relay into the
    first node (`proxy.noderelay`). Their modules are imported here: the host mode never
    loads them."""
    from tinykube.network.relay import start_relay
    from tinykube.proxy.nftables import NodeConfig
    from tinykube.proxy.nftproxy import NftNode, start_nft_proxy
    from tinykube.proxy.noderelay import NodePortRelay

    server = urllib.parse.urlsplit(client_config.load(str(options.kubeconfig)).server)
    api = (server.hostname or "127.0.0.1", server.port or 443)
    hosts = running.host_sockets
    running.api_relay = await start_relay([n.netns_path for n in plan.nodes],
                                          (API_RELAY_ADDRESS, api[1]), api, hosts)
    if not options.proxy:
        return
    served = (options.dns.listen[0],) if options.dns is not None else ()
    nodes = [NftNode(NodeConfig(n.name, options.cluster_cidr or options.pod_cidr,
                                options.service_cidr, served), n.netns) for n in plan.nodes]
    client = running.client_of("kube-proxy")  # system:kube-proxy (a joined node: its own)
    if options.underlay_netns is not None:  # a joined node: node ports are the cluster's
        running.nft_proxy = await start_nft_proxy(
            client, nodes, on_bind_failure=bind_failure_reporter(client, announce),
            on_refusal=refusal_reporter(client, announce))
        running.tasks.append(running.nft_proxy.task)
        announce(f"service proxy: nftables in node {plan.nodes[0].name}")
        return
    entry = plan.nodes[0]
    running.relay_sockets = netns.SocketsIn(entry.netns_path)
    relay = NodePortRelay(entry.address, running.relay_sockets,
                          listen_socket=hosts.bound if hosts else None)
    running.nft_proxy = await start_nft_proxy(
        client, nodes, relay=relay, on_bind_failure=bind_failure_reporter(client, announce),
        on_refusal=refusal_reporter(client, announce))
    running.tasks.append(running.nft_proxy.task)  # its end stops the cluster, reported
    announce(f"service proxy: nftables in {len(nodes)} node namespaces (Services and "
             f"NetworkPolicies); node ports on 127.0.0.1 relayed into {entry.name} "
             f"({len(relay.applied)} ports, {len(relay.failing)} could not be bound)")


# --- the child process -----------------------------------------------------------------------

def _say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


class _ParentWatch(asyncio.Protocol):
    """Stdin of the child: the parent never writes after the options; end of file means it is
    gone (even if it was killed), so the child stops."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.client: RESTClient | None = None  # once running: for the test clock's progress
        self._buffer = b""
        self._steps: set[asyncio.Task[None]] = set()

    def data_received(self, data: bytes) -> None:
        """`CLOCK {"to": t}` lines (the test clock): step, then answer."""
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            text = line.decode()
            if text.startswith(CLOCK):
                task = asyncio.create_task(self._step(json.loads(text.removeprefix(CLOCK))["to"]))
                self._steps.add(task)
                task.add_done_callback(self._steps.discard)

    async def _step(self, when: float) -> None:
        clock = clocks.installed_test_clock()
        assert clock is not None and self.client is not None, "no test clock"
        client = self.client

        async def progress() -> int:
            answer = await client.request("POST", "/tinykube/v1/clock/progress")
            return int(answer["resourceVersion"])
        clock.set(when)
        answer: dict[str, Any] = {}
        try:
            await clocks.settle(clock, progress)
        except TimeoutError as exc:
            log.error("the test clock's step to %s did not settle in %.0f s: %s", when,
                      clocks.SETTLE_TIMEOUT, exc)
            answer["error"] = str(exc)
        _say(CLOCK + json.dumps({"next": clock.next_due(), **answer}))

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def _child(options: ComponentOptions) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = _ParentWatch(stop)
    await loop.connect_read_pipe(lambda: watch, sys.stdin)
    try:
        running = await start_components(options, announce=_say)
        watch.client = running.client
    except OSError as exc:  # an address in use, say: the parent words the advice
        _say(FAILED + str(exc))
        raise SystemExit(1) from exc
    _say(READY)
    try:
        failure = await run_until(running.tasks, stop)
    finally:
        await running.stop()
        if options.api_socket:  # the parent removes it too, unless it was killed
            shutil.rmtree(Path(options.api_socket).parent, ignore_errors=True)
    if failure is not None:
        raise SystemExit(1)


def main() -> None:
    line = sys.stdin.readline()
    if not line:
        return  # the parent went away before the API server was up
    options = ComponentOptions.from_json(line)
    if options.test_clock is not None:  # before any component exists: they all take it
        clocks.install(clocks.TestClock(options.test_clock))
    tune_gc()
    logging.basicConfig(level=logging.WARNING - 10 * options.verbose,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(_child(options))
    else:
        uvloop.run(_child(options))


if __name__ == "__main__":
    main()
