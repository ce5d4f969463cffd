"""`tinykube dns` options, the query log, and the assembled server (`start_dns`)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import dns.asyncquery
import dns.message
import dns.rcode
import pytest
from click.testing import CliRunner
from dnstest import Live, StartServer

from tinykube.cli.dns import command, parse_upstream, split_host_port
from tinykube.dns.app import DNSOptions, start_dns
from tinykube.dns.forward import read_resolv_conf

D = "default.svc.cluster.local."


@pytest.mark.parametrize(("text", "default", "expected"), [
    ("127.96.0.10:53", None, ("127.96.0.10", 53)),
    ("[fd00::10]:5353", None, ("fd00::10", 5353)),
    ("8.8.8.8", 53, ("8.8.8.8", 53)),
    ("fd00::1", 53, ("fd00::1", 53)),
], ids=["v4", "v6-brackets", "bare-v4", "bare-v6"])
def test_split_host_port(text: str, default: int | None, expected: tuple[str, int]) -> None:
    assert split_host_port(text, default) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", ":53", "host:99999", "host:port"])
def test_split_host_port_rejects(text: str) -> None:
    with pytest.raises(click.BadParameter):
        split_host_port(text)


def test_upstream_option(tmp_path: Path) -> None:
    assert parse_upstream("none") is None
    assert parse_upstream("1.1.1.1, 9.9.9.9:5353") == [("1.1.1.1", 53), ("9.9.9.9", 5353)]
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search svc\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions x\n")
    assert read_resolv_conf(str(resolv)) == [("10.0.0.2", 53), ("fe80::1", 53)]
    assert read_resolv_conf(str(tmp_path / "missing")) == []


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    for option in ("--kubeconfig", "--listen", "--cluster-domain", "--ttl", "--pod-records",
                   "--upstream", "--metrics", "--log-queries"):
        assert option in result.output


async def test_query_log_names_the_source(start_server: StartServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    live: Live = await start_server()
    live.server.log_queries = True
    with caplog.at_level(logging.INFO, logger="tinykube.dns.queries"):
        await live.ask("web-1.nginx." + D, "A")
        await live.ask("10-244-1-10.default.pod.cluster.local.", "A", "tcp")
    lines = [r.getMessage() for r in caplog.records if r.name == "tinykube.dns.queries"]
    assert lines == [f"web-1.nginx.{D} type=1 rcode=0 source=service default/nginx",
                     "10-244-1-10.default.pod.cluster.local. type=1 rcode=0 "
                     "source=pod 10.244.1.10 in default"]


async def test_start_dns_without_client_falls_back_and_serves() -> None:
    options = DNSOptions(listen=("127.0.0.1", 0), upstream=None, metrics=("127.0.0.1", 0))
    running = await start_dns(options)
    try:
        running.model.mark_synced()
        host, port = running.address
        response = await dns.asyncquery.udp(dns.message.make_query("nope." + D, "A"), host,
                                            port=port, timeout=3)
        assert response.rcode() == dns.rcode.NXDOMAIN
        assert running.metrics_runner is not None
    finally:
        await running.close()


async def test_bind_falls_back_when_port_is_taken() -> None:
    first = await start_dns(DNSOptions(listen=("127.0.0.1", 0), upstream=None))
    try:
        options = DNSOptions(listen=first.address, fallback_port=0, upstream=None)
        second = await start_dns(options)
        assert second.address[1] not in (0, first.address[1])
        await second.close()
    finally:
        await first.close()
