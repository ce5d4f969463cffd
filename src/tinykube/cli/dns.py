"""`tinykube dns`: run the cluster DNS alone against any API server.

    tinykube dns --kubeconfig FILE --listen 127.96.0.10:53 --cluster-domain cluster.local \\
        --ttl 5 --pod-records insecure --upstream 8.8.8.8 --metrics 127.96.0.10:9153

`--upstream` defaults to the host's resolvers (/etc/resolv.conf); `none` refuses names outside
the cluster zone. The all-in-one `tinykube up` calls `run_dns` directly with its own client.
"""

from __future__ import annotations

import asyncio
import logging

import click

from tinykube.dns.app import DNSOptions, RunningDNS, run_dns
from tinykube.dns.forward import read_resolv_conf
from tinykube.launch import raise_open_files_limit

__all__ = ["DNSOptions", "command", "run_dns"]


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT`, or (with a default port) a bare host."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text and default_port is not None:
        return host, default_port
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {text!r}")
    return host, int(port_text)


def parse_upstream(text: str | None) -> list[tuple[str, int]] | None:
    if text is None:
        return read_resolv_conf()
    if text.strip().lower() == "none":
        return None
    return [split_host_port(item.strip(), 53) for item in text.split(",") if item.strip()]


async def _serve(options: DNSOptions, kubeconfig: str | None) -> None:
    from tinykube.cli import standalone

    def announce(running: RunningDNS) -> None:
        host, port = running.address
        click.echo(f"tinykube DNS listening on {host}:{port} (udp+tcp), zone {options.domain}")

    await standalone.serve(kubeconfig, "DNS",
                           lambda client: run_dns(options, client, announce=announce))


@click.command(name="dns")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config).")
@click.option("--listen", default="127.96.0.10:53", show_default=True,
              help="HOST:PORT for UDP and TCP.")
@click.option("--fallback-port", type=int, default=10053, show_default=True,
              help="port used when --listen cannot be bound (e.g. port 53 without privilege).")
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--ttl", type=click.IntRange(0, 3600), default=5, show_default=True)
@click.option("--pod-records", type=click.Choice(["insecure", "verified", "disabled"]),
              default="insecure", show_default=True)
@click.option("--upstream", default=None,
              help="comma-separated resolvers for other names (default: /etc/resolv.conf); "
                   "`none` refuses them.")
@click.option("--metrics", "metrics_listen", default=None,
              help="HOST:PORT for Prometheus /metrics (e.g. 127.96.0.10:9153).")
@click.option("--log-queries", is_flag=True, help="log every query and what answered it.")
def command(kubeconfig: str | None, listen: str, fallback_port: int, cluster_domain: str,
            ttl: int, pod_records: str, upstream: str | None, metrics_listen: str | None,
            log_queries: bool) -> None:
    """Serve the cluster DNS zone from an API server's Services, EndpointSlices and Pods."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    raise_open_files_limit()
    options = DNSOptions(
        listen=split_host_port(listen), fallback_port=fallback_port or None,
        domain=cluster_domain.strip(".").lower(), ttl=ttl, pod_records=pod_records,
        upstream=parse_upstream(upstream),
        metrics=split_host_port(metrics_listen) if metrics_listen else None,
        log_queries=log_queries)
    try:
        import uvloop

        uvloop.run(_serve(options, kubeconfig))
    except ImportError:
        asyncio.run(_serve(options, kubeconfig))
