"""Hand-rolled DNS wire codec and the two-level answer cache (the hot path).

Answers are computed once per (lower-cased name, type, class) by `handler.Resolver` and encoded
into an `Entry`: the response without ID, flags and question. Owner names point (compression) at
the question, so a response built from an entry echoes the query's own spelling of the name for
free; only the ID, the RD bit, the EDNS OPT record and truncation vary per query.

  * Level 1 (UDP only): `query[2:]` -> complete response without the ID. A hit costs one dict
    lookup and one concatenation. Any model change clears it; it refills from level 2.
  * Level 2: lowered question -> `Entry`, dropped precisely through the dependency keys the
    resolver reported (`zone.py`). Negative answers keep the SOA serial's offset so the current
    serial is spliced in when the response is assembled.

Malformed queries get FORMERR, opcodes other than QUERY get NOTIMP and EDNS versions other than 0
get BADVERS, all decided here; dnspython is never used on this path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from tinykube.dns.handler import Resolver
from tinykube.dns.records import (
    AXFR,
    FORMERR,
    IXFR,
    NOTIMP,
    NXDOMAIN,
    OPT,
    SOA,
    TXT,
    Answer,
    Name,
    Soa,
    Srv,
)
from tinykube.dns.zone import DepKey

HEADER = struct.Struct("!HHHHH")  # flags and the four counts (the ID is copied as bytes)
RR_FIXED = struct.Struct("!HHIH")
SRV_FIXED = struct.Struct("!HHH")
SOA_TIMERS = struct.Struct("!IIIII")
UDP_PLAIN = 512
UDP_MAX = 4096  # the largest EDNS buffer we honour (and advertise)
TCP_MAX = 65535
CACHE_LIMIT = 65536
NEGATIVE_LIMIT = 16384  # negative answers kept (`Responder.negative`)
BADVERS = 16
# qtypes `Responder.negative` leaves to `respond` (SOA's NODATA quirk, zone transfers)
SKIP = {struct.pack("!H", qtype) for qtype in (SOA, AXFR, IXFR)}
PLAIN_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00"  # QDCOUNT 1, no answer or authority, ARCOUNT < 256
OPT_START = b"\x00\x00\x29"  # the root name and type OPT
# A question under these labels would compress the SOA's names against itself: `respond` them.
NEAR_SOA = (b"dns", b"hostmaster")
SVC_POD = (b"svc", b"pod")


class Malformed(Exception):
    """The packet is not a well-formed query (answered with FORMERR)."""


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: what the responder needs, with offsets into the original bytes."""

    flags: int
    qend: int  # offset just past the question (name, type, class)
    key: bytes  # the question bytes lower-cased: the level-2 cache key
    labels: Name
    qtype: int
    qclass: int
    edns: tuple[int, int, int] | None  # (udp size, DO flag, version) when an OPT is present


@dataclass(slots=True)
class Entry:
    flags: int  # QR, AA, RA and rcode; RD is copied from each query
    counts: tuple[int, int, int]  # answer, authority, additional
    body: bytes
    serial_at: int  # offset of the SOA serial in body, or -1
    rcode: int
    source: str


def _name_end(packet: bytes, offset: int) -> int:
    """Offset just past a (possibly compressed) name; raises Malformed."""
    while True:
        if offset >= len(packet):
            raise Malformed("name runs past the end")
        length = packet[offset]
        if length >= 0xC0:
            return offset + 2
        if length > 63:
            raise Malformed("bad label type")
        if length == 0:
            return offset + 1
        offset += length + 1


def parse_query(packet: bytes) -> Query:
    """Parse and validate a query; raises Malformed. The header is at least 12 bytes."""
    flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(packet, 2)
    if qdcount != 1 or ancount or nscount:
        raise Malformed("expected exactly one question")
    labels: list[str] = []
    offset = 12
    while True:
        length = packet[offset] if offset < len(packet) else -1
        if length == 0:
            break
        if not 0 < length < 64 or offset + length >= len(packet):
            raise Malformed("bad question name")
        labels.append(packet[offset + 1: offset + 1 + length].decode("latin-1").lower())
        offset += length + 1
    if offset > 12 + 254 or offset + 5 > len(packet):
        raise Malformed("question too long or short")
    qtype, qclass = struct.unpack_from("!HH", packet, offset + 1)
    qend = offset + 5
    edns = _parse_additional(packet, qend, arcount)
    key = packet[12:qend].lower()
    return Query(flags, qend, key, tuple(labels), qtype, qclass, edns)


