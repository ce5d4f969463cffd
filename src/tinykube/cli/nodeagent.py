"""The run of `tinykube node` (see `cli.node`): credentials, a pod range, then the components.

1. Credentials: `--kubeconfig`; or, with `--token`, the bootstrap join (`join.discover`,
   `join.node_credential`), whose kubeconfig is written to `kubelet.conf` in the data
   directory; or that file from an earlier join.
2. The node's pod range: `--pod-cidr`, or the range its Node already has (a restart), or the
   one node IPAM (`controllers.nodeipam`, run by the leader of the controllers) gives the Node,
   which is created here without one (not Ready) and watched until it has it (`await_pod_cidr`),
   as a kubelet waits for its podCIDR. One allocator hands the ranges out, so two nodes
   joining at the same moment get two ranges.
3. `components.start_components` with this one node, no controllers, its DNS (default address:
   the `kube-dns` Service's cluster IP, read from the API) and its proxy, until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import socket
from pathlib import Path
from typing import Any

import click

from tinykube.cli.standalone import run_components, run_loop
from tinykube.cli.up import default_data_dir, split_listen
from tinykube.client.rest import RESTClient
from tinykube.kubelet.agent import node_object

Obj = dict[str, Any]

KUBELET_CONF = "kubelet.conf"


@dataclasses.dataclass
class NodeFlags:
    kubeconfig: str | None
    name: str | None
    server: str | None
    token: str | None
    ca_cert_hash: str | None
    data_dir: Path | None
    cluster_cidr: str | None
    pod_cidr: str | None
    node_ip: str
    node_labels: tuple[str, ...]
    default_runtime: str
    dns_listen: str | None
    no_dns: bool
    resolv_conf: str
    proxy: bool
    network: str
    underlay_netns: str | None
    node_address: str | None
    service_cidr: str | None
    verbose: int


POD_CIDR_TIMEOUT = 60.0  # seconds a joining node waits for node IPAM's range


async def await_pod_cidr(client: RESTClient, node: Obj, *,
                         within: float = POD_CIDR_TIMEOUT) -> str:
    """The Node's `spec.podCIDR`, once node IPAM has set it (a watch of that one Node)."""
    from tinykube.api import errors, resources

    nodes = resources.must("", "v1", "nodes")
    name = node["metadata"]["name"]
    async with asyncio.timeout(within):
        while not (cidr := (node.get("spec") or {}).get("podCIDR")):
            watch = client.watch(nodes, resource_version=node["metadata"]["resourceVersion"],
                                 field_selector=f"metadata.name={name}", timeout_seconds=30)
            with contextlib.suppress(errors.Gone):
                async with contextlib.aclosing(watch) as events:
                    async for kind, obj in events:
                        if kind in ("ADDED", "MODIFIED"):
                            node = obj
                            if (obj.get("spec") or {}).get("podCIDR"):
                                break
            if not (node.get("spec") or {}).get("podCIDR"):  # the watch ended: look again
                node = await client.get(nodes, name)
    return str(cidr)


def parse_labels(items: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}",
                                     param_hint="--node-label")
        labels[key] = value
    return labels


