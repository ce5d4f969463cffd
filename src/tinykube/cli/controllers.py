"""`tinykube controllers --kubeconfig FILE`: one more candidate for the controllers and scheduler.

It runs what kube-controller-manager and kube-scheduler run (every controller of `tinykube up`,
and the scheduler) against an existing API server, each group while it holds its Lease in
`kube-system` (`client.leaderelection`): `tinykube up` is a candidate too, so with one or more
of these running, the loss of the leader (its process killed, its host cut off) hands the work
to another within one lease duration, and never to two at once. The `--leader-elect-*` flags are
kube-controller-manager's. The CSR signer needs the cluster's CA (`ca.crt` and `ca.key`, in
`--data-dir`, as kube-controller-manager's `--cluster-signing-*-file`); without it requests are
not signed. Local volumes are made under the same directory. Node IPAM hands each Node without
a pod range a /24 of `--cluster-cidr` (kube-controller-manager's flag; the cluster's
`tinykube up --pod-cidr`).
"""

from __future__ import annotations

from pathlib import Path

import click

from tinykube.cli.up import default_data_dir, parse_duration


@click.command()
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The API server to work for (default: $KUBECONFIG, in-cluster, "
              "~/.kube/config).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=default_data_dir,
              show_default="$XDG_DATA_HOME/tinykube",
              help="Where the cluster's CA is (for the CSR signer) and local volumes go.")
@click.option("--leader-elect/--no-leader-elect", default=True, show_default=True,
              help="Work only while holding the Leases (off: two of these would both work).")
@click.option("--leader-elect-lease-duration", default="15s", show_default=True,
              metavar="DURATION", help="How long a candidate waits, after the leader's last "
              "renewal it saw, before it takes over.")
@click.option("--leader-elect-renew-deadline", default="10s", show_default=True,
              metavar="DURATION", help="How long the leader tries to renew before it stops "
              "working (shorter than the lease duration).")
@click.option("--leader-elect-retry-period", default="2s", show_default=True,
              metavar="DURATION", help="How often candidates try to acquire and the leader "
              "renews.")
@click.option("--cluster-cidr", default=None, show_default="127.244.0.0/16",
              help="The cluster's pod range, of which each Node without one gets a /24 "
              "(node IPAM; the `tinykube up --pod-cidr` of the cluster).")
@click.option("-v", "--verbose", count=True, help="More logging.")
def command(kubeconfig: str | None, data_dir: Path, leader_elect: bool,
            leader_elect_lease_duration: str, leader_elect_renew_deadline: str,
            leader_elect_retry_period: str, cluster_cidr: str | None, verbose: int) -> None:
    """Run the controllers and the scheduler (leader-elected) against an API server."""
    import logging

    from tinykube.cli.standalone import run_loop
    from tinykube.client import leaderelection

    timing = leader_timing(leader_elect_lease_duration, leader_elect_renew_deadline,
                           leader_elect_retry_period)
    logging.basicConfig(level=logging.WARNING - 10 * verbose,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = kubeconfig_path(kubeconfig)
    identity = leaderelection.default_identity()
    run_loop(_run(Path(path), data_dir, leader_elect, timing, identity,
                  parse_cluster_cidr(cluster_cidr)))


def parse_cluster_cidr(given: str | None) -> str:
    import ipaddress

    from tinykube.settings import DEFAULT_POD_CIDR

    if given is None:
        return DEFAULT_POD_CIDR
    try:
        return str(ipaddress.ip_network(given, strict=False))
    except ValueError:
        raise click.BadParameter(f"{given!r} is not a CIDR", param_hint="--cluster-cidr") \
            from None


def kubeconfig_path(given: str | None) -> str:
    """The kubeconfig file: `--kubeconfig`, else the first of $KUBECONFIG, else
    ~/.kube/config."""
    import os

    path = given or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or \
        os.path.expanduser("~/.kube/config")
    if not os.path.exists(path):
        raise click.UsageError(f"no kubeconfig at {path}: name one with --kubeconfig")
    return path


def leader_timing(lease: str, renew: str, retry: str) -> list[float]:
    """The three `--leader-elect-*` durations in seconds, refused as client-go refuses them."""
    from tinykube.client.leaderelection import Timing

    timing = Timing(parse_duration(lease, "--leader-elect-lease-duration"),
                    parse_duration(renew, "--leader-elect-renew-deadline"),
                    parse_duration(retry, "--leader-elect-retry-period"))
    problem = timing.problem()
    if problem is not None:
        raise click.UsageError(f"invalid leader election durations: {problem}")
    return [timing.lease_duration, timing.renew_deadline, timing.retry_period]


async def _run(kubeconfig: Path, data_dir: Path, leader_elect: bool, timing: list[float],
               identity: str, cluster_cidr: str) -> None:
    from tinykube.cli.standalone import run_components
    from tinykube.components import ComponentOptions

    options = ComponentOptions(
        kubeconfig=kubeconfig, data_dir=data_dir, host_ip="", nodes=[],
        pod_cidr=cluster_cidr, dns=None, proxy=False, default_runtime="virtual",
        kubelet_token="", leader_elect=leader_elect, leader_election=timing,
        leader_identity=identity)
    await run_components(options, running=f"tinykube controllers running as {identity}" +
                         (" (leader-elected)" if leader_elect else ""),
                         stopped="tinykube controllers stopped")