def _parse_additional(packet: bytes, offset: int, count: int) -> tuple[int, int, int] | None:
    edns = None
    for _ in range(count):
        start = offset
        offset = _name_end(packet, offset)
        if offset + 10 > len(packet):
            raise Malformed("truncated record")
        rtype, rclass, ttl, rdlength = RR_FIXED.unpack_from(packet, offset)
        offset += 10 + rdlength
        if rtype == OPT:
            if edns is not None or packet[start] != 0:
                raise Malformed("bad OPT record")
            edns = (max(rclass, UDP_PLAIN), ttl & 0x8000, (ttl >> 16) & 0xFF)
    if offset != len(packet):
        raise Malformed("trailing bytes")
    return edns


class _Encoder:
    """Writes records after the question, compressing against the question and earlier names."""

    def __init__(self, qname: Name) -> None:
        self.table: dict[Name, int] = {}
        offset = 12
        for index, label in enumerate(qname):
            self.table.setdefault(qname[index:], offset)
            offset += len(label) + 1
        self.base = offset + 5  # root label, type, class
        self.buf = bytearray()
        self.serial_at = -1

    def name(self, labels: Name, compress: bool = True) -> None:
        for index, label in enumerate(labels):
            pointer = self.table.get(labels[index:]) if compress else None
            if pointer is not None:
                self.buf += struct.pack("!H", 0xC000 | pointer)
                return
            here = self.base + len(self.buf)
            if here < 0x4000:
                self.table.setdefault(labels[index:], here)
            raw = label.encode("latin-1", "replace")
            if not 0 < len(raw) < 64:
                raise ValueError(f"bad label {label!r}")
            self.buf += bytes((len(raw),)) + raw
        self.buf += b"\x00"

    def record(self, owner: Name, rtype: int, ttl: int, data: object) -> None:
        self.name(owner)
        start = len(self.buf)
        self.buf += RR_FIXED.pack(rtype, 1, ttl, 0)
        if isinstance(data, bytes):
            self.buf += bytes((len(data),)) + data if rtype == TXT else data
        elif isinstance(data, Srv):
            self.buf += SRV_FIXED.pack(data.priority, data.weight, data.port)
            self.name(data.target, compress=False)
        elif isinstance(data, Soa):
            self.name(data.mname)
            self.name(data.rname)
            self.serial_at = len(self.buf)
            self.buf += SOA_TIMERS.pack(0, data.refresh, data.retry, data.expire, data.minimum)
        else:
            assert isinstance(data, tuple)
            self.name(data)
        struct.pack_into("!H", self.buf, start + 8, len(self.buf) - start - 10)


def encode(answer: Answer, qname: Name, recursion: bool) -> Entry:
    """Encode an answer for a question name into a cache entry."""
    encoder = _Encoder(qname)
    for rr in (*answer.answer, *answer.authority, *answer.additional):
        encoder.record(*rr)
    flags = 0x8000 | (0x0400 if answer.authoritative else 0) | (0x80 if recursion else 0)
    counts = (len(answer.answer), len(answer.authority), len(answer.additional))
    return Entry(flags | answer.rcode, counts, bytes(encoder.buf), encoder.serial_at,
                 answer.rcode, answer.source)


def opt_record(do_flag: int, ext_rcode: int = 0) -> bytes:
    return b"\x00" + RR_FIXED.pack(OPT, UDP_MAX, (ext_rcode << 24) | do_flag, 0)


OPT_PLAIN, OPT_DO = opt_record(0), opt_record(0x8000)


def header_only(packet: bytes, rcode: int) -> bytes:
    """A response with no question: FORMERR/NOTIMP for queries we cannot (or won't) parse."""
    flags = 0x8000 | (packet[2] << 8 & 0x7900) | rcode  # keep opcode and RD
    return packet[:2] + HEADER.pack(flags, 0, 0, 0, 0)


