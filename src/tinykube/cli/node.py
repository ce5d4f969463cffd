"""`tinykube node exec NODE -- COMMAND`: run a command inside a node of `--network netns`.

Each node of that mode is a network namespace; this runs COMMAND in it (as `ip netns exec`
would, by the name `tinykube up` recorded in the data directory), so the seed's
`nslookup nginx.default.svc.cluster.local 10.96.0.10` runs as written on a node. The command
replaces this process: its exit code is the command's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click

from tinykube.cli.up import default_data_dir

NETWORK_FILE = "network.json"  # written by `tinykube up --network netns` (components.py)


def node_namespaces(data_dir: Path) -> dict[str, str]:
    """Node name -> network namespace name, as the running cluster recorded them."""
    try:
        recorded = json.loads((data_dir / NETWORK_FILE).read_text())
    except FileNotFoundError:
        raise click.ClickException(
            f"no netns-mode cluster in {data_dir}: start one with `tinykube up --network "
            "netns` (or name its --data-dir)") from None
    return dict(recorded["nodes"])


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
    namespaces = node_namespaces(data_dir)
    netns = namespaces.get(node)
    if netns is None:
        raise click.ClickException(f"no node {node!r} in this cluster; its nodes are "
                                   f"{', '.join(sorted(namespaces))}")
    if not Path("/run/netns", netns).exists():
        raise click.ClickException(f"node {node!r} has no network namespace ({netns}): is "
                                   "the cluster running?")
    ip = shutil.which("ip")
    if ip is None:
        raise click.ClickException("`ip` (iproute2) is needed to enter a node: install iproute2")
    os.execv(ip, [ip, "netns", "exec", netns, *argv])
