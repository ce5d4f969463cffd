"""The node agent's reads of its pods' objects, against the real API server: one watch per
ConfigMap or Secret a pod mounts (`metadata.name=NAME` in its namespace), started with the
first pod that names it and stopped with the last; claims and volumes fetched by GET."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.unit.apiserver.harness import running_api
from tinykube.client.config import ClientConfig
from tinykube.client.rest import RESTClient
from tinykube.kubelet.podobjects import PodObjects


async def send(session: aiohttp.ClientSession, method: str, path: str,
               body: Any = None) -> dict[str, Any]:
    async with session.request(method, path, headers={"Content-Type": "application/json"},
                               data=None if body is None else orjson.dumps(body)) as reply:
        assert reply.status < 300, await reply.text()
        answer: dict[str, Any] = orjson.loads(await reply.read())
        return answer


def _pod(uid: str, *volumes: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": f"p-{uid}", "namespace": "default", "uid": uid},
            "spec": {"volumes": list(volumes)}}


CM = {"name": "c", "configMap": {"name": "cm"}}
SECRET = {"name": "s", "secret": {"secretName": "sec"}}
CLAIM = {"name": "d", "persistentVolumeClaim": {"claimName": "claim"}}


async def test_one_watch_per_object_while_a_pod_uses_it(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", "/api/v1/namespaces/default/configmaps",
                   {"metadata": {"name": "cm"}, "data": {"k": "v1"}})
        client = RESTClient(ClientConfig(server=str(session._base_url)))
        changed: list[tuple[str, str]] = []
        secret_seen = asyncio.Event()

        def on_change(plural: str, obj: dict[str, Any]) -> None:
            changed.append((plural, obj["metadata"]["name"]))
            if plural == "secrets":
                secret_seen.set()
        objects = PodObjects(client, on_change)
        try:
            first, second = _pod("u1", CM, SECRET), _pod("u2", CM)
            objects.track(first)
            objects.track(second)
            await objects.wait_synced(first)
            assert objects.get("configmaps", "default", "cm")["data"] == {"k": "v1"}
            assert objects.get("secrets", "default", "sec") is None  # not there yet
            assert len(objects._watches) == 2  # cm once for both pods
            await send(session, "POST", "/api/v1/namespaces/default/secrets",
                       {"metadata": {"name": "sec"}, "stringData": {"a": "b"}})
            async with asyncio.timeout(5):
                await secret_seen.wait()
            assert objects.get("secrets", "default", "sec") is not None
            assert ("secrets", "sec") in changed and ("configmaps", "cm") in changed
            objects.forget(first)
            assert set(objects._watches) == {("configmaps", "default", "cm")}
            objects.forget(second)
            assert objects._watches == {}
        finally:
            objects.close()
            await client.close()


async def test_claims_and_volumes_are_fetched(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        client = RESTClient(ClientConfig(server=str(session._base_url)))
        objects = PodObjects(client, lambda _plural, _obj: None)
        try:
            pod = _pod("u1", CLAIM)
            await objects.fetch_claims(pod)
            assert objects.claim("default", "claim") is None
            await send(session, "POST", "/api/v1/persistentvolumes", {
                "metadata": {"name": "pv"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "hostPath": {"path": str(tmp_path)}}})
            await send(session, "POST", "/api/v1/namespaces/default/persistentvolumeclaims", {
                "metadata": {"name": "claim"},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv",
                         "resources": {"requests": {"storage": "1Gi"}}}})
            await objects.fetch_claims(pod)
            assert objects.claim("default", "claim")["spec"]["volumeName"] == "pv"
            assert objects.volume("pv")["spec"]["hostPath"]["path"] == str(tmp_path)
        finally:
            objects.close()
            await client.close()
