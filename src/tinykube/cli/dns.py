"""`tinykube dns`: run the cluster DNS alone against any API server.

    tinykube dns --kubeconfig FILE --listen 127.96.0.10:53 --cluster-domain cluster.local \\
        --ttl 5 --pod-records insecure --upstream 8.8.8.8 --metrics 127.96.0.10:9153

`--upstream` defaults to the host's resolvers (/etc/resolv.conf); `none` refuses names outside
the cluster zone. `--workers N` answers with N processes on the one address (SO_REUSEPORT,
`dns.workers`); each further one is a `tinykube dns --join`. The all-in-one `tinykube up` calls
`run_dns` directly with its own client (`--dns-workers N` there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

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
        workers = f", {options.workers} processes" if options.workers > 1 else ""
        click.echo(f"tinykube DNS listening on {host}:{port} (udp+tcp), zone {options.domain}"
                   f"{workers}")

    await standalone.serve(kubeconfig, "DNS",
                           lambda client: run_dns(options, client, announce=announce))


@click.group(name="dns", invoke_without_command=True)
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
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="processes answering on --listen (SO_REUSEPORT): one per core to use.")
@click.option("--join", is_flag=True,
              help="bind --listen beside DNS processes already on it (SO_REUSEPORT), once "
                   "synced with the API server (what --workers starts).")
@click.pass_context
def command(ctx: click.Context, kubeconfig: str | None, listen: str, fallback_port: int,
            cluster_domain: str,
            ttl: int, pod_records: str, upstream: str | None, metrics_listen: str | None,
            log_queries: bool, workers: int, join: bool) -> None:
    """Serve the cluster DNS zone from an API server's Services, EndpointSlices and Pods
    (`tinykube dns inject`: a fault drill in a running cluster's DNS)."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    raise_open_files_limit()
    options = DNSOptions(
        listen=split_host_port(listen), fallback_port=fallback_port or None,
        domain=cluster_domain.strip(".").lower(), ttl=ttl, pod_records=pod_records,
        upstream=parse_upstream(upstream),
        metrics=split_host_port(metrics_listen) if metrics_listen else None,
        log_queries=log_queries, workers=1 if join else workers, join=join,
        kubeconfig=str(Path(kubeconfig).resolve()) if kubeconfig else None)
    if join and fallback_port:
        options = dataclasses.replace(options, fallback_port=None)  # the others' port or none
    try:
        import uvloop

        uvloop.run(_serve(options, kubeconfig))
    except ImportError:
        asyncio.run(_serve(options, kubeconfig))


def _kubeconfig(given: str | None) -> Path:
    import os

    from tinykube.cli.up import default_data_dir

    return Path(given or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
                or default_data_dir() / "kubeconfig")


@command.command(name="inject")
@click.argument("name")
@click.option("--for", "for_seconds", type=click.FloatRange(0, min_open=True), required=True,
              help="Seconds the drill lasts.")
@click.option("--rcode", default=None, metavar="SERVFAIL|NXDOMAIN|REFUSED|N",
              help="Answer this rcode, no records.")
@click.option("--drop", is_flag=True, help="Answer nothing (clients time out).")
@click.option("--delay", type=click.FloatRange(0, min_open=True), default=None,
              help="Answer truly, this many seconds late.")
@click.option("--truncate", is_flag=True, help="Over UDP, an empty answer with TC set.")
@click.option("--stale", is_flag=True,
              help="Keep answering the first answer given, whatever changes (serve-stale).")
@click.option("--restart", is_flag=True,
              help="SERVFAIL for every name, as a DNS server before its first sync.")
@click.option("--kubeconfig", default=None, help="The cluster's admin kubeconfig (default: "
              "$KUBECONFIG, else the default data dir's).")
@click.option("--dns", "dns_listen", default=None, metavar="HOST:PORT",
              help="The cluster DNS: wait until it runs the drill.")
def inject(name: str, for_seconds: float, rcode: str | None, drop: bool, delay: float | None,
           truncate: bool, stale: bool, restart: bool, kubeconfig: str | None,
           dns_listen: str | None) -> None:
    """Start a DNS fault drill for NAME (`*` every name, `*.SUFFIX` names below SUFFIX)."""
    from tinykube import drill_client

    behaviour: dict[str, Any] = {}
    if rcode is not None:
        behaviour["rcode"] = int(rcode) if rcode.isdigit() else rcode.upper()
        if behaviour["rcode"] not in drill_client.RCODES and not rcode.isdigit():
            raise click.BadParameter(f"{rcode!r}: one of {', '.join(drill_client.RCODES)} "
                                     "or a number", param_hint="--rcode")
    behaviour.update({k: True for k, v in (("drop", drop), ("truncate", truncate),
                                           ("stale", stale), ("restart", restart)) if v})
    if delay is not None:
        behaviour["delay"] = delay
    if len(behaviour) != 1:
        raise click.UsageError("give exactly one of --rcode, --drop, --delay, --truncate, "
                               "--stale, --restart")
    address = split_host_port(dns_listen) if dns_listen else None
    key = drill_client.inject(_kubeconfig(kubeconfig), name, for_seconds=for_seconds,
                              dns_address=address, **behaviour)
    click.echo(f"{key}: {name} {next(iter(behaviour))} for {for_seconds:g}s")


@command.command(name="clear")
@click.option("--kubeconfig", default=None, help="The cluster's admin kubeconfig.")
def clear(kubeconfig: str | None) -> None:
    """End every DNS fault drill."""
    from tinykube import drill_client

    ended = drill_client.clear(_kubeconfig(kubeconfig))
    click.echo("drills ended" if ended else "no drills")


@command.command(name="log")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new queries.")
@click.option("--pod", default="", help="Only this client pod (NAME or NAMESPACE/NAME).")
@click.option("--name", default="", help="Only this query name (or names below it).")
@click.option("--rcode", default="", help="Only this rcode (NOERROR, NXDOMAIN, ...).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.option("--enable", is_flag=True, help="Turn the query log on (it is off by default).")
@click.option("--disable", is_flag=True, help="Turn it off (what it held is dropped).")
@click.option("--sample", type=click.IntRange(1), default=None,
              help="With --enable: keep one query in N.")
@click.option("--size", type=click.IntRange(1, 1_000_000), default=None,
              help="With --enable: queries kept (default 10000).")
@click.option("--kubeconfig", default=None, help="The cluster's admin kubeconfig.")
def log(follow: bool, pod: str, name: str, rcode: str, output: str, enable: bool,
        disable: bool, sample: int | None, size: int | None, kubeconfig: str | None) -> None:
    """The cluster DNS's recent queries: client pod, name, type, rcode, answers, source."""
    from tinykube.cli import observe

    if enable and disable:
        raise click.UsageError("give --enable or --disable, not both")
    observe.log(follow, pod, name, rcode, output, kubeconfig, enable, disable, sample, size)
