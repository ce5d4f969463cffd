"""The admission webhook dispatcher against real HTTPS webhooks (tests/webhook_server.py) and
the real API server (harness): reinvocation, matchPolicy, dry run, failurePolicy on invalid
answers, timeouts, bounded answers and matchConditions."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.unit.apiserver.harness import running_api
from tests.webhook_server import WebhookServer, allow, json_patch
from tinykube.apiserver import webhooks
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

Obj = dict[str, Any]
HOOKS = "/apis/admissionregistration.k8s.io/v1"


def _webhook(name: str, server: WebhookServer, path: str, **extra: Any) -> Obj:
    rules = extra.pop("rules", [{"operations": ["CREATE"], "apiGroups": [""],
                                 "apiVersions": ["v1"], "resources": ["configmaps"]}])
    return {"name": name, "clientConfig": {"url": server.url(path),
                                           "caBundle": server.ca_bundle},
            "rules": rules, "sideEffects": "None", "admissionReviewVersions": ["v1"], **extra}


async def _configure(session: aiohttp.ClientSession, kind: str, name: str,
                     webhooks: list[Obj]) -> None:
    plural = kind.lower() + "s"
    async with session.post(f"{HOOKS}/{plural}", json={
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name}, "webhooks": webhooks}) as response:
        assert response.status == 201, await response.text()


async def _create_configmap(session: aiohttp.ClientSession, name: str,
                            query: str = "") -> tuple[int, Obj]:
    async with session.post(f"/api/v1/namespaces/default/configmaps{query}", json={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}) as response:
        return response.status, await response.json()


def _labeller(label: str) -> Any:
    def answer(review: Obj) -> Obj:
        labels = review["request"]["object"]["metadata"].get("labels") or {}
        if label in labels:
            return allow(review)
        ops = [] if labels else [{"op": "add", "path": "/metadata/labels", "value": {}}]
        ops.append({"op": "add", "path": f"/metadata/labels/{label}", "value": "yes"})
        return allow(review, patchType="JSONPatch", patch=json_patch(ops))
    return answer


async def test_reinvocation_if_needed(tmp_path: Path) -> None:
    """`a` (IfNeeded) runs again after `b` changed the object; `b` (Never) does not."""
    with WebhookServer({"/a": _labeller("a"), "/b": _labeller("b")}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, _store):
            await _configure(session, "MutatingWebhookConfiguration", "m", [
                _webhook("a.example.com", server, "/a", reinvocationPolicy="IfNeeded"),
                _webhook("b.example.com", server, "/b")])
            status, created = await _create_configmap(session, "cm")
            assert status == 201, created
            assert created["metadata"]["labels"] == {"a": "yes", "b": "yes"}
            assert (len(server.requests["/a"]), len(server.requests["/b"])) == (2, 1)


async def test_match_policy_equivalent_sends_the_matched_version(tmp_path: Path) -> None:
    deployments = [{"operations": ["CREATE"], "apiGroups": ["apps"],
                    "apiVersions": ["v1beta1"], "resources": ["deployments"]}]
    with WebhookServer({"/eq": allow, "/exact": allow}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, _store):
            await _configure(session, "ValidatingWebhookConfiguration", "v", [
                _webhook("eq.example.com", server, "/eq", rules=deployments),
                _webhook("exact.example.com", server, "/exact", rules=deployments,
                         matchPolicy="Exact")])
            async with session.post("/apis/apps/v1/namespaces/default/deployments", json={
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                    "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]}}}}) as response:
                assert response.status == 201, await response.text()
            request = server.requests["/eq"][0]["request"]
            assert (request["kind"]["version"], request["requestKind"]["version"],
                    request["object"]["apiVersion"]) == ("v1beta1", "v1", "apps/v1beta1")
            assert server.requests["/exact"] == []


async def test_dry_run_is_sent_and_nothing_is_stored(tmp_path: Path) -> None:
    with WebhookServer({"/v": allow}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, store):
            await _configure(session, "ValidatingWebhookConfiguration", "v",
                             [_webhook("v.example.com", server, "/v")])
            status, _ = await _create_configmap(session, "dry", "?dryRun=All")
            assert status == 201
            assert server.requests["/v"][0]["request"]["dryRun"] is True
            assert store.get("core/configmaps", "default", "dry") is None


def _invalid(review: Obj) -> Obj:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "not-it", "allowed": True}}


@pytest.mark.parametrize(("policy", "status"), [("Ignore", 201), ("Fail", 500)])
async def test_invalid_answer_follows_failure_policy(tmp_path: Path, policy: str,
                                                     status: int) -> None:
    with WebhookServer({"/bad": _invalid}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, _store):
            await _configure(session, "ValidatingWebhookConfiguration", "v", [
                _webhook("bad.example.com", server, "/bad", failurePolicy=policy)])
            got, body = await _create_configmap(session, "cm")
            assert got == status
            if status == 500:
                uid = server.requests["/bad"][0]["request"]["uid"]
                assert body["message"] == (
                    'Internal error occurred: failed calling webhook "bad.example.com": '
                    "received invalid webhook response: expected response.uid="
                    f'"{uid}", got "not-it"')
                assert body["reason"] == "InternalError"


async def test_timeout_and_bounded_answer(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(review: Obj) -> Obj:
        release.wait(5)
        return allow(review)

    def huge(review: Obj) -> Obj:
        return allow(review, warnings=["x" * (4 * 1024 * 1024)])

    with WebhookServer({"/slow": slow, "/huge": huge}) as server:
        try:
            async with running_api(tmp_path, bootstrapped=True) as (session, _store):
                await _configure(session, "ValidatingWebhookConfiguration", "slow", [
                    _webhook("slow.example.com", server, "/slow", timeoutSeconds=1)])
                got, body = await _create_configmap(session, "cm")
                assert (got, body["message"]) == (500, (
                    'Internal error occurred: failed calling webhook "slow.example.com": failed '
                    f'to call webhook: Post "{server.url("/slow")}?timeout=1s": context deadline '
                    "exceeded"))
                release.set()
                async with session.delete(f"{HOOKS}/validatingwebhookconfigurations/slow"):
                    pass
                await _configure(session, "ValidatingWebhookConfiguration", "huge", [
                    _webhook("huge.example.com", server, "/huge")])
                got, body = await _create_configmap(session, "cm")
                assert got == 500
                assert body["message"].endswith("the response is larger than 3145728 bytes")
        finally:
            release.set()


@pytest.mark.parametrize(("expressions", "called", "status"), [
    (["object.metadata.name.startsWith('call')"], ["call-me"], {"call-me": 201, "skip-me": 201}),
    (["true", "request.operation == 'CREATE'"], ["call-me", "skip-me"],
     {"call-me": 201, "skip-me": 201}),
    (["false", "object.nosuch.field == 1"], [], {"call-me": 201, "skip-me": 201}),
    (["object.nosuch.field == 1"], [], {"call-me": 500, "skip-me": 500}),
    # without access control every check is allowed (kube's AlwaysAllow)
    (["authorizer.requestResource.check('create').allowed()"], ["call-me", "skip-me"],
     {"call-me": 201, "skip-me": 201}),
    (["!authorizer.group('').resource('secrets').check('list').allowed()"], [],
     {"call-me": 201, "skip-me": 201}),
], ids=["selects-by-name", "all-true", "false-wins-over-error", "error-is-a-failed-call",
        "authorizer-allows", "authorizer-negated"])
async def test_match_conditions_in_cel(tmp_path: Path, expressions: list[str],
                                       called: list[str], status: dict[str, int]) -> None:
    """The server's own CEL engine decides matchConditions: a false one skips the hook (even
    beside one that fails to evaluate), an evaluation error is a failed call (Fail: 500)."""
    with WebhookServer({"/v": allow}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, _store):
            await _configure(session, "ValidatingWebhookConfiguration", "v", [
                _webhook("v.example.com", server, "/v", matchConditions=[
                    {"name": f"c{i}", "expression": e} for i, e in enumerate(expressions)])])
            got = {name: (await _create_configmap(session, name))[0] for name in status}
            assert got == status
            names = [r["request"]["object"]["metadata"]["name"] for r in server.requests["/v"]]
            assert names == called


async def test_validating_webhooks_see_the_stored_uid_and_generated_name(tmp_path: Path) -> None:
    with WebhookServer({"/v": allow}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, store):
            await _configure(session, "ValidatingWebhookConfiguration", "v",
                             [_webhook("v.example.com", server, "/v")])
            async with session.post("/api/v1/namespaces/default/configmaps", json={
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"generateName": "cm-"}}) as response:
                created = await response.json()
            seen = server.requests["/v"][0]["request"]["object"]["metadata"]
            assert (seen["name"], seen["uid"]) == (created["metadata"]["name"],
                                                   created["metadata"]["uid"])
            entry = store.get("core/configmaps", "default", seen["name"])
            assert entry is not None and entry.obj["metadata"]["uid"] == seen["uid"]


async def test_match_conditions_through_the_evaluator_hook(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With an evaluator plugged in (`webhooks.MATCH_CONDITIONS`), a false condition skips the
    webhook and a true one calls it; the variables are kube's."""
    seen: list[Obj] = []

    def evaluate(conditions: tuple[Obj, ...], variables: Obj) -> bool:
        seen.append(variables)
        return bool(variables["object"]["metadata"]["name"].startswith("call"))

    monkeypatch.setattr(webhooks, "MATCH_CONDITIONS", evaluate)
    with WebhookServer({"/v": allow}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, _store):
            await _configure(session, "ValidatingWebhookConfiguration", "v", [
                _webhook("v.example.com", server, "/v", matchConditions=[
                    {"name": "c", "expression": "object.metadata.name.startsWith('call')"}])])
            assert (await _create_configmap(session, "skip-me"))[0] == 201
            assert server.requests["/v"] == []
            assert (await _create_configmap(session, "call-me"))[0] == 201
            assert len(server.requests["/v"]) == 1
            assert (seen[0]["request"]["operation"], seen[0]["request"]["userInfo"]["username"],
                    seen[0]["oldObject"]) == ("CREATE", "tinykube-admin", None)


