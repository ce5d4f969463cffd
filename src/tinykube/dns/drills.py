"""DNS fault drills: answers deliberately wrong for a while, to test how clients cope.

A drill names a query name (`web.default.svc.cluster.local`, or a suffix `*.svc.cluster.local`,
or `*` for every name) and one behaviour, for `for_seconds`:

| behaviour      | what the client sees                                                        |
| -------------- | --------------------------------------------------------------------------- |
| `rcode=2`      | SERVFAIL (or `rcode=3`, NXDOMAIN; any rcode), the question and no answers    |
| `drop`         | nothing: the query times out                                                |
| `delay=S`      | the true answer, S seconds late                                             |
| `truncate`     | over UDP a header with TC set and no answers (the client retries over TCP,   |
|                | which answers normally)                                                     |
| `stale`        | the first answer given after the drill began, whatever changes since (the   |
|                | serve-stale behaviour some caches have; CoreDNS without it answers fresh)   |
| `restart`      | SERVFAIL for every name of the zone, as a restarted CoreDNS answers before    |
|                | its first sync with the API server                                         |

Drills reach a running cluster's DNS through the API: `tinykube dns inject` (and the pytest
plugin's `cluster.dns.inject`) add an entry to the ConfigMap `kube-system/tinykube-dns-drills`
(key: a drill id; value: JSON with the behaviour and `until`, Unix time), which the DNS
controller watches (`DrillSync`). Deleting the ConfigMap ends every drill. While any drill runs,
a TXT query for `drills.tinykube.` (`STATUS_NAME`) answers the ids of the active ones, so a
writer can wait until its drill is in force.

The hot path pays nothing while no drill is active: `DNSServer` consults the table only when
it is non-empty, and while it is non-empty the level-1 answer cache is bypassed (every query
takes the full path that checks drills). `Drills.pick` returns the first live drill for a name
and forgets expired ones, so the table empties itself when the last drill ends.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from tinykube.dns.forward import servfail, truncate
from tinykube.dns.wire import Query

log = logging.getLogger(__name__)
SERVFAIL, NXDOMAIN = 2, 3
CONFIGMAP, NAMESPACE = "tinykube-dns-drills", "kube-system"
STATUS_NAME = ("drills", "tinykube")
BEHAVIOURS = ("rcode", "drop", "delay", "truncate", "stale", "restart")


@dataclasses.dataclass
class Drill:
    name: str  # lower-case, no trailing dot; "*" every name, "*.SUFFIX" names below SUFFIX
    until: float  # clock time the drill ends
    rcode: int | None = None
    drop: bool = False
    delay: float = 0.0
    truncate: bool = False
    stale: bool = False
    restart: bool = False
    id: str = ""
    # stale: (qtype, tcp) -> the first answer given while the drill ran
    remembered: dict[tuple[int, bool], bytes] = dataclasses.field(default_factory=dict)

    def matches(self, qname: str) -> bool:
        if self.name == "*" or self.restart:
            return True
        if self.name.startswith("*."):
            return qname.endswith(self.name[1:])
        return qname == self.name


def with_rcode(packet: bytes, query: Query, rcode: int) -> bytes:
    """An answerless response to `packet` with `rcode`."""
    response = bytearray(servfail(packet, query))
    response[3] = (response[3] & 0xF0) | (rcode & 0x0F)
    return bytes(response)


class Drills:
    """The active drills of one DNS server (usually empty)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.active: list[Drill] = []

    def __bool__(self) -> bool:
        return bool(self.active)

    def inject(self, name: str, *, for_seconds: float, rcode: int | None = None,
               drop: bool = False, delay: float = 0.0, truncate: bool = False,
               stale: bool = False, restart: bool = False, id: str = "") -> Drill:
        behaviours = [rcode is not None, drop, delay > 0, truncate, stale, restart]
        if sum(behaviours) != 1:
            raise ValueError("a drill has exactly one of rcode, drop, delay, truncate, stale, "
                             "restart")
        if for_seconds <= 0:
            raise ValueError("for_seconds must be positive")
        drill = Drill(name.lower().rstrip(".") or "*", self.clock() + for_seconds, rcode,
                      drop, delay, truncate, stale, restart, id=id)
        self.active.append(drill)
        return drill

    def clear(self) -> None:
        self.active.clear()

    def pick(self, query: Query) -> Drill | None:
        """The first live drill for this query's name; expired drills are removed."""
        now = self.clock()
        if any(d.until <= now for d in self.active):
            self.active = [d for d in self.active if d.until > now]
        qname = ".".join(query.labels).lower()
        for drill in self.active:
            if drill.matches(qname):
                return drill
        return None


def drilled(drill: Drill, packet: bytes, query: Query, tcp: bool,
            answer: Callable[[], bytes | Query | None]) -> tuple[bytes | Query | None, float]:
    """(what to answer, seconds to wait first) under `drill`; `answer()` is the true answer."""
    if drill.drop:
        return None, 0.0
    if drill.rcode is not None:
        return with_rcode(packet, query, drill.rcode), 0.0
    if drill.restart:
        return with_rcode(packet, query, SERVFAIL), 0.0
    true = answer()
    if drill.truncate and not tcp and isinstance(true, bytes):
        return truncate(true, query.qend), 0.0
    if drill.stale and isinstance(true, bytes):
        key = (query.qtype, tcp)
        kept = drill.remembered.setdefault(key, true[2:])
        return packet[:2] + kept, 0.0
    return true, drill.delay


def status_response(packet: bytes, drills: Drills) -> bytes:
    """The TXT answer to `drills.tinykube.`: one string per active drill id."""
    import dns.message
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    query = dns.message.from_wire(packet)
    response = dns.message.make_response(query)
    texts = [f'"{d.id or d.name}"' for d in drills.active]
    response.answer.append(dns.rrset.from_text(query.question[0].name, 0, dns.rdataclass.IN,
                                               dns.rdatatype.TXT, *texts))
    return response.to_wire()


def entry(until: float, **behaviour: Any) -> str:
    """A ConfigMap value for one drill (`behaviour`: name and one of BEHAVIOURS)."""
    return json.dumps({"until": until, **behaviour}, sort_keys=True)


class DrillSync:
    """Installs the drills of the ConfigMap into servers (all answering for one cluster)."""

    def __init__(self, servers: Callable[[], list[Any]],
                 wall: Callable[[], float] = time.time) -> None:
        self.servers, self.wall = servers, wall
        self.seen: set[str] = set()

    def apply(self, configmap: dict[str, Any]) -> bool:
        meta = configmap.get("metadata") or {}
        if meta.get("name") != CONFIGMAP or meta.get("namespace") != NAMESPACE:
            return False
        changed = False
        for key, value in (configmap.get("data") or {}).items():
            if key in self.seen:
                continue
            self.seen.add(key)
            try:
                spec = json.loads(value)
                left = float(spec.pop("until")) - self.wall()
                if left <= 0:
                    continue
                name = str(spec.get("name", "*"))
                behaviour = {k: v for k, v in spec.items() if k in BEHAVIOURS}
                for server in self.servers():
                    server.inject(name, for_seconds=left, id=key, **behaviour)
                changed = True
            except (ValueError, TypeError, KeyError) as error:
                log.warning("ignoring DNS drill %s: %s", key, error)
        return changed

    def delete(self, configmap: dict[str, Any]) -> bool:
        if (configmap.get("metadata") or {}).get("name") != CONFIGMAP:
            return False
        for server in self.servers():
            server.drills.clear()
        self.seen.clear()
        return True
