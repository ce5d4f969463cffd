"""Name grammar and rcode policy of the cluster zone (dns-spec.md; CoreDNS parse.go, handler.go).

`Resolver.resolve(labels, qtype, qclass)` turns one lower-cased question into an `Answer`: the
records, the rcode, and the dependency keys (see `zone.py`) it read, so the answer cache can be
invalidated precisely. It runs only on a cache miss; the wire layer caches the encoded result.

Names under the zone, with the outcome for a missing piece (every negative answer carries the SOA):

    <zone>                          SOA, NS (+glue); other types NODATA
    dns-version.<zone>              TXT "1.1.0"; other types NXDOMAIN (as CoreDNS)
    ns.dns.<zone>                   A/AAAA of the kube-dns Service (or our own addresses)
    svc.<zone>, pod.<zone>          NODATA (empty non-terminals)
    <ns>.svc|pod.<zone>             NODATA if the namespace exists, else NXDOMAIN
    <svc>.<ns>.svc.<zone>           ClusterIP: its IPs; headless: ready endpoints (none: NXDOMAIN)
                                    ExternalName: CNAME (in-zone targets followed); SRV: every port
    <ep>.<svc>.<ns>.svc.<zone>      endpoints named <ep> (hostname, else dashed IP)
    _<port>._<proto>.<svc>...       SRV per named port (headless: per ready endpoint, endpoint port)
    <a-b-c-d>.<ns>.pod.<zone>       pod records (insecure: echo; verified: a pod has that IP)
    anything else in the zone       NXDOMAIN; SOA on any non-apex name: NODATA (CoreDNS quirk)

Reverse names answer PTR for Service cluster IPs and ready endpoint IPs; other addresses and names
outside the zone are forwarded upstream (or REFUSED without upstream; unknown reverse: NXDOMAIN).
"""

from __future__ import annotations

from tinykube.dns.records import (
    AAAA,
    AXFR,
    CNAME,
    IN,
    IXFR,
    MAX_CHASE,
    NOERROR,
    NS,
    NXDOMAIN,
    OPT,
    PTR,
    REFUSED,
    RR,
    SCHEMA_VERSION,
    SERVFAIL,
    SOA,
    SRV,
    TXT,
    VERSION_TTL,
    A,
    Answer,
    Name,
    Soa,
    Srv,
    ZoneConfig,
    dashed,
    is_ipv4,
    packed,
    reverse_ip,
    undashed,
)
from tinykube.dns.views import PortView, ServiceView, SliceView
from tinykube.dns.zone import ClusterModel, DepKey


class Resolver:
    """Answers one question from the cluster model (no caching here)."""

    def __init__(self, model: ClusterModel, config: ZoneConfig) -> None:
        self.model, self.config, self.zone = model, config, config.zone
        self.ttl = config.ttl

    def resolve(self, labels: Name, qtype: int, qclass: int) -> Answer:
        if qtype in (AXFR, IXFR):
            return Answer(REFUSED, authoritative=False)
        zone = self.zone
        if labels[len(labels) - len(zone):] == zone:
            if qclass != IN:
                return Answer(REFUSED, authoritative=False)
            return _Lookup(self, zone).run(labels, qtype, labels[: len(labels) - len(zone)])
        ip = reverse_ip(labels) if qtype != OPT else ""
        if ip and qclass == IN:
            return _Lookup(self, labels[-2:]).reverse(labels, qtype, ip)
        if self.config.upstream:
            return Answer(NOERROR, forward=True, authoritative=False)
        return Answer(REFUSED, authoritative=False)

    def absent(self, rest: list[bytes]) -> bool:
        """Whether a name is NXDOMAIN for every qtype but SOA, AXFR and IXFR (class IN, model
        synced), read from the labels below the zone alone (`rest`: lower-cased, leftmost first,
        non-empty). False means "resolve it": the name may exist, or its answer is one of the
        quirks (`dns-version`, `ns.dns`). The NXDOMAIN early exits of `_Lookup.in_zone`,
        `services` and `pods`, for `wire.Responder.negative`: random and search-path names
        are answered without building, caching or invalidating an answer per name."""
        top = rest[-1]
        if top == b"svc" or top == b"pod":
            if len(rest) == 1:
                return False  # svc.<zone>, pod.<zone>: NODATA
            if top == b"pod" and self.config.pod_records == "disabled":
                return True
            model = self.model
            namespace = rest[-2].decode("latin-1")
            if not model.namespace_exists(namespace):
                return True
            if top == b"pod":
                return len(rest) > 3  # <ip>.<ns>.pod: pod records decide
            if len(rest) > 5:  # more than <port>.<proto>.<svc>
                return True
            return len(rest) > 2 and model.service(namespace, rest[-3].decode("latin-1")) is None
        return rest != [b"dns-version"] and rest != [b"ns", b"dns"]

    def soa(self, apex: Name) -> RR:
        zone = self.zone
        data = Soa(("ns", "dns", *zone), ("hostmaster", *zone), 7200, 1800, 86400, self.ttl)
        return RR(apex, SOA, min(self.ttl, 300), data)

    def fqdn(self, *labels: str) -> Name:
        return (*labels, "svc", *self.zone)


