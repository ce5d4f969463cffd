"""The pod warnings' Services with named target ports are cached, and the cache follows every
change of the Services (admission's `named_port_services`; the warnings themselves are in
tests/unit/api/test_netwarnings.py).

Each step writes through the real API server, then creates a pod whose labels the Service
selects and whose container defines no port `http`: the pod gets the warning exactly while a
Service of its namespace targets `http`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.unit.apiserver.harness import running_api

Obj = dict[str, Any]
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def service(target: str | int) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "p", "port": 80, "targetPort": target}]}}


def pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def call(session: aiohttp.ClientSession, method: str, path: str, body: Obj | None = None,
               headers: dict[str, str] = JSON) -> list[str]:
    """Send one request (it must succeed); the Warning headers of the answer."""
    async with session.request(method, path, headers=headers,
                               data=None if body is None else orjson.dumps(body)) as reply:
        assert reply.status < 300, await reply.text()
        return reply.headers.getall("Warning", [])


async def test_pod_warnings_follow_the_services_named_target_ports(tmp_path: Path) -> None:
    services, pods = "/api/v1/namespaces/default/services", "/api/v1/namespaces/default/pods"
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await call(session, "POST", "/api/v1/namespaces/kube-public/services", service("http"))
        seen = [bool(await call(session, "POST", pods, pod("other-namespace")))]
        await call(session, "POST", services, service("http"))
        seen.append(bool(await call(session, "POST", pods, pod("named"))))
        seen.append(bool(await call(session, "POST", pods, pod("named-again"))))
        await call(session, "PATCH", f"{services}/web", {"spec": {"ports": [
            {"name": "p", "port": 80, "targetPort": 8080}]}}, MERGE)
        seen.append(bool(await call(session, "POST", pods, pod("numbered"))))
        await call(session, "PATCH", f"{services}/web", {"spec": {"ports": [
            {"name": "p", "port": 80, "targetPort": "http"}]}}, MERGE)
        seen.append(bool(await call(session, "POST", pods, pod("named-back"))))
        await call(session, "DELETE", f"{services}/web")
        seen.append(bool(await call(session, "POST", pods, pod("deleted"))))
    assert seen == [False, True, True, False, True, False]
