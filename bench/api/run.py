"""API server benchmark: pod creates, 10,000-pod lists, watch fan-out, start-up time, RSS,
discovery and OpenAPI documents, and a Job-heavy mix.

    python bench/api [--pods 10000] [--clients 16] [--watchers 100] [--changes 1000]
                     [--rate 500] [--server apiserver|up] [--doc-requests 50]
                     [--jobs 1000] [--job-seconds 1] [--skip-jobs]

Every figure is printed next to its target from issue 2 (targets for this 2-core machine):

  creates    `--pods` pods POSTed over HTTPS by `--clients` concurrent keep-alive connections;
             creates/s = pods / wall time; latency per request (send -> full reply) p50/p99.
             Target >= 1,000/s, p99 < 50 ms.
  list       GET of all pods (10,000) in one namespace, 5 times each as JSON and as a Table
             (`Accept: ...;as=Table`), latency to the last byte; median and max.
             Target < 300 ms JSON, < 1 s Table.
  watch      `--watchers` watches on one namespace's ConfigMaps, then `--changes` creates paced
             at `--rate`/s; each object carries its send time, so a delivery's latency is
             write sent -> event line read by the watcher (it includes the write's own round
             trip, printed alongside). Target p99 < 20 ms.
  ready      `tinykube up` (DNS on a spare port, proxy on) from exec to its `export KUBECONFIG=`
             line: a fresh data directory, then a restart on it; median of 3. Target < 1 s.
  RSS        the server's VmRSS after the creates and lists (and VmHWM, its peak).
             Target < 500 MiB with 10,000 pods.
  documents  `/api`, `/apis` (legacy and aggregated discovery), `/openapi/v2` (JSON and
             protobuf), `/openapi/v3` and every group-version document, `--doc-requests` GETs
             each after a warm-up (documents.py). Target (issue 12) p99 < 50 ms each.
  job mix    on a `tinykube up` of its own (the Job controller, the scheduler, virtual
             nodes): `--jobs` pods, then `--jobs` Jobs created by `--clients` connections, and
             the time until every Job is Complete, its pod run by the node (jobs.py).

`--server apiserver` (default) runs the API server alone (bench/api/serve.py);
`--server up` runs `tinykube up --no-dns --no-proxy`, so the scheduler and the node agent also
work on every pod created. The benchmark client runs in this process with uvloop; the server is
a subprocess, so on two cores each gets one. Servers are stopped by PID; data directories are
temporary.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tinykube.testing import free_port

HERE = Path(__file__).resolve().parent
NAMESPACE = "bench"
FAN_NAMESPACE = "fanout"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    ready_seconds: float

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "ca.crt"))

    def rss_mib(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else "0"
        return int(fields["VmRSS"]) / 1024, int(fields["VmHWM"]) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start(command: list[str], data_dir: Path, ready_marker: str) -> Server:
    """Run `command` and wait for its line containing `ready_marker`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    url = ""
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line.rstrip())
        if "ready at " in line:
            url = line.split("ready at ")[1].split()[0]
        if ready_marker in line:
            return Server(process, url, data_dir, time.perf_counter() - started)
    raise RuntimeError(f"{command[:4]} exited with {process.wait()} before it was ready:\n"
                       + "\n".join(seen[-20:]))


def start_up(data_dir: Path, *extra: str) -> Server:
    command = [sys.executable, "-m", "tinykube", "up", "--data-dir", str(data_dir),
               "--listen", "127.0.0.1:0", *extra]
    return start(command, data_dir, "export KUBECONFIG=")


def start_apiserver(data_dir: Path) -> Server:
    command = [sys.executable, str(HERE / "serve.py"), "--data-dir", str(data_dir)]
    return start(command, data_dir, "ready at ")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(name: str, measured: str, target: str, met: bool | None) -> None:
    verdict = "" if met is None else ("ok" if met else "MISSED")
    print(f"{name:<38} {measured:<34} target {target:<14} {verdict}", flush=True)


# --- client ----------------------------------------------------------------------------

