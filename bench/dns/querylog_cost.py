"""What the DNS query log costs the UDP hot path, measured in CPU time rather than QPS.

    python bench/dns/querylog_cost.py [--batches 3000] [--reps 5]

dnsperf's QPS (run.py, targets `tinykube` and `tinykube-querylog`) is the product number, but on
a shared, loaded machine it swings by 2x between runs. This measures the part the log changes:
one `BatchSocket` on 127.0.0.1 answers batches of 64 level-1 cache hits (the benchmark zone's
query mix), with `serve` (log off) and `serve_logged` into a `QueryLog` (log on, sampling off),
interleaved, in process CPU seconds (`time.process_time`: other processes' load does not count).
The server's recvmmsg and sendmmsg are timed, the client's sends and receives are not. Prints
CPU us per query for each and the ratio of their rates (log on / off; target >= 0.7).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import dns.message
import zonegen

from tinykube.dns import mmsg
from tinykube.dns.handler import Resolver
from tinykube.dns.querylog import QueryLog
from tinykube.dns.records import ZoneConfig
from tinykube.dns.wire import Responder
from tinykube.dns.zone import ClusterModel


def responder() -> Responder:
    model = ClusterModel()
    for obj in zonegen.api_objects():
        {"Namespace": model.apply_namespace, "Service": model.apply_service,
         "EndpointSlice": model.apply_slice}[obj["kind"]](obj)
    model.mark_synced()
    return Responder(Resolver(model, ZoneConfig(upstream=False)))


def packets(count: int) -> list[bytes]:
    out = []
    for line in zonegen.queries(count):
        name, qtype = line.split()
        out.append(dns.message.make_query(name, qtype, use_edns=False).to_wire())
    return out


def run(reader: mmsg.BatchSocket, client: socket.socket, batch: list[bytes], fast: dict[
        bytes, bytes], batches: int, log: QueryLog | None) -> float:
    counts = [0] * 16
    missed: list[bytes] = []
    took = 0.0
    for _ in range(batches):
        for packet in batch:
            client.send(packet)
        started = time.process_time()  # the server's part only: the client's is not timed
        if log is None:
            reader.serve(fast, counts, lambda d, a: missed.append(d))
        else:
            reader.serve_logged(fast, counts, lambda d, a: missed.append(d), log.add_batch)
        took += time.process_time() - started
        for _ in batch:
            client.recv(4096)
    assert not missed, "every query must be a level-1 hit"
    return took / (batches * len(batch)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    resp = responder()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(server.getsockname())
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    batch = packets(mmsg.BATCH)
    for packet in batch:  # fill the level-1 cache
        resp.respond(packet, False)
    reader = mmsg.BatchSocket(server)
    off, on = [], []
    for _ in range(args.reps):
        off.append(run(reader, client, batch, resp.fast, args.batches, None))
        on.append(run(reader, client, batch, resp.fast, args.batches, QueryLog()))
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"log off: {m_off:.2f} CPU us/query  (reps {', '.join(f'{x:.2f}' for x in off)})")
    print(f"log on:  {m_on:.2f} CPU us/query  (reps {', '.join(f'{x:.2f}' for x in on)})")
    print(f"rate with the log on / off: {m_off / m_on:.2f}x (target >= 0.7x)")


if __name__ == "__main__":
    main()
