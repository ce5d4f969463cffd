"""DNS benchmark: tinykube's cluster DNS vs unbound, dnsmasq and Knot, same zone, same query mix.

    python bench/dns/run.py [--duration 10] [--reps 1] [--targets tinykube,knot] [--mix hit,bust]

Mixes (`zonegen.py`): `hit` repeats a few thousand questions (every answer cacheable); `bust`
is cache-busting: random NXDOMAIN names under cluster.local and svc.cluster.local and a pod's
search-path storm, new names in every dnsperf run (each run gets its own query file, larger
than the run can send; a run that wraps around its file says so).

Target `tinykube-querylog` is tinykube with the query log on (sampling off, dns.querylog);
`--targets tinykube,tinykube-querylog` compares the two in one run (target: >= 0.7x).

Method (performance.md A.0): every server runs on CPU 1, dnsperf on CPU 0 (`-c 10 -q 100`).
Per target and repetition (targets interleaved):
  open    dnsperf at unlimited rate (client-capped near 150-170k QPS on this box);
  quota   the server's threads in a cgroup-v1 CPU group of 50 % of a core; QPS x 2 = QPS/core;
  lat     a fixed 20,000 QPS with per-query latencies (`-v`): p50 / p99.
Server CPU per query = (utime + stime) / queries in the open run. Then, for tinykube, the time
from a model change to the first UDP answer that shows it, over `--changes` changes (in-process;
this excludes the API server and watch delivery). Servers are started and stopped by PID; the
cgroup is removed. Needs root (cgroups), dnsperf, unbound, dnsmasq, knot
(`apt-get install dnsperf unbound dnsmasq knot`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contextlib

import zonegen

HERE = Path(__file__).parent
CGROUP = Path("/sys/fs/cgroup/cpu")
PORTS = {"tinykube": 15401, "tinykube-asyncio": 15402, "unbound": 15403, "dnsmasq": 15404,
         "tinykube-querylog": 15405, "knot": 15406}
SERVER_CPU, CLIENT_CPU = "1", "0"
Z = zonegen.ZONE
SOA = f"{Z}. 5 IN SOA ns.dns.{Z}. hostmaster.{Z}. 1 7200 1800 86400 5"


def write_unbound(tmp: Path, port: int) -> list[str]:
    lines = ["server:", "  interface: 127.0.0.1", f"  port: {port}", "  num-threads: 1",
             "  do-daemonize: no", '  chroot: ""', '  username: ""', f'  directory: "{tmp}"',
             '  pidfile: ""', "  use-syslog: no", "  verbosity: 0", "  do-ip6: no",
             "  access-control: 127.0.0.0/8 allow", '  module-config: "iterator"',
             f'  local-zone: "{zonegen.ZONE}." static', f'  local-data: "{SOA}"']
    lines += [f'  local-data: "{name}. 5 IN A {ip}"' for name, ip in zonegen.a_records()]
    lines += [f'  local-data: "{name}. 5 IN SRV 0 100 80 {target}."'
              for name, target in zonegen.srv_records()]
    lines += ["remote-control:", "  control-enable: no"]
    conf = tmp / "unbound.conf"
    conf.write_text("\n".join(lines) + "\n")
    return ["unbound", "-d", "-c", str(conf)]


def write_knot(tmp: Path, port: int) -> list[str]:
    """Knot (Debian's `knot`) authoritative for the zone, one UDP worker as for the others."""
    zone = tmp / f"{Z}.zone"
    lines = [SOA, f"{Z}. 5 IN NS ns.dns.{Z}.", f"ns.dns.{Z}. 5 IN A 10.96.0.10"]
    lines += [f"{name}. 5 IN A {ip}" for name, ip in zonegen.a_records()]
    lines += [f"{name}. 5 IN SRV 0 100 80 {target}." for name, target in zonegen.srv_records()]
    zone.write_text("\n".join(lines) + "\n")
    conf = tmp / "knot.conf"
    conf.write_text(f"server:\n  rundir: {tmp}\n  listen: 127.0.0.1@{port}\n  udp-workers: 1\n"
                    f"  tcp-workers: 1\n  background-workers: 1\n"
                    f"database:\n  storage: {tmp}/knotdb\n"
                    f"zone:\n  - domain: {Z}\n    file: {zone}\n    storage: {tmp}\n")
    return ["knotd", "-c", str(conf)]


def write_dnsmasq(tmp: Path, port: int) -> list[str]:
    hosts = tmp / "hosts"
    hosts.write_text("".join(f"{ip} {name}\n" for name, ip in zonegen.a_records()))
    conf = tmp / "dnsmasq.conf"
    conf.write_text("".join(f"srv-host={name},{target},80,0,100\n"
                            for name, target in zonegen.srv_records()))
    return ["dnsmasq", "-k", f"--conf-file={conf}", f"--port={port}", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
            f"--local=/{zonegen.ZONE}/", "--cache-size=10000", "--user=root", "--pid-file=",
            "--log-facility=-"]


def command(target: str, tmp: Path) -> list[str]:
    port = PORTS[target]
    if target.startswith("tinykube"):
        loop = "asyncio" if target.endswith("asyncio") else "uvloop"
        script = str(HERE / "serve_tinykube.py")
        extra = ["--querylog"] if target.endswith("querylog") else []
        return [sys.executable, script, "--port", str(port), "--loop", loop, *extra]
    if target == "knot":
        return write_knot(tmp, port)
    return write_unbound(tmp, port) if target == "unbound" else write_dnsmasq(tmp, port)


def answers(port: int) -> bool:
    query = bytes.fromhex("12340000000100000000000003737663000001") + b"\x00\x01"  # "svc." A
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        try:
            sock.sendto(query, ("127.0.0.1", port))
            return len(sock.recv(512)) >= 12
        except OSError:
            return False


def start(target: str, tmp: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["taskset", "-c", SERVER_CPU, *command(target, tmp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not answers(PORTS[target]):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"{target} did not start")
        time.sleep(0.1)
    for tid in os.listdir(f"/proc/{process.pid}/task"):  # pin every thread (knot-style re-pin)
        subprocess.run(["taskset", "-cp", SERVER_CPU, tid], capture_output=True, check=False)
    return process


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Queries:
    """dnsperf query files for a mix: the hit mix's one file, or for `bust` a new file (new
    names) for every run, sized for `rate` queries a second."""

    def __init__(self, tmp: Path, mix: str) -> None:
        self.tmp, self.mix, self.runs = tmp, mix, 0
        if mix == "hit":
            self.hit = tmp / "queries-hit.txt"
            self.hit.write_text("\n".join(zonegen.queries()) + "\n")

    def file(self, duration: int, rate: int) -> tuple[Path, int]:
        """A query file for one run and how many lines it has."""
        if self.mix == "hit":
            return self.hit, 0
        self.runs += 1
        count = duration * rate
        path = self.tmp / "queries-bust.txt"
        path.write_text("\n".join(zonegen.bust_queries(count, self.runs)) + "\n")
        return path, count


def dnsperf(port: int, queries: Queries, duration: int, *extra: str, rate: int = 220_000
            ) -> str:
    path, lines = queries.file(duration, rate)
    argv = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", str(path), "-l", str(duration), "-c", "10", "-q", "100", *extra]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    sent = re.search(r"Queries sent:\s+(\d+)", output)
    if lines and sent and int(sent.group(1)) > lines:
        print(f"  warning: {sent.group(1)} queries sent from a file of {lines}: names repeated",
              flush=True)
    return output


def qps(output: str) -> tuple[float, int]:
    rate = float(re.search(r"Queries per second:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"Queries completed:\s+(\d+)", output).group(1))  # type: ignore[union-attr]
    return rate, done


class Quota:
    """A temporary cgroup-v1 CPU group holding every thread of `pids` at `share` of a core
    (all of them together)."""

    def __init__(self, *pids: int, share: float = 0.5) -> None:
        self.pids, self.path = pids, CGROUP / f"tinykube-dnsbench-{os.getpid()}"
        self.share = share

    def __enter__(self) -> Quota:
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text("10000")
        (self.path / "cpu.cfs_quota_us").write_text(str(int(10000 * self.share)))
        for pid in self.pids:
            for tid in os.listdir(f"/proc/{pid}/task"):
                (self.path / "tasks").write_text(tid)
        return self

    def __exit__(self, *_: object) -> None:
        for tid in (self.path / "tasks").read_text().split():
            with contextlib.suppress(OSError):
                (CGROUP / "tasks").write_text(tid)
        self.path.rmdir()


def measure(target: str, tmp: Path, queries: Queries, duration: int) -> dict[str, float]:
    process = start(target, tmp)
    port = PORTS[target]
    try:
        dnsperf(port, queries, 2)  # warm the caches
        before = cpu_seconds(process.pid)
        output = dnsperf(port, queries, duration)
        open_qps, done = qps(output)
        cpu_us = (cpu_seconds(process.pid) - before) * 1e6 / max(done, 1)
        with Quota(process.pid):
            quota_qps = qps(dnsperf(port, queries, duration, rate=120_000))[0] * 2
        latency_output = dnsperf(port, queries, duration, "-Q", "20000", "-v", rate=22_000)
        latencies = sorted(float(line.split()[-1]) for line in latency_output.splitlines()
                           if line.startswith("> "))
        p50, p99 = (latencies[int(len(latencies) * q)] * 1000 for q in (0.5, 0.99))
        rcodes = re.search(r"Response codes:\s+(.*)", output)
        print(f"  {target} ({queries.mix}): open {open_qps:,.0f} QPS, quota x2 {quota_qps:,.0f}, "
              f"{cpu_us:.2f} us/q, p50 {p50:.3f} ms, p99 {p99:.3f} ms; "
              f"{rcodes.group(1) if rcodes else ''}", flush=True)
        return {"open": open_qps, "core": quota_qps, "cpu_us": cpu_us, "p50": p50, "p99": p99}
    finally:
        process.terminate()
        process.wait(10)


async def change_latency(changes: int) -> list[float]:
    """Seconds from a model change to the first UDP answer showing it."""
    import dns.asyncquery
    import dns.message

    from tinykube.dns.handler import Resolver
    from tinykube.dns.records import ZoneConfig
    from tinykube.dns.server import DNSServer
    from tinykube.dns.wire import Responder
    from tinykube.dns.zone import ClusterModel

    model = ClusterModel()
    for obj in zonegen.api_objects():
        {"Namespace": model.apply_namespace, "Service": model.apply_service,
         "EndpointSlice": model.apply_slice}[obj["kind"]](obj)
    model.mark_synced()
    server = DNSServer(Responder(Resolver(model, ZoneConfig(upstream=False))))
    host, port = await server.start("127.0.0.1", 0)
    query = dns.message.make_query(f"hl-0.{zonegen.SUFFIX}", "A")
    samples = []
    for index in range(changes):
        ready = 5 + index % 5
        started = time.perf_counter()
        model.apply_slice(zonegen.headless_slice(0, ready))
        while True:
            response = await dns.asyncquery.udp(query, host, port=port, timeout=2)
            if response.answer and len(response.answer[0]) == ready:
                break
        samples.append(time.perf_counter() - started)
    await server.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--targets", default="tinykube,tinykube-asyncio,unbound,dnsmasq,knot")
    parser.add_argument("--mix", default="hit,bust", help="hit, bust or both (hit,bust)")
    args = parser.parse_args()
    targets, mixes = args.targets.split(","), args.mix.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-dnsbench-"))
    try:
        queries = {mix: Queries(tmp, mix) for mix in mixes}
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            mix: {t: [] for t in targets} for mix in mixes}
        for rep in range(args.reps):
            print(f"repetition {rep + 1}/{args.reps}", flush=True)
            for mix in mixes:
                for target in targets:
                    results[mix][target].append(measure(target, tmp, queries[mix],
                                                        args.duration))
        for mix in mixes:
            print(f"\n{mix} mix, medians of {args.reps}:")
            report(results[mix])
        if args.changes:
            samples = sorted(asyncio.run(change_latency(args.changes)))
            print(f"\nchange -> answer over {len(samples)} changes (in-process model update): "
                  f"median {statistics.median(samples) * 1000:.3f} ms, "
                  f"p99 {samples[int(len(samples) * 0.99)] * 1000:.3f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict[str, list[dict[str, float]]]) -> None:
    medians = {t: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for t, runs in results.items()}
    print("| server | open QPS (client-capped) | QPS per core (quota50x2) | CPU us/query "
          "| p50 / p99 ms at 20k QPS | x unbound | x dnsmasq | x knot |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for target, m in medians.items():
        ratios = [f"{m['core'] / medians[o]['core']:.2f}" if o in medians else "-"
                  for o in ("unbound", "dnsmasq", "knot")]
        print(f"| {target} | {m['open']:,.0f} | {m['core']:,.0f} | {m['cpu_us']:.2f} "
              f"| {m['p50']:.3f} / {m['p99']:.3f} | {ratios[0]} | {ratios[1]} | {ratios[2]} |")


if __name__ == "__main__":
    main()
