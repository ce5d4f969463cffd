"""DNS over TCP: RFC 7766 framing and pipelining, with the bounds that keep slow, idle or greedy
clients from holding the server.

Each query is a 2-byte length and a message; several may be in flight on one connection, and
forwarded ones are answered when the upstream replies, so answers may leave out of order (RFC
7766 allows it). The bounds are those of CoreDNS, whose TCP server is miekg/dns's:

- **A deadline per message.** The first message must have arrived whole `read_timeout` (3 s)
  after the accept, each later one `idle_timeout` (10 s) after the previous one. Bytes that
  trickle in do not move the deadline, so a client sending one byte a second is closed; a
  client that does not read its answers stops being read (`pause_writing`), so its deadline
  passes too, and it is aborted with its unsent answers. A connection whose deadline passes with
  nothing partial buffered but answers still to come from upstream gets one more `idle_timeout`
  for them (the forwarder answers or gives SERVFAIL well within it).
- **Queries per connection**: after `max_queries` (miekg/dns's default, 128) the connection reads
  no more and closes once those are answered.
- **Connections at once**: at most `max_connections` (150, BIND's `tcp-clients` default); one
  more closes the oldest, which RFC 7766 lets a server under pressure do (clients retry).

Time comes from `Timers` (the running loop by default), so tests can step it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
from collections.abc import Callable
from time import perf_counter
from typing import Protocol, cast

log = logging.getLogger(__name__)

#: Sends one answer (a whole DNS message, unframed) to the client.
Reply = Callable[[bytes], None]
#: (query, reply for a later answer) -> the answer now, or None (forwarded, or dropped).
Answer = Callable[[bytes, Reply], bytes | None]
#: (answer, seconds it took) -> None: the metrics of one answered query.
Observe = Callable[[bytes, float], None]


@dataclasses.dataclass(frozen=True)
class TCPLimits:
    """The bounds on DNS over TCP (see the module docstring)."""

    read_timeout: float = 3.0
    idle_timeout: float = 10.0
    max_queries: int = 128
    max_connections: int = 150


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """What the connections need of a clock: the event loop's `call_later`."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Cancellable: ...


class Connections:
    """The open TCP connections in accept order, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[TCPConnection, None] = {}
        self.evicted = 0
        self.full = False  # logged once per episode of eviction, not once per connection

    def __repr__(self) -> str:
        return f"Connections({len(self.open)}/{self.limit})"

    def add(self, connection: TCPConnection) -> None:
        self.open[connection] = None
        while len(self.open) > self.limit:
            if not self.full:
                log.warning("DNS over TCP: %d connections open, closing the oldest for each "
                            "new one", self.limit)
                self.full = True
            oldest = next(iter(self.open))
            self.discard(oldest)
            self.evicted += 1
            oldest.abort()

    def discard(self, connection: TCPConnection) -> None:
        self.open.pop(connection, None)
        if self.full and len(self.open) <= self.limit // 2:
            self.full = False

    def close_all(self) -> None:
        for connection in list(self.open):
            connection.abort()
        self.open.clear()


class TCPConnection(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(self, answer: Answer, observe: Observe, *, limits: TCPLimits,
                 connections: Connections, timers: Timers | None = None) -> None:
        self.answer, self.observe, self.limits = answer, observe, limits
        self.connections = connections
        self.timers = timers
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.queries = 0  # read on this connection
        self.pending = 0  # answered later (forwarded) and not sent yet
        self.deadline: Cancellable | None = None
        self.graced = False
        self.draining = False  # read max_queries: no more reading
        self.writing_paused = False

    def __repr__(self) -> str:
        return f"TCPConnection(queries={self.queries}, pending={self.pending})"

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.timers is None:
            self.timers = asyncio.get_running_loop()
        self._arm(self.limits.read_timeout)
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        """The client is not reading its answers: stop reading its queries meanwhile."""
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transport is not None and not self.draining:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.draining:
            return
        self.buffer += data
        while len(self.buffer) >= 2 and not self.draining:
            size = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + size:
                break
            packet = bytes(self.buffer[2: 2 + size])
            del self.buffer[: 2 + size]
            self._query(packet)

    # --- the work -------------------------------------------------------------------------

    def _query(self, packet: bytes) -> None:
        self.queries += 1
        self._arm(self.limits.idle_timeout)  # the next message is due from now
        if self.queries >= self.limits.max_queries:
            self._drain()
        started = perf_counter()
        response = self.answer(packet, self._reply_later)
        if response is None:
            self.pending += 1  # forwarded (or dropped: the grace period bounds that)
        else:
            self._send(response)
            self.observe(response, perf_counter() - started)
        self._close_if_done()

    def _reply_later(self, response: bytes) -> None:
        self.pending = max(0, self.pending - 1)
        self._send(response)
        self._close_if_done()

    def _send(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(response)) + response)

    def _drain(self) -> None:
        """The last query this connection may send has come: read nothing more."""
        self.draining = True
        self.buffer.clear()
        if self.transport is not None:
            self.transport.pause_reading()

    def _close_if_done(self) -> None:
        if self.draining and self.pending == 0 and self.transport is not None:
            self.transport.close()  # after the answers are written

    # --- the deadline -------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        self._disarm()
        self.graced = False
        assert self.timers is not None
        self.deadline = self.timers.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        """The next message did not arrive whole in time."""
        self.deadline = None
        if self.pending and not self.buffer and not self.graced:
            self._arm(self.limits.idle_timeout)  # the upstream's answers are still to come
            self.graced = True
            return
        self.abort()

    def abort(self) -> None:
        """Close now, dropping unsent answers (a client that does not read them)."""
        self._disarm()
        transport = self.transport
        if transport is None:
            return
        if transport.get_write_buffer_size() or self.writing_paused:
            transport.abort()
        else:
            transport.close()
