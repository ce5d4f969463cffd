"""Network-namespace "hosts" on one switch whose links a test cuts (etcd partitions).

`HostNetwork(size)` makes a namespace `<prefix>-sw` with a bridge, and `size` namespaces
`<prefix>-h<i>`, host i, whose `eth0` (10.250.0.<i+1>/24) is one end of a veth whose other end,
`p<i>`, is a port of the switch's bridge. Programs run in a host with `command(i, argv)` (`ip
netns exec`: the pid is the program's own). `cut(i)` sets `p<i>` down: no packet passes between
host i and the others, in either direction, and open connections are not closed but stall, as
on a real cut cable; `restore(i)` sets it up again. `reachable(i, address, port)` tells whether
host i can open a TCP connection to an address now (what a test checks the cut by).

Clients stay on the machine's loopback: `ClientRelays` listens on 127.0.0.1 (a free port per
host) and opens the other side of each connection in host i's own namespace, to its
127.0.0.1:`port`. That path does not cross the switch, so a cut member is alone but still
reachable by its clients, as a member on the far side of a partition with its clients.

`close()` stops the relays and deletes the namespaces (their veths go with them). Nothing of
the machine's own network is changed: the 10.250.0.0/24 addresses live only in these
namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import threading
from collections.abc import Sequence

from tinykube.network import netns
from tinykube.network.plan import NETNS_DIR

SUBNET = "10.250.0"
CONNECT_TIMEOUT = 1.0  # seconds `reachable` waits for a connection
_CHUNK = 65536


class HostNetwork:
    """`size` hosts on one switch (see the module docstring)."""

    def __init__(self, size: int, prefix: str | None = None) -> None:
        self.prefix = prefix or f"tkhosts{os.getpid()}"
        self.switch = f"{self.prefix}-sw"
        self.hosts = [f"{self.prefix}-h{i}" for i in range(size)]
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"HostNetwork({self.prefix}, hosts={len(self.hosts)})"

    def _create(self) -> None:
        netns.add(self.switch)
        netns.batch(self.switch, ["link set lo up", "link add br0 type bridge",
                                  "link set br0 up"])
        for i, host in enumerate(self.hosts):
            netns.add(host)
            netns.batch(self.switch, [f"link add p{i} type veth peer name eth0 netns {host}",
                                      f"link set p{i} master br0", f"link set p{i} up"])
            netns.batch(host, ["link set lo up", f"addr add {self.address(i)}/24 dev eth0",
                               "link set eth0 up"])

    @staticmethod
    def address(i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    def path(self, i: int) -> str:
        return os.path.join(NETNS_DIR, self.hosts[i])

    def command(self, i: int, argv: Sequence[str]) -> list[str]:
        """`argv` run in host i."""
        return ["ip", "netns", "exec", self.hosts[i], *argv]

    def cut(self, i: int) -> None:
        netns.batch(self.switch, [f"link set p{i} down"])

    def restore(self, i: int) -> None:
        netns.batch(self.switch, [f"link set p{i} up"])

    def reachable(self, i: int, address: str, port: int) -> bool:
        def attempt() -> bool:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(CONNECT_TIMEOUT)
                try:
                    sock.connect((address, port))
                except OSError:
                    return False
                return True
        return netns.in_netns(self.path(i), attempt)

    def close(self) -> None:
        for name in [*self.hosts, self.switch]:
            netns.delete(name)


class ClientRelays:
    """127.0.0.1:`ports[i]` on the machine relays to 127.0.0.1:`port` in host i."""

    def __init__(self, hosts: HostNetwork, port: int) -> None:
        self.hosts, self.port = hosts, port
        self._listeners = []
        for _ in hosts.hosts:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            sock.setblocking(False)
            self._listeners.append(sock)
        self.ports = [s.getsockname()[1] for s in self._listeners]
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="client-relays")
        self._thread.start()
        self._ready.wait(10)

    def __repr__(self) -> str:
        return f"ClientRelays({self.ports})"

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        servers = [self._loop.run_until_complete(asyncio.start_server(
            functools.partial(self._serve, host=i), sock=sock))
            for i, sock in enumerate(self._listeners)]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for writer in list(self._writers):
                writer.transport.abort()
            for server in servers:
                server.close()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                     host: int) -> None:
        writers = [writer]
        self._writers.add(writer)
        try:
            inner = await asyncio.to_thread(netns.socket_in, self.hosts.path(host),
                                            socket.AF_INET, socket.SOCK_STREAM)
            inner.setblocking(False)
            try:
                await self._loop.sock_connect(inner, ("127.0.0.1", self.port))
            except OSError:
                inner.close()
                raise
            up_reader, up_writer = await asyncio.open_connection(sock=inner)
            writers.append(up_writer)
            self._writers.add(up_writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except OSError:
            return
        finally:
            for each in writers:
                self._writers.discard(each)
                each.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()
