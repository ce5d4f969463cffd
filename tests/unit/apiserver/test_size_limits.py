"""The size limits kube enforces, through the real API server: each answer is a Status.

- ConfigMap and Secret values: 1 MiB in all (422, `Too long` on `[]` or `data`);
- a request body: 3 MiB (413, kube-apiserver's words);
- an object as stored: 1.5 MiB, etcd's default request limit (413; kube-apiserver passes
  etcd's `etcdserver: request is too large` on as a 500, see `store.cache`);
- a container's request above its limit (422).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.apiserver.harness import running_api

Obj = dict[str, Any]
MIB = 1024 * 1024
NS = "/api/v1/namespaces/default"


def pod(env_bytes: int = 0, resources: Obj | None = None) -> Obj:
    container: Obj = {"name": "c", "image": "nginx"}
    if env_bytes:
        container["env"] = [{"name": "BIG", "value": "x" * env_bytes}]
    if resources:
        container["resources"] = resources
    return {"metadata": {"name": "big"}, "spec": {"containers": [container]}}


def secret(raw_bytes: int) -> Obj:
    return {"metadata": {"name": "big"},
            "data": {"blob": base64.b64encode(b"x" * raw_bytes).decode()}}


@pytest.mark.parametrize(("collection", "obj", "code", "message"), [
    pytest.param("configmaps", {"metadata": {"name": "big"}, "data": {"a": "x" * (MIB + 1)}},
                 422, 'ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 '
                 "bytes", id="configmap-over-1mib"),
    pytest.param("secrets", secret(MIB + 1), 422,
                 'Secret "big" is invalid: data: Too long: may not be more than 1048576 bytes',
                 id="secret-over-1mib"),
    pytest.param("secrets", secret(MIB), 201, None, id="secret-of-1mib"),
    pytest.param("pods", pod(env_bytes=1600 * 1024), 413,
                 "etcdserver: request is too large (the object is ", id="object-over-1.5mib"),
    pytest.param("pods", pod(env_bytes=1400 * 1024), 201, None, id="object-under-1.5mib"),
    pytest.param("pods", pod(env_bytes=3 * MIB), 413,
                 "Request entity too large: limit is 3145728", id="body-over-3mib"),
    pytest.param("pods", pod(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}), 422,
                 'Pod "big" is invalid: spec.containers[0].resources.requests: Invalid value: '
                 '"2": must be less than or equal to cpu limit of 1', id="cpu-request-over-limit"),
])
async def test_size_limits(tmp_path: Path, collection: str, obj: Obj, code: int,
                           message: str | None) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, store):
        async with session.post(f"{NS}/{collection}", data=orjson.dumps(obj),
                                headers={"Content-Type": "application/json"}) as reply:
            body = orjson.loads(await reply.read())
        stored = store.get(f"core/{collection}", "default", "big")
    assert reply.status == code, body
    if message is None:
        assert stored is not None
        return
    assert body["kind"] == "Status" and body["code"] == code
    assert body["message"].startswith(message)
    assert stored is None


async def test_an_update_growing_past_the_limit_leaves_the_object(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, store):
        async with session.post(f"{NS}/pods", data=orjson.dumps(pod()),
                                headers={"Content-Type": "application/json"}) as reply:
            assert reply.status == 201
        before = store.get("core/pods", "default", "big")
        grown = {"spec": {"containers": [{"name": "c", "image": "x" * (1600 * 1024)}]}}
        async with session.patch(f"{NS}/pods/big", data=orjson.dumps(grown), headers={
                "Content-Type": "application/strategic-merge-patch+json"}) as reply:
            body = orjson.loads(await reply.read())
        after = store.get("core/pods", "default", "big")
    assert (reply.status, body["reason"]) == (413, "RequestEntityTooLarge"), body
    assert after is not None and before is not None and after.rv == before.rv
