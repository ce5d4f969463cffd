"""Prometheus metrics of the cluster DNS, with CoreDNS's metric names, served on /metrics.

Per-query accounting must stay cheap (the hot path answers in a few microseconds), so the server
counts into plain integers of a `QueryStats` and a custom collector turns them into the CoreDNS
families only when Prometheus scrapes:

    coredns_dns_requests_total{proto}          queries received
    coredns_dns_responses_total{rcode}         responses sent, by rcode name
    coredns_dns_request_duration_seconds       histogram, CoreDNS buckets (0.25 ms * 2^n)
    coredns_cache_hits_total / _misses_total   answers served from / built into the answer cache

and one of ours, a regular prometheus_client histogram: `tinykube_dns_programming_latency_seconds`,
the time from an API change (the EndpointSlice last-change-trigger-time) to the answer showing it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

BUCKETS = tuple(0.00025 * 2**n for n in range(16))
RCODE_NAMES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
               "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13",
               "RCODE14", "RCODE15")
PROTOS = ("udp", "tcp")


class QueryStats:
    """Plain counters the server bumps per query.

    UDP answers from the level-1 cache take a few microseconds and are the bulk of the traffic,
    so they are not timed: the server bumps only `fast_by_rcode`, and they count as requests,
    as responses by rcode and in the lowest duration bucket (0.25 ms) when the totals are read.
    """

    __slots__ = ("buckets", "duration_sum", "fast_by_rcode", "requests", "responses")

    def __init__(self) -> None:
        self.requests = [0, 0]  # by PROTOS index, timed queries only
        self.responses = [0] * 16  # by rcode, timed queries only
        self.buckets = [0] * (len(BUCKETS) + 1)  # non-cumulative; the last one is +Inf
        self.duration_sum = 0.0
        self.fast_by_rcode = [0] * 16  # untimed UDP answers from the level-1 cache

    def observe(self, proto: int, response: bytes | None, seconds: float) -> None:
        self.requests[proto] += 1
        if response is not None and len(response) > 3:
            self.responses[response[3] & 0x0F] += 1
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def total_requests(self, proto: int) -> int:
        return self.requests[proto] + (sum(self.fast_by_rcode) if proto == 0 else 0)

    def total_responses(self) -> list[int]:
        return [timed + fast for timed, fast in zip(self.responses, self.fast_by_rcode,
                                                    strict=True)]

    def total_buckets(self) -> list[int]:
        return [self.buckets[0] + sum(self.fast_by_rcode), *self.buckets[1:]]


class _Collector:
    def __init__(self, stats: QueryStats, cache_counts: Callable[[], tuple[int, int]]) -> None:
        self.stats, self.cache_counts = stats, cache_counts

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        requests = CounterMetricFamily("coredns_dns_requests", "DNS queries received.",
                                       labels=["proto"])
        for index, proto in enumerate(PROTOS):
            requests.add_metric([proto], stats.total_requests(index))
        yield requests
        responses = CounterMetricFamily("coredns_dns_responses", "DNS responses sent by rcode.",
                                        labels=["rcode"])
        for rcode, count in enumerate(stats.total_responses()):
            if count or rcode < 6:
                responses.add_metric([RCODE_NAMES[rcode]], count)
        yield responses
        cumulative, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), stats.total_buckets(), strict=True):
            running += count
            cumulative.append((bound, running))
        yield HistogramMetricFamily("coredns_dns_request_duration_seconds",
                                    "Time to answer a DNS query.", buckets=cumulative,
                                    sum_value=stats.duration_sum)
        hits, misses = self.cache_counts()
        yield CounterMetricFamily("coredns_cache_hits", "Answers served from the cache.",
                                  value=hits)
        yield CounterMetricFamily("coredns_cache_misses", "Answers built on a cache miss.",
                                  value=misses)


class DNSMetrics:
    """The registry of one DNS server: query counters plus the programming latency."""

    def __init__(self, cache_counts: Callable[[], tuple[int, int]] = lambda: (0, 0)) -> None:
        self.registry = CollectorRegistry()
        self.stats = QueryStats()
        self.registry.register(_Collector(self.stats, cache_counts))
        self.programming = Histogram(
            "tinykube_dns_programming_latency_seconds",
            "Time from an API change to the DNS answers reflecting it.",
            ["kind"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


async def serve_metrics(metrics: DNSMetrics, host: str, port: int) -> web.AppRunner:
    """Serve /metrics over HTTP; returns the runner (call `cleanup()` to stop)."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
