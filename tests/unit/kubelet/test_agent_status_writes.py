"""The node agent's status write never undoes a condition someone else set since its copy.

The agent computes a pod's status from its informer's copy. Its write is a strategic merge
patch of the conditions it owns (`kubelet.status.status_patch`); it once merge-patched
`conditions` whole, readiness-gate conditions included with the copy's values. Against the
real API server, with the agent's cache held at an old version of the pod as a lagging
informer would hold it: the gate set False after that version must stay False, and a write
from the current version still goes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.unit.apiserver.harness import running_api
from tinykube.client.config import ClientConfig
from tinykube.client.rest import RESTClient
from tinykube.kubelet.agent import NodeAgent

HOLD = "example.com/hold"
POD = "/api/v1/namespaces/default/pods/p"


async def send(session: aiohttp.ClientSession, method: str, path: str, body: Any = None,
               content_type: str = "application/json") -> dict[str, Any]:
    async with session.request(method, path, headers={"Content-Type": content_type},
                               data=None if body is None else orjson.dumps(body)) as reply:
        assert reply.status < 300, await reply.text()
        answer: dict[str, Any] = orjson.loads(await reply.read())
        return answer


async def set_gate(session: aiohttp.ClientSession, value: str) -> dict[str, Any]:
    return await send(session, "PATCH", f"{POD}/status",
                      {"status": {"conditions": [{"type": HOLD, "status": value}]}},
                      "application/strategic-merge-patch+json")


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}


async def test_a_status_write_from_a_stale_copy_keeps_the_gate_set_since(
        tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", "/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"nodeName": "n1", "readinessGates": [{"conditionType": HOLD}],
                     "containers": [{"name": "c", "image": "nginx"}]}})
        client = RESTClient(ClientConfig(server=str(session._base_url)))
        agent = NodeAgent(client, "n1", pod_cidr="127.244.0.0/24", root_dir=tmp_path / "n1",
                          kubelet_token="t")
        try:
            gated = await set_gate(session, "True")
            agent.pods.cache.put("default/p", gated)  # what the agent's informer holds
            await agent.sync("default/p")
            assert conditions(await send(session, "GET", POD))["Ready"] == "True"
            await set_gate(session, "False")
            await agent.sync("default/p")  # again from the old copy (its informer lags)
            after = conditions(await send(session, "GET", POD))
            assert after[HOLD] == "False", after
            agent.pods.cache.put("default/p", await send(session, "GET", POD))
            await agent.sync("default/p")  # the informer caught up: the agent writes
            assert conditions(await send(session, "GET", POD)) == {
                **after, HOLD: "False", "Ready": "False"}
        finally:
            await client.close()
