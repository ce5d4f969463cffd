"""Forwarding of names outside the cluster zone to upstream resolvers, with a small cache.

This is off the hot path, so it uses dnspython: the client's query is sent as is (UDP, retried over
TCP when truncated) to each upstream in turn, and the upstream's response is returned with the
client's ID and spelling of the question. Responses are cached for their smallest TTL, capped at
`MAX_TTL` seconds, per (lower-cased question, EDNS or not). If every upstream fails the client
gets SERVFAIL.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from tinykube import clock as clocks
from tinykube.dns.options import read_resolv_conf as read_resolv_conf  # re-exported
from tinykube.dns.wire import HEADER, Query

log = logging.getLogger(__name__)
MAX_TTL = 30
CACHE_LIMIT = 4096
SERVFAIL = 2


def servfail(packet: bytes, query: Query) -> bytes:
    flags = 0x8080 | (query.flags & 0x0110) | SERVFAIL
    return packet[:2] + HEADER.pack(flags, 1, 0, 0, 0) + packet[12:query.qend]


def truncate(response: bytes, qend: int) -> bytes:
    """Header and question only, with TC set (the client retries over TCP)."""
    flags = int.from_bytes(response[2:4], "big") | 0x0200
    return response[:2] + HEADER.pack(flags, 1, 0, 0, 0) + response[12:qend]


class Forwarder:
    def __init__(self, upstreams: list[tuple[str, int]], *, timeout: float = 2.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.upstreams, self.timeout = upstreams, timeout
        self.clock = clock or clocks.installed().now  # cached answers expire on the test clock
        self.cache: dict[tuple[bytes, bool], tuple[bytes, float]] = {}

    async def resolve(self, packet: bytes, query: Query, limit: int) -> bytes:
        """The response to a query for a name outside the zone, at most `limit` bytes."""
        key = (query.key, query.edns is not None)
        cached = self.cache.get(key)
        if cached is not None and cached[1] > self.clock():
            wire = cached[0]
        else:
            fetched = await self._ask_upstreams(packet)
            if fetched is None:
                return servfail(packet, query)
            wire, ttl = fetched
            if ttl > 0:
                if len(self.cache) >= CACHE_LIMIT:
                    self.cache.clear()
                self.cache[key] = (wire, self.clock() + ttl)
        flags = struct.pack("!H", int.from_bytes(wire[2:4], "big") | 0x0080)  # we recurse
        response = packet[:2] + flags + wire[4:12] + packet[12:query.qend] + wire[query.qend:]
        return response if len(response) <= limit else truncate(response, query.qend)

    async def _ask_upstreams(self, packet: bytes) -> tuple[bytes, int] | None:
        # here, not at start-up: asyncquery imports httpx, httpcore, trio; dnspython itself is
        # ~25 ms of both processes' start (`tinykube up`'s cold start, issue 18)
        import dns.exception
        import dns.message
        from dns import asyncquery

        try:
            request = dns.message.from_wire(packet)
        except dns.exception.DNSException:
            return None
        for host, port in self.upstreams:
            try:
                response, _ = await asyncquery.udp_with_fallback(
                    request, host, timeout=self.timeout, port=port)
            except (dns.exception.DNSException, OSError) as error:
                log.debug("upstream %s:%d failed: %s", host, port, error)
                continue
            rrsets = [*response.answer, *response.authority]
            ttl = min((rrset.ttl for rrset in rrsets), default=0)
            return response.to_wire(max_size=65535), min(ttl, MAX_TTL)
        return None
