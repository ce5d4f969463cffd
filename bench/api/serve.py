"""The API server alone (no controllers, nodes, DNS or proxy), for bench/api/run.py.

    python bench/api/serve.py --data-dir DIR [--port 0] [--store etcd://... [--second]]

Prints `ready at <url>` once it answers requests and runs until SIGTERM/SIGINT. Uses uvloop and
`launch.tune_gc`, as `tinykube up` does. Running the API server without the controllers
measures its own costs: under `tinykube up` every pod created is also scheduled and started,
which adds writes of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from tinykube.apiserver.server import APIServerOptions, open_apiserver
from tinykube.launch import tune_gc


async def serve(data_dir: Path, port: int, store: str = "", second: bool = False) -> None:
    options = APIServerOptions(data_dir=data_dir, port=port, store=store)
    if second:  # another API server on the same etcd and data directory
        options.lock_file, options.kubeconfig_file = "second.lock", "kubeconfig-second"
    running = await open_apiserver(options)
    print(f"ready at {running.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--store", default="", help="etcd://HOST:PORT,... (default SQLite)")
    parser.add_argument("--second", action="store_true",
                        help="a second API server on the data directory (with --store)")
    args = parser.parse_args(argv)
    tune_gc()  # a server's GC thresholds, as in `tinykube up` and `tinykube apiserver`
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args.data_dir, args.port, args.store, args.second))
    else:
        uvloop.run(serve(args.data_dir, args.port, args.store, args.second))


if __name__ == "__main__":
    main(sys.argv[1:])
