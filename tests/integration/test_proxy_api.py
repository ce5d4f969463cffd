"""The proxy against a real `tinykube up` API server: informers feed the syncer, traffic to the
cluster IP reaches the EndpointSlices' ready endpoints, readiness changes take effect, and a port
that cannot be bound becomes a Warning Event on its Service."""

from __future__ import annotations

import asyncio
import collections
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "proxy"))

from proxynet import EchoServer, hello, until
from proxyobjects import endpoint, endpoint_slice, port, service

from tinykube.api.resources import lookup
from tinykube.client.config import load
from tinykube.client.rest import RESTClient
from tinykube.proxy.app import (
    BIND_FAILURE_REASON,
    ProxyOptions,
    bind_failure_reporter,
    start_proxy,
)

SERVICES = lookup("", "v1", "services")
SLICES = lookup("discovery.k8s.io", "v1", "endpointslices")
EVENTS = lookup("", "v1", "events")


def _create_body(obj: dict[str, Any]) -> dict[str, Any]:
    body = {**obj, "spec": dict(obj.get("spec") or {})} if "spec" in obj else dict(obj)
    if "spec" in body:
        body["spec"].pop("clusterIP", None)
        body["spec"].pop("clusterIPs", None)
    return body


@pytest.fixture
def squatter() -> Iterator[int]:
    """A NodePort-range TCP port on 127.0.0.1 that somebody else already listens on."""
    with socket.socket() as sock:
        for number in range(32767, 30000, -1):
            try:
                sock.bind(("127.0.0.1", number))
                break
            except OSError:
                continue
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.slow
async def test_proxy_follows_the_api(cluster: Any, squatter: int) -> None:
    assert SERVICES and SLICES and EVENTS
    servers = [await EchoServer(f"b{i}").start() for i in range(2)]
    async with RESTClient(load(str(cluster.kubeconfig))) as client:
        web = await client.create(SERVICES, _create_body(service("web", None, port(18080, "http"))),
                                  "default")
        slices = [endpoint_slice("web", [endpoint(s.address[0])], [port(s.address[1], "http")],
                                 name=f"web-{i}") for i, s in enumerate(servers)]
        for slice_ in slices:
            await client.create(SLICES, slice_, "default")
        running = await start_proxy(client, ProxyOptions(min_sync_interval=0.01),
                                    on_bind_failure=bind_failure_reporter(client, print))
        try:
            key = (web["spec"]["clusterIP"], 18080, "TCP")
            rules = running.controller.syncer.applied
            await until(lambda: key in rules and len(rules[key].endpoints) == 2, 10)
            names = collections.Counter([await hello(*key[:2]) for _ in range(10)])
            assert names == {"b0": 5, "b1": 5}

            # readiness: b0 not ready -> only b1 serves new connections
            slices[0]["endpoints"][0]["conditions"] = {"ready": False}
            await client.update(SLICES, slices[0], "default")
            await until(lambda: len(rules[key].endpoints) == 1, 10)
            assert {await hello(*key[:2]) for _ in range(4)} == {"b1"}

            # a NodePort on an occupied port is reported as an Event, not skipped
            await client.create(SERVICES, _create_body(service(
                "taken", None, port(18081, "http", node_port=squatter), type_="NodePort")),
                "default")
            await until(lambda: ("127.0.0.1", squatter, "TCP") in running.failing, 10)
            await until_event(client, "taken")
        finally:
            await running.close()
            for server in servers:
                await server.close()
    assert running.backend.open_sockets == 0 and running.backend.listeners == {}


async def until_event(client: RESTClient, name: str) -> None:
    found: list[dict[str, Any]] = []

    async def poll() -> None:
        assert EVENTS is not None
        listed = await client.list(EVENTS, "default")
        found[:] = [e for e in listed["items"] if e["involvedObject"]["name"] == name
                    and e["reason"] == BIND_FAILURE_REASON]

    for _ in range(100):  # bounded: 100 polls, 50 ms apart
        await poll()
        if found:
            break
        await asyncio.sleep(0.05)
    assert found and found[0]["type"] == "Warning"
    assert "Address already in use" in found[0]["message"]
