"""Discovery and OpenAPI documents for the whole API, timed from the server's cache.

Each document is fetched once to warm the cache (and the connection), then `requests` times
one after another on one keep-alive connection; latency is request sent -> last byte read.
The documents are the ones kubectl fetches: legacy discovery (`/api`, `/apis`), aggregated
discovery (the same paths with the apidiscovery.k8s.io v2 Accept header kubectl sends),
`/openapi/v2` as JSON and as the protobuf kubectl asks for, the `/openapi/v3` index, and every
group-version document it lists (at its `?hash=` URL, as kubectl asks for it). The target
(issue 12) is every document under 50 ms; the p99 is what is held to it.
"""

from __future__ import annotations

import time

import orjson
from run import Client, ms, percentile, report

AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
              "application/json")
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
JSON = "application/json"
TARGET = 0.050

DOCUMENTS = [
    ("/api (legacy discovery)", "/api", JSON),
    ("/apis (legacy discovery)", "/apis", JSON),
    ("/api (aggregated discovery)", "/api", AGGREGATED),
    ("/apis (aggregated discovery)", "/apis", AGGREGATED),
    ("/openapi/v2 (JSON)", "/openapi/v2", JSON),
    ("/openapi/v2 (protobuf)", "/openapi/v2", PROTOBUF_V2),
    ("/openapi/v3 (index)", "/openapi/v3", JSON),
]


async def _timed(client: Client, path: str, accept: str, requests: int) -> tuple[list[float],
                                                                               int]:
    size = len(await client.get_bytes(path, accept))  # warm-up
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        await client.get_bytes(path, accept)
        times.append(time.perf_counter() - started)
    return times, size


def _report(label: str, times: list[float], size: int) -> None:
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    report(f"  {label}", f"{ms(p50)} / {ms(p99)} ({size / 1024:,.0f} KiB)",
           f"p99 < {ms(TARGET)}", p99 < TARGET)


async def bench_documents(client: Client, requests: int) -> None:
    report(f"discovery + OpenAPI, {requests} GETs each", "p50 / p99 (size)", "", None)
    for label, path, accept in DOCUMENTS:
        times, size = await _timed(client, path, accept, requests)
        _report(label, times, size)
    index = orjson.loads(await client.get_bytes("/openapi/v3"))["paths"]
    every: list[float] = []
    total = 0
    worst = ("", 0.0)
    for name, entry in sorted(index.items()):
        times, size = await _timed(client, entry["serverRelativeURL"], JSON,
                                   max(1, requests // 5))
        every += times
        total += size
        if percentile(times, 0.99) > worst[1]:
            worst = (name, percentile(times, 0.99))
    _report(f"/openapi/v3/<{len(index)} group-versions>", every, total)
    report("    the slowest of them", f"{worst[0]}: p99 {ms(worst[1])}", "", None)
