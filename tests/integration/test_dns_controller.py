"""The DNS controller against a real `tinykube up` API server: informers feed the model, the
model is marked synced, and API changes show in the next answer."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "dns"))

from objects import endpoint, endpoint_slice, namespace, port, service

from tinykube.api.resources import lookup
from tinykube.client.config import load
from tinykube.client.rest import RESTClient
from tinykube.dns.app import DNSOptions, RunningDNS, start_dns

SERVICES = lookup("", "v1", "services")
SLICES = lookup("discovery.k8s.io", "v1", "endpointslices")
NAMESPACES = lookup("", "v1", "namespaces")
D = "default.svc.cluster.local."


async def ask(running: RunningDNS, name: str) -> tuple[str, list[str]]:
    host, port_number = running.address
    response = await dns.asyncquery.udp(dns.message.make_query(name, "A"), host,
                                        port=port_number, timeout=3)
    return dns.rcode.to_text(response.rcode()), sorted(
        rdata.to_text() for rrset in response.answer for rdata in rrset)


async def until_changed(running: RunningDNS, action: Any) -> None:
    """Run an API write and wait until the model has applied the resulting event."""
    changed = asyncio.Event()
    running.model.add_listener(lambda _keys: changed.set())
    await action
    await asyncio.wait_for(changed.wait(), 5)


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items()
            if k in ("name", "namespace", "labels", "generateName")}
    return {**obj, "metadata": meta}


@pytest.mark.slow
async def test_controller_follows_the_api(cluster: Any) -> None:
    assert SERVICES and SLICES and NAMESPACES
    options = DNSOptions(listen=("127.0.0.1", 0), upstream=None)
    async with RESTClient(load(str(cluster.kubeconfig))) as client:
        running = await start_dns(options, client)
        try:
            await asyncio.wait_for(_wait_synced(running), 10)
            assert (await ask(running, "nginx." + D))[0] == "NXDOMAIN"
            # Selector-less, with a slice of our own: the cluster's controllers leave both alone.
            headless = _strip(service("nginx", headless=True, ports=(port("web", 80),)))
            del headless["spec"]["selector"]
            await until_changed(running, client.create(SERVICES, headless, "default"))
            assert (await ask(running, "nginx." + D))[0] == "NXDOMAIN"  # no ready endpoints
            eps = _strip(endpoint_slice("nginx", [endpoint("10.244.1.10", "web-0")],
                                        (port("web", 80),)))
            eps["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] = "test"
            await until_changed(running, client.create(SLICES, eps, "default"))
            assert await ask(running, "web-0.nginx." + D) == ("NOERROR", ["10.244.1.10"])
            await until_changed(running, client.delete(SERVICES, "nginx", "default"))
            assert (await ask(running, "nginx." + D))[0] == "NXDOMAIN"
            await until_changed(running, client.create(NAMESPACES, _strip(namespace("fresh"))))
            assert (await ask(running, "fresh.svc.cluster.local."))[0] == "NOERROR"
            assert running.server.errors == []
        finally:
            await running.close()


async def _wait_synced(running: RunningDNS) -> None:
    synced = asyncio.Event()
    running.model.add_listener(lambda keys: synced.set() if ("synced",) in keys else None)
    if not running.model.synced:
        await synced.wait()
