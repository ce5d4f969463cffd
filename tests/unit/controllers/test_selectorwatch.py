"""`selectorwatch.decide`: wait out the grace period, then report a selector matching no pod."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.apiserver.harness import NOW, running_api
from tinykube.api import resources
from tinykube.client.config import ClientConfig
from tinykube.client.rest import RESTClient
from tinykube.controllers.selectorwatch import (
    GRACE,
    REASON,
    Decision,
    SelectorWatchController,
    decide,
)

CREATED = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
T0 = CREATED.timestamp()


def service(selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "nginx", "namespace": "default", "uid": "u1",
                         "creationTimestamp": CREATED.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"selector": selector, **spec}}


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "labels": labels}}


NOTHING = ("selector app=nginx2 matches no pod in namespace default 60s after the Service was "
           "created; nearest: pod web-0 has app=nginx (wants app=nginx2); fix the selector or "
           "the pods' labels (the Service has no endpoints until they agree)")


@pytest.mark.parametrize(("svc", "pods", "now", "expected"), [
    pytest.param(service({"app": "nginx2"}), [pod("web-0", app="nginx")], T0 + 10,
                 Decision(requeue_after=GRACE - 10), id="within-grace-waits"),
    pytest.param(service({"app": "nginx2"}), [pod("web-0", app="nginx"),
                                              pod("x", tier="db")], T0 + GRACE,
                 Decision(NOTHING), id="after-grace-reports-nearest"),
    pytest.param(service({"app": "nginx"}), [pod("web-0", app="nginx")], T0 + GRACE,
                 Decision(), id="matching-pod"),
    pytest.param(service({"app": "nginx"}), [], T0 + 2 * GRACE,
                 Decision("selector app=nginx matches no pod in namespace default 60s after "
                          "the Service was created; fix the selector or the pods' labels (the "
                          "Service has no endpoints until they agree)"), id="no-pods-at-all"),
    pytest.param(service(None), [], T0 + GRACE, Decision(), id="selector-less"),
    pytest.param({**service({"k8s-app": "kube-dns"}), "metadata": {
        "name": "kube-dns", "labels": {"kubernetes.io/cluster-service": "true"}}}, [],
        T0 + GRACE, Decision(), id="cluster-add-on"),
    pytest.param(service({"app": "x"}, type="ExternalName"), [], T0 + GRACE, Decision(),
                 id="external-name"),
])
def test_decide(svc: dict[str, Any], pods: list[dict[str, Any]], now: float,
                expected: Decision) -> None:
    assert decide(svc, pods, now) == expected


async def test_event_recorded_through_the_api(tmp_path: Path) -> None:
    """Against the real API server: the Event appears on the Service, once, after the grace."""
    async with contextlib.AsyncExitStack() as stack:
        session, _store = await stack.enter_async_context(running_api(tmp_path,
                                                                      bootstrapped=True))
        config = ClientConfig(server=str(session._base_url))
        await _grace_then_event(await stack.enter_async_context(RESTClient(config)))


async def _grace_then_event(client: RESTClient) -> None:
    services = resources.must("", "v1", "services")
    pods, events = resources.must("", "v1", "pods"), resources.must("", "v1", "events")
    await client.create(services, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "nginx2"}, "ports": [{"port": 80}]}}, "default")
    await client.create(pods, {"metadata": {"name": "web-0", "labels": {"app": "nginx"}},
                               "spec": {"containers": [{"name": "c", "image": "x"}]}}, "default")
    now = [NOW.timestamp() + 1]
    controller = SelectorWatchController(client, grace=60, clock=lambda: now[0])
    tasks = controller.start()
    try:
        for _ in range(100):  # within the grace period: nothing, a requeue
            if controller.queue.delayed():
                break
            await asyncio.sleep(0.02)
        assert controller.queue.delayed() == 1  # web (kube-dns is an add-on)
        listed = await client.list(events, "default")
        assert not [e for e in listed["items"] if e["reason"] == REASON]
        now[0] = NOW.timestamp() + 61
        controller.enqueue({"metadata": {"name": "web", "namespace": "default"}})
        found: list[dict[str, Any]] = []
        for _ in range(200):
            listed = await client.list(events, "default")
            found = [e for e in listed["items"] if e["reason"] == REASON]
            if found:
                break
            await asyncio.sleep(0.02)
        assert [(e["type"], e["involvedObject"]["name"]) for e in found] == [("Warning", "web")]
        assert "nearest: pod web-0 has app=nginx (wants app=nginx2)" in found[0]["message"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
