"""The bounds on DNS over TCP (`dns.tcp`), on a stepped clock and a recording transport.

Each case is a script of (time, what the client does) against one connection with the default
limits (read 3 s, idle 10 s, 128 queries); the outcome is when and how the server ended the
connection and how many answers it wrote. No sockets and no sleeps: the sockets-level behaviour
(framing, pipelining, a real idle close) is in test_protocol.py and
tests/integration/test_dns_clients.py.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import struct
from collections.abc import Callable

import pytest

from tinykube.dns.tcp import Connections, Reply, TCPConnection, TCPLimits

QUERY = b"\x12\x34" + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x01a\x00\x00\x01\x00\x01"
FRAME = struct.pack("!H", len(QUERY)) + QUERY
FORWARD = b"\xff\xff" + QUERY[2:]  # the fake server answers this one later (as forwarded)
FORWARD_FRAME = struct.pack("!H", len(FORWARD)) + FORWARD


class Timer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SteppedClock:
    """`call_later` on a clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0
        self.queue: list[tuple[float, int, Timer, Callable[[], object]]] = []
        self.seq = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = Timer()
        heapq.heappush(self.queue, (self.now + delay, next(self.seq), timer, callback))
        return timer

    def advance(self, to: float) -> None:
        while self.queue and self.queue[0][0] <= to:
            when, _, timer, callback = heapq.heappop(self.queue)
            self.now = when
            if not timer.cancelled:
                callback()
        self.now = to


class Transport:
    """What the connection does to its socket: writes, pauses, close or abort (and when)."""

    def __init__(self, clock: SteppedClock) -> None:
        self.clock = clock
        self.written = b""
        self.ended: tuple[str, float] | None = None
        self.reading = True
        self.buffered = 0
        self.protocol: TCPConnection | None = None

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.ended is not None

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def close(self) -> None:
        self._end("close")

    def abort(self) -> None:
        self._end("abort")

    def _end(self, how: str) -> None:
        if self.ended is None:
            self.ended = (how, self.clock.now)
            assert self.protocol is not None
            self.protocol.connection_lost(None)

    def answers(self) -> int:
        count, rest = 0, self.written
        while rest:
            size = int.from_bytes(rest[:2], "big")
            rest = rest[2 + size:]
            count += 1
        return count


class Harness:
    """One server side with a stepped clock; `connect()` opens a connection."""

    def __init__(self, limits: TCPLimits | None = None) -> None:
        self.clock = SteppedClock()
        self.limits = limits or TCPLimits()
        self.connections = Connections(self.limits.max_connections)
        self.later: list[Reply] = []
        self.observed = 0

    def answer(self, packet: bytes, reply: Reply) -> bytes | None:
        if packet[:2] == b"\xff\xff":
            self.later.append(reply)
            return None
        return b"\x12\x34\x81\x80" + packet[4:]

    def observe(self, response: bytes, took: float) -> None:
        self.observed += 1

    def connect(self) -> tuple[TCPConnection, Transport]:
        connection = TCPConnection(self.answer, self.observe, limits=self.limits,
                                   connections=self.connections, timers=self.clock)
        transport = Transport(self.clock)
        transport.protocol = connection
        connection.connection_made(transport)  # type: ignore[arg-type]
        return connection, transport


@dataclasses.dataclass(frozen=True)
class Case:
    steps: list[tuple[float, str, bytes]]  # (time, action, data); actions below
    ended: tuple[str, float] | None  # how and when the server ended it (None: still open at 60 s)
    answers: int


def _trickle(data: bytes, start: float, every: float) -> list[tuple[float, str, bytes]]:
    return [(start + i * every, "send", data[i:i + 1]) for i in range(len(data))]


CASES = {
    "one byte a second is closed at the first message's deadline": Case(
        _trickle(FRAME * 2, 0, 1.0), ("close", 3.0), 0),
    "a silent client is closed after the read timeout": Case([], ("close", 3.0), 0),
    "one query, then idle: closed 10 s after it": Case(
        [(1.0, "send", FRAME)], ("close", 11.0), 1),
    "a query every 9 s keeps the connection": Case(
        [(t, "send", FRAME) for t in (1.0, 10.0, 19.0, 28.0, 37.0, 46.0, 55.0)], None, 7),
    "a later message trickling in is closed at its deadline": Case(
        [(1.0, "send", FRAME), *_trickle(FRAME, 2.0, 1.0)], ("close", 11.0), 1),
    "pipelined queries in one write all answered": Case(
        [(0.5, "send", FRAME * 5)], ("close", 10.5), 5),
    "the 128th query is answered, then the connection closes": Case(
        [(0.5, "send", FRAME * 130)], ("close", 0.5), 128),
    "a forwarded answer pending at the deadline is sent in one more idle period": Case(
        [(1.0, "send", FORWARD_FRAME), (15.0, "reply", b"")], ("close", 21.0), 1),
    "an answer that never comes ends the grace": Case(
        [(1.0, "send", FORWARD_FRAME)], ("close", 21.0), 0),
    "a partial message at the deadline gets no grace": Case(
        [(1.0, "send", FORWARD_FRAME), (2.0, "send", FRAME[:5])], ("close", 11.0), 0),
    "a client that does not read its answers is aborted": Case(
        [(1.0, "send", FRAME), (1.0, "stall", b"")], ("abort", 11.0), 1),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_connection_bounds(case: str) -> None:
    script = CASES[case]
    harness = Harness()
    connection, transport = harness.connect()
    for when, action, data in script.steps:
        harness.clock.advance(when)
        if transport.ended is not None:
            break
        if action == "send" and transport.reading:
            connection.data_received(data)
        elif action == "reply":
            harness.later.pop(0)(b"\xff\xff\x81\x80" + FORWARD[4:])
        elif action == "stall":
            transport.buffered = 65536
            connection.pause_writing()
    harness.clock.advance(60.0)
    assert transport.ended == script.ended
    assert transport.answers() == script.answers


def test_the_connection_cap_closes_the_oldest() -> None:
    harness = Harness(TCPLimits(max_connections=3))
    opened = [harness.connect()[1] for _ in range(3)]
    assert [t.ended for t in opened] == [None] * 3
    newest = harness.connect()[1]
    assert opened[0].ended == ("close", 0.0)
    assert [t.ended for t in (*opened[1:], newest)] == [None] * 3
    assert len(harness.connections.open) == 3 and harness.connections.evicted == 1


def test_closing_the_server_ends_every_connection() -> None:
    harness = Harness()
    transports = [harness.connect()[1] for _ in range(4)]
    harness.connections.close_all()
    assert all(t.ended is not None for t in transports)
    assert harness.connections.open == {}