def _keep(review: Obj) -> Obj:
    old = review["request"]["oldObject"]
    if old is not None and old["metadata"]["name"] == "keep":
        return allow(review, allowed=False, status={"code": 403, "reason": "Forbidden",
                                                   "message": "keep stays"})
    return allow(review)


async def test_delete_collection_validates_each_object(tmp_path: Path) -> None:
    deletes = [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["configmaps"]}]
    with WebhookServer({"/v": _keep}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, store):
            for name in ("a-first", "keep"):
                assert (await _create_configmap(session, name))[0] == 201
            await _configure(session, "ValidatingWebhookConfiguration", "v",
                             [_webhook("v.example.com", server, "/v", rules=deletes)])
            async with session.delete("/api/v1/namespaces/default/configmaps") as response:
                assert response.status == 403
                body = await response.json()
            assert body["message"] == 'admission webhook "v.example.com" denied the request: ' \
                                      "keep stays"
            assert store.get("core/configmaps", "default", "keep") is not None
            names = [r["request"]["oldObject"]["metadata"]["name"]
                     for r in server.requests["/v"]]
            assert names[-1] == "keep" and "a-first" in names
            assert all(r["request"]["namespace"] == "default" for r in server.requests["/v"])


def _bad_patch(review: Obj) -> Obj:
    return allow(review, patchType="JSONPatch", patch=json_patch(
        [{"op": "remove", "path": "/metadata/labels/missing"}]))


