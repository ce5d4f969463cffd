"""metrics.k8s.io served by the API server from scrapes of a (scripted) kubelet endpoint:
lists, gets, selectors, Tables and kube's errors, over real HTTP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tinykube.api import resources
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.app import APIServer
from tinykube.apiserver.bootstrap import bootstrap
from tinykube.apiserver.handlers import ResourceHandler
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

T0 = 1_700_000_000_000
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def scrape(step: int) -> str:
    """Node n1 at `step` (15 s apart): web's app uses a quarter core, db's half a core."""
    ts = T0 + 15_000 * step
    lines = [f"node_cpu_usage_seconds_total {100 + 15 * step} {ts}",
             f"node_memory_working_set_bytes 1073741824 {ts}"]
    for pod, container, share, memory in (("web", "app", 0.25, 52428800),
                                          ("db", "main", 0.5, 1048576)):
        labels = f'container="{container}",namespace="default",pod="{pod}"'
        lines += [f"container_cpu_usage_seconds_total{{{labels}}} {1 + share * 15 * step} {ts}",
                  f"container_memory_working_set_bytes{{{labels}}} {memory} {ts}"]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, Any]]:
    """The API server, a kubelet that answers scrape(0), scrape(1), ... and one round of
    scrapes done per call of the yielded `scrape_round`."""
    answers = iter(range(100))
    failing = [False]

    async def metrics(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer kubelet-secret"
        if failing[0]:
            return web.Response(status=503, text="not now")
        return web.Response(text=scrape(next(answers)))
    kubelet = web.Application()
    kubelet.router.add_get("/metrics/resource", metrics)
    runner = web.AppRunner(kubelet)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    registry.create(resources.must("", "v1", "nodes"), {"metadata": {
        "name": "n1", "labels": {"role": "worker"}}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
    pods = resources.must("", "v1", "pods")
    for name, labels in (("web", {"app": "web"}), ("db", {"app": "db"}), ("idle", {})):
        registry.create(pods, {"metadata": {"name": name, "namespace": "default",
                                            "labels": labels},
                               "spec": {"containers": [{"name": "c", "image": "x"}]}})
    handler = ResourceHandler(registry, kubelet_token="kubelet-secret")
    server = APIServer(handler, token=None, port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session, \
                aiohttp.ClientSession() as scraper:
            async def scrape_round(*, fail: bool = False) -> None:
                failing[0] = fail
                await handler.metrics.scrape(scraper)
            yield session, scrape_round
    finally:
        await server.stop()
        store.close()
        await runner.cleanup()


async def get(session: aiohttp.ClientSession, path: str, **headers: str) -> tuple[int, Any]:
    async with session.get(path, headers=headers) as response:
        return response.status, await response.json()


POD_LIST = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"


async def test_figures_after_two_scrapes(tmp_path: Path) -> None:
    async with cluster(tmp_path) as (session, scrape_round):
        await scrape_round()
        status, body = await get(session, POD_LIST)
        assert (status, body["kind"], body["items"]) == (200, "PodMetricsList", [])
        await scrape_round()
        status, body = await get(session, POD_LIST)
        assert status == 200
        assert [(i["metadata"]["name"], i["window"], i["containers"]) for i in body["items"]] == [
            ("db", "15s", [{"name": "main", "usage": {"cpu": "500m", "memory": "1Mi"}}]),
            ("web", "15s", [{"name": "app", "usage": {"cpu": "250m", "memory": "50Mi"}}])]
        assert body["items"][1]["metadata"]["labels"] == {"app": "web"}
        status, node = await get(session, "/apis/metrics.k8s.io/v1beta1/nodes/n1")
        assert status == 200
        assert (node["usage"], node["metadata"]["labels"]) == (
            {"cpu": "1", "memory": "1Gi"}, {"role": "worker"})


# (id, path, expected names)
SELECTED = [
    ("label", POD_LIST + "?labelSelector=app%3Dweb", ["web"]),
    ("label-set", POD_LIST + "?labelSelector=app+in+(web,db)", ["db", "web"]),
    ("field-name", POD_LIST + "?fieldSelector=metadata.name%3Ddb", ["db"]),
    ("all-namespaces", "/apis/metrics.k8s.io/v1beta1/pods", ["db", "web"]),
    ("other-namespace", "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods", []),
    ("nodes-by-label", "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=role%3Dworker",
     ["n1"]),
    ("nodes-none", "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=role%3Dnone", []),
]


@pytest.mark.parametrize(("path", "names"), [s[1:] for s in SELECTED],
                         ids=[s[0] for s in SELECTED])
async def test_selectors(tmp_path: Path, path: str, names: list[str]) -> None:
    async with cluster(tmp_path) as (session, scrape_round):
        await scrape_round()
        await scrape_round()
        status, body = await get(session, path)
        assert status == 200
        assert [i["metadata"]["name"] for i in body["items"]] == names


# (id, method, path, code, reason, message)
ERRORS = [
    ("pod-missing", "GET", POD_LIST + "/nope", 404, "NotFound", 'pods "nope" not found'),
    ("pod-without-figures", "GET", POD_LIST + "/idle", 404, "NotFound",
     'podmetrics.metrics.k8s.io "default/idle" not found'),
    ("node-missing", "GET", "/apis/metrics.k8s.io/v1beta1/nodes/n9", 404, "NotFound",
     'nodes "n9" not found'),
    ("watch", "GET", POD_LIST + "?watch=true", 405, "MethodNotAllowed",
     'watch is not supported on resources of kind "pods.metrics.k8s.io"'),
    ("create", "POST", POD_LIST, 405, "MethodNotAllowed",
     "the server does not allow this method on the requested resource (POST)"),
    ("bad-field", "GET", POD_LIST + "?fieldSelector=spec.nodeName%3Dn1", 400, "BadRequest",
     '"spec.nodeName" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"'),
    ("bad-label", "GET", POD_LIST + "?labelSelector=a+b", 400, "BadRequest",
     "unable to parse requirement: found 'a b', expected: '=', '!=', '==', 'in', notin'"),
]


@pytest.mark.parametrize(("method", "path", "code", "reason", "message"),
                         [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
async def test_errors_are_kube_statuses(tmp_path: Path, method: str, path: str, code: int,
                                        reason: str, message: str) -> None:
    async with cluster(tmp_path) as (session, scrape_round):
        await scrape_round()
        await scrape_round()
        async with session.request(method, path, json={}) as response:
            body = await response.json()
        assert (response.status, body["kind"], body["reason"], body["code"]) == (
            code, "Status", reason, code)
        assert body["message"] == message


async def test_table_as_metrics_server_converts(tmp_path: Path) -> None:
    async with cluster(tmp_path) as (session, scrape_round):
        await scrape_round()
        await scrape_round()
        status, table = await get(session, POD_LIST, Accept=TABLE)
        assert status == 200
        assert [c["name"] for c in table["columnDefinitions"]] == [
            "Name", "cpu", "memory", "Window"]
        assert [r["cells"] for r in table["rows"]] == [["db", "500m", "1Mi", "15s"],
                                                       ["web", "250m", "50Mi", "15s"]]


async def test_a_failing_kubelet_keeps_its_points_and_is_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tinykube.apiserver.metrics")
    async with cluster(tmp_path) as (session, scrape_round):
        await scrape_round()
        await scrape_round()
        for _ in range(3):
            await scrape_round(fail=True)
        status, body = await get(session, POD_LIST)
        assert status == 200
        assert [i["metadata"]["name"] for i in body["items"]] == ["db", "web"]
        failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert len(failures) == 1 and failures[0].endswith("failed: HTTP 503")
        await scrape_round()
        assert any("works again" in r.getMessage() for r in caplog.records)
