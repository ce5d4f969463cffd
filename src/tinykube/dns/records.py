"""DNS record types, rcodes and name helpers shared by the resolver and the wire codec.

`RR` is one resource record in a form the wire encoder understands: A/AAAA/TXT data are bytes,
CNAME/PTR/NS data are names (tuples of lower-cased labels), SRV and SOA have their own tuples.
`Answer` is what the resolver produces for one question, with the dependency keys it read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import NamedTuple

from tinykube.dns.zone import DepKey

Name = tuple[str, ...]
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, IXFR, AXFR = 1, 2, 5, 6, 12, 16, 28, 33, 41, 251, 252
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
SCHEMA_VERSION = b"1.1.0"
VERSION_TTL = 28800
MAX_CHASE = 8


class Srv(NamedTuple):
    priority: int
    weight: int
    port: int
    target: Name


class Soa(NamedTuple):
    mname: Name
    rname: Name
    refresh: int
    retry: int
    expire: int
    minimum: int


class RR(NamedTuple):
    owner: Name
    rtype: int
    ttl: int
    data: bytes | Name | Srv | Soa  # A/AAAA/TXT: bytes; CNAME/PTR/NS: Name


@dataclass
class Answer:
    rcode: int
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    authoritative: bool = True
    forward: bool = False  # not ours: ask the upstream resolvers
    cacheable: bool = True
    deps: set[DepKey] = field(default_factory=set)
    source: str = ""  # what produced the answer, for the query log


@dataclass(frozen=True)
class ZoneConfig:
    domain: str = "cluster.local"
    ttl: int = 5
    pod_records: str = "insecure"  # insecure | verified | disabled
    upstream: bool = True  # forward names outside the zone (False: REFUSED)
    ns_addresses: tuple[str, ...] = ("127.0.0.1",)  # ns.dns.<zone> when kube-dns is missing

    @property
    def zone(self) -> Name:
        return tuple(self.domain.lower().strip(".").split("."))


def dashed(ip: str) -> str:
    """An endpoint name from its IP (CoreDNS): dots/colons to dashes, `::` ending gets a 0."""
    label = ip.replace(".", "-").replace(":", "-")
    return label + "0" if label.endswith("-") else label


def undashed(label: str) -> str:
    """The IP of a pod-record label (`10-0-0-1`, `fd00--1`), canonical, or "" if not an IP."""
    text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else None
    try:
        return str(ipaddress.ip_address(text or label.replace("-", ":")))
    except ValueError:
        return ""


def reverse_ip(labels: Name) -> str:
    """The address of an `in-addr.arpa`/`ip6.arpa` name with every label present, or ""."""
    try:
        if len(labels) == 6 and labels[4:] == ("in-addr", "arpa"):
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        nibbles = labels[:32]
        if len(labels) == 34 and labels[32:] == ("ip6", "arpa") and all(map(_nibble, nibbles)):
            return str(ipaddress.IPv6Address(int("".join(reversed(labels[:32])), 16)))
    except ValueError:
        pass
    return ""


def _nibble(label: str) -> bool:
    return len(label) == 1


def packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
