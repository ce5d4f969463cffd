"""Admission through the real API server: what a pod gets, what is refused, and in which order.

Pods are created over HTTP against the harness's API server (a bootstrapped store whose
namespaces have their `default` ServiceAccount); the answers are compared with what
kube-apiserver's ServiceAccount and DefaultTolerationSeconds plugins produce.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.unit.apiserver.harness import running_api
from tinykube.testing import until

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"
JSON = {"Content-Type": "application/json"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {**NOT_READY, "key": "node.kubernetes.io/unreachable"}


def pod(name: str = "p", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


async def send(session: aiohttp.ClientSession, method: str, path: str,
               body: Obj) -> tuple[int, Obj]:
    async with session.request(method, path, data=orjson.dumps(body), headers=JSON) as reply:
        return reply.status, orjson.loads(await reply.read())


@pytest.mark.parametrize(("spec", "tolerations"), [
    pytest.param({}, [NOT_READY, UNREACHABLE], id="none"),
    pytest.param({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 10}]},
                 [{**NOT_READY, "tolerationSeconds": 10}, UNREACHABLE], id="own-not-ready"),
    pytest.param({"tolerations": [{"key": "node.kubernetes.io/unreachable",
                                   "operator": "Exists"}]},
                 [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}, NOT_READY],
                 id="unreachable-any-effect"),
    pytest.param({"tolerations": [{"operator": "Exists"}]}, [{"operator": "Exists"}],
                 id="tolerates-everything"),
    pytest.param({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                   "effect": "NoSchedule"}]},
                 [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                   "effect": "NoSchedule"}, NOT_READY, UNREACHABLE], id="other-effect"),
])
async def test_created_pod_gets_default_tolerations(tmp_path: Path, spec: Obj,
                                                    tolerations: list[Obj]) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, created = await send(session, "POST", PODS, pod(**spec))
    assert status == 201, created
    assert created["spec"]["tolerations"] == tolerations


@pytest.mark.parametrize(("spec", "account"), [
    pytest.param({}, "default", id="defaulted"),
    pytest.param({"serviceAccountName": "builder"}, "builder", id="named"),
    pytest.param({"serviceAccount": "builder"}, "builder", id="deprecated-alias"),
])
async def test_created_pod_names_its_service_account(tmp_path: Path, spec: Obj,
                                                     account: str) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", "/api/v1/namespaces/default/serviceaccounts",
                   {"metadata": {"name": "builder"}, "imagePullSecrets": [{"name": "regcred"}]})
        status, created = await send(session, "POST", PODS, pod(**spec))
        async with session.get(f"{PODS}?fieldSelector=spec.serviceAccountName={account}") as r:
            listed = orjson.loads(await r.read())["items"]
    assert status == 201, created
    assert created["spec"]["serviceAccountName"] == created["spec"]["serviceAccount"] == account
    assert [p["metadata"]["name"] for p in listed] == ["p"]
    pull = [{"name": "regcred"}] if account == "builder" else None
    assert created["spec"].get("imagePullSecrets") == pull


@pytest.mark.parametrize(("account", "pod_says", "mounted"), [
    pytest.param(None, None, None, id="neither-says"),
    pytest.param(False, None, False, id="account-false"),
    pytest.param(False, True, True, id="pod-true-wins"),
    pytest.param(True, False, False, id="pod-false-wins"),
])
async def test_the_accounts_automount_choice_reaches_a_pod_that_makes_none(
        tmp_path: Path, account: bool | None, pod_says: bool | None,
        mounted: bool | None) -> None:
    body: Obj = {"metadata": {"name": "quiet"}}
    if account is not None:
        body["automountServiceAccountToken"] = account
    spec: Obj = {"serviceAccountName": "quiet"}
    if pod_says is not None:
        spec["automountServiceAccountToken"] = pod_says
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", "/api/v1/namespaces/default/serviceaccounts", body)
        status, created = await send(session, "POST", PODS, pod(**spec))
    assert status == 201, created
    assert created["spec"].get("automountServiceAccountToken") == mounted


async def test_pod_naming_a_missing_service_account_is_forbidden(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, store):
        status, body = await send(session, "POST", PODS, pod(serviceAccountName="nope"))
        assert store.get("core/pods", "default", "p") is None
    assert status == 403
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "p" is forbidden: error looking up service account default/nope: '
                   'serviceaccount "nope" not found',
        "reason": "Forbidden", "details": {"name": "p", "kind": "pods"}, "code": 403}


async def test_generated_name_is_named_by_its_prefix_when_forbidden(tmp_path: Path) -> None:
    obj = pod(serviceAccountName="nope")
    obj["metadata"] = {"generateName": "job-"}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, body = await send(session, "POST", PODS, obj)
    assert (status, body["message"].split(" is forbidden")[0]) == (403, 'pods "job-"')


async def test_pod_waits_for_its_namespaces_default_account(tmp_path: Path) -> None:
    """A pod created right after its namespace is admitted once the controller (here: the
    test) has made the `default` ServiceAccount."""
    async with running_api(tmp_path, bootstrapped=True, account_wait=30) as (session, store):
        await send(session, "POST", "/api/v1/namespaces", {"metadata": {"name": "fresh"}})
        creating = asyncio.create_task(
            send(session, "POST", "/api/v1/namespaces/fresh/pods", pod()))
        await until(lambda: bool(store._watchers["core/serviceaccounts"]),
                    "admission to wait for the account")
        await send(session, "POST", "/api/v1/namespaces/fresh/serviceaccounts",
                   {"metadata": {"name": "default"}})
        status, created = await asyncio.wait_for(creating, 10)
    assert status == 201, created
    assert created["spec"]["serviceAccountName"] == "default"


async def test_default_account_that_never_comes_is_forbidden_after_the_wait(
        tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True, account_wait=0.05) as (session, _s):
        await send(session, "POST", "/api/v1/namespaces", {"metadata": {"name": "fresh"}})
        status, body = await send(session, "POST", "/api/v1/namespaces/fresh/pods", pod())
    assert status == 403
    assert body["message"] == ('pods "p" is forbidden: error looking up service account '
                               'fresh/default: serviceaccount "default" not found')


async def test_missing_namespace_is_reported_before_the_service_account(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True, account_wait=30) as (session, _store):
        status, body = await send(session, "POST", "/api/v1/namespaces/nowhere/pods", pod())
    assert (status, body["message"]) == (404, 'namespaces "nowhere" not found')


async def test_replacing_a_pod_without_its_default_tolerations_keeps_them(tmp_path: Path) -> None:
    """DefaultTolerationSeconds runs on update too, so a PUT of the original manifest (which
    has no tolerations) is not refused as a removal of tolerations."""
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        _, created = await send(session, "POST", PODS, pod())
        replaced = pod(serviceAccountName="default")
        replaced["metadata"]["labels"] = {"a": "b"}
        status, updated = await send(session, "PUT", f"{PODS}/p", replaced)
    assert status == 200, updated
    assert updated["metadata"]["labels"] == {"a": "b"}
    assert updated["spec"]["tolerations"] == created["spec"]["tolerations"]


async def test_status_writes_skip_admission(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        _, created = await send(session, "POST", PODS, pod())
        created["status"] = {"phase": "Running"}
        status, updated = await send(session, "PUT", f"{PODS}/p/status", created)
    assert status == 200, updated
    assert updated["status"]["phase"] == "Running"


# --- DefaultStorageClass and StorageObjectInUseProtection ------------------------------------

CLAIMS = "/api/v1/namespaces/default/persistentvolumeclaims"
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"


def claim(name: str = "data", annotations: Obj | None = None, **spec: Any) -> Obj:
    meta: Obj = {"name": name, **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}, **spec}}


@pytest.mark.parametrize(("spec", "annotations", "expected"), [
    pytest.param({}, None, "standard", id="unset-gets-default"),
    pytest.param({"storageClassName": ""}, None, "", id="empty-means-no-class"),
    pytest.param({"storageClassName": "fast"}, None, "fast", id="named-kept"),
    pytest.param({}, {"volume.beta.kubernetes.io/storage-class": "old"}, None,
                 id="beta-annotation-kept"),
])
async def test_claim_gets_the_default_storage_class(tmp_path: Path, spec: Obj,
                                                    annotations: Obj | None,
                                                    expected: str | None) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, created = await send(session, "POST", CLAIMS, claim(annotations=annotations,
                                                                    **spec))
    assert status == 201, created
    assert created["spec"].get("storageClassName") == expected
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]


async def test_no_default_class_leaves_the_claim_without_one(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        async with session.delete(f"{CLASSES}/standard") as reply:
            assert reply.status == 200
        status, created = await send(session, "POST", CLAIMS, claim())
    assert status == 201, created
    assert "storageClassName" not in created["spec"]


async def test_pv_gets_its_protection_finalizer(tmp_path: Path) -> None:
    pv = {"apiVersion": "v1", "kind": "PersistentVolume",
          "metadata": {"name": "pv1", "finalizers": ["example.com/mine"]},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "hostPath": {"path": "/tmp/pv1"}}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, created = await send(session, "POST", "/api/v1/persistentvolumes", pv)
    assert status == 201, created
    assert created["metadata"]["finalizers"] == ["example.com/mine",
                                                 "kubernetes.io/pv-protection"]
