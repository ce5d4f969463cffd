"""The controller runner (base.py) and the EndpointSlice controller's sync with a fake client."""

from __future__ import annotations

from typing import Any

import pytest
from epobjects import pod, service

from tinykube.api import errors
from tinykube.client import controller as base
from tinykube.client.informer import object_key
from tinykube.client.workqueue import WorkQueue
from tinykube.controllers import endpointslice


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    """Records writes; `fail` maps a slice name (or generateName) to the error to raise."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.actions: list[tuple[str, str]] = []
        self.fail = fail or {}
        self.rv = 100

    def _name(self, obj: dict[str, Any]) -> str:
        return obj["metadata"].get("name") or obj["metadata"]["generateName"]

    async def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None
                     ) -> dict[str, Any]:
        return self._write("create", obj)

    async def update(self, res: Any, obj: dict[str, Any], namespace: str | None = None
                     ) -> dict[str, Any]:
        return self._write("update", obj)

    async def delete(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.actions.append(("delete", name))
        if name in self.fail:
            raise self.fail[name]
        return {}

    def _write(self, verb: str, obj: dict[str, Any]) -> dict[str, Any]:
        name = self._name(obj)
        self.actions.append((verb, name))
        if name in self.fail:
            raise self.fail[name]
        self.rv += 1
        meta = {**obj["metadata"], "name": obj["metadata"].get("name") or f"{name}x{self.rv}",
                "resourceVersion": str(self.rv)}
        return {**obj, "metadata": meta}


class Recorder(base.Controller):
    name = "recorder"

    def __init__(self, outcomes: list[Exception | None], queue: WorkQueue) -> None:
        super().__init__(FakeClient(), [], queue=queue)  # type: ignore[arg-type]
        self.outcomes = outcomes

    async def sync(self, key: str) -> None:
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome


@pytest.mark.parametrize(("outcome", "delayed", "backoffs"), [
    pytest.param(None, 0, 0, id="success"),
    pytest.param(RuntimeError("boom"), 1, 1, id="error"),
    # a stale cache is retried soon, without growing the key's backoff
    pytest.param(base.StaleCacheError("behind"), 1, 0, id="stale-cache"),
])
async def test_process_next_forgets_or_requeues(outcome: Exception | None, delayed: int,
                                                backoffs: int) -> None:
    clock = FakeClock()
    queue = WorkQueue(clock=clock)
    controller = Recorder([outcome], queue)
    queue.add("ns/a")
    await controller.process_next()
    assert queue.delayed() == delayed and queue.num_requeues("ns/a") == backoffs
    assert len(queue) == 0
    if isinstance(outcome, base.StaleCacheError):
        clock.now += base.STALE_RETRY_SECONDS
        queue.release_due()
        assert len(queue) == 1


async def test_key_dropped_after_max_retries() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock=clock)
    controller = Recorder([RuntimeError("boom")] * 3, queue)
    controller.max_retries = 2
    queue.add("ns/a")
    for _ in range(3):
        await controller.process_next()
        clock.now += 10
        queue.release_due()
    assert len(queue) == 0 and queue.delayed() == 0 and queue.num_requeues("ns/a") == 0


async def test_apply_plan_carries_on_and_aggregates_errors() -> None:
    conflict = errors.Conflict("stale")
    client = FakeClient(fail={"old": errors.InternalError("down"), "b": conflict})
    plan = base.Plan(create=[{"metadata": {"generateName": "web-"}}],
                     update=[{"metadata": {"name": "b"}}, {"metadata": {"name": "c"}}],
                     delete=["old", "gone"])
    applied = await base.apply_plan(client, endpointslice.ENDPOINT_SLICES, "default", plan)
    assert client.actions == [("delete", "old"), ("delete", "gone"), ("create", "web-"),
                              ("update", "b"), ("update", "c")]
    assert applied.deleted == ["gone"]
    assert [o["metadata"]["name"] for o in applied.created + applied.updated] == ["web-x101", "c"]
    with pytest.raises(ExceptionGroup) as caught:
        applied.raise_failures()
    assert len(caught.value.exceptions) == 2


async def test_sync_writes_then_waits_for_its_own_write() -> None:
    client = FakeClient()
    controller = endpointslice.EndpointSliceController(client)  # type: ignore[arg-type]
    svc = service()
    controller.services.cache.put(object_key(svc), svc)
    for p in (pod("a"), pod("other", app="db")):
        controller.pods.cache.put(object_key(p), p)

    await controller.sync("default/web")
    assert client.actions == [("create", "web-")]
    with pytest.raises(base.StaleCacheError):
        await controller.sync("default/web")  # the informer has not shown our slice yet

    created = {**svc, "kind": "EndpointSlice", "metadata": {
        "name": "web-x101", "namespace": "default", "resourceVersion": "101",
        "labels": {"kubernetes.io/service-name": "web"}}}
    controller.slices.cache.put(object_key(created), created)
    controller._on_slice(created)
    assert len(controller.queue) == 0  # our own echo does not trigger a resync


def test_pod_events_enqueue_matching_services() -> None:
    controller = endpointslice.EndpointSliceController(FakeClient())  # type: ignore[arg-type]
    for svc in (service("web"), service("db"), service("ext", selector={})):
        controller.glue.on_service(svc)
    while len(controller.queue):
        controller.queue.done(controller.queue.get_nowait() or "")
    controller.glue.on_pod(pod("a"))
    old, new = pod("b", app="web"), pod("b", app="db")
    controller.glue.on_pod_update(old, new)  # relabelled: both services resync
    controller.glue.on_pod_update(new, {**new, "metadata": {**new["metadata"],
                                                            "resourceVersion": "9"}})
    keys = [controller.queue.get_nowait() for _ in range(len(controller.queue))]
    assert keys == ["default/web", "default/db"]
