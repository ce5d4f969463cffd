"""The ResourceQuota controller: which quota events call for a recomputation, and a sync's write."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.unit.controllers.workload_fakes import FakeClient
from tinykube.controllers.resourcequota import ResourceQuotaController, needs_sync, served

Obj = dict[str, Any]
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def rq(hard: dict[str, str], status: Obj | None = None) -> Obj:
    body: Obj = {"metadata": {"name": "q"}, "spec": {"hard": hard}}
    if status is not None:
        body["status"] = status
    return body


SYNCED = {"hard": {"pods": "2"}, "used": {"pods": "1"}}


@pytest.mark.parametrize(("old", "new", "wanted"), [
    pytest.param(None, rq({"pods": "2"}), True, id="new"),
    pytest.param(rq({"pods": "2"}, SYNCED), rq({"pods": "3"}, SYNCED), True, id="hard-changed"),
    pytest.param(rq({"pods": "2"}, SYNCED), rq({"pods": "2"}, {**SYNCED, "used": {"pods": "2"}}),
                 False, id="status-write-ignored"),
    pytest.param(rq({"pods": "2"}), rq({"pods": "2"}), True, id="never-synced"),
    pytest.param(rq({"pods": "2"}, SYNCED), rq({"pods": "2"}, {"hard": {"pods": "2"}}), True,
                 id="used-missing"),
    pytest.param(rq({"cpu": "1000m"}, {"hard": {"cpu": "1"}, "used": {"cpu": "0"}}),
                 rq({"cpu": "1000m"}, {"hard": {"cpu": "1"}, "used": {"cpu": "500m"}}), False,
                 id="same-value-other-spelling"),
])
def test_needs_sync(old: Obj | None, new: Obj, wanted: bool) -> None:
    assert needs_sync(old, new) is wanted


@pytest.mark.parametrize(("group", "plural", "version"), [
    pytest.param("apps", "deployments", "v1", id="apps"),
    pytest.param("batch", "jobs", "v1", id="batch"),
    pytest.param("", "nodes", None, id="cluster-scoped"),
    pytest.param("example.com", "widgets", None, id="not-served"),
])
def test_served(group: str, plural: str, version: str | None) -> None:
    res = served(group, plural)
    assert (res.version if res else None) == version


def _pod(name: str, cpu: str, phase: str = "Running") -> Obj:
    return {"metadata": {"name": name, "namespace": "team"}, "status": {"phase": phase},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}


async def test_sync_writes_status_from_caches_and_lists() -> None:
    deployment = {"metadata": {"name": "web", "namespace": "team"}}
    client = FakeClient([("deployments", deployment)])
    ctl = ResourceQuotaController(client, now=lambda: NOW)  # type: ignore[arg-type]
    hard = {"pods": "3", "requests.cpu": "1", "count/deployments.apps": "2", "secrets": "1"}
    ctl.quotas.cache.put("team/q", {"metadata": {"name": "q", "namespace": "team",
                                                 "resourceVersion": "7"},
                                    "spec": {"hard": hard}})
    for p in (_pod("a", "250m"), _pod("b", "500m"), _pod("done", "1", phase="Succeeded")):
        ctl.informed[("", "pods")].cache.put(f"team/{p['metadata']['name']}", p)
    await ctl.sync("team/q")
    [(verb, plural, body)] = client.writes()
    assert (verb, plural) == ("update/status", "resourcequotas")
    assert body["status"] == {"hard": dict(sorted(hard.items())), "used": {
        "count/deployments.apps": "1", "pods": "2", "requests.cpu": "750m", "secrets": "0"}}
    ctl.quotas.cache.put("team/q", body)
    client.calls.clear()
    await ctl.sync("team/q")
    assert client.writes() == []  # nothing changed: nothing written