def run(flags: NodeFlags) -> None:
    import logging

    name = (flags.name or socket.gethostname()).lower()
    data_dir = flags.data_dir or default_data_dir(f"node-{name}")
    if flags.token and not (flags.server and flags.ca_cert_hash):
        raise click.UsageError("--token needs --server and --ca-cert-hash (`tinykube token "
                               "create --print-join-command` prints them)")
    if not flags.token and not flags.kubeconfig and not (data_dir / KUBELET_CONF).exists():
        raise click.UsageError("name the cluster with --kubeconfig, or join with --token, "
                               "--server and --ca-cert-hash")
    if flags.network == "netns":
        check_netns(flags)
    labels = parse_labels(flags.node_labels)
    dns_address = split_listen(flags.dns_listen, "--dns-listen") if flags.dns_listen else None
    logging.basicConfig(level=logging.WARNING - 10 * flags.verbose,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_loop(_run(flags, name, data_dir, labels, dns_address))


def check_netns(flags: NodeFlags) -> None:
    """Refuse `--network netns` without what it needs."""
    import ipaddress
    import os

    from tinykube.network.plan import UNDERLAY_CIDR

    if os.geteuid() != 0:
        raise click.UsageError("tinykube node --network netns makes network namespaces: run "
                               "it as root")
    if not flags.underlay_netns or not flags.node_address:
        raise click.UsageError("--network netns needs --underlay-netns and --node-address")
    try:
        inside = ipaddress.ip_address(flags.node_address) in ipaddress.ip_network(UNDERLAY_CIDR)
    except ValueError:
        inside = False
    if not inside:
        raise click.BadParameter(f"{flags.node_address!r} is not an address of the underlay "
                                 f"{UNDERLAY_CIDR}", param_hint="--node-address")


async def _credentials(flags: NodeFlags, name: str, data_dir: Path) -> Path:
    """The kubeconfig the node runs with (after a bootstrap join, if asked for)."""
    from tinykube import join, private
    from tinykube.api import errors

    if flags.kubeconfig:
        return Path(flags.kubeconfig)
    conf = data_dir / KUBELET_CONF
    if not flags.token:
        return conf
    assert flags.server is not None and flags.ca_cert_hash is not None
    try:
        ca_pem = await join.discover(flags.server, flags.ca_cert_hash)
        cert, key = await join.node_credential(flags.server, ca_pem, flags.token, name)
    except join.JoinError as exc:
        raise click.ClickException(str(exc)) from exc
    except errors.APIError as exc:
        raise click.ClickException(f"cannot join {flags.server}: {exc}") from exc
    except TimeoutError as exc:
        raise click.ClickException(f"node {name}'s certificate request was not signed in "
                                   f"{join.CSR_TIMEOUT:.0f} s: are the controllers "
                                   "running?") from exc
    private.make_dir(data_dir)
    private.write(conf, join.node_kubeconfig(flags.server, ca_pem, cert, key, name))
    click.echo(f"node {name} joined: its credential (system:node:{name}) is in {conf}")
    return conf


async def _cluster_facts(kubeconfig: Path, name: str, registration: Obj | None,
                         ) -> tuple[str | None, str | None]:
    """The node's pod range (None if `registration` is None and its Node has none) and the
    kube-dns Service's cluster IP (None if there is none). Without a range of its own the
    Node is created from `registration` and waits for node IPAM's."""
    from tinykube.api import errors, resources
    from tinykube.client.config import load

    nodes = resources.must("", "v1", "nodes")
    async with RESTClient(load(str(kubeconfig))) as client:
        try:
            dns = await client.get(resources.must("", "v1", "services"), "kube-dns",
                                   "kube-system")
            dns_ip = (dns.get("spec") or {}).get("clusterIP")
        except errors.NotFound:
            dns_ip = None
        try:
            node = await client.get(nodes, name)
        except errors.NotFound:
            if registration is None:
                return None, dns_ip
            try:
                node = await client.create(nodes, registration)
            except errors.AlreadyExists:
                node = await client.get(nodes, name)
        if registration is None:
            return (node.get("spec") or {}).get("podCIDR"), dns_ip
        if not (node.get("spec") or {}).get("podCIDR"):
            click.echo(f"node {name} registered: waiting for its pod range (node IPAM)")
        try:
            return await await_pod_cidr(client, node), dns_ip
        except TimeoutError:
            raise click.ClickException(
                f"node {name} got no pod range (spec.podCIDR) in {POD_CIDR_TIMEOUT:.0f} s: "
                "are the controllers running (node IPAM)?") from None


async def _run(flags: NodeFlags, name: str, data_dir: Path, labels: dict[str, str],
               dns_address: tuple[str, int] | None) -> None:
    from tinykube import private
    from tinykube.api import errors
    from tinykube.settings import DEFAULT_POD_CIDR, NETNS_POD_CIDR, NETNS_SERVICE_CIDR

    netns = flags.network == "netns"
    cluster_cidr = flags.cluster_cidr or (NETNS_POD_CIDR if netns else DEFAULT_POD_CIDR)
    kubeconfig = await _credentials(flags, name, data_dir)
    host_ip = (flags.node_address or flags.node_ip) if netns else flags.node_ip
    registration = None if flags.pod_cidr else \
        node_object(name, pod_cidr=None, host_ip=host_ip, labels=labels)
    try:
        cidr, dns_ip = await _cluster_facts(kubeconfig, name, registration)
    except errors.APIError as exc:
        raise click.ClickException(f"cannot join: {exc}") from exc
    from tinykube.components import ComponentOptions, NodeSpec
    from tinykube.dns.app import DNSOptions

    cidr = flags.pod_cidr or cidr
    assert cidr is not None
    dns = None
    if not flags.no_dns and dns_address is not None:
        dns = DNSOptions(listen=dns_address, fallback_port=None)
    elif not flags.no_dns and dns_ip:  # netns: inside the node, on its lo
        dns = DNSOptions(listen=(dns_ip, 53), fallback_port=None if netns else 10053)
    private.make_dir(data_dir)
    options = ComponentOptions(
        kubeconfig=kubeconfig, data_dir=data_dir, host_ip=flags.node_ip,
        nodes=[NodeSpec(name, labels)], pod_cidr=cidr, dns=dns, proxy=flags.proxy,
        default_runtime=flags.default_runtime, resolv_conf=flags.resolv_conf,
        # the API server's own token is reviewed (`kubelet.webhookauth`); this one is unused
        kubelet_token=secrets.token_urlsafe(32), controllers=False,
        network=flags.network, cluster_cidr=cluster_cidr,
        service_cidr=flags.service_cidr or (NETNS_SERVICE_CIDR if netns else ""),
        underlay_netns=flags.underlay_netns if netns else None,
        node_address=flags.node_address if netns else None)
    await run_components(options, running=f"tinykube node {name} running (pods in {cidr})",
                         stopped=f"tinykube node {name} stopped")
