"""UDP and TCP listeners of the cluster DNS.

UDP: every datagram first tries the level-1 answer cache (`wire.Responder.fast`: query[2:] ->
response[2:]), then the negative answers (`wire.Responder.negative`: names that are surely
NXDOMAIN, from a template), and falls back to the full responder (`DNSServer.answer_udp`). On
Linux the socket is read with `mmsg.BatchSocket` (recvmmsg/sendmmsg: one system call each way
per batch of up to 64 datagrams, and no address objects for cache hits). Elsewhere an asyncio
DatagramProtocol does the same per datagram; the stdlib transport reads each datagram into a 256
KiB buffer by default, which costs three extra syscalls per query (performance.md A.2), so its
`max_size` is set to 4096 (uvloop needs no such fix).

TCP (`dns.tcp`): RFC 7766 framing, several (pipelined) queries per connection, answered out of
order when some are forwarded, with CoreDNS's bounds: a deadline per message (bytes trickling in
do not extend it), queries per connection, and connections at once.

Any exception while answering is logged, kept in `DNSServer.errors` (tests assert it stays empty)
and turned into SERVFAIL; the listener never stops on bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from time import perf_counter
from typing import Any, cast

from tinykube.dns import mmsg
from tinykube.dns.drills import STATUS_NAME, Drill, Drills, drilled, status_response
from tinykube.dns.forward import Forwarder, servfail
from tinykube.dns.metrics import DNSMetrics
from tinykube.dns.querylog import Client, QueryLog
from tinykube.dns.tcp import Connections, TCPConnection, TCPLimits, Timers
from tinykube.dns.wire import TCP_MAX, UDP_MAX, UDP_PLAIN, Query, Responder, parse_query

log = logging.getLogger(__name__)
query_log = logging.getLogger("tinykube.dns.queries")
UDP, TCP = 0, 1
BATCHES_PER_WAKEUP = 8  # then yield the loop to TCP, the API watches and the timers


class DNSServer:
    """Answers DNS over UDP and TCP on one address from a Responder."""

    def __init__(self, responder: Responder, *, forwarder: Forwarder | None = None,
                 metrics: DNSMetrics | None = None, log_queries: bool = False,
                 tcp: TCPLimits | None = None, timers: Timers | None = None,
                 batch: bool | None = None) -> None:
        self.responder, self.forwarder = responder, forwarder
        self.metrics = metrics or DNSMetrics()
        self.log_queries = log_queries
        self.tcp_limits, self.timers = tcp or TCPLimits(), timers
        self.tcp_connections = Connections(self.tcp_limits.max_connections)
        self.batch = mmsg.available() if batch is None else batch
        self.errors: list[BaseException] = []
        self.address: tuple[str, int] = ("", 0)
        # The level-1 cache is cleared in place, never replaced. With a query log every query
        # must take the logged path, so the UDP readers then look in a dict that stays empty.
        self.fast: dict[bytes, bytes] = {} if log_queries else responder.fast
        self._fast = self.fast  # while drills run, `fast` is an empty dict (dns.drills)
        self.drills = Drills()
        self.querylog: QueryLog | None = None  # dns.querylog: None (off) costs the path nothing
        self._note: str | None = None  # the drill that answered the query being answered
        self._udp_protocol: _UDPProtocol | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_sock: socket.socket | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, *, reuse_port: bool = False
                    ) -> tuple[str, int]:
        """Bind UDP and TCP on the same port (port 0: a free one); returns (host, port).
        `reuse_port`: with SO_REUSEPORT, so that other processes (DNS workers, `dns.workers`)
        bind the same address and the kernel spreads queries over them."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(20):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
            bound = sock.getsockname()[1]
            try:
                self._tcp = await loop.create_server(self._tcp_connection, host, bound,
                                                     reuse_port=reuse_port or None)
            except OSError:
                sock.close()
                if port:
                    raise
                continue
            await self._serve_udp(loop, sock)
            self.address = (host, bound)
            return self.address
        raise OSError(f"no port free for both UDP and TCP on {host}")

    def _tcp_connection(self) -> TCPConnection:
        def answer(packet: bytes, reply: Any) -> bytes | None:
            if self.querylog is None:
                return self.answer(packet, TCP, reply)
            transport = connection.transport
            peer = transport.get_extra_info("peername") if transport is not None else None
            return self._logged(packet, TCP, reply, peer)

        connection = TCPConnection(answer, lambda response, took: self.metrics.stats.observe(
                                       TCP, response, took),
                                   limits=self.tcp_limits, connections=self.tcp_connections,
                                   timers=self.timers)
        return connection

    async def serve_sockets(self, udp: socket.socket, tcp: socket.socket) -> tuple[str, int]:
        """Serve on sockets bound elsewhere (in another network namespace, say): a bound UDP
        socket and a listening TCP socket on the same address; returns that address."""
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(self._tcp_connection, sock=tcp)
        await self._serve_udp(loop, udp)
        host, port = udp.getsockname()[:2]
        self.address = (host, port)
        return self.address

    async def _serve_udp(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        if self.batch:
            self._udp_sock = sock
            reader = mmsg.BatchSocket(sock)
            loop.add_reader(sock.fileno(), self._udp_readable, reader)
        else:
            self._udp, self._udp_protocol = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), sock=sock)

    def _udp_readable(self, reader: mmsg.BatchSocket) -> None:
        counts = self.metrics.stats.fast_by_rcode
        querylog = self.querylog
        # Negative answers without the full responder only where level 1 is in use (no drill,
        # no per-query log): they are counted like its hits.
        negative = self.responder.negative if self.fast is self.responder.fast else None
        try:
            for _ in range(BATCHES_PER_WAKEUP):
                if querylog is not None:
                    if reader.serve_logged(self.fast, counts, self._answer_batched,
                                           querylog.add_batch) < mmsg.BATCH:
                        return
                elif reader.serve(self.fast, counts, self._answer_batched,
                                  negative) < mmsg.BATCH:
                    return
        except Exception as error:  # a bug: log it, keep reading
            log.exception("error reading DNS queries")
            self.errors.append(error)

    def _answer_batched(self, data: bytes, addr: tuple[str, int]) -> None:
        sock = self._udp_sock
        assert sock is not None

        def sendto(response: bytes) -> None:
            with contextlib.suppress(OSError):  # a full socket buffer drops it, as UDP does
                sock.sendto(response, addr)

        self.answer_udp(data, sendto, addr)

    def answer_udp(self, data: bytes, sendto: Any, client: Client = None) -> None:
        """Answer one UDP query that missed the level-1 cache, timed; `sendto(bytes)` sends."""
        started = perf_counter()
        if self.querylog is None:
            response = self.answer(data, UDP, sendto)
        else:
            response = self._logged(data, UDP, sendto, client)
        if response is None:  # dropped or forwarded: counted by `answer`
            return
        sendto(response)
        self.metrics.stats.observe(UDP, response, perf_counter() - started)

    def _logged(self, packet: bytes, proto: int, reply: Any, client: Client) -> bytes | None:
        """`answer`, and the query in the log (forwarded ones once their answer is in)."""
        started = perf_counter()
        self._note = None
        response = self.answer(packet, proto, reply, client)
        querylog = self.querylog
        if querylog is not None and (response is not None or self._note is not None):
            querylog.add(client, packet, response, perf_counter() - started, proto,
                         "drill" if self._note else None, self._note)
        return response

    def set_query_log(self, querylog: QueryLog | None) -> None:
        """Turn the query log on (a shared QueryLog) or off (None)."""
        self.querylog = querylog
        if self._udp_protocol is not None:  # per-datagram path: every query takes `_logged`
            self._use_fast(self.fast)

    async def close(self) -> None:
        if self._udp_sock is not None:
            with contextlib.suppress(RuntimeError):  # the loop may be closing already
                asyncio.get_running_loop().remove_reader(self._udp_sock.fileno())
            self._udp_sock.close()
            self._udp_sock = None
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            self.tcp_connections.close_all()
            await self._tcp.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def inject(self, name: str, *, for_seconds: float, **behaviour: Any) -> Drill:
        """Start a fault drill (`dns.drills`); the level-1 cache is bypassed while any runs."""
        drill = self.drills.inject(name, for_seconds=for_seconds, **behaviour)
        self._use_fast({})
        if self.querylog is not None:
            self.querylog.event(f"drill {drill.id or '-'} began: {_behaviour(drill)} for "
                                f"{drill.name} ({for_seconds:g}s)")
        return drill

    def _use_fast(self, fast: dict[bytes, bytes]) -> None:
        self.fast = fast
        if self._udp_protocol is not None:
            self._udp_protocol.fast = {} if self.querylog is not None else fast

    def answer(self, packet: bytes, proto: int, reply: Any, client: Client = None
               ) -> bytes | None:
        """Answer one query (not from the level-1 cache); `reply(bytes)` gets forwarded answers."""
        if self.drills.active:  # almost always empty: one list truth test
            return self._drilled(packet, proto, reply, client)
        return self._answer(packet, proto, reply, client)

    def _drilled(self, packet: bytes, proto: int, reply: Any, client: Client) -> bytes | None:
        try:
            query = parse_query(packet)
        except Exception:
            return self._answer(packet, proto, reply, client)
        if tuple(label.lower() for label in query.labels) == STATUS_NAME:
            return status_response(packet, self.drills)
        drill = self.drills.pick(query)
        if not self.drills:
            self._use_fast(self._fast)  # the last drill ended
        if drill is None:
            return self._answer(packet, proto, reply, client)
        self._note = f"drill {drill.id or drill.name}: {_behaviour(drill)}"
        result, wait = drilled(drill, packet, query, proto == TCP,
                               lambda: self.responder.respond(packet, proto == TCP))
        if isinstance(result, Query):
            self._forward(packet, result, proto, reply, client)
            return None
        if result is None:
            self.metrics.stats.requests[proto] += 1
            return None
        if self.log_queries:
            query_log.info("%s drill=%s", ".".join(query.labels) + ".", drill.name)
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, reply, result)
            return None
        return result

    def _answer(self, packet: bytes, proto: int, reply: Any, client: Client = None
                ) -> bytes | None:
        try:
            result = self.responder.respond(packet, proto == TCP)
        except Exception as error:  # a bug: never let it take the listener down
            log.exception("error answering a DNS query")
            self.errors.append(error)
            try:
                return servfail(packet, parse_query(packet))
            except Exception:
                return None
        if isinstance(result, Query):
            self._forward(packet, result, proto, reply, client)  # counted when it is sent
            return None
        if result is None:  # dropped: still a request received
            self.metrics.stats.requests[proto] += 1
        if self.log_queries and result is not None:
            self._log(packet, result)
        return result

    def _forward(self, packet: bytes, query: Query, proto: int, reply: Any,
                 client: Client = None) -> None:
        async def run(started: float) -> None:
            if self.forwarder is None:
                response = servfail(packet, query)
            else:
                limit = TCP_MAX if proto == TCP else (
                    UDP_PLAIN if query.edns is None else min(query.edns[0], UDP_MAX))
                response = await self.forwarder.resolve(packet, query, limit)
            reply(response)
            took = perf_counter() - started
            self.metrics.stats.observe(proto, response, took)
            if self.querylog is not None:
                self.querylog.add(client, packet, response, took, proto, "upstream")
            if self.log_queries:
                self._log(packet, response)

        task = asyncio.get_running_loop().create_task(run(perf_counter()))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]
            log.error("forwarding failed", exc_info=task.exception())

    def _log(self, packet: bytes, response: bytes) -> None:
        try:
            query = parse_query(packet)
        except Exception:
            return
        entry = self.responder.entries.get(query.key)
        source = entry.source if entry is not None else "upstream"
        query_log.info("%s type=%d rcode=%d source=%s", ".".join(query.labels) + ".",
                       query.qtype, response[3] & 0x0F, source or "-")


