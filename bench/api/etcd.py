"""The API server on etcd beside SQLite, in one run: creates, list and watch latency, RSS.

    python bench/api --store etcd [--pods 2000] [--clients 16] [--watchers 20] [--changes 200]

Three setups, one after the other on the same machine: SQLite (the default store), one API
server on a 3-member etcd, and two API servers on that etcd (a fresh etcd each). For each:

  creates    `--pods` pods POSTed by `--clients` keep-alive connections (split across both
             servers when there are two); creates/s and p50/p99 latency.
  list       GET of the `--pods` pods as JSON, 5 times (through the second server when there
             are two, whose cache the first one's writes reached through etcd); median.
  watch      `--watchers` watches of a namespace's ConfigMaps (on the second server when there
             are two), `--changes` creates paced at `--rate`/s (through the first); delivery
             latency write sent -> event read, p50/p99.
  RSS        VmHWM of every API server and etcd member.

Issue 15's target: etcd within 0.5x of SQLite on creates/s. etcd runs with --unsafe-no-fsync
where the etcd has it (so does SQLite's NORMAL sync, which does not fsync each commit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import run
from run import Client, Server, ms, percentile, pod, report

from tinykube.testing_etcd import EtcdCluster, start_etcd


def line(name: str, measured: str) -> None:
    print(f"{name:<38} {measured}", flush=True)


def start_server(data_dir: Path, store: str = "", second: bool = False) -> Server:
    command = [sys.executable, str(run.HERE / "serve.py"), "--data-dir", str(data_dir)]
    if store:
        command += ["--store", store] + (["--second"] if second else [])
    return run.start(command, data_dir, "ready at ")


async def creates(clients: list[Client], pods: int, connections: int) -> float:
    await clients[0].post("/api/v1/namespaces", {"metadata": {"name": run.NAMESPACE}})
    await run.default_account(clients[0], run.NAMESPACE)
    for client in clients[1:]:  # the namespace and account must reach the other cache
        await client.get_bytes(f"/api/v1/namespaces/{run.NAMESPACE}/serviceaccounts/default")
    path = f"/api/v1/namespaces/{run.NAMESPACE}/pods"
    latencies: list[float] = []
    indexes = iter(range(pods))

    async def worker(client: Client) -> None:
        for index in indexes:
            sent = time.perf_counter()
            await client.post(path, pod(index))
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(connections)))
    rate = pods / (time.perf_counter() - started)
    line(f"  pod creates, {connections} clients", f"{rate:,.0f}/s")
    line("  create latency p50 / p99",
           f"{ms(percentile(latencies, 0.5))} / {ms(percentile(latencies, 0.99))}")
    return rate


async def lists(client: Client, pods: int) -> None:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await client.get_bytes(f"/api/v1/namespaces/{run.NAMESPACE}/pods")
        times.append(time.perf_counter() - started)
    line(f"  list {pods:,} pods as JSON", f"median {ms(statistics.median(times))}")


async def watch(writer: Client, reader: Client, watchers: int, changes: int,
                rate: float) -> None:
    namespace = "fanout"
    await writer.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    listed = orjson.loads(await reader.get_bytes(path))["metadata"]["resourceVersion"]
    replies = [await reader.session.get(path, params={"watch": "1", "resourceVersion": listed})
               for _ in range(watchers)]
    delays: list[float] = []

    async def receive(reply: object) -> None:
        seen = 0
        async for line in reply.content:  # type: ignore[attr-defined]
            event = orjson.loads(line)
            delays.append(time.perf_counter() - float(event["object"]["data"]["sent"]))
            seen += 1
            if seen == changes:
                return

    readers = [asyncio.create_task(receive(r)) for r in replies]
    for i in range(changes):
        await writer.post(path, {"metadata": {"name": f"c{i}"},
                                 "data": {"sent": repr(time.perf_counter())}})
        await asyncio.sleep(1 / rate)
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    for reply in replies:
        reply.close()
    line(f"  watch {watchers} x {changes} deliveries p50 / p99",
           f"{ms(percentile(delays, 0.5))} / {ms(percentile(delays, 0.99))}")


async def measure(servers: list[Server], args: argparse.Namespace) -> float:
    clients = [Client(s, connections=args.clients + args.watchers + 4) for s in servers]
    try:
        rate = await creates(clients, args.pods, args.clients)
        await lists(clients[-1], args.pods)
        await watch(clients[0], clients[-1], args.watchers, args.changes, args.rate)
        return rate
    finally:
        for client in clients:
            await client.close()


def rss(servers: list[Server], etcd: EtcdCluster | None) -> None:
    peaks = [f"{s.rss_mib()[1]:.0f}" for s in servers]
    text = f"API server{'s' if len(peaks) > 1 else ''} {' + '.join(peaks)} MiB"
    if etcd is not None:
        members = []
        for member in etcd.members:
            status = Path(f"/proc/{member.process.pid}/status").read_text()
            hwm = next(x for x in status.splitlines() if x.startswith("VmHWM"))
            members.append(f"{int(hwm.split()[1]) / 1024:.0f}")
        text += f", etcd {' + '.join(members)} MiB"
    line("  peak RSS", text)


def setup(work: Path, name: str, count: int, args: argparse.Namespace) -> float:
    print(name, flush=True)
    slug = f"{count}"
    (work / f"etcd-{slug}").mkdir()
    etcd = start_etcd(work / f"etcd-{slug}") if count else None
    servers: list[Server] = []
    try:
        data = work / f"data-{slug}"
        servers.append(start_server(data, etcd.url if etcd else ""))
        if count == 2 and etcd is not None:
            servers.append(start_server(data, etcd.url, second=True))
        rate = 0.0

        async def go() -> None:
            nonlocal rate
            rate = await measure(servers, args)
        run.run(go)
        rss(servers, etcd)
        return rate
    finally:
        for server in servers:
            server.stop()
        if etcd is not None:
            etcd.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("etcd",), default="etcd")
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-etcd-") as tmp:
        work = Path(tmp)
        sqlite = setup(work, "SQLite", 0, args)
        one = setup(work, "etcd, 1 API server", 1, args)
        two = setup(work, "etcd, 2 API servers", 2, args)
    for label, rate in (("1 API server", one), ("2 API servers", two)):
        report(f"etcd creates/s vs SQLite, {label}", f"{rate / sqlite:.2f}x", ">= 0.5x",
               rate >= 0.5 * sqlite)
