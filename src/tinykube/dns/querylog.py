"""The DNS query log: recent queries in a bounded ring, decoded only when someone reads them.

CoreDNS's `log` plugin prints a line per query; this log keeps the raw bytes instead and joins
them to the cluster when read: the client's pod (by source address), the name, type, rcode,
answers, the object that produced the answer (`Answer.source`: "service default/nginx", "pod
10.244.1.3 in default", ...), the latency, and the drill that answered it, if one did.

Cost model. The log is off by default and then costs nothing: the server holds `None` and the
UDP reader picks the plain batch loop once per wakeup. When on, the batch loop (`mmsg.serve_logged`)
appends, per answered datagram, one tuple of bytes already at hand (the sockaddr buffer, the
query, the cached response) to a `collections.deque` with `maxlen`; nothing is parsed, formatted
or allocated per query beyond that. Level-1 cache hits answered in one batch share one timestamp
and one latency (the batch's receive-to-send time). Decoding (`decode`) happens on read.

Sampling: `sample=N` keeps one query in N (events, such as drills starting, are always kept).
Control: the ConfigMap `kube-system/tinykube-dns-querylog` (`LogSync`), beside the drills'
ConfigMap: `enabled: "true"`, `size` (records kept, default 10000), `sample` (default 1).
Deleting it or `enabled: "false"` turns the log off and drops what it held.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

CONFIGMAP, NAMESPACE = "tinykube-dns-querylog", "kube-system"
DEFAULT_SIZE, MAX_SIZE = 10000, 1_000_000
PROTOS = ("udp", "tcp", "udp")  # 2: a batch's cache hit, stored without the ID (see decode)
BATCHED = 2
Client = tuple[str, int] | bytes | None  # an address, a raw sockaddr (batch path), unknown
# (wall time, client, query, response or None, latency s, proto, source or None, note or None)
Record = tuple[float, Client, bytes | None, bytes | None, float, int, str | None, str | None]
Owner = Callable[[str], str | None]  # pod IP -> "namespace/name"
Sources = Callable[[bytes], str | None]  # lowered question -> source of the cached answer


@dataclass(frozen=True)
class LogSettings:
    size: int = DEFAULT_SIZE
    sample: int = 1


class QueryLog:
    """The ring of recent queries of one cluster DNS (shared by its listeners)."""

    def __init__(self, settings: LogSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings = settings or LogSettings()
        self.clock = clock
        self.ring: deque[Record] = deque(maxlen=settings.size)
        self.appended = 0  # records ever kept: the sequence number of the newest
        self._seen = 0  # queries offered, for sampling

    def __repr__(self) -> str:
        return f"QueryLog({len(self.ring)}/{self.settings.size}, sample={self.settings.sample})"

    def _keep(self) -> bool:
        self._seen += 1
        return self.settings.sample <= 1 or self._seen % self.settings.sample == 0

    def add(self, client: Client, query: bytes, response: bytes | None, latency: float,
            proto: int = 0, source: str | None = None, note: str | None = None) -> None:
        """One query answered outside the batch loop (cache miss, TCP, forwarded, drilled)."""
        if self._keep():
            self.ring.append((self.clock(), client, query, response, latency, proto, source,
                              note))
            self.appended += 1

    def add_batch(self, names: list[bytes], keys: list[bytes], cached: list[bytes],
                  latency: float) -> None:
        """Level-1 hits of one batch: raw sockaddrs, queries and cached responses, both
        without their ID (the level-1 cache's key and value), in three parallel lists."""
        now, sample = self.clock(), self.settings.sample
        if sample > 1:
            start = (sample - self._seen % sample - 1) % sample
            self._seen += len(names)
            names, keys, cached = names[start::sample], keys[start::sample], cached[start::sample]
        count = len(names)
        self.ring.extend(zip(repeat(now, count), names, keys, cached, repeat(latency, count),
                             repeat(BATCHED, count), repeat(None, count), repeat(None, count),
                             strict=False))
        self.appended += count

    def event(self, text: str) -> None:
        """Something that is not a query but explains the ones around it (a drill began)."""
        self.ring.append((self.clock(), None, None, None, 0.0, 0, None, text))
        self.appended += 1

    def since(self, seq: int) -> Iterator[tuple[int, Record]]:
        """(sequence number, record) of the records newer than `seq`, oldest first."""
        first = self.appended - len(self.ring) + 1
        skip = max(0, seq - first + 1)
        return zip(itertools.count(first + skip),
                   itertools.islice(self.ring, skip, None), strict=False)


def client_address(client: Client) -> str:
    """The client's IP: from an address tuple or a raw sockaddr_in/sockaddr_in6 buffer."""
    if client is None:
        return ""
    if isinstance(client, tuple):
        return client[0]
    family = int.from_bytes(client[0:2], "little")
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, client[8:24])
    return socket.inet_ntop(socket.AF_INET, client[4:8])