def _behaviour(drill: Drill) -> str:
    if drill.rcode is not None:
        return f"rcode={drill.rcode}"
    if drill.delay:
        return f"delay={drill.delay:g}s"
    return next(b for b in ("drop", "truncate", "stale", "restart") if getattr(drill, b))


class _UDPProtocol(asyncio.DatagramProtocol):
    """The per-datagram UDP path where batched I/O is unavailable: a level-1 hit is one dict
    lookup, one concatenation, one `sendto` and one counter."""

    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.fast = server.fast
        self.fast_by_rcode = server.metrics.stats.fast_by_rcode
        self.transport: asyncio.DatagramTransport | None = None
        self.sendto: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.sendto = self.transport.sendto
        if hasattr(transport, "max_size"):
            transport.max_size = 4096  # stdlib asyncio: avoid a 256 KiB buffer per datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        key = data[2:]
        cached = self.fast.get(key)
        if cached is None and self.fast is self.server.responder.fast:
            cached = self.server.responder.negative(key)
        if cached is not None:
            self.sendto(data[:2] + cached, addr)
            self.fast_by_rcode[cached[1] & 0x0F] += 1  # the rcode is in the low flags byte
            return
        sendto = self.sendto
        self.server.answer_udp(data, lambda response: sendto(response, addr), addr)