class Client:
    def __init__(self, server: Server, connections: int) -> None:
        connector = aiohttp.TCPConnector(ssl=server.ssl_context(), limit=connections)
        self.session = aiohttp.ClientSession(
            base_url=server.url, connector=connector,
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        await self.session.close()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.post(path, data=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"}) as reply:
            data = await reply.read()
            if reply.status >= 300:
                raise RuntimeError(f"POST {path}: {reply.status} {data[:300]!r}")
            return orjson.loads(data)

    async def get_bytes(self, path: str, accept: str = "application/json") -> bytes:
        async with self.session.get(path, headers={"Accept": accept}) as reply:
            data = await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"GET {path}: {reply.status} {data[:300]!r}")
            return data


def pod(index: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{index:05d}", "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                     "ports": [{"containerPort": 80}]}]}}


async def default_account(client: Client, namespace: str) -> None:
    """The namespace's `default` ServiceAccount, which pods run as (ServiceAccount admission
    refuses pods without it). Under `--server up` the service-account controller makes it;
    the API server alone has no controllers, so the benchmark makes it, as envtest users do."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    try:
        await client.post(path, {"metadata": {"name": "default"}})
    except RuntimeError as exc:
        if " 409 " not in str(exc):  # already made by the controller
            raise


async def bench_creates(client: Client, pods: int, clients: int) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    await default_account(client, NAMESPACE)
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    latencies: list[float] = []
    next_index = iter(range(pods))

    async def worker() -> None:
        for index in next_index:
            sent = time.perf_counter()
            await client.post(path, pod(index))
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    rate = pods / (time.perf_counter() - started)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    report(f"pod creates, {clients} clients", f"{rate:,.0f}/s", ">= 1,000/s", rate >= 1000)
    report("  create latency p50 / p99", f"{ms(p50)} / {ms(p99)}", "p99 < 50 ms", p99 < 0.050)


async def bench_lists(client: Client, pods: int) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    for label, accept, target in (("JSON", "application/json", 0.300), ("Table", TABLE, 1.0)):
        times, size = [], 0
        for _ in range(5):
            started = time.perf_counter()
            size = len(await client.get_bytes(path, accept))
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        report(f"list {pods:,} pods as {label} ({size / 2**20:.1f} MiB)",
               f"median {ms(median)}, max {ms(max(times))}", f"< {ms(target)}", median < target)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bench_watch(server: Server, client: Client, watchers: int, changes: int,
                      rate: float) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": FAN_NAMESPACE}})
    path = f"/api/v1/namespaces/{FAN_NAMESPACE}/configmaps"
    list_rv = orjson.loads(await client.get_bytes(path))["metadata"]["resourceVersion"]
    delays: list[float] = []
    replies = [await client.session.get(path, params={"watch": "1", "resourceVersion": list_rv})
               for _ in range(watchers)]  # each returns once its watch is registered

    async def receive(reply: aiohttp.ClientResponse) -> int:
        # Kept cheap, since one client process reads every delivery: per chunk read, one
        # clock reading, and the send time found by byte search rather than a JSON parse.
        seen, marker, pending = 0, b'"sent":"', b""
        async for chunk in reply.content.iter_any():
            now = time.perf_counter()
            pending += chunk
            complete = pending.rfind(b"\n") + 1  # lines may be split across chunks
            start = pending.find(marker, 0, complete)
            while start >= 0:
                start += len(marker)
                delays.append(now - float(pending[start:pending.index(b'"', start)]))
                seen += 1
                start = pending.find(marker, start, complete)
            pending = pending[complete:]
            if seen >= changes:
                break
        reply.close()
        return seen

    receivers = [asyncio.create_task(receive(reply)) for reply in replies]
    write_times: list[float] = []
    cpu_before = server.cpu_seconds(), own_cpu_seconds()
    started = time.perf_counter()
    for index in range(changes):
        await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
        sent = time.perf_counter()
        await client.post(path, {"metadata": {"name": f"cm-{index:05d}"},
                                 "data": {"sent": repr(sent)}})
        write_times.append(time.perf_counter() - sent)
    counts = await asyncio.wait_for(asyncio.gather(*receivers), timeout=120)
    assert counts == [changes] * watchers, counts
    elapsed = time.perf_counter() - started
    server_cpu = (server.cpu_seconds() - cpu_before[0]) / elapsed
    client_cpu = (own_cpu_seconds() - cpu_before[1]) / elapsed
    p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
    report(f"watch: {watchers} watchers x {changes:,} changes",
           f"{len(delays):,} deliveries at {rate:g} changes/s", "", None)
    report("  delivery latency p50 / p99 / max", f"{ms(p50)} / {ms(p99)} / {ms(max(delays))}",
           "p99 < 20 ms", p99 < 0.020)
    report("  (of which the write round trip p50/p99)",
           f"{ms(percentile(write_times, 0.5))} / {ms(percentile(write_times, 0.99))}", "",
           None)
    report("  CPU busy: server / benchmark client", f"{server_cpu:.0%} / {client_cpu:.0%}", "",
           None)


def bench_ready(work: Path) -> None:
    fresh: list[float] = []
    restart: list[float] = []
    for rep in range(3):
        data_dir = work / f"ready-{rep}"
        for times in (fresh, restart):
            server = start_up(data_dir, "--dns-listen", f"127.0.0.1:{free_port()}")
            times.append(server.ready_seconds)
            if server.stop() != 0:
                raise RuntimeError("tinykube up did not stop cleanly")
    for label, times in (("fresh data dir", fresh), ("restart", restart)):
        median = statistics.median(times)
        report(f"`tinykube up` ready, {label}", f"median {median:.2f} s of 3", "< 1 s",
               median < 1.0)


async def run_client(server: Server, args: argparse.Namespace) -> None:
    client = Client(server, connections=max(args.clients, args.watchers + 4))
    try:
        await bench_creates(client, args.pods, args.clients)
        await bench_lists(client, args.pods)
        rss, peak = server.rss_mib()
        report(f"server RSS with {args.pods:,} pods", f"{rss:.0f} MiB (peak {peak:.0f} MiB)",
               "< 500 MiB", peak < 500)
        await bench_watch(server, client, args.watchers, args.changes, args.rate)
        import documents  # (here: it imports this module's helpers)

        await documents.bench_documents(client, args.doc_requests)
    finally:
        await client.close()


async def run_jobs(server: Server, args: argparse.Namespace) -> None:
    import jobs

    client = Client(server, connections=args.clients + 2)
    try:
        await jobs.bench_jobs(client, args.jobs, args.clients, args.job_timeout)
    finally:
        await client.close()


def run(coroutine_factory: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await coroutine_factory()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        uvloop.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500, help="changes/s in the watch test")
    parser.add_argument("--server", choices=("apiserver", "up"), default="apiserver")
    parser.add_argument("--skip-ready", action="store_true")
    parser.add_argument("--doc-requests", type=int, default=50,
                        help="GETs of each discovery/OpenAPI document")
    parser.add_argument("--jobs", type=int, default=1000, help="Jobs in the Job mix")
    parser.add_argument("--job-seconds", type=float, default=1.0,
                        help="how long each Job's virtual pod runs")
    parser.add_argument("--job-timeout", type=float, default=300,
                        help="seconds to wait for every Job to complete")
    parser.add_argument("--skip-jobs", action="store_true")
    args = parser.parse_args(argv)
    print(f"tinykube API benchmark: server={args.server}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_ready:
            bench_ready(work)
        if args.server == "up":
            server = start_up(work / "data", "--no-dns", "--no-proxy")
        else:
            server = start_apiserver(work / "data")
        try:
            run(lambda: run_client(server, args))
        finally:
            server.stop()
        if not args.skip_jobs:
            import jobs

            server = start_up(work / "jobs", "--no-dns", "--no-proxy", "--virtual-job-seconds",
                              str(args.job_seconds), "--nodes", ",".join(jobs.nodes_for(args.jobs)))
            try:
                run(lambda: run_jobs(server, args))
            finally:
                server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