def _answers(response: bytes) -> list[str]:
    import dns.message

    try:
        message = dns.message.from_wire(response, ignore_trailing=True)
    except Exception:
        return []
    return [f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
            for rrset in message.answer for rdata in rrset]


def decode(seq: int, record: Record, owner: Owner, sources: Sources) -> dict[str, Any]:
    """One record as the reader sees it (JSON-ready)."""
    import dns.rcode
    import dns.rdatatype

    from tinykube.dns.wire import parse_query

    wall, client, packet, response, latency, proto, source, note = record
    entry: dict[str, Any] = {"seq": seq, "time": wall, "note": note or ""}
    if packet is None:
        return {**entry, "event": True}
    if proto == BATCHED and response is not None:  # stored without the ID: put one back
        packet, response = b"\0\0" + packet, b"\0\0" + response
    ip = client_address(client)
    entry.update(client=ip, pod=owner(ip) or "" if ip else "", proto=PROTOS[proto],
                 latencyMs=round(latency * 1000, 3))
    try:
        query = parse_query(packet)
    except Exception:
        return {**entry, "name": "", "type": "", "rcode": "FORMERR", "answers": [],
                "source": ""}
    rcode = "-" if response is None else dns.rcode.to_text(dns.rcode.Rcode(response[3] & 0x0F))
    if source is None:
        source = sources(query.key) or ""
    qtype = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(query.qtype))
    return {**entry, "name": ".".join(query.labels) + ".", "type": qtype, "rcode": rcode,
            "answers": _answers(response) if response else [], "source": source}


def matches(entry: dict[str, Any], *, pod: str = "", name: str = "", rcode: str = "") -> bool:
    """The `tinykube dns log --pod/--name/--rcode` filter (a pod as NAME or NAMESPACE/NAME;
    a name matches with or without the trailing dot, or as a suffix after a dot)."""
    if entry.get("event"):
        return not (pod or name or rcode)
    if pod and entry["pod"] != pod and entry["pod"].split("/")[-1] != pod:
        return False
    if name:
        want, got = name.lower().rstrip("."), entry["name"].rstrip(".")
        if got != want and not got.endswith("." + want):
            return False
    return not rcode or entry["rcode"] == rcode.upper()


def settings_of(configmap: dict[str, Any]) -> LogSettings | None:
    """The log the ConfigMap asks for; None for off. Raises ValueError on bad values."""
    data = configmap.get("data") or {}
    if str(data.get("enabled", "false")).lower() not in ("true", "1", "yes"):
        return None
    size, sample = int(data.get("size", DEFAULT_SIZE)), int(data.get("sample", 1))
    if not 1 <= size <= MAX_SIZE or sample < 1:
        raise ValueError(f"size must be 1..{MAX_SIZE} and sample >= 1")
    return LogSettings(size, sample)


class LogSync:
    """Turns the log of `servers` on and off from the ConfigMap (`dns.controller` feeds it)."""

    def __init__(self, servers: Callable[[], Iterable[Any]]) -> None:
        self.servers = servers
        self.current: LogSettings | None = None

    def apply(self, configmap: dict[str, Any]) -> bool:
        meta = configmap.get("metadata") or {}
        if meta.get("name") != CONFIGMAP or meta.get("namespace") != NAMESPACE:
            return False
        try:
            wanted = settings_of(configmap)
        except (TypeError, ValueError) as error:
            import logging

            logging.getLogger(__name__).warning("ignoring the DNS query log settings: %s",
                                                error)
            return False
        return self._set(wanted)

    def delete(self, configmap: dict[str, Any]) -> bool:
        if (configmap.get("metadata") or {}).get("name") != CONFIGMAP:
            return False
        return self._set(None)

    def _set(self, wanted: LogSettings | None) -> bool:
        if wanted == self.current:
            return False
        self.current = wanted
        shared = QueryLog(wanted) if wanted is not None else None
        for server in self.servers():
            server.set_query_log(shared)
        return True


def configmap(settings: LogSettings | None) -> dict[str, Any]:
    """The ConfigMap that asks for `settings` (None: off)."""
    data = {"enabled": "false"} if settings is None else {
        "enabled": "true", "size": str(settings.size), "sample": str(settings.sample)}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE}, "data": data}


def to_json(entries: Iterable[dict[str, Any]]) -> str:
    return json.dumps(list(entries))
