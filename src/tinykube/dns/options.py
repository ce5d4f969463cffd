"""What the cluster DNS is told to do (`DNSOptions`), apart from the server that does it.

A module of its own, with no DNS code behind it, because `tinykube up`'s API server process
makes the options (and sends them to the child that runs the DNS) but never serves DNS itself:
importing `dns.app` there would load the resolver, the wire format and the metrics server for
nothing, on the path to ready (issue 18's cold start). `dns.app` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def read_resolv_conf(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The host's nameservers (port 53), in order."""
    servers = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    servers.append((fields[1].split("%")[0], 53))
    except OSError:
        pass
    return servers


@dataclass(frozen=True)
class DNSOptions:
    listen: tuple[str, int] = ("127.96.0.10", 53)
    fallback_port: int | None = 10053  # used when `listen` cannot be bound; None: fail instead
    domain: str = "cluster.local"
    ttl: int = 5
    pod_records: str = "insecure"
    upstream: list[tuple[str, int]] | None = field(default_factory=read_resolv_conf)  # None: refuse
    metrics: tuple[str, int] | None = None
    log_queries: bool = False
    netns: tuple[str, ...] = ()  # network namespaces (paths) to listen in, instead of here
    workers: int = 1  # processes answering on `listen` (SO_REUSEPORT; dns.workers)
    join: bool = False  # a worker: bind `listen` beside others (SO_REUSEPORT), once synced
    kubeconfig: str | None = None  # the workers' credentials (None: theirs by default)
