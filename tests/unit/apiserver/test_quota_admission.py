"""ResourceQuota and LimitRanger admission through the real API server.

A quota's status is written as the ResourceQuota controller would write it (hard from spec,
used zero), then objects are created over HTTP: what fits is admitted and charged to
`status.used` at once, what does not is refused 403 with kube-apiserver's text; LimitRange
defaults appear in created pods, and its bounds refuse pods and claims.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.unit.apiserver.harness import running_api

Obj = dict[str, Any]
NS = "/api/v1/namespaces/default"
JSON = {"Content-Type": "application/json"}


def pod(name: str, **resources: Obj) -> Obj:
    container: Obj = {"name": "c", "image": "nginx"}
    if resources:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}


async def send(session: aiohttp.ClientSession, method: str, path: str,
               body: Obj | None = None) -> tuple[int, Obj]:
    data = orjson.dumps(body) if body is not None else None
    async with session.request(method, path, data=data, headers=JSON) as reply:
        return reply.status, orjson.loads(await reply.read())


async def make_quota(session: aiohttp.ClientSession, hard: dict[str, str],
                     name: str = "q", **spec: Any) -> None:
    status, created = await send(session, "POST", f"{NS}/resourcequotas",
                                 {"metadata": {"name": name}, "spec": {"hard": hard, **spec}})
    assert status == 201, created
    created["status"] = {"hard": hard, "used": dict.fromkeys(hard, "0")}
    status, written = await send(session, "PUT", f"{NS}/resourcequotas/{name}/status", created)
    assert status == 200, written


async def used(session: aiohttp.ClientSession, name: str = "q") -> dict[str, str]:
    _, got = await send(session, "GET", f"{NS}/resourcequotas/{name}")
    return dict(got["status"]["used"])


async def test_third_pod_over_a_pods_quota_is_forbidden(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"pods": "2"})
        for name in ("a", "b"):
            status, created = await send(session, "POST", f"{NS}/pods", pod(name))
            assert status == 201, created
        assert await used(session) == {"pods": "2"}
        status, refused = await send(session, "POST", f"{NS}/pods", pod("p"))
        assert status == 403
        assert refused["reason"] == "Forbidden"
        assert refused["message"] == ('pods "p" is forbidden: exceeded quota: q, requested: '
                                      'pods=1, used: pods=2, limited: pods=2')
        assert refused["details"] == {"name": "p", "kind": "pods"}
        assert await used(session) == {"pods": "2"}


async def test_concurrent_creates_cannot_overshoot(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"pods": "3"})
        replies = await asyncio.gather(*(send(session, "POST", f"{NS}/pods", pod(f"p{i}"))
                                         for i in range(8)))
        assert sorted(status for status, _ in replies) == [201] * 3 + [403] * 5
        assert await used(session) == {"pods": "3"}


async def test_dry_run_is_checked_but_not_charged(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"pods": "1"})
        status, _ = await send(session, "POST", f"{NS}/pods?dryRun=All", pod("a"))
        assert status == 201
        assert await used(session) == {"pods": "0"}


async def test_compute_quota_needs_requests_and_limits(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"requests.cpu": "1", "limits.cpu": "2"})
        status, refused = await send(session, "POST", f"{NS}/pods", pod("p"))
        assert status == 403
        assert refused["message"] == ('pods "p" is forbidden: failed quota: q: must specify '
                                      'limits.cpu for: c; requests.cpu for: c')
        # a limit alone is also its request (API defaulting runs before the quota)
        status, created = await send(session, "POST", f"{NS}/pods",
                                     pod("a", limits={"cpu": "600m"}))
        assert status == 201, created
        assert await used(session) == {"limits.cpu": "600m", "requests.cpu": "600m"}
        status, refused = await send(session, "POST", f"{NS}/pods",
                                     pod("b", limits={"cpu": "500m"}))
        assert status == 403
        assert refused["message"] == (
            'pods "b" is forbidden: exceeded quota: q, requested: requests.cpu=500m, '
            'used: requests.cpu=600m, limited: requests.cpu=1')


async def test_service_update_is_charged_what_it_adds(tmp_path: Path) -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"services": "5", "services.nodeports": "1"})
        status, created = await send(session, "POST", f"{NS}/services", svc)
        assert status == 201, created
        created["spec"]["type"] = "NodePort"
        created["spec"]["ports"].append({"name": "b", "port": 81})
        created["spec"]["ports"][0]["name"] = "a"
        status, refused = await send(session, "PUT", f"{NS}/services/s", created)
        assert status == 403, refused
        assert refused["message"] == (
            'services "s" is forbidden: exceeded quota: q, requested: services.nodeports=2, '
            'used: services.nodeports=0, limited: services.nodeports=1')
        assert await used(session) == {"services": "1", "services.nodeports": "0"}


async def test_limit_range_defaults_and_annotation(tmp_path: Path) -> None:
    limits = {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "1", "memory": "256Mi"},
         "defaultRequest": {"cpu": "250m"}}]}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, created = await send(session, "POST", f"{NS}/limitranges", limits)
        assert status == 201, created
        status, made = await send(session, "POST", f"{NS}/pods",
                                  pod("p", limits={"memory": "128Mi"}))
        assert status == 201, made
    assert made["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "memory": "128Mi"},
        "requests": {"cpu": "250m", "memory": "128Mi"}}
    assert made["metadata"]["annotations"] == {
        "kubernetes.io/limit-ranger": "LimitRanger plugin set: cpu request for container c; "
                                      "cpu limit for container c"}


@pytest.mark.parametrize(("item", "resources", "message"), [
    pytest.param({"type": "Container", "max": {"cpu": "1"}}, {"limits": {"cpu": "2"}},
                 "maximum cpu usage per Container is 1, but limit is 2", id="container-max"),
    pytest.param({"type": "Container", "min": {"cpu": "500m", "memory": "1Gi"}},
                 {"requests": {"cpu": "100m", "memory": "1Gi"}},
                 "minimum cpu usage per Container is 500m, but request is 100m",
                 id="container-min"),
    pytest.param({"type": "Pod", "max": {"cpu": "1", "memory": "1Gi"}},
                 {"limits": {"cpu": "2", "memory": "2Gi"}},
                 "[maximum cpu usage per Pod is 1, but limit is 2, "
                 "maximum memory usage per Pod is 1Gi, but limit is 2Gi]", id="pod-max"),
])
async def test_limit_range_bounds_refuse_pods(tmp_path: Path, item: Obj, resources: Obj,
                                              message: str) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", f"{NS}/limitranges",
                   {"metadata": {"name": "lr"}, "spec": {"limits": [item]}})
        status, refused = await send(session, "POST", f"{NS}/pods", pod("p", **resources))
    assert status == 403, refused
    assert refused["message"] == f'pods "p" is forbidden: {message}'


async def test_limit_range_bounds_refuse_claims(tmp_path: Path) -> None:
    claim = {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", f"{NS}/limitranges", {"metadata": {"name": "lr"}, "spec": {
            "limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}}]}})
        status, refused = await send(session, "POST", f"{NS}/persistentvolumeclaims", claim)
    assert status == 403, refused
    assert refused["message"] == ('persistentvolumeclaims "data" is forbidden: maximum storage '
                                  'usage per PersistentVolumeClaim is 2Gi, but request is 5Gi')


async def test_refused_service_releases_its_node_port(tmp_path: Path) -> None:
    svc = {"metadata": {"name": "s"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"services.nodeports": "0"})
        status, refused = await send(session, "POST", f"{NS}/services", svc)
        assert status == 403, refused
        status, _ = await send(session, "DELETE", f"{NS}/resourcequotas/q")
        assert status == 200
        status, created = await send(session, "POST", f"{NS}/services", svc)
        assert status == 201, created
        assert created["spec"]["ports"][0]["nodePort"] == 30080


async def test_service_refused_for_a_taken_node_port_is_not_charged(tmp_path: Path) -> None:
    def svc(name: str) -> Obj:
        return {"metadata": {"name": name}, "spec": {
            "type": "NodePort", "ports": [{"port": 80, "nodePort": 30081}]}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_quota(session, {"services": "5"})
        status, created = await send(session, "POST", f"{NS}/services", svc("a"))
        assert status == 201, created
        status, refused = await send(session, "POST", f"{NS}/services", svc("b"))
        assert status == 422, refused
        assert await used(session) == {"services": "1"}
