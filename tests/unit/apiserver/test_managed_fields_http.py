"""Managed fields through the real API server: who each write records, and apply's errors.

Writes over HTTP with a given `fieldManager` or User-Agent; the stored `managedFields` must
say what kube-apiserver's would, and apply requests get kube's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.unit.apiserver.harness import running_api

Obj = dict[str, Any]
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
APPLY = {"Content-Type": "application/apply-patch+yaml"}


async def send(session: aiohttp.ClientSession, method: str, path: str, body: Obj,
               headers: dict[str, str] | None = None) -> tuple[int, Obj]:
    async with session.request(method, path, data=orjson.dumps(body),
                               headers=headers or {"Content-Type": "application/json"}) as reply:
        return reply.status, orjson.loads(await reply.read())


def deployment(**spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


def entries(obj: Obj) -> dict[tuple[str, str, str], Obj]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e
            for e in obj["metadata"].get("managedFields", [])}


async def test_user_agent_names_the_updater_and_status_apply_is_its_own_manager(
        tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, created = await send(session, "POST", DEPLOYMENTS, deployment(replicas=1),
                                     {"Content-Type": "application/json",
                                      "User-Agent": "my-operator/1.2 (linux)"})
        assert status == 201, created
        mine = entries(created)[("my-operator", "Update", "")]
        assert mine["apiVersion"] == "apps/v1" and mine["fieldsType"] == "FieldsV1"
        status, applied = await send(
            session, "PATCH", f"{DEPLOYMENTS}/d/status?fieldManager=reporter",
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
             "status": {"observedGeneration": 1}}, APPLY)
        assert status == 200, applied
        assert applied["status"]["observedGeneration"] == 1
        reporter = entries(applied)[("reporter", "Apply", "status")]
        assert reporter["fieldsV1"] == {"f:status": {"f:observedGeneration": {}}}


async def test_apply_refusals(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        status, refused = await send(session, "PATCH", f"{CONFIGMAPS}/c", cm, APPLY)
        assert (status, refused["reason"], refused["message"]) == (
            422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
            "value: is required for apply patch")
        status, refused = await send(session, "PATCH", f"{CONFIGMAPS}/c?fieldManager=" + "m" * 129,
                                     cm, APPLY)
        assert status == 422 and "fieldManager: Too long" in refused["message"]


async def test_managed_fields_kept_unless_stripped_with_an_empty_entry(tmp_path: Path) -> None:
    """kube: `[]` (or leaving them out) keeps them, so unaware clients never strip them;
    `[{}]` strips them entirely."""
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
              "data": {"a": "1"}}
        status, created = await send(session, "POST", f"{CONFIGMAPS}?fieldManager=one", cm)
        assert status == 201 and set(entries(created)) == {("one", "Update", "")}
        emptied = {**created, "metadata": {**created["metadata"], "managedFields": []},
                   "data": {"a": "1", "b": "2"}}
        status, updated = await send(session, "PUT", f"{CONFIGMAPS}/c?fieldManager=two", emptied)
        assert status == 200 and set(entries(updated)) == {("one", "Update", ""),
                                                           ("two", "Update", "")}
        stripped = {**updated, "metadata": {**updated["metadata"], "managedFields": [{}]}}
        status, updated = await send(session, "PUT", f"{CONFIGMAPS}/c?fieldManager=two", stripped)
        assert status == 200 and "managedFields" not in updated["metadata"]
