"""Garbage collector: orphan detection as a table, and syncs against a fake client (an orphan
is deleted only after the API confirms every owner is gone)."""

from __future__ import annotations

from typing import Any

import pytest
from workload_fakes import FakeClient

from tinykube.controllers import gc

Obj = dict[str, Any]


def ref(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
            "controller": True}


def owned(name: str, *refs: Obj, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if refs:
        meta["ownerReferences"] = list(refs)
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


CACHED = {"uid-live": True, "uid-dead": False}


@pytest.mark.parametrize(("obj", "suspect"), [
    pytest.param(owned("a"), False, id="no-owners"),
    pytest.param(owned("a", ref("ReplicaSet", "live", "uid-live")), False, id="owner-cached"),
    pytest.param(owned("a", ref("ReplicaSet", "dead", "uid-dead")), True, id="owner-gone"),
    pytest.param(owned("a", ref("ReplicaSet", "dead", "uid-dead"),
                       ref("ReplicaSet", "live", "uid-live")), False, id="one-owner-left"),
    pytest.param(owned("a", ref("Widget", "w", "uid-w", "example.com/v1")), True,
                 id="unwatched-kind-is-checked"),
    pytest.param(owned("a", ref("ReplicaSet", "dead", "uid-dead"), deleting=True), False,
                 id="already-deleting"),
])
def test_needs_check(obj: Obj, suspect: bool) -> None:
    verdicts = gc.owner_verdicts(gc.owner_refs(obj), lambda r: CACHED.get(r["uid"]))
    assert gc.needs_check(obj, verdicts) is suspect


def _collector(client: FakeClient, pods: list[Obj], rss: list[Obj]) -> Any:
    collector = gc.GarbageCollector(client)  # type: ignore[arg-type]
    _, pod_informer = collector.watched["core/pods"]
    _, rs_informer = collector.watched["apps/replicasets"]
    for pod in pods:
        pod_informer.cache.put(f"default/{pod['metadata']['name']}", pod)
    for rs in rss:
        rs_informer.cache.put(f"default/{rs['metadata']['name']}", rs)
    return collector


def replicaset(name: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}}


async def test_orphan_is_deleted_after_live_check() -> None:
    client = FakeClient([("pods", owned("web-1", ref("ReplicaSet", "gone", "uid-gone")))])
    collector = _collector(client, [owned("web-1", ref("ReplicaSet", "gone", "uid-gone"))], [])
    await collector.sync("core/pods|default/web-1")
    assert client.calls == [("get", "replicasets", "gone"), ("delete", "pods", "web-1")]


async def test_owner_missing_from_cache_but_live_is_kept() -> None:
    live = replicaset("fresh")
    client = FakeClient([("replicasets", live)])
    collector = _collector(client, [owned("web-1", ref("ReplicaSet", "fresh", "uid-fresh"))], [])
    await collector.sync("core/pods|default/web-1")
    assert client.writes() == []


async def test_owner_recreated_with_new_uid_counts_as_gone() -> None:
    client = FakeClient([("replicasets", replicaset("web"))])  # uid-web, not uid-old
    collector = _collector(client, [owned("web-1", ref("ReplicaSet", "web", "uid-old"))], [])
    await collector.sync("core/pods|default/web-1")
    assert client.writes() == [("delete", "pods", "web-1")]


async def test_cached_owner_needs_no_request() -> None:
    client = FakeClient()
    collector = _collector(client, [owned("web-1", ref("ReplicaSet", "web", "uid-web"))],
                           [replicaset("web")])
    await collector.sync("core/pods|default/web-1")
    assert client.calls == []


async def test_owner_deletion_queues_dependents() -> None:
    collector = _collector(FakeClient(), [owned("web-1", ref("ReplicaSet", "web", "uid-web")),
                                          owned("other")], [replicaset("web")])
    collector._on_owner_deleted(replicaset("web"))
    assert collector.queue.get_nowait() == "core/pods|default/web-1"
    assert collector.queue.get_nowait() is None
    assert collector.resync() == 1
