"""Loopback TCP relays in front of etcd members' peer ports, which a test can cut (partitions).

Each member advertises its relay's address to its peers (`--initial-advertise-peer-urls`) and
listens on a port of its own behind it, so every connection of one member to another passes
through the relay of the member it dials. A connection's first request names its sender: etcd's
peer requests (raft streams, pipelined messages, snapshots) carry the sender's advertised URLs in
`X-PeerURLs`, which is the sender's relay. `cut(i)` closes every connection from or to member
`i` and refuses new ones, so `i` is cut off from both others in both directions while its
clients can still reach it; `restore(i)` lets them through again. A connection whose first
request names no sender (a probe) is let through unless its receiver is cut.

The relays run on an event loop in a thread of their own; `close` stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Iterable

HEAD_LIMIT = 64 * 1024  # bytes of a first request's head before the relay gives up on it
HEAD_TIMEOUT = 10.0


class PeerRelays:
    """One relay per member: `urls[i]` is what member `i` advertises, `targets[i]` the port it
    listens on for its peers."""

    def __init__(self, size: int) -> None:
        self._listeners = []
        for _ in range(size):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            sock.setblocking(False)
            self._listeners.append(sock)
        self.ports = [s.getsockname()[1] for s in self._listeners]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.targets: list[int] = []  # set by the caller before the members start
        self._cut: set[int] = set()
        # each relayed connection: its sender and receiver, and the writers of both its ends
        self._open: dict[int, tuple[int | None, int, list[asyncio.StreamWriter]]] = {}
        self.refused = 0  # connections refused or closed because of a cut
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peer-relays")
        self._thread.start()
        self._ready.wait(10)

    def __repr__(self) -> str:
        return f"<PeerRelays {self.ports} cut={sorted(self._cut)} open={len(self._open)}>"

    def cut(self, member: int) -> None:
        self._call(self._cut_now, member)

    def restore(self, member: int) -> None:
        self._call(self._cut.discard, member)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # --- the loop's side ------------------------------------------------------------------

    def _call(self, function: Callable[[int], object], member: int) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                function(member)
            finally:
                done.set()
        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        servers = [self._loop.run_until_complete(asyncio.start_server(
            functools.partial(self._serve, receiver=receiver), sock=sock, limit=HEAD_LIMIT))
            for receiver, sock in enumerate(self._listeners)]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for _, _, writers in list(self._open.values()):
                _abort(writers)
            for server in servers:
                server.close()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    def _cut_now(self, member: int) -> None:
        self._cut.add(member)
        for sender, receiver, writers in list(self._open.values()):
            if member in (sender, receiver):
                self.refused += 1
                _abort(writers)

    def _sender(self, head: bytes) -> int | None:
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-peerurls":
                return _member_of(value.decode(errors="replace"), self.urls)
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                     receiver: int) -> None:
        key, writers = id(writer), [writer]
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            sender = self._sender(head)
            if self._cut & {receiver, sender}:
                self.refused += 1
                return
            self._open[key] = (sender, receiver, writers)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.targets[receiver])
            writers.append(up_writer)
            up_writer.write(head)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        finally:
            self._open.pop(key, None)
            _abort(writers)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


def _abort(writers: list[asyncio.StreamWriter]) -> None:
    """Drop both ends of a connection at once (a cut link sends nothing more)."""
    for writer in writers:
        writer.transport.abort()


def _member_of(value: str, urls: Iterable[str]) -> int | None:
    """The member whose relay URL is among the comma-separated `value`."""
    given = {u.strip().rstrip("/") for u in value.split(",")}
    for index, url in enumerate(urls):
        if url in given:
            return index
    return None
