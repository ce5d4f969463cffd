"""`tinykube node exec NODE -- COMMAND`: run a command inside a node of `--network netns`.

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

from tinykube.cli.up import default_data_dir
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


@click.group()
def command() -> None:
    """Commands for the nodes of a `--network netns` cluster."""


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