def assemble(packet: bytes, query: Query, entry: Entry, serial: int, limit: int) -> bytes:
    """The response to `packet` from a cache entry, truncated (TC) when over `limit` bytes."""
    flags = entry.flags | (query.flags & 0x0110)  # RD and CD come from the query
    opt = b"" if query.edns is None else opt_record(query.edns[1])
    an, ns, ar = entry.counts
    body = entry.body
    if entry.serial_at >= 0:
        at = entry.serial_at
        body = body[:at] + struct.pack("!I", serial & 0xFFFFFFFF) + body[at + 4:]
    question = packet[12:query.qend]
    size = 12 + len(question) + len(body) + len(opt)
    if size > limit:
        return packet[:2] + HEADER.pack(flags | 0x0200, 1, 0, 0, len(opt) // 11) + question + opt
    return b"".join((packet[:2], HEADER.pack(flags, 1, an, ns, ar + len(opt) // 11), question,
                     body, opt))


def badvers(packet: bytes, query: Query) -> bytes:
    flags = 0x8000 | (query.flags & 0x0100)
    return (packet[:2] + HEADER.pack(flags, 1, 0, 0, 1) + packet[12:query.qend]
            + opt_record(0, BADVERS >> 4))


class Responder:
    """Answers raw query packets from the caches, filling them through the resolver."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.recursion = resolver.config.upstream
        self.fast: dict[bytes, bytes] = {}  # level 1: query[2:] -> response[2:] (UDP)
        self.entries: dict[bytes, Entry] = {}  # level 2: lowered question -> entry
        self.deps: dict[DepKey, set[bytes]] = {}
        self.hits = self.misses = 0
        # Called with every answer built (cache misses only): propagation traces watch it.
        self.on_built: Callable[[Answer, Name], None] | None = None
        self.model = resolver.model
        zone = resolver.zone
        self.zone_wire = b"".join(bytes((len(label),)) + label.encode("latin-1")
                                  for label in zone) + b"\x00"
        # Negative answers (`negative`): the response after the question per offset of the
        # zone in the query (the SOA's owner points there), with the current serial.
        self._soa_after: dict[int, bytes] = {}
        self._nx_heads = self._negative_headers()
        self._negatives: dict[bytes, bytes] = {}  # negative answers by query[2:], bounded
        # Names (lower-cased wire form, zone included) that are NXDOMAIN with all below them.
        self._absent_parents: set[bytes] = set()
        # `negative(query[2:])`: an NXDOMAIN answer without the full responder, or None.
        self.negative = self._negative_reader()
        resolver.model.add_listener(self.invalidate)

    def invalidate(self, keys: set[DepKey]) -> None:
        """Drop every cached answer that read one of `keys` (all of them at first sync)."""
        self.fast.clear()
        self._negatives.clear()
        self._absent_parents.clear()
        self._soa_after.clear()  # the serial changed
        if ("synced",) in keys:
            self.entries.clear()
            self.deps.clear()
            return
        for key in keys:
            for question in self.deps.pop(key, ()):
                self.entries.pop(question, None)

    def lookup(self, query: Query) -> Entry | Answer:
        """The cached entry for a query, building it on a miss; an Answer if it must forward."""
        entry = self.entries.get(query.key)
        if entry is not None:
            self.hits += 1
            return entry
        self.misses += 1
        answer = self.resolver.resolve(query.labels, query.qtype, query.qclass)
        if self.on_built is not None:
            self.on_built(answer, query.labels)
        if answer.forward:
            return answer
        entry = encode(answer, query.labels, self.recursion)
        if answer.cacheable:
            if len(self.entries) >= CACHE_LIMIT:
                self.entries.clear()
                self.deps.clear()
            self.entries[query.key] = entry
            for dep in answer.deps:
                self.deps.setdefault(dep, set()).add(query.key)
        return entry

    def _negative_headers(self) -> list[bytes]:
        """Flags and counts of an NXDOMAIN answer, indexed by the query's RD bit (1), CD bit
        (0x10) and OPT record (2)."""
        heads = []
        for index in range(32):
            flags = 0x8000 | 0x0400 | (0x80 if self.recursion else 0) | NXDOMAIN
            flags |= (0x0100 if index & 1 else 0) | (0x0010 if index & 0x10 else 0)
            heads.append(HEADER.pack(flags, 1, 0, 1, 1 if index & 2 else 0))
        return heads

    def _negative_reader(self) -> Callable[[bytes], bytes | None]:
        """The level-1 form (`query[2:]` -> `response[2:]`) of an NXDOMAIN answer for a UDP
        query without its ID, or None: the caller answers it the usual way.

        Names that are surely NXDOMAIN (`Resolver.absent`: a random label under the zone, a
        missing namespace or Service, a search-path candidate) are each asked once, so caching
        them by name (level 2, dependency sets, the limit that then clears every answer) costs
        more than it saves. Here they are read from the raw bytes and answered with the SOA
        (RFC 2308) from a template per question length, byte for byte what `respond` sends.
        A dict of their own keeps them (a name asked again costs one more lookup), at most
        `NEGATIVE_LIMIT` of them and cleared whole, so a storm of new names never pushes the
        positive answers out of level 1 (nor costs a deletion per name).
        A search-path candidate is a new label over a name that is itself NXDOMAIN
        (`h1.example.com.default.svc.<zone>` under `example.com.default.svc.<zone>`): below a
        name that is NXDOMAIN every name is (RFC 8020; `absent` holds to it outside the names
        `NEAR_SOA` leaves out), so such parents are kept (`_absent_parents`, bounded, cleared
        with the model) and a query whose first label sits on one skips the walk.
        Only plain queries come here: opcode QUERY, one question, class IN, no OPT or an OPT of
        version 0 without options; anything else goes to `respond` (FORMERR, BADVERS, ...).
        `negative` is this closure, bound once (over what it reads): it runs once per query."""
        known, soa_after, heads = self._negatives, self._soa_after, self._nx_heads
        parents = self._absent_parents
        model, absent, build = self.model, self.resolver.absent, self._build_soa_after
        zone = self.zone_wire
        zone_size = len(zone)

        def negative(key: bytes) -> bytes | None:
            found = known.get(key)
            if found is not None:
                return found
            size = len(key)
            if size < 16 or key[0] & 0xF8 or key[2:9] != PLAIN_COUNTS or not model.synced:
                return None
            if key[9]:  # ARCOUNT 1: an OPT record of 11 bytes must end the packet
                qend = size - 11
                if key[9] != 1 or key[qend:qend + 3] != OPT_START or key[size - 2:] != b"\0\0" \
                        or key[qend + 6]:
                    return None  # not an OPT without options, or not EDNS version 0
            else:
                qend = size
            zone_at = qend - 4 - zone_size
            if key[qend - 2: qend] != b"\0\1" or key[qend - 4: qend - 2] in SKIP \
                    or not 10 < zone_at < 10 + 255 - zone_size:
                return None  # not class IN; SOA, AXFR or IXFR; no room for a name
            low = key[10: qend - 4].lower()
            end = zone_at - 10
            if low[end:] != zone:
                return None
            length = low[0]
            if not (0 < length < 64 and low[length + 1:] in parents):
                rest = []
                offset = 0
                while offset < end:
                    length = low[offset]
                    if not 0 < length < 64:
                        return None
                    offset += length + 1
                    rest.append(low[offset - length: offset])
                if offset != end or rest[-1] in NEAR_SOA or not absent(rest):
                    return None
                # is the parent NXDOMAIN too? (not worth asking of <x>.svc or <x>.pod)
                deep = len(rest) > 2 or (len(rest) == 2 and rest[1] not in SVC_POD)
                if deep and absent(rest[1:]):
                    if len(parents) >= NEGATIVE_LIMIT:
                        parents.clear()
                    parents.add(low[low[0] + 1:])
            after = soa_after.get(zone_at)
            if after is None:
                after = soa_after[zone_at] = build(zone_at)
            index = (key[0] & 1) | (key[1] & 0x10)
            if qend == size:
                response = heads[index] + key[10:qend] + after
            else:
                response = (heads[index | 2] + key[10:qend] + after
                            + (OPT_DO if key[qend + 7] & 0x80 else OPT_PLAIN))
            if len(known) >= NEGATIVE_LIMIT:
                known.clear()
            known[key] = response
            return response

        return negative

    def _build_soa_after(self, zone_at: int) -> bytes:
        """What follows the question in an NXDOMAIN answer whose zone starts at `zone_at` of
        the query without its ID: the SOA record as `encode` writes it, serial spliced in."""
        apex = self.resolver.zone
        padding = zone_at - 10  # labels before the zone: only their total length matters
        qname: Name = (*("x",) * (padding // 2 - padding % 2), *("xx",) * (padding % 2), *apex)
        answer = Answer(NXDOMAIN, authority=[self.resolver.soa(apex)])
        entry = encode(answer, qname, self.recursion)
        body, at = entry.body, entry.serial_at
        return body[:at] + struct.pack("!I", self.model.serial & 0xFFFFFFFF) + body[at + 4:]

    def respond(self, packet: bytes, tcp: bool) -> bytes | Query | None:
        """The response bytes; the parsed Query if it must be forwarded; None to drop it."""
        if len(packet) < 12 or packet[2] & 0x80:
            return None  # too short for a header, or a response: never answer those
        if packet[2] & 0x78:
            return header_only(packet, NOTIMP)
        try:
            query = parse_query(packet)
        except (Malformed, struct.error):
            return header_only(packet, FORMERR)
        if query.edns is not None and query.edns[2] != 0:
            return badvers(packet, query)
        found = self.lookup(query)
        if isinstance(found, Answer):
            return query
        limit = TCP_MAX if tcp else UDP_PLAIN if query.edns is None else min(query.edns[0], UDP_MAX)
        response = assemble(packet, query, found, self.resolver.model.serial, limit)
        if not tcp and query.key in self.entries:
            if len(self.fast) >= CACHE_LIMIT:
                self.fast.clear()
            self.fast[packet[2:]] = response[2:]
        return response

