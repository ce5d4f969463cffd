"""A node agent's container runtime as a process of its own, for tests that kill it.

`python -m tests.integration.container_agent DIR POD_JSON` runs a `ContainerRuntime` under
DIR (as `NodeAgent.register` starts it: the startup cleanup spares the pods whose shims still
run, then the adopted pods that are not in POD_JSON, `null` for none, are removed, as
`NodeAgent._remove_orphans` does) for the pod in POD_JSON, and writes the pod's status as the
agent would publish it to DIR/status.json whenever it changes (replaced atomically). The
host's network, a short crash back-off (0.2 s .. 1 s) so restarts happen within a test; SIGKILL
is how the tests end it.

It also serves `kubectl attach`'s session (`kubelet.streams.AttachSession`) on DIR/attach.sock:
a client sends the container's name and a newline, then remotecommand frames, each with a
4-byte big-endian length before it, in both directions (the kubelet's WebSocket, minus HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from tinykube.api.meta import rfc3339
from tinykube.images.store import Store
from tinykube.kubelet import streams, volumes
from tinykube.kubelet.cgroups import Cgroups
from tinykube.kubelet.container import ContainerRuntime
from tinykube.kubelet.restarts import CrashBackoff
from tinykube.kubelet.worker import NodeContext

NO_OBJECTS = volumes.Objects(configmaps=lambda _n, _m: None, secrets=lambda _n, _m: None,
                             claims=lambda _n, _m: None, persistent_volumes=lambda _n: None,
                             token=lambda _p, _s: None)


class FramedSocket:
    """`streams.Socket` over a stream: each message has its length before it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(len(data).to_bytes(4, "big") + data)
        await self.writer.drain()

    async def receive_bytes_or_none(self) -> bytes | None:
        try:
            size = int.from_bytes(await self.reader.readexactly(4), "big")
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError:
            return None


async def serve_attach(directory: Path, runtime: ContainerRuntime, uid: str) -> asyncio.Server:
    async def attach(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = (await reader.readline()).decode().strip()
        worker = runtime.workers.get(uid)
        io = worker.stdio.get(name) if worker is not None else None
        if io is not None:
            await streams.AttachSession(io, stdin=True, stdout=True).run(
                FramedSocket(reader, writer))
        writer.close()

    return await asyncio.start_unix_server(attach, path=str(directory / "attach.sock"))


async def serve(directory: Path, pod: dict[str, Any] | None) -> None:
    changed = asyncio.Event()

    async def event(_obj: object, _type: str, reason: str, message: str) -> None:
        with (directory / "events.log").open("a") as f:
            f.write(json.dumps([os.getpid(), reason, message]) + "\n")

    cgroups = Cgroups("agent-" + directory.name[-8:])
    node = NodeContext(host_ip="127.0.0.1", event=event, notify=lambda _pod: changed.set(),
                       services=lambda: [], cgroups=cgroups,
                       backoff=CrashBackoff(initial=0.2, maximum=1.0))
    runtime = ContainerRuntime(node, root=directory / "node" / "containers",
                               store=Store(directory / "images"), cluster_dns=lambda: None,
                               volumes=volumes.VolumeManager(directory / "node" / "pods",
                                                             NO_OBJECTS))
    adopted = runtime.live_pods()
    cgroups.clear(adopted)
    await runtime.clear(adopted)
    for uid in adopted - ({pod["metadata"]["uid"]} if pod else set()):
        runtime.remove_orphan(uid)
    if pod is not None:
        (directory / "attach.sock").unlink(missing_ok=True)
        await serve_attach(directory, runtime, pod["metadata"]["uid"])  # the loop keeps it
    (directory / "started").write_text(str(os.getpid()))
    while pod is not None:
        changed.clear()
        status = await runtime.sync(pod, pod_ip="127.0.0.1")
        tmp = directory / "status.json.tmp"
        tmp.write_text(json.dumps({"agent": os.getpid(), "at": rfc3339(), "status": status}))
        os.replace(tmp, directory / "status.json")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), 0.5)


def main() -> None:
    directory, pod = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    asyncio.run(serve(directory, pod))
    if pod is None:
        asyncio.run(asyncio.Event().wait())  # the test kills it


if __name__ == "__main__":
    main()
