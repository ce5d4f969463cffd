"""Helpers for the DNS tests: a realistic zone fed through the model, and a live server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.asyncquery
import dns.message
from objects import endpoint, endpoint_slice, namespace, pod, port, service

from tinykube.dns.handler import Resolver
from tinykube.dns.records import ZoneConfig
from tinykube.dns.server import DNSServer
from tinykube.dns.wire import Responder
from tinykube.dns.zone import ClusterModel

HTTP = port("http", 80)


def _typed(obj: dict[str, Any], svc_type: str) -> dict[str, Any]:
    obj["spec"]["type"] = svc_type
    return obj


def zone_objects() -> list[dict[str, Any]]:
    """The test zone: every kind of Service the spec distinguishes (see dns-spec.md)."""
    big = [endpoint(f"10.245.{i // 250}.{i % 250 + 1}", f"big-{i}") for i in range(300)]
    return [
        namespace("default"), namespace("kube-system"), namespace("dns-test"),
        service("kubernetes", cluster_ips=("10.96.0.1",), ports=(port("https", 443),)),
        service("kube-dns", "kube-system", ("10.96.0.10",),
                (port("dns", 53, "UDP"), port("dns-tcp", 53), port("metrics", 9153))),
        service("nginx-service", cluster_ips=("10.96.0.50",),
                ports=(port("web", 80, target=8080), port("", 81))),
        endpoint_slice("nginx-service", [endpoint("10.244.1.10"), endpoint("10.244.1.20")],
                       (port("web", 8080),), suffix="x1"),
        service("nginx", headless=True, ports=(port("web", 80, target=8080),)),
        endpoint_slice("nginx", [endpoint("10.244.1.10", "web-0", pod="web-0"),
                                 endpoint("10.244.1.11", "web-1", pod="web-1"),
                                 endpoint("10.244.1.12", "web-2", ready=False, pod="web-2"),
                                 endpoint("10.244.1.13", "web-3", ready=None, pod="web-3")],
                       (port("web", 8080),)),
        service("dual", cluster_ips=("10.96.0.60", "fd00::60"), ports=(HTTP,)),
        _typed(service("nodeport", cluster_ips=("10.96.0.70",), ports=(HTTP,)), "NodePort"),
        service("empty", cluster_ips=("10.96.0.80",), ports=(HTTP,)),
        service("unready", headless=True, ports=(HTTP,)),
        endpoint_slice("unready", [endpoint("10.244.3.1", "u-0", ready=False)], (HTTP,)),
        service("noname", headless=True, ports=(port("http", 80), port("", 81))),
        endpoint_slice("noname", [endpoint("10.244.2.5"), endpoint("10.244.2.6", "named")],
                       (HTTP, port("", 81))),
        endpoint_slice("noname", [endpoint("fd00:1::"), endpoint("fd00:1::7")], (HTTP,),
                       suffix="v6", address_type="IPv6"),
        service("dup", headless=True, ports=(HTTP,)),
        endpoint_slice("dup", [endpoint("10.244.4.1", "same"), endpoint("10.244.4.2", "same")],
                       (HTTP,)),
        service("ds", headless=True, ports=(HTTP,)),
        endpoint_slice("ds", [endpoint("10.244.5.1", "ds-0")], (HTTP,), suffix="v4"),
        endpoint_slice("ds", [endpoint("fd00:5::1", "ds-0")], (HTTP,), suffix="v6",
                       address_type="IPv6"),
        service("portless", headless=True),
        endpoint_slice("portless", [endpoint("10.244.6.1", "p-0")]),
        service("big", headless=True, ports=(HTTP,)),
        endpoint_slice("big", big, (HTTP,)),
        service("ext", external_name="foo.example.com"),
        service("ext-internal", external_name="nginx-service.default.svc.cluster.local"),
        service("ext-ip", external_name="1.2.3.4"),
        service("test-service-2", "dns-test", ("10.96.1.2",), (HTTP,)),
        pod("web-0", "10.244.1.10"),
        pod("client", "10.244.9.9", "dns-test", ipv6="fd00:9::9"),
    ]


def make_model(objects: list[dict[str, Any]] | None = None, synced: bool = True) -> ClusterModel:
    model = ClusterModel()
    for obj in zone_objects() if objects is None else objects:
        apply = {"Namespace": model.apply_namespace, "Service": model.apply_service,
                 "EndpointSlice": model.apply_slice, "Pod": model.apply_pod}[obj["kind"]]
        apply(obj)
    if synced:
        model.mark_synced()
    return model


def make_responder(model: ClusterModel, **config: Any) -> Responder:
    return Responder(Resolver(model, ZoneConfig(**{"upstream": False, **config})))


class Live:
    """A running server plus a dnspython client for it."""

    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.host, self.port = server.address

    async def ask(self, name: str, rdtype: str, proto: str = "udp",
                  **query: Any) -> dns.message.Message:
        message = dns.message.make_query(name, rdtype, **query)
        if proto == "tcp":
            return await dns.asyncquery.tcp(message, self.host, port=self.port, timeout=3)
        return await dns.asyncquery.udp(message, self.host, port=self.port, timeout=3,
                                        ignore_trailing=False)


StartServer = Callable[..., Any]


