"""Namespace controller: the deletion plan and finalize body as tables, and syncs against a
fake client (contents deleted, then the finalize PUT once nothing remains)."""

from __future__ import annotations

from typing import Any

import pytest
from workload_fakes import FakeClient

from tinykube.api import resources
from tinykube.controllers import namespace

Obj = dict[str, Any]
PODS = resources.lookup("", "v1", "pods")
SVCS = resources.lookup("", "v1", "services")


def obj(name: str, *, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "team"}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta}


@pytest.mark.parametrize(("listed", "delete", "remaining"), [
    pytest.param({}, [], 0, id="empty"),
    pytest.param({PODS: [obj("a"), obj("b", deleting=True)], SVCS: [obj("s")]},
                 [(PODS, "a"), (SVCS, "s")], 3, id="skips-terminating"),
    pytest.param({PODS: [obj("b", deleting=True)]}, [], 1, id="only-terminating-left"),
])
def test_plan_contents(listed: Any, delete: list[Any], remaining: int) -> None:
    plan = namespace.plan_contents(listed)
    assert list(plan.delete) == delete
    assert plan.remaining == remaining
    assert plan.empty is (remaining == 0)


@pytest.mark.parametrize(("finalizers", "expected"), [
    pytest.param(["kubernetes"], [], id="ours"),
    pytest.param(["kubernetes", "example.com/x"], ["example.com/x"], id="keeps-others"),
    pytest.param(None, [], id="none"),
])
def test_finalized(finalizers: list[str] | None, expected: list[str]) -> None:
    spec: Obj = {"finalizers": finalizers} if finalizers else {}
    ns: Obj = {"metadata": {"name": "team"}, "spec": spec}
    assert namespace.finalized(ns)["spec"]["finalizers"] == expected
    assert spec.get("finalizers") == finalizers, "input untouched"


def test_namespaced_resources_workloads_first() -> None:
    plurals = [r.plural for r in namespace.namespaced_resources()]
    assert plurals[:3] == ["deployments", "statefulsets", "replicasets"]
    assert "namespaces" not in plurals and "nodes" not in plurals
    assert len(plurals) == len(set(plurals)), "one version per resource"
    assert {"pods", "services", "endpointslices", "configmaps", "leases"} <= set(plurals)


def terminating_ns() -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team", "deletionTimestamp": "2024-05-01T12:00:00Z"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}}


async def test_sync_deletes_contents_then_finalizes() -> None:
    client = FakeClient([("pods", obj("web-1")), ("services", obj("web"))])
    ctl = namespace.NamespaceController(client, poll_interval=60)  # type: ignore[arg-type]
    ctl.namespaces.cache.put("team", terminating_ns())
    await ctl.sync("team")
    assert sorted(c for c in client.writes()) == [("delete", "pods", "web-1"),
                                                  ("delete", "services", "web")]
    assert ctl.queue.delayed() == 1, "checks again later"
    client.calls.clear()
    await ctl.sync("team")  # now empty
    assert [(verb, plural, body["spec"]) for verb, plural, body in client.writes()] == [
        ("update/finalize", "namespaces", {"finalizers": []})]


async def test_sync_ignores_live_namespaces() -> None:
    client = FakeClient([("pods", obj("web-1"))])
    ctl = namespace.NamespaceController(client)  # type: ignore[arg-type]
    ctl.namespaces.cache.put("team", {"metadata": {"name": "team"}, "spec": {}})
    await ctl.sync("team")
    await ctl.sync("missing")
    assert client.calls == []
