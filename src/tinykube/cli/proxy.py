"""`tinykube proxy`: run the userspace service proxy alone against any API server.

    tinykube proxy --kubeconfig FILE [--min-sync-interval 0.05] [--udp-idle-timeout 30]

It listens on every local Service address (cluster IPs in a loopback range, NodePorts on
127.0.0.1, local externalIPs) and forwards to ready endpoints. A port it cannot bind is printed
and recorded as a Warning Event on the Service, and so are addresses left out by the bounds on
what the proxy opens (256 per Service, and a budget under the open-file limit). `tinykube up`
calls `run_proxy` itself and uses the same reporters.
"""

from __future__ import annotations

import asyncio
import logging

import click

from tinykube.launch import raise_open_files_limit
from tinykube.proxy.app import (
    ProxyOptions,
    RunningProxy,
    bind_failure_reporter,
    refusal_reporter,
    run_proxy,
)

__all__ = ["ProxyOptions", "bind_failure_reporter", "command", "run_proxy"]


def describe(running: RunningProxy) -> str:
    return (f"tinykube proxy: {len(running.listening)} service ports listening, "
            f"{len(running.failing)} failed to bind")


async def _serve(options: ProxyOptions, kubeconfig: str | None) -> None:
    from tinykube.cli import standalone

    await standalone.serve(kubeconfig, "proxy", lambda client: run_proxy(
        client, options, on_bind_failure=bind_failure_reporter(client, click.echo),
        on_refusal=refusal_reporter(client, click.echo),
        announce=lambda running: click.echo(describe(running))))


@click.command(name="proxy")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config).")
@click.option("--min-sync-interval", type=click.FloatRange(0, 60), default=0.05,
              show_default=True, help="seconds to gather API changes before a resync.")
@click.option("--udp-idle-timeout", type=click.FloatRange(0.1, 3600), default=30.0,
              show_default=True, help="seconds before an idle UDP flow is forgotten.")
@click.option("-v", "--verbose", is_flag=True, help="log every listener change.")
def command(kubeconfig: str | None, min_sync_interval: float, udp_idle_timeout: float,
            verbose: bool) -> None:
    """Forward Service addresses on this host to ready endpoints (userspace mode)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    raise_open_files_limit()
    options = ProxyOptions(min_sync_interval=min_sync_interval,
                           udp_idle_timeout=udp_idle_timeout)
    try:
        import uvloop

        uvloop.run(_serve(options, kubeconfig))
    except ImportError:
        asyncio.run(_serve(options, kubeconfig))
