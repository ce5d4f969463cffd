"""Negative answers from a template (`Responder.negative`, `Resolver.absent`): for every query it
answers, the bytes are exactly what the full responder sends; everything else is left to it."""

from __future__ import annotations

import itertools
import random

import dns.flags
import dns.message
import pytest
from dnstest import make_model, make_responder
from objects import namespace, service

from tinykube.dns.wire import NEGATIVE_LIMIT

# Names the template answers (surely NXDOMAIN: random labels, missing namespaces and Services,
# a pod's search-path candidates) and names it must leave to the responder.
ANSWERED = [
    "q1234.cluster.local", "Q1234.Cluster.LOCAL", "q1234.svc.cluster.local",
    "nosuch.default.svc.cluster.local", "a.b.c.d.default.svc.cluster.local",
    "kubernetes.default.web.svc.cluster.local", "api.example.com.default.svc.cluster.local",
    "api.example.com.svc.cluster.local", "api.example.com.cluster.local",
    "x.nosuch.pod.cluster.local", "a.b.10-0-0-1.default.pod.cluster.local",
    "x.dns-version.cluster.local", "a.b.c.d.e.f.nginx.default.svc.cluster.local",
    "x" * 63 + "." + "y" * 63 + "." + "z" * 63 + "." + "w" * 40 + ".cluster.local",
]
LEFT = [
    "cluster.local", "svc.cluster.local", "pod.cluster.local", "default.svc.cluster.local",
    "kubernetes.default.svc.cluster.local", "web-0.nginx.default.svc.cluster.local",
    "_web._tcp.nginx.default.svc.cluster.local", "10-0-0-1.default.pod.cluster.local",
    "dns-version.cluster.local", "ns.dns.cluster.local", "dns.cluster.local",
    "x.dns.cluster.local", "x.hostmaster.cluster.local", "example.com", "cluster.localx",
    "1.0.96.10.in-addr.arpa",
]
TYPES = ["A", "AAAA", "SRV", "TXT", "PTR", "CNAME", "ANY", "SOA", "AXFR"]
VARIANTS = [dict(use_edns=-1), dict(use_edns=0), dict(use_edns=0, want_dnssec=True),
            dict(use_edns=0, payload=1232), dict(use_edns=1)]


def packet(name: str, rdtype: str, rd: bool = True, cd: bool = False, **edns: object) -> bytes:
    query = dns.message.make_query(name, rdtype, **edns)  # type: ignore[arg-type]
    if not rd:
        query.flags &= ~dns.flags.RD
    if cd:
        query.flags |= dns.flags.CD
    query.id = random.randrange(65536)
    return query.to_wire()


@pytest.mark.parametrize("upstream", [False, True])
def test_every_template_answer_is_the_responders_answer_byte_for_byte(upstream: bool) -> None:
    model = make_model()
    answered = 0
    for name, rdtype, edns, (rd, cd) in itertools.product(
            ANSWERED + LEFT, TYPES, VARIANTS, [(True, False), (False, True)]):
        query = packet(name, rdtype, rd, cd, **edns)
        got = make_responder(model, upstream=upstream).negative(query[2:])
        expected = make_responder(model, upstream=upstream).respond(query, False)
        if got is None:
            left = name not in ANSWERED or rdtype in ("SOA", "AXFR") or edns == VARIANTS[-1]
            assert left, (name, rdtype, edns)
            continue
        answered += 1
        assert name in ANSWERED and query[:2] + got == expected, (name, rdtype, edns)
        assert got[1] & 0x0F == 3  # NXDOMAIN
    assert answered > 500


@pytest.mark.parametrize("raw", [
    b"", b"\x00" * 15,
    packet("q.cluster.local", "A")[:-1],  # cut short
    packet("q.cluster.local", "A") + b"\x00",  # trailing byte
    packet("q.cluster.local", "A", use_edns=0)[:-1] + b"\x01",  # OPT rdlength 1, no data
], ids=["empty", "header-only", "cut-short", "trailing-byte", "opt-without-data"])  # (random ids)
def test_odd_packets_are_left_to_the_responder(raw: bytes) -> None:
    assert make_responder(make_model()).negative(raw[2:]) is None


def test_opcode_class_and_counts_are_left_to_the_responder() -> None:
    base = bytearray(packet("q.cluster.local", "A"))
    cases = [(2, 0x28), (2, 0x81), (5, 2), (7, 1), (9, 1), (10, 1), (len(base) - 1, 3)]
    for offset, value in cases:
        odd = bytearray(base)
        odd[offset] = value  # UPDATE, a response, 2 questions, an answer, an authority record,
        # ARCOUNT 256, class CH
        assert make_responder(make_model()).negative(bytes(odd)[2:]) is None, offset


def test_nothing_before_the_model_is_synced() -> None:
    responder = make_responder(make_model(synced=False))
    assert responder.negative(packet("q.cluster.local", "A")[2:]) is None


def test_a_new_namespace_or_service_ends_the_negative_answer() -> None:
    model = make_model()
    responder = make_responder(model)
    for name in ("foo.default.svc.cluster.local", "bar.web.svc.cluster.local"):
        assert responder.negative(packet(name, "A")[2:]) is not None
    model.apply_service(service("foo", cluster_ips=("10.96.7.7",)))
    model.apply_namespace(namespace("web"))
    found = responder.respond(packet("foo.default.svc.cluster.local", "A"), False)
    assert isinstance(found, bytes) and found[3] & 0x0F == 0
    assert responder.negative(packet("foo.default.svc.cluster.local", "A")[2:]) is None
    assert responder.negative(packet("web.svc.cluster.local", "A")[2:]) is None
    # the serial changed with the model: the template carries the new one
    query = packet("bar.web.svc.cluster.local", "A")
    assert query[:2] + (responder.negative(query[2:]) or b"") == make_responder(
        model).respond(query, False)


def test_negative_answers_are_bounded_and_leave_level_one_alone() -> None:
    responder = make_responder(make_model())
    hit = packet("kubernetes.default.svc.cluster.local", "A")
    responder.respond(hit, False)
    for index in range(NEGATIVE_LIMIT + 10):
        assert responder.negative(packet(f"q{index}.cluster.local", "A")[2:]) is not None
    assert len(responder._negatives) <= NEGATIVE_LIMIT
    assert hit[2:] in responder.fast and len(responder.fast) == 1


def test_a_name_over_a_parent_that_is_nxdomain_skips_the_walk_until_the_model_changes() -> None:
    model = make_model()
    responder = make_responder(model)
    for label in ("h1", "h2"):
        query = packet(f"{label}.example.com.default.svc.cluster.local", "A")
        assert query[:2] + (responder.negative(query[2:]) or b"") == make_responder(
            model).respond(query, False)
    assert b"\x07example\x03com\x07default\x03svc\x07cluster\x05local\x00" \
        in responder._absent_parents
    bad = bytearray(packet("h3.example.com.default.svc.cluster.local", "A"))
    bad[12] = 64  # a first label length no name may have: FORMERR, from the responder
    assert responder.negative(bytes(bad)[2:]) is None
    model.apply_service(service("com", cluster_ips=("10.96.7.8",)))
    assert not responder._absent_parents
    assert responder.negative(packet("h4.example.com.default.svc.cluster.local", "A")[2:]) is None
