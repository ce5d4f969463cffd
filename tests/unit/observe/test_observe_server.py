"""The observer's HTTP endpoint (observe.server) on a real socket: the token (header, or the
cookie the link sets), the page, the map and its event stream, the query log's filters,
traces and the explanation, with a fake hub and DNS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import dns.message
import pytest
from prometheus_client import CollectorRegistry

from tinykube.dns.querylog import QueryLog
from tinykube.observe.server import ObserveServer
from tinykube.observe.traces import Tracer

TOKEN = "s3cret"
DOC = {"namespaces": [{"name": "default", "services": [], "pods": [
    {"name": "client", "ip": "10.244.0.9", "ready": True, "phase": "Running", "node": "n1",
     "dns": ["10-244-0-9.default.pod.cluster.local"], "inService": False}]}]}


class FakeHub:
    def __init__(self) -> None:
        self.version, self.changed = 1, asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, **DOC}

    def pod_index(self) -> dict[str, str]:
        return {"10.244.0.9": "default/client"}

    def bump(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()


def query(name: str) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def nxdomain(packet: bytes) -> bytes:
    message = dns.message.from_wire(packet)
    response = dns.message.make_response(message)
    response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, FakeHub, QueryLog, Tracer]]:
    hub, log = FakeHub(), QueryLog()
    running = SimpleNamespace(server=SimpleNamespace(
        querylog=log, responder=SimpleNamespace(entries={})))
    tracer = Tracer(registry=CollectorRegistry(), dns=False, proxy=False)
    server = ObserveServer(hub, TOKEN, tracer=tracer,  # type: ignore[arg-type]
                           dns=lambda: running)
    host, port = await server.start("127.0.0.1", 0)
    yield f"http://{host}:{port}", hub, log, tracer
    await server.close()


async def test_everything_needs_the_token(served: tuple[str, FakeHub, QueryLog, Tracer]) -> None:
    url = served[0]
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/app.js", "/api/map", "/api/dns/log", "/api/traces", "/metrics"):
            async with session.get(url + path) as response:
                assert response.status == 401, path
        async with session.get(url + "/api/map",
                               headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with session.get(url + "/api/map",
                               headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and (await response.json())["version"] == 1


async def test_the_link_sets_a_cookie_and_the_page_loads(
        served: tuple[str, FakeHub, QueryLog, Tracer]) -> None:
    url = served[0]
    jar = aiohttp.CookieJar(unsafe=True)  # aiohttp keeps no cookies of IP hosts otherwise
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(f"{url}/?token={TOKEN}") as response:
            assert response.status == 200 and str(response.url) == url + "/"  # token gone
            assert "<title>tinykube: live map</title>" in await response.text()
        async with session.get(url + "/app.js") as response:
            assert response.status == 200 and "EventSource" in await response.text()
        async with session.get(f"{url}/?token=wrong") as response:
            assert response.status == 200  # the cookie still holds the right one


async def test_the_stream_sends_a_map_per_change(
        served: tuple[str, FakeHub, QueryLog, Tracer]) -> None:
    url, hub = served[0], served[1]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session, \
            session.get(url + "/api/map/stream") as response:
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert json.loads(first.removeprefix(b"data: "))["version"] == 1
        hub.bump()
        second = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert json.loads(second.removeprefix(b"data: "))["version"] == 2


async def test_the_log_with_filters_and_traces(
        served: tuple[str, FakeHub, QueryLog, Tracer]) -> None:
    url, _, log, tracer = served
    for name in ("a.other.svc.cluster.local.", "b.other.svc.cluster.local."):
        packet = query(name)
        log.add(("10.244.0.9", 5353), packet, nxdomain(packet), 0.001)
    log.add(("10.244.0.7", 5353), query("c."), None, 0.0, note="drill x: drop")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(url + "/api/dns/log", params={"pod": "client"}) as response:
            body = await response.json()
        assert [e["name"] for e in body["entries"]] == ["a.other.svc.cluster.local.",
                                                       "b.other.svc.cluster.local."]
        assert body["enabled"] and body["last"] == 3
        async with session.get(url + "/api/dns/log", params={"since": "2"}) as response:
            (entry,) = (await response.json())["entries"]
        assert entry["rcode"] == "-" and entry["note"] == "drill x: drop" and entry["pod"] == ""
        async with session.get(url + "/api/dns/log", params={"since": "x"}) as response:
            assert response.status == 400
        tracer.on_service(None, {"metadata": {"namespace": "default", "name": "web"},
                                 "spec": {}})
        async with session.get(url + "/api/traces",
                               params={"service": "default/web"}) as response:
            (trace,) = (await response.json())["traces"]
        assert trace["subject"] == "service default/web created"
        async with session.get(url + "/api/explain", params={
                "kind": "pod", "namespace": "default", "name": "client"}) as response:
            assert "No Service selects it." in (await response.json())["text"]
        async with session.get(url + "/api/explain", params={"kind": "node"}) as response:
            assert response.status == 400