async def test_a_patch_that_does_not_apply_is_an_internal_error(tmp_path: Path) -> None:
    with WebhookServer({"/m": _bad_patch}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, store):
            await _configure(session, "MutatingWebhookConfiguration", "m",
                             [_webhook("m.example.com", server, "/m")])
            got, body = await _create_configmap(session, "cm")
            assert (got, body["reason"]) == (500, "InternalError")
            assert body["message"].startswith("Internal error occurred: ")
            assert store.get("core/configmaps", "default", "cm") is None


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hooks",
                                                              "namespace": "default"},
           "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}
ENDPOINTS = {"apiVersion": "v1", "kind": "Endpoints",
             "metadata": {"name": "hooks", "namespace": "default"},
             "subsets": [{"addresses": [{"ip": "127.0.0.7"}],
                          "ports": [{"name": "https", "port": 8443}]}]}


@pytest.mark.parametrize(("objects", "port", "expected"), [
    ([], 443, 'service "hooks" not found'),
    ([SERVICE], 443, 'endpoints "hooks" not found'),
    ([SERVICE, ENDPOINTS], 444, 'no service port 444 found for service "hooks"'),
    ([SERVICE, {**ENDPOINTS, "subsets": []}], 443,
     'no active endpoints for service "hooks"'),
    ([SERVICE, ENDPOINTS], 443, "127.0.0.7:8443"),
    ([{**SERVICE, "spec": {"type": "ExternalName", "externalName": "hooks.example.com"}}], 443,
     "hooks.example.com:443"),
])
def test_resolve_service(tmp_path: Path, objects: list[Obj], port: int, expected: str) -> None:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    try:
        for obj in objects:
            store.create({"Service": "core/services", "Endpoints": "core/endpoints"}[obj["kind"]],
                         obj)
        try:
            got = webhooks.resolve_service(store, "default", "hooks", port)
        except webhooks.CallFailed as exc:
            got = str(exc)
        assert got == expected
    finally:
        store.close()
