"""DNS workers: how QPS grows with processes on one address (`--dns-workers N`, SO_REUSEPORT).

    python bench/dns/workers.py [--duration 10] [--reps 3] [--workers 1,2]

For each worker count N (interleaved over the repetitions), N copies of tinykube's DNS server
(`serve_tinykube.py --reuse-port`: the benchmark zone fed in-process, bound with SO_REUSEPORT
as `tinykube up --dns-workers N` binds them; the API server is idle here, as the issue asks)
share one port, and dnsperf (`-c 20`: 20 source ports, which the kernel hashes over the
sockets) runs against it:

  open    dnsperf at unlimited rate; on 2 cores the client itself takes one, so this is a
          floor, not the scaling;
  budget  every thread of the N servers in one cgroup-v1 CPU group of N x `--share` of a core
          (run.Quota, 25 % by default): the QPS one server gets for a quarter of a core, and N
          servers for N quarters. The share is small so that dnsperf, on the same 2 cores
          (about 130-150k QPS at most here), is never what limits N servers.

The scaling is budget QPS at N over budget QPS at 1 (target >= 1.8x at N = 2), with the
machine's load average printed beside. Needs root (cgroups) and dnsperf.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import run
import zonegen

PORT = 15420


def start(count: int) -> list[subprocess.Popen[bytes]]:
    script = str(run.HERE / "serve_tinykube.py")
    processes = [subprocess.Popen([sys.executable, script, "--port", str(PORT),
                                   "--reuse-port"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(count)]
    deadline = time.monotonic() + 60
    while not all(run.answers(PORT) for _ in range(8 * count)):  # every socket has its model
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            stop(processes)
            raise RuntimeError(f"{count} DNS servers did not start")
        time.sleep(0.2)
    time.sleep(2)  # the last one to bind may still be feeding its model
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(10)


def measure(count: int, queries: Path, duration: int, share: float) -> dict[str, float]:
    processes = start(count)
    try:
        run.dnsperf(PORT, queries, 2, "-c", "20")  # warm every server's caches
        open_qps = run.qps(run.dnsperf(PORT, queries, duration, "-c", "20"))[0]
        with run.Quota(*(p.pid for p in processes), share=share * count):
            budget_qps = run.qps(run.dnsperf(PORT, queries, duration, "-c", "20"))[0]
        print(f"  {count} worker(s): open {open_qps:,.0f} QPS, "
              f"{count} x {share:.0%} of a core {budget_qps:,.0f} QPS", flush=True)
        return {"open": open_qps, "budget": budget_qps}
    finally:
        stop(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--share", type=float, default=0.25, help="of a core, per worker")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="tinykube-dnsworkers-") as tmp:
        queries = Path(tmp) / "queries.txt"
        queries.write_text("\n".join(zonegen.queries()) + "\n")
        results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
        for rep in range(args.reps):
            print(f"repetition {rep + 1}/{args.reps}", flush=True)
            for count in counts:
                results[count].append(measure(count, queries, args.duration, args.share))
    one = statistics.median(r["budget"] for r in results[counts[0]])
    print(f"\n| workers | open QPS | QPS for N x {args.share:.0%} of a core | x one worker |")
    print("| --- | --- | --- | --- |")
    for count, runs in results.items():
        budget = statistics.median(r["budget"] for r in runs)
        print(f"| {count} | {statistics.median(r['open'] for r in runs):,.0f} | {budget:,.0f} "
              f"| {budget / one:.2f} |")
    if 2 in results and counts[0] == 1:
        two = statistics.median(r["budget"] for r in results[2]) / one
        print(f"\n2 workers: {two:.2f}x one, target >= 1.80x: {'met' if two >= 1.8 else 'NOT met'}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