class _Lookup:
    """State of one resolution: dependencies read, additional records, source, CNAME depth."""

    def __init__(self, resolver: Resolver, apex: Name) -> None:
        self.r, self.model, self.apex = resolver, resolver.model, apex
        self.deps: set[DepKey] = set()
        self.additional: list[RR] = []
        self.source = ""
        self.depth = 0

    def finish(self, records: list[RR] | None) -> Answer:
        synced = self.model.synced
        answer = Answer(NOERROR, deps=self.deps, source=self.source, cacheable=synced)
        if records:
            answer.answer, answer.additional = records, self.additional
        elif not synced:
            answer.rcode, answer.authoritative = SERVFAIL, False
        else:
            answer.rcode = NXDOMAIN if records is None else NOERROR
            answer.authority = [self.r.soa(self.apex)]
        return answer

    def run(self, qname: Name, qtype: int, rest: Name) -> Answer:
        return self.finish(self.in_zone(qname, qtype, rest))

    def reverse(self, qname: Name, qtype: int, ip: str) -> Answer:
        self.deps.add(("ip", ip))
        names = self.ptr_names(ip)
        if not names and self.r.config.upstream:
            return Answer(NOERROR, forward=True, authoritative=False, deps=self.deps)
        self.source = f"address {ip}"
        if not names:
            return self.finish(None)
        ttl = self.r.ttl
        return self.finish([RR(qname, PTR, ttl, n) for n in names] if qtype == PTR else [])

    def ptr_names(self, ip: str) -> list[Name]:
        for svc in self.model.services_with_cluster_ip(ip)[:1]:
            return [self.r.fqdn(svc.name, svc.namespace)]
        names: dict[Name, None] = {}
        for slice_ in self.model.slices_with_ip(ip):
            for name, address in _ready(slice_):
                if address == ip:
                    names[self.r.fqdn(name, slice_.service, slice_.namespace)] = None
        return list(names)

    # ---- forward zone ----------------------------------------------------------------------

    def in_zone(self, qname: Name, qtype: int, rest: Name) -> list[RR] | None:
        if not rest:
            return self.apex_records(qname, qtype)
        if qtype == SOA:
            return []
        if rest == ("dns-version",):
            return [RR(qname, TXT, VERSION_TTL, SCHEMA_VERSION)] if qtype == TXT else None
        if rest == ("ns", "dns"):
            return self.addresses(qname, qtype, self.ns_addresses())
        if rest[-1] == "svc":
            return self.services(qname, qtype, rest[:-1])
        if rest[-1] == "pod":
            return self.pods(qname, qtype, rest[:-1])
        return None

    def apex_records(self, qname: Name, qtype: int) -> list[RR]:
        self.deps.add(("apex",))
        if qtype == SOA:
            return [self.r.soa(qname)]
        if qtype == NS:
            ns_name = ("ns", "dns", *self.r.zone)
            self.additional += self.addresses(ns_name, A, self.ns_addresses())
            self.additional += self.addresses(ns_name, AAAA, self.ns_addresses())
            return [RR(qname, NS, self.r.ttl, ns_name)]
        return []

    def ns_addresses(self) -> tuple[str, ...]:
        self.deps.add(("svc", "kube-system", "kube-dns"))
        kube_dns = self.model.service("kube-system", "kube-dns")
        if kube_dns and kube_dns.cluster_ips:
            return kube_dns.cluster_ips
        return self.r.config.ns_addresses

    def addresses(self, owner: Name, qtype: int, ips: tuple[str, ...] | list[str]) -> list[RR]:
        if qtype not in (A, AAAA):
            return []
        size = 4 if qtype == A else 16
        data = dict.fromkeys(p for p in map(packed, ips) if len(p) == size)
        return [RR(owner, qtype, self.r.ttl, p) for p in data]

    def services(self, qname: Name, qtype: int, parts: Name) -> list[RR] | None:
        if not parts:
            return []
        namespace, names = parts[-1], parts[:-1]
        self.deps.add(("ns", namespace))
        if not self.model.namespace_exists(namespace) or len(names) > 3:
            return None
        if not names:
            return []
        self.deps.add(("svc", namespace, names[-1]))
        svc = self.model.service(namespace, names[-1])
        if svc is None:
            return None
        self.source = self.source or f"service {namespace}/{svc.name}"
        if len(names) == 1:
            return self.service_records(qname, qtype, svc)
        if svc.kind == "ExternalName":
            return None
        if len(names) == 2:
            ips = [ip for name, ip in self.ready(svc) if name == names[0]]
            return self.addresses(qname, qtype, ips) if ips else None
        return self.port_records(qname, qtype, svc, names[0], names[1])

    def service_records(self, qname: Name, qtype: int, svc: ServiceView) -> list[RR] | None:
        if svc.kind == "ExternalName":
            return self.external(qname, qtype, svc)
        if svc.kind == "Headless":
            ips = [ip for _, ip in self.ready(svc)]
            if not ips:
                return None
        else:
            ips = list(svc.cluster_ips)
        if qtype == SRV:
            return self.srv(qname, svc, None, "")
        return self.addresses(qname, qtype, ips)

    def port_records(self, qname: Name, qtype: int, svc: ServiceView, port: str,
                     proto: str) -> list[RR] | None:
        port, proto = port.removeprefix("_"), proto.removeprefix("_")
        start = len(self.additional)
        records = self.srv(qname, svc, port, proto)
        if not records:
            return None
        if qtype == SRV:
            return records
        glue = self.additional[start:]
        del self.additional[start:]
        data = dict.fromkeys(rr.data for rr in glue if rr.rtype == qtype)
        return [RR(qname, qtype, self.r.ttl, item) for item in data]

    def srv(self, qname: Name, svc: ServiceView, port: str | None, proto: str) -> list[RR]:
        """SRV records of `svc` for the named port (None: every port), targets in additional."""
        pairs: dict[tuple[Name, int], list[str]] = {}
        fqdn, ns = self.r.fqdn, svc.namespace
        if svc.kind == "ClusterIP":
            for p in _matching(svc.ports, port, proto):
                pairs.setdefault((fqdn(svc.name, ns), p.port), []).extend(svc.cluster_ips)
        slices = self.model.slices_of(ns, svc.name) if svc.kind == "Headless" else ()
        for slice_ in slices:
            for p in _matching(slice_.ports, port, proto):
                for name, ip in _ready(slice_):
                    pairs.setdefault((fqdn(name, svc.name, ns), p.port), []).append(ip)
        weight = 100 // len(pairs) if pairs else 0
        records = [RR(qname, SRV, self.r.ttl, Srv(0, weight, number, target))
                   for target, number in pairs]
        glue: dict[Name, list[str]] = {}
        for (target, _), ips in pairs.items():
            glue.setdefault(target, []).extend(ips)
        for target, ips in glue.items():
            self.additional += self.addresses(target, A, ips) + self.addresses(target, AAAA, ips)
        return records

    def external(self, qname: Name, qtype: int, svc: ServiceView) -> list[RR] | None:
        target = tuple(svc.external_name.split("."))
        if not svc.external_name or is_ipv4(svc.external_name) or not all(
                0 < len(label) < 64 for label in target):
            return None
        records = [RR(qname, CNAME, self.r.ttl, target)]
        zone = self.r.zone
        if qtype == CNAME or target[len(target) - len(zone):] != zone or self.depth >= MAX_CHASE:
            return records
        self.depth += 1
        return records + (self.in_zone(target, qtype, target[: len(target) - len(zone)]) or [])

    def ready(self, svc: ServiceView) -> list[tuple[str, str]]:
        """(endpoint name, IP) of every ready endpoint address of the Service."""
        return [pair for s in self.model.slices_of(svc.namespace, svc.name) for pair in _ready(s)]

    # ---- pod records -----------------------------------------------------------------------

    def pods(self, qname: Name, qtype: int, parts: Name) -> list[RR] | None:
        mode = self.r.config.pod_records
        if not parts or mode == "disabled":
            return [] if not parts else None
        namespace = parts[-1]
        self.deps.add(("ns", namespace))
        if not self.model.namespace_exists(namespace) or len(parts) > 2:
            return None
        if len(parts) == 1:
            return []
        ip = undashed(parts[0])
        if not ip:
            return None
        if mode == "verified":
            self.deps.add(("pod", namespace, ip))
            if not self.model.pod_ip_exists(namespace, ip):
                return None
        self.source = f"pod {ip} in {namespace}"
        return self.addresses(qname, qtype, [ip])


def _ready(slice_: SliceView) -> list[tuple[str, str]]:
    return [(ep.hostname or dashed(ip), ip) for ep in slice_.endpoints if ep.ready
            for ip in ep.addresses]


def _matching(ports: tuple[PortView, ...], name: str | None, proto: str) -> list[PortView]:
    """All ports (name None), or the named port with that protocol."""
    return [p for p in ports if name is None or (p.name == name != "" and p.protocol == proto)]



