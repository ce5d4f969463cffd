"""Every row of dns-spec.md's tables (§1-§8, §11), over UDP and TCP, against a live server.

Each case is (name, qtype, rcode, answer records). Negative answers (NXDOMAIN and NODATA) must
carry exactly the zone's SOA in the authority section; every in-zone answer has AA set.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from dnstest import Live, StartServer, make_model

Z = "cluster.local."
D = "default.svc." + Z
NX, OK = "NXDOMAIN", "NOERROR"
NODATA: tuple[str, ...] = ()
SOA_TEXT = f"ns.dns.{Z} hostmaster.{Z}"


def answers(message: dns.message.Message) -> list[str]:
    return sorted(f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
                  for rrset in message.answer for rdata in rrset)


def check(message: dns.message.Message, rcode: str, expected: tuple[str, ...]) -> None:
    assert dns.rcode.to_text(message.rcode()) == rcode
    assert answers(message) == sorted(expected)
    assert message.flags & dns.flags.AA
    if rcode == NX or not expected:
        assert [rrset.rdtype for rrset in message.authority] == [dns.rdatatype.SOA]
        soa = message.authority[0]
        assert soa.name.to_text().lower() in (Z, "in-addr.arpa.", "ip6.arpa.")
        assert soa[0].to_text().startswith(SOA_TEXT)
    else:
        assert message.authority == []


CASES = [
    # §1 zone level: apex, version, ns.dns, grammar, empty non-terminals, namespaces
    (Z, "SOA", OK, (f"SOA {SOA_TEXT} *",)),
    (Z, "NS", OK, (f"NS ns.dns.{Z}",)),
    (Z, "A", OK, NODATA),
    (Z, "AAAA", OK, NODATA),
    (Z, "SRV", OK, NODATA),
    (Z, "HINFO", OK, NODATA),
    ("dns-version." + Z, "TXT", OK, ('TXT "1.1.0"',)),
    ("dns-version." + Z, "A", NX, ()),
    ("ns.dns." + Z, "A", OK, ("A 10.96.0.10",)),
    ("ns.dns." + Z, "AAAA", OK, NODATA),
    ("foo." + Z, "A", NX, ()),
    ("nginx.default.foo." + Z, "A", NX, ()),
    ("svc." + Z, "A", OK, NODATA),
    ("pod." + Z, "A", OK, NODATA),
    ("default.svc." + Z, "A", OK, NODATA),
    ("missing.svc." + Z, "A", NX, ()),
    ("nginx-service.missing.svc." + Z, "A", NX, ()),
    ("a.b.c.nginx." + D, "A", NX, ()),
    ("x.web-0.nginx." + D, "A", NX, ()),
    ("*.default.svc." + Z, "A", NX, ()),
    # §2 NXDOMAIN vs NODATA
    ("nginx-service." + D, "AAAA", OK, NODATA),
    ("nginx-service." + D, "TXT", OK, NODATA),
    ("nginx-service." + D, "MX", OK, NODATA),
    ("nginx-service." + D, "CNAME", OK, NODATA),
    ("nope." + D, "A", NX, ()),
    ("nope." + D, "AAAA", NX, ()),
    ("unready." + D, "A", NX, ()),
    ("unready." + D, "AAAA", NX, ()),
    ("unready." + D, "SRV", NX, ()),
    ("empty." + D, "A", OK, ("A 10.96.0.80",)),
    ("nope." + D, "SOA", OK, NODATA),
    ("nginx-service." + D, "SOA", OK, NODATA),
    # §3 ClusterIP services
    ("nginx-service." + D, "A", OK, ("A 10.96.0.50",)),
    ("dual." + D, "A", OK, ("A 10.96.0.60",)),
    ("dual." + D, "AAAA", OK, ("AAAA fd00::60",)),
    ("nodeport." + D, "A", OK, ("A 10.96.0.70",)),
    ("_web._tcp.nginx-service." + D, "SRV", OK, (f"SRV 0 100 80 nginx-service.{D}",)),
    ("_WEB._TCP.nginx-service." + D, "SRV", OK, (f"SRV 0 100 80 nginx-service.{D}",)),
    ("_web._udp.nginx-service." + D, "SRV", NX, ()),
    ("_nope._tcp.nginx-service." + D, "SRV", NX, ()),
    ("_81._tcp.nginx-service." + D, "SRV", NX, ()),
    ("_tcp.nginx-service." + D, "SRV", NX, ()),
    ("nginx-service." + D, "SRV", OK, (f"SRV 0 50 80 nginx-service.{D}",
                                       f"SRV 0 50 81 nginx-service.{D}")),
    ("_web._tcp.nginx-service." + D, "A", OK, ("A 10.96.0.50",)),
    ("_web._tcp.nginx-service." + D, "TXT", OK, NODATA),
    ("10-244-1-20.nginx-service." + D, "A", OK, ("A 10.244.1.20",)),
    ("_http._tcp.test-service-2.dns-test.svc." + Z, "SRV", OK,
     (f"SRV 0 100 80 test-service-2.dns-test.svc.{Z}",)),
    ("50.0.96.10.in-addr.arpa.", "PTR", OK, (f"PTR nginx-service.{D}",)),
    ("2.1.96.10.in-addr.arpa.", "PTR", OK, (f"PTR test-service-2.dns-test.svc.{Z}",)),
    ("0.6.0.0." + "0.0.0.0." * 6 + "0.0.d.f.ip6.arpa.", "PTR", OK, (f"PTR dual.{D}",)),
    ("50.0.96.10.in-addr.arpa.", "A", OK, NODATA),
    # §4 headless services
    ("nginx." + D, "A", OK, ("A 10.244.1.10", "A 10.244.1.11", "A 10.244.1.13")),
    ("nginx." + D, "AAAA", OK, NODATA),
    ("web-1.nginx." + D, "A", OK, ("A 10.244.1.11",)),
    ("WEB-1.Nginx." + D, "A", OK, ("A 10.244.1.11",)),
    ("web-3.nginx." + D, "A", OK, ("A 10.244.1.13",)),
    ("web-2.nginx." + D, "A", NX, ()),
    ("web-9.nginx." + D, "A", NX, ()),
    ("web-0.nginx." + D, "AAAA", OK, NODATA),
    ("10-244-1-10.nginx." + D, "A", NX, ()),
    ("same.dup." + D, "A", OK, ("A 10.244.4.1", "A 10.244.4.2")),
    ("ds-0.ds." + D, "A", OK, ("A 10.244.5.1",)),
    ("ds-0.ds." + D, "AAAA", OK, ("AAAA fd00:5::1",)),
    ("10-244-2-5.noname." + D, "A", OK, ("A 10.244.2.5",)),
    ("named.noname." + D, "A", OK, ("A 10.244.2.6",)),
    ("10-244-2-6.noname." + D, "A", NX, ()),
    ("fd00-1--0.noname." + D, "AAAA", OK, ("AAAA fd00:1::",)),
    ("fd00-1--7.noname." + D, "AAAA", OK, ("AAAA fd00:1::7",)),
    ("_web._tcp.nginx." + D, "SRV", OK, (f"SRV 0 33 8080 web-0.nginx.{D}",
                                         f"SRV 0 33 8080 web-1.nginx.{D}",
                                         f"SRV 0 33 8080 web-3.nginx.{D}")),
    ("_http._tcp.noname." + D, "SRV", OK, (f"SRV 0 25 80 10-244-2-5.noname.{D}",
                                           f"SRV 0 25 80 named.noname.{D}",
                                           f"SRV 0 25 80 fd00-1--0.noname.{D}",
                                           f"SRV 0 25 80 fd00-1--7.noname.{D}")),
    ("_http._tcp.dup." + D, "SRV", OK, (f"SRV 0 100 80 same.dup.{D}",)),
    ("portless." + D, "A", OK, ("A 10.244.6.1",)),
    ("p-0.portless." + D, "A", OK, ("A 10.244.6.1",)),
    ("_http._tcp.portless." + D, "SRV", NX, ()),
    ("portless." + D, "SRV", OK, NODATA),
    ("10.1.244.10.in-addr.arpa.", "PTR", OK, (f"PTR web-0.nginx.{D}",
                                              f"PTR 10-244-1-10.nginx-service.{D}")),
    ("11.1.244.10.in-addr.arpa.", "PTR", OK, (f"PTR web-1.nginx.{D}",)),
    ("12.1.244.10.in-addr.arpa.", "PTR", NX, ()),
    ("1.5.244.10.in-addr.arpa.", "PTR", OK, (f"PTR ds-0.ds.{D}",)),
    ("1.0.0.0." + "0.0.0.0." * 5 + "5.0.0.0.0.0.d.f.ip6.arpa.", "PTR", OK, (f"PTR ds-0.ds.{D}",)),
    ("9.9.9.9.in-addr.arpa.", "PTR", NX, ()),
    # §6 ExternalName
    ("ext." + D, "CNAME", OK, ("CNAME foo.example.com.",)),
    ("ext." + D, "A", OK, ("CNAME foo.example.com.",)),
    ("ext-internal." + D, "A", OK, (f"CNAME nginx-service.{D}", "A 10.96.0.50")),
    ("ext-internal." + D, "CNAME", OK, (f"CNAME nginx-service.{D}",)),
    ("ext-ip." + D, "A", NX, ()),
    ("_http._tcp.ext." + D, "SRV", NX, ()),
    ("endpoint.ext." + D, "A", NX, ()),
    # §7 pod records (insecure)
    ("10-244-1-10.default.pod." + Z, "A", OK, ("A 10.244.1.10",)),
    ("1-2-3-4.default.pod." + Z, "A", OK, ("A 1.2.3.4",)),
    ("1-2-3-4.default.pod." + Z, "AAAA", OK, NODATA),
    ("fd00-9--9.dns-test.pod." + Z, "AAAA", OK, ("AAAA fd00:9::9",)),
    ("not-an-ip.default.pod." + Z, "A", NX, ()),
    ("1-2-3-4.missing.pod." + Z, "A", NX, ()),
    ("default.pod." + Z, "A", OK, NODATA),
    ("x.1-2-3-4.default.pod." + Z, "A", NX, ()),
]


@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize(("name", "qtype", "rcode", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
async def test_spec_row(live: Live, proto: str, name: str, qtype: str, rcode: str,
                        expected: tuple[str, ...]) -> None:
    message = await live.ask(name, qtype, proto)
    if expected and expected[0].endswith(" *"):  # SOA: the serial is a timestamp
        assert answers(message)[0].startswith(expected[0][:-2])
        expected = tuple(answers(message))
    check(message, rcode, expected)


POD_MODES = [
    ("verified", "10-244-1-10.default.pod." + Z, OK, ("A 10.244.1.10",)),
    ("verified", "1-2-3-4.default.pod." + Z, NX, ()),
    ("verified", "10-244-9-9.default.pod." + Z, NX, ()),
    ("verified", "10-244-9-9.dns-test.pod." + Z, OK, ("A 10.244.9.9",)),
    ("disabled", "10-244-1-10.default.pod." + Z, NX, ()),
    ("disabled", "default.pod." + Z, NX, ()),
    ("disabled", "pod." + Z, OK, NODATA),
]


@pytest.mark.parametrize(("mode", "name", "rcode", "expected"), POD_MODES,
                         ids=[f"{c[0]}-{c[1]}" for c in POD_MODES])
async def test_pod_record_modes(start_server: StartServer, mode: str, name: str, rcode: str,
                                expected: tuple[str, ...]) -> None:
    live = await start_server(pod_records=mode)
    check(await live.ask(name, "A"), rcode, expected)


TTLS = [  # (configured ttl, name, type, section, expected ttl)
    (5, "nginx-service." + D, "A", "answer", 5),
    (30, "nginx." + D, "A", "answer", 30),
    (5, "dns-version." + Z, "TXT", "answer", 28800),
    (5, "nope." + D, "A", "authority", 5),
    (600, "nope." + D, "A", "authority", 300),
]


@pytest.mark.parametrize(("ttl", "name", "qtype", "section", "expected"), TTLS,
                         ids=[f"ttl{c[0]}-{c[1]}-{c[2]}" for c in TTLS])
async def test_ttls(start_server: StartServer, ttl: int, name: str, qtype: str, section: str,
                    expected: int) -> None:
    live = await start_server(ttl=ttl)
    message = await live.ask(name, qtype)
    rrsets = getattr(message, section)
    assert [rrset.ttl for rrset in rrsets] == [expected]
    if section == "authority":
        assert rrsets[0][0].minimum == ttl


ADDITIONAL = [
    ("_web._tcp.nginx-service." + D, "SRV", [f"nginx-service.{D} A 10.96.0.50"]),
    ("_http._tcp.dup." + D, "SRV", [f"same.dup.{D} A 10.244.4.1", f"same.dup.{D} A 10.244.4.2"]),
    ("_http._tcp.ds." + D, "SRV", [f"ds-0.ds.{D} A 10.244.5.1", f"ds-0.ds.{D} AAAA fd00:5::1"]),
    (Z, "NS", [f"ns.dns.{Z} A 10.96.0.10"]),
]


@pytest.mark.parametrize(("name", "qtype", "expected"), ADDITIONAL,
                         ids=[f"{c[0]}-{c[1]}" for c in ADDITIONAL])
async def test_additional_section(live: Live, name: str, qtype: str,
                                  expected: list[str]) -> None:
    message = await live.ask(name, qtype)
    found = sorted(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
                   for rrset in message.additional for rdata in rrset)
    assert found == sorted(expected)


async def test_ns_falls_back_to_own_address(start_server: StartServer) -> None:
    live = await start_server(make_model([]), ns_addresses=("127.96.0.10",))
    check(await live.ask("ns.dns." + Z, "A"), OK, ("A 127.96.0.10",))
