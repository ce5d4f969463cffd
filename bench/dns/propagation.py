"""API change -> DNS answer latency through a real `tinykube up`, over many changes.

    python bench/dns/propagation.py [--changes 1000]

Starts `tinykube up` (no proxy, DNS on a free loopback port), creates a selector-less headless
Service with a hand-written EndpointSlice, then, `--changes` times: patches the slice's address
through the API and queries the DNS server over UDP in a tight loop until the answer shows the new
address. The latency of one change is from just before the PATCH is sent to the first answer
that shows it, so it includes the API write, the watch delivery, the DNS model update and the
answer rebuild. Prints p50/p90/p99/max and the targets (median <= 10 ms, p99 <= 100 ms).
Everything runs on 127.0.0.1; the cluster process is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tinykube.api import resources
from tinykube.client.config import load
from tinykube.client.rest import RESTClient
from tinykube.testing import free_port

NAME = "bench.default.svc.cluster.local."


def query_packet(qid: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in NAME.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + \
        struct.pack("!HH", 1, 1)


def answer_ips(packet: bytes) -> set[str]:
    """The A records of a response to `query_packet` (answers use a name pointer)."""
    ancount = struct.unpack("!H", packet[6:8])[0]
    offset = 12 + len(NAME) + 1 + 4
    ips = set()
    for _ in range(ancount):
        offset += 2  # compressed owner name
        rtype, _cls, _ttl, length = struct.unpack("!HHIH", packet[offset:offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            ips.add(socket.inet_ntoa(packet[offset:offset + 4]))
        offset += length
    return ips


def start_cluster(data_dir: Path, dns_port: int) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinykube", "up", "--data-dir", str(data_dir), "--listen",
         "127.0.0.1:0", "--no-proxy", "--dns-listen", f"127.0.0.1:{dns_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export KUBECONFIG="):
            return proc, Path(line.strip().split("=", 1)[1])
    raise RuntimeError("tinykube up did not start")


def slice_body(ip: str) -> dict[str, object]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "bench-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "bench",
                                    "endpointslice.kubernetes.io/managed-by": "bench"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}


async def measure(kubeconfig: Path, dns_port: int, changes: int) -> list[float]:
    services = resources.lookup("", "v1", "services")
    slices = resources.lookup("discovery.k8s.io", "v1", "endpointslices")
    assert services is not None and slices is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", dns_port))
    sock.settimeout(1.0)
    latencies: list[float] = []
    async with RESTClient(load(str(kubeconfig))) as client:
        await client.create(services, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}}, "default")
        await client.create(slices, slice_body("127.250.0.1"), "default")
        for i in range(changes):
            ip = f"127.250.{(i + 2) // 250}.{(i + 2) % 250 + 1}"
            started = time.perf_counter()
            await client.patch(slices, "bench-1", {"endpoints": [
                {"addresses": [ip], "conditions": {"ready": True}}]}, "default")
            qid = 0
            while True:
                qid = (qid + 1) & 0xFFFF
                sock.send(query_packet(qid))
                try:
                    if ip in answer_ips(sock.recv(4096)):
                        break
                except TimeoutError:
                    continue
                await asyncio.sleep(0)
            latencies.append((time.perf_counter() - started) * 1000)
            if (i + 1) % 200 == 0:
                print(f"  {i + 1}/{changes} changes", file=sys.stderr)
    sock.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()
    dns_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc, kubeconfig = start_cluster(Path(tmp) / "data", dns_port)
        try:
            latencies = asyncio.run(measure(kubeconfig, dns_port, args.changes))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
    print(f"API change -> DNS answer over {len(ordered)} changes (ms): "
          f"p50 {statistics.median(ordered):.2f}  p90 {pct(90):.2f}  p99 {pct(99):.2f}  "
          f"max {ordered[-1]:.2f}")
    print("targets: p50 <= 10 ms, p99 <= 100 ms "
          f"-> {'met' if statistics.median(ordered) <= 10 and pct(99) <= 100 else 'MISSED'}")


if __name__ == "__main__":
    main()
