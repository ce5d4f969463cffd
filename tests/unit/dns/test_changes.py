"""Model updates show in the very next answer: only the touched names are invalidated.

The helper answers like the UDP listener does (level-1 cache first, then the responder), so a
stale entry at either level would show up as a wrong answer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from dnstest import make_model, make_responder
from objects import endpoint, endpoint_slice, namespace, pod, port, service

from tinykube.dns.wire import Responder
from tinykube.dns.zone import ClusterModel

D = "default.svc.cluster.local."
WEB = port("web", 8080)
HTTP = port("http", 80)
NGINX_SERVICE = service("nginx-service", cluster_ips=("10.96.0.50",))


def ask(responder: Responder, name: str, qtype: str = "A") -> tuple[str, list[str]]:
    packet = dns.message.make_query(name, qtype).to_wire()
    cached = responder.fast.get(packet[2:])
    response = packet[:2] + cached if cached is not None else responder.respond(packet, False)
    assert isinstance(response, bytes)
    message = dns.message.from_wire(response)
    return dns.rcode.to_text(message.rcode()), sorted(
        rdata.to_text() for rrset in message.answer for rdata in rrset)


def nginx_slice(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return endpoint_slice("nginx", list(endpoints), (WEB,))


def web(n: int, ready: bool | None = True) -> dict[str, Any]:
    return endpoint(f"10.244.1.{10 + n}", f"web-{n}", ready=ready, pod=f"web-{n}")


Mutation = Callable[[ClusterModel], Any]
CHANGES: list[tuple[str, str, str, tuple[str, list[str]], Mutation, tuple[str, list[str]]]] = [
    ("scale-up", "nginx." + D, "A", ("NOERROR", ["10.244.1.10", "10.244.1.11", "10.244.1.13"]),
     lambda m: m.apply_slice(nginx_slice(web(0), web(1), web(2, False), web(3, None), web(4))),
     ("NOERROR", ["10.244.1.10", "10.244.1.11", "10.244.1.13", "10.244.1.14"])),
    ("scale-up-new-name", "web-4.nginx." + D, "A", ("NXDOMAIN", []),
     lambda m: m.apply_slice(nginx_slice(web(0), web(4))), ("NOERROR", ["10.244.1.14"])),
    ("pod-not-ready", "web-1.nginx." + D, "A", ("NOERROR", ["10.244.1.11"]),
     lambda m: m.apply_slice(nginx_slice(web(0), web(1, False))), ("NXDOMAIN", [])),
    ("last-ready-gone", "nginx." + D, "AAAA", ("NOERROR", []),
     lambda m: m.apply_slice(nginx_slice(web(0, False))), ("NXDOMAIN", [])),
    ("slice-deleted", "nginx." + D, "A", ("NOERROR", ["10.244.1.10", "10.244.1.11", "10.244.1.13"]),
     lambda m: m.delete_slice(nginx_slice()), ("NXDOMAIN", [])),
    ("service-deleted", "nginx-service." + D, "A", ("NOERROR", ["10.96.0.50"]),
     lambda m: m.delete_service(NGINX_SERVICE), ("NXDOMAIN", [])),
    ("service-deleted-ptr", "50.0.96.10.in-addr.arpa.", "PTR", ("NOERROR", ["nginx-service." + D]),
     lambda m: m.delete_service(NGINX_SERVICE), ("NXDOMAIN", [])),
    ("service-created", "new." + D, "A", ("NXDOMAIN", []),
     lambda m: m.apply_service(service("new", cluster_ips=("10.96.0.99",))),
     ("NOERROR", ["10.96.0.99"])),
    ("external-to-clusterip", "ext." + D, "A", ("NOERROR", ["foo.example.com."]),
     lambda m: m.apply_service(service("ext", cluster_ips=("10.96.0.77",), ports=(HTTP,))),
     ("NOERROR", ["10.96.0.77"])),
    ("external-renamed", "ext." + D, "CNAME", ("NOERROR", ["foo.example.com."]),
     lambda m: m.apply_service(service("ext", external_name="bar.example.com")),
     ("NOERROR", ["bar.example.com."])),
    ("external-target-changed", "ext-internal." + D, "A",
     ("NOERROR", ["10.96.0.50", "nginx-service." + D]),
     lambda m: m.apply_service(service("nginx-service", cluster_ips=("10.96.0.51",))),
     ("NOERROR", ["10.96.0.51", "nginx-service." + D])),
    ("clusterip-to-headless", "nginx-service." + D, "A", ("NOERROR", ["10.96.0.50"]),
     lambda m: m.apply_service(service("nginx-service", headless=True)),
     ("NOERROR", ["10.244.1.10", "10.244.1.20"])),
    ("endpoint-ptr-follows", "14.1.244.10.in-addr.arpa.", "PTR", ("NXDOMAIN", []),
     lambda m: m.apply_slice(nginx_slice(web(4))), ("NOERROR", ["web-4.nginx." + D])),
    ("srv-port-renamed", "_web._tcp.nginx." + D, "SRV",
     ("NOERROR", [f"0 33 8080 web-{n}.nginx.{D}" for n in (0, 1, 3)]),
     lambda m: m.apply_slice(endpoint_slice("nginx", [web(0)], (port("http", 8080),))),
     ("NXDOMAIN", [])),
    ("namespace-deleted", "dns-test.svc.cluster.local.", "A", ("NOERROR", []),
     lambda m: (m.delete_service(service("test-service-2", "dns-test", ("10.96.1.2",))),
                m.delete_namespace(namespace("dns-test"))),
     ("NXDOMAIN", [])),
    ("namespace-created", "1-2-3-4.fresh.pod.cluster.local.", "A", ("NXDOMAIN", []),
     lambda m: m.apply_namespace(namespace("fresh")), ("NOERROR", ["1.2.3.4"])),
]


@pytest.mark.parametrize(("name", "qtype", "before", "mutate", "after"),
                         [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_next_answer_reflects_change(name: str, qtype: str, before: tuple[str, list[str]],
                                     mutate: Mutation, after: tuple[str, list[str]]) -> None:
    responder = make_responder(make_model())
    assert ask(responder, name, qtype) == before
    assert ask(responder, name, qtype) == before  # now served from the caches
    mutate(responder.resolver.model)
    assert ask(responder, name, qtype) == after


def test_verified_pod_records_follow_pods() -> None:
    responder = make_responder(make_model(), pod_records="verified")
    name = "10-244-7-7.default.pod.cluster.local."
    assert ask(responder, name)[0] == "NXDOMAIN"
    responder.resolver.model.apply_pod(pod("late", "10.244.7.7"))
    assert ask(responder, name) == ("NOERROR", ["10.244.7.7"])
    responder.resolver.model.delete_pod(pod("late", "10.244.7.7"))
    assert ask(responder, name)[0] == "NXDOMAIN"


def test_only_touched_names_are_invalidated() -> None:
    responder = make_responder(make_model())
    names = ["nginx." + D, "nginx-service." + D, "web-0.nginx." + D, "dual." + D]
    for name in names:
        ask(responder, name)
    before = dict(responder.entries)
    responder.resolver.model.apply_slice(nginx_slice(web(0)))
    kept = {key for key, entry in responder.entries.items() if before.get(key) is entry}
    assert kept == {k for k in before if b"nginx-service" in k or b"dual" in k}
    assert responder.fast == {}


def test_service_change_keeps_other_services_of_the_namespace() -> None:
    responder = make_responder(make_model())
    for name in ("nginx." + D, "dual." + D, "nope." + D, "default.svc.cluster.local."):
        ask(responder, name)
    before = dict(responder.entries)
    responder.resolver.model.apply_service(service("nginx-service", cluster_ips=("10.96.0.51",)))
    assert responder.entries == before


def test_first_service_creates_its_namespace() -> None:
    responder = make_responder(make_model([]))
    responder.resolver.model.mark_synced()
    assert ask(responder, "lonely.svc.cluster.local.")[0] == "NXDOMAIN"
    responder.resolver.model.apply_service(service("only", "lonely", ("10.96.5.5",)))
    assert ask(responder, "lonely.svc.cluster.local.")[0] == "NOERROR"
    responder.resolver.model.delete_service(service("only", "lonely", ("10.96.5.5",)))
    assert ask(responder, "lonely.svc.cluster.local.")[0] == "NXDOMAIN"


def test_noop_updates_keep_the_cache() -> None:
    model = make_model()
    responder = make_responder(model)
    ask(responder, "nginx-service." + D)
    entries, serial = dict(responder.entries), model.serial
    updated = copy.deepcopy(service("nginx-service", cluster_ips=("10.96.0.50",),
                                    ports=(port("web", 80, target=8080), port("", 81))))
    updated["metadata"]["resourceVersion"] = "99"
    updated["metadata"]["labels"]["extra"] = "label"
    updated["status"] = {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}
    assert model.apply_service(updated) is False
    assert model.apply_namespace(namespace("default")) is False
    assert responder.entries == entries and model.serial == serial


def test_negative_answers_carry_the_current_serial() -> None:
    model = make_model()
    responder = make_responder(model)
    packet = dns.message.make_query("nope." + D, "A").to_wire()
    model.serial = 1000
    first = dns.message.from_wire(responder.respond(packet, False))  # type: ignore[arg-type]
    model.apply_service(service("other", cluster_ips=("10.96.0.98",)))
    second = dns.message.from_wire(responder.respond(packet, False))  # type: ignore[arg-type]
    assert first.authority[0][0].serial == 1000
    assert second.authority[0][0].serial == model.serial > 1000


def test_responses_are_never_answered() -> None:
    responder = make_responder(make_model())
    query = dns.message.make_query("nginx." + D, "A")
    response = dns.message.make_response(query).to_wire()
    assert responder.respond(response, False) is None
    assert responder.respond(b"\x12\x34", False) is None
