"""`tinykube node`: a node agent joining a cluster; `tinykube node exec`: enter a netns node.

`tinykube node --kubeconfig FILE --name NODE` runs one node against an existing control plane,
as a kubelet with its kube-proxy and a NodeLocal DNS cache runs on a host of its own: the node
agent (registered as NODE, with the /24 of the cluster's pod range node IPAM gives it), the
cluster DNS (on `--dns-listen`, by default the kube-dns Service's IP, port 53 or 10053) and the
service proxy. `--token T --server URL --ca-cert-hash sha256:H` joins with a bootstrap token
instead of a kubeconfig (`tinykube token create`; see `join`): the node's own credential, a
client certificate for `system:node:NODE`, is written to `kubelet.conf` in `--data-dir`, which a
later `tinykube node --data-dir DIR --name NODE` reuses. The node never learns the cluster's
kubelet token: its kubelet endpoint has the API server review the token it is shown
(`kubelet.webhookauth`), so `kubectl logs` and `exec` reach its pods.

`tinykube node exec NODE -- COMMAND` runs a command inside a node of `--network netns`.

Each node of that mode is a network namespace; this runs COMMAND in it (as `ip netns exec`
would, by the name `tinykube up` recorded in the data directory), so the seed's
`nslookup nginx.default.svc.cluster.local 10.96.0.10` runs as written on a node. The command
replaces this process: its exit code is the command's. A rootless cluster's names live in the
user and mount namespaces of its launcher (`network.userns`, its pid recorded as `holder`),
which `nsenter` enters first, as the user who owns them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import click

from tinykube.cli.up import default_data_dir, readable_resolv_conf
from tinykube.network import userns

NETWORK_FILE = "network.json"  # written by `tinykube up --network netns` (components.py)


def recorded_network(data_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((data_dir / NETWORK_FILE).read_text()))
    except FileNotFoundError:
        raise click.ClickException(
            f"no netns-mode cluster in {data_dir}: start one with `tinykube up --network "
            "netns` (or name its --data-dir)") from None


def node_namespaces(data_dir: Path) -> dict[str, str]:
    """Node name -> network namespace name, as the running cluster recorded them."""
    return dict(recorded_network(data_dir)["nodes"])


def enter_holder(holder: int, netns: str, argv: tuple[str, ...]) -> list[str]:
    """The command line running `argv` in `netns` of a rootless cluster: its names live in
    the user and mount namespaces of the launcher `holder` (`network.userns`), entered with
    util-linux's nsenter as their owner."""
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise click.ClickException("util-linux's `nsenter` is needed to enter a rootless node")
    if not Path(f"/proc/{holder}/ns/user").exists():
        raise click.ClickException("the cluster's namespaces are gone: is it running?")
    return [nsenter, "-t", str(holder), "--user", "--mount", "--preserve-credentials", "--",
            "ip", "netns", "exec", netns, *argv]


@click.group(invoke_without_command=True)
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The cluster to join (any kubeconfig that may run a node).")
@click.option("--name", default=None, help="The node's name (default: this host's name).")
@click.option("--server", default=None, metavar="URL",
              help="With --token: the API server to join.")
@click.option("--token", default=None, help="A bootstrap token (`tinykube token create`).")
@click.option("--ca-cert-hash", default=None, metavar="sha256:HEX",
              help="With --token: the cluster CA's public key hash, which the server's CA "
              "must match (`tinykube token create --print-join-command` prints it).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              show_default="$XDG_DATA_HOME/tinykube-node-NAME",
              help="The node's state (kubelet, its kubeconfig after a token join).")
@click.option("--cluster-cidr", default=None, show_default="127.244.0.0/16",
              help="The cluster's pod range (the node's nftables rules need it).")
@click.option("--pod-cidr", default=None, help="The node's pod range (default: the /24 the "
              "controllers' node IPAM gives its Node).")
@click.option("--node-ip", default="127.0.0.1", show_default=True,
              help="The node's InternalIP (where its kubelet endpoint listens).")
@click.option("--node-label", "node_labels", multiple=True, metavar="KEY=VALUE",
              help="A label for the node (repeatable).")
@click.option("--default-runtime", type=click.Choice(["virtual", "process"]),
              default="virtual", show_default=True,
              help="Runtime of pods without a runtimeClassName.")
@click.option("--dns-listen", default=None, metavar="HOST:PORT",
              help="Where the node's cluster DNS listens (default: the kube-dns Service IP, "
              "port 53, or 10053 when 53 cannot be bound).")
@click.option("--resolv-conf", default="/etc/resolv.conf", show_default=True, metavar="FILE",
              callback=readable_resolv_conf,
              help="The resolver file pods' DNS config starts from (the kubelet's flag: its "
              "search domains follow the cluster's, dnsPolicy Default copies it; \"\": none).")
@click.option("--no-dns", is_flag=True, help="Do not run a DNS server on this node.")
@click.option("--proxy/--no-proxy", default=True, show_default=True,
              help="Run the service proxy (cluster IPs and NodePorts on loopback).")
@click.option("--network", type=click.Choice(["host", "netns"]), default="host",
              show_default=True, help="netns (root): the node is a network namespace whose "
              "eth0 joins --underlay-netns, the hosts' network, with --node-address; its "
              "pods are routed to and from the other nodes' pods.")
@click.option("--underlay-netns", default=None, metavar="NAME",
              help="With --network netns: the network namespace of the hosts' network (a "
              "netns-mode `tinykube up` makes `<prefix>-ul`).")
@click.option("--node-address", default=None, metavar="IP",
              help="With --network netns: this node's address on the underlay (100.64.0.0/16).")
@click.option("--service-cidr", default=None, show_default="10.96.0.0/12 with netns",
              help="With --network netns: the cluster's Service range (for its nftables).")
@click.option("-v", "--verbose", count=True, help="More logging.")
@click.pass_context
def command(ctx: click.Context, /, **flags: Any) -> None:
    """Run a node agent joining a cluster (`--kubeconfig` or `--token`), or act on the nodes
    of a `--network netns` cluster (`exec`)."""
    if ctx.invoked_subcommand is not None:
        return
    from tinykube.cli import nodeagent

    nodeagent.run(nodeagent.NodeFlags(**flags))


@command.command("exec", context_settings={"ignore_unknown_options": True})
@click.option("--data-dir", type=click.Path(path_type=Path), default=default_data_dir,
              show_default="$XDG_DATA_HOME/tinykube", help="The cluster's data directory.")
@click.argument("node")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(data_dir: Path, node: str, argv: tuple[str, ...]) -> None:
    """Run ARGV in NODE's network namespace (`tinykube node exec kube-node1 -- nslookup ...`)."""
    recorded = recorded_network(data_dir)
    namespaces = dict(recorded["nodes"])
    netns = namespaces.get(node)
    if netns is None:
        raise click.ClickException(f"no node {node!r} in this cluster; its nodes are "
                                   f"{', '.join(sorted(namespaces))}")
    if recorded.get("holder") is not None:  # rootless
        argv_in = enter_holder(int(recorded["holder"]), netns, argv)
        os.environ["PATH"] = userns.tool_path(os.environ.get("PATH", ""))
        os.execv(argv_in[0], argv_in)
    if not Path("/run/netns", netns).exists():
        raise click.ClickException(f"node {node!r} has no network namespace ({netns}): is "
                                   "the cluster running?")
    ip = shutil.which("ip")
    if ip is None:
        raise click.ClickException("`ip` (iproute2) is needed to enter a node: install iproute2")
    os.execv(ip, [ip, "netns", "exec", netns, *argv])
