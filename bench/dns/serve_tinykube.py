"""Run tinykube's DNS server on the benchmark zone (no API server): `--port P --loop uvloop`
(`--querylog`: with the query log on, sampling off; `--reuse-port`: bound with SO_REUSEPORT,
as `--dns-workers` binds, so that several of these share the port)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import zonegen

from tinykube.dns.handler import Resolver
from tinykube.dns.records import ZoneConfig
from tinykube.dns.server import DNSServer
from tinykube.dns.wire import Responder
from tinykube.dns.zone import ClusterModel


async def serve(host: str, port: int, querylog: bool = False, reuse_port: bool = False
                ) -> None:
    model = ClusterModel()
    for obj in zonegen.api_objects():
        kind = obj["kind"]
        {"Namespace": model.apply_namespace, "Service": model.apply_service,
         "EndpointSlice": model.apply_slice}[kind](obj)
    model.mark_synced()
    server = DNSServer(Responder(Resolver(model, ZoneConfig(upstream=False))))
    if querylog:  # sampling off: every query is recorded
        from tinykube.dns.querylog import QueryLog

        server.set_query_log(QueryLog())
    await server.start(host, port, reuse_port=reuse_port)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--querylog", action="store_true", help="with the query log on")
    parser.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.host, args.port, args.querylog, args.reuse_port))
    else:
        asyncio.run(serve(args.host, args.port, args.querylog, args.reuse_port))


if __name__ == "__main__":
    main()
