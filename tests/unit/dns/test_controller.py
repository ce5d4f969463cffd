"""DNSController with the real Informer over a fake REST client (list + a scripted watch)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import dns.message
import dns.rcode
from dnstest import zone_objects
from objects import endpoint, endpoint_slice, port

from tinykube.api.resources import Resource
from tinykube.dns.controller import DNSController
from tinykube.dns.handler import Resolver
from tinykube.dns.metrics import DNSMetrics
from tinykube.dns.records import ZoneConfig
from tinykube.dns.wire import Responder
from tinykube.dns.zone import ClusterModel

KIND_OF = {"namespaces": "Namespace", "services": "Service", "endpointslices": "EndpointSlice",
           "pods": "Pod"}
D = "default.svc.cluster.local."


class FakeClient:
    """Serves `list` from fixed objects and `watch` from a queue per resource."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.events: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = {
            plural: asyncio.Queue() for plural in KIND_OF}
        self.listed: list[str] = []

    async def list(self, res: Resource, namespace: str | None = None,
                   **_: Any) -> dict[str, Any]:
        self.listed.append(res.plural)
        items = [copy.deepcopy(o) for o in self.objects if o["kind"] == KIND_OF[res.plural]]
        return {"items": items, "metadata": {"resourceVersion": "100"}}

    async def watch(self, res: Resource, namespace: str | None = None,
                    **_: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        while True:
            yield await self.events[res.plural].get()


def ask(responder: Responder, name: str) -> tuple[str, list[str]]:
    response = responder.respond(dns.message.make_query(name, "A").to_wire(), False)
    assert isinstance(response, bytes)
    message = dns.message.from_wire(response)
    return dns.rcode.to_text(message.rcode()), sorted(
        r.to_text() for rrset in message.answer for r in rrset)


async def next_change(model: ClusterModel) -> None:
    changed = asyncio.Event()
    model.add_listener(lambda _keys: changed.set())
    await asyncio.wait_for(changed.wait(), 5)


async def test_controller_syncs_and_follows_watch_events() -> None:
    client = FakeClient(zone_objects())
    model, metrics = ClusterModel(), DNSMetrics()
    responder = Responder(Resolver(model, ZoneConfig(upstream=False)))
    controller = DNSController(client, model, metrics=metrics)  # type: ignore[arg-type]
    assert ask(responder, "nope." + D)[0] == "SERVFAIL"
    task = asyncio.create_task(controller.run())
    try:
        await next_change(model)
        while not model.synced:
            await next_change(model)
        assert sorted(client.listed) == ["endpointslices", "namespaces", "services"]
        assert ask(responder, "nope." + D)[0] == "NXDOMAIN"
        assert ask(responder, "web-1.nginx." + D) == ("NOERROR", ["10.244.1.11"])
        eps = endpoint_slice("nginx", [endpoint("10.244.1.15", "web-5")], (port("web", 8080),))
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        eps["metadata"]["annotations"] = {
            "endpoints.kubernetes.io/last-change-trigger-time": now}
        eps["metadata"]["resourceVersion"] = "101"
        client.events["endpointslices"].put_nowait(("MODIFIED", eps))
        await next_change(model)
        assert ask(responder, "web-1.nginx." + D)[0] == "NXDOMAIN"
        assert ask(responder, "web-5.nginx." + D) == ("NOERROR", ["10.244.1.15"])
        assert b'tinykube_dns_programming_latency_seconds_count{kind="endpointslice"} 1.0' \
            in metrics.exposition()
        client.events["endpointslices"].put_nowait(("DELETED", eps))
        await next_change(model)
        assert ask(responder, "nginx." + D)[0] == "NXDOMAIN"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_verified_mode_watches_pods() -> None:
    client = FakeClient(zone_objects())
    model = ClusterModel()
    controller = DNSController(client, model, pod_records="verified")  # type: ignore[arg-type]
    task = asyncio.create_task(controller.run())
    try:
        while not model.synced:
            await next_change(model)
        assert "pods" in client.listed
        assert model.pod_ip_exists("default", "10.244.1.10")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
