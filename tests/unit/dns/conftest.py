"""Fixtures for the DNS tests: `start_server` (any zone config) and `live` (the default zone)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dnstest import Live, StartServer, make_model, make_responder

from tinykube.dns.server import DNSServer
from tinykube.dns.zone import ClusterModel


@pytest.fixture(params=[True, False], ids=["batched-udp", "per-datagram-udp"])
async def start_server(request: pytest.FixtureRequest) -> AsyncIterator[StartServer]:
    """`await start_server(model=None, **zone_config)` -> Live; closed (and checked) afterwards.
    Every test runs with both UDP readers: batched (recvmmsg) and the loop's datagram transport."""
    servers: list[DNSServer] = []

    async def start(model: ClusterModel | None = None, *, forwarder: Any = None,
                    tcp: Any = None, **config: Any) -> Live:
        responder = make_responder(make_model() if model is None else model, **config)
        server = DNSServer(responder, forwarder=forwarder, tcp=tcp,
                           batch=request.param)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return Live(server)

    yield start
    for server in servers:
        await server.close()
        assert server.errors == []


@pytest.fixture
async def live(start_server: StartServer) -> Live:
    result: Live = await start_server()
    return result
