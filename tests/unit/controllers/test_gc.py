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


def owner(name: str, *, finalizers: tuple[str, ...] = (), deleting: bool = False,
          uid: str | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": uid or f"uid-{name}"}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta}


@pytest.mark.parametrize(("found", "verdict"), [
    pytest.param(None, "dangling", id="gone"),
    pytest.param(owner("rs", uid="uid-other"), "dangling", id="recreated-with-new-uid"),
    pytest.param(owner("rs"), "solid", id="live"),
    pytest.param(owner("rs", deleting=True), "solid", id="background-deleting"),
    pytest.param(owner("rs", finalizers=("orphan",), deleting=True), "solid",
                 id="orphan-deleting"),
    pytest.param(owner("rs", finalizers=("foregroundDeletion",), deleting=True), "waiting",
                 id="foreground-deleting"),
])
def test_classify(found: Obj | None, verdict: str) -> None:
    assert gc.classify(found, ref("ReplicaSet", "rs", "uid-rs")) == verdict


A, B = ref("ReplicaSet", "a", "uid-a"), ref("ReplicaSet", "b", "uid-b")


@pytest.mark.parametrize(("obj", "verdicts", "has_dependents", "action"), [
    pytest.param(owned("p"), [], False, gc.Action("keep"), id="no-owners"),
    pytest.param(owned("p", A), [(A, "solid")], False, gc.Action("keep"), id="owner-live"),
    pytest.param(owned("p", A, B), [(A, "solid"), (B, "dangling")], False,
                 gc.Action("unlink", ("uid-b",)), id="one-owner-gone-unlinks-it"),
    pytest.param(owned("p", A, B), [(A, "solid"), (B, "waiting")], False,
                 gc.Action("unlink", ("uid-b",)), id="never-blocks-a-waiting-owner"),
    pytest.param(owned("p", A), [(A, "dangling")], False, gc.Action("delete"),
                 id="orphan-background"),
    pytest.param(owned("p", A), [(A, "waiting")], False, gc.Action("delete"),
                 id="owner-waiting-no-dependents"),
    pytest.param(owned("p", A), [(A, "waiting")], True,
                 gc.Action("delete", policy="Foreground"), id="owner-waiting-has-dependents"),
    pytest.param(owned("p", A), [(A, "dangling")], True, gc.Action("delete"),
                 id="dangling-has-dependents-background"),
    pytest.param(owned("p", A, deleting=True), [(A, "dangling")], False, gc.Action("keep"),
                 id="already-deleting"),
])
def test_decide(obj: Obj, verdicts: list[tuple[Obj, gc.Verdict]], has_dependents: bool,
                action: gc.Action) -> None:
    assert gc.decide(obj, verdicts, has_dependents=has_dependents) == action


@pytest.mark.parametrize(("finalizer", "policy"), [
    pytest.param("orphan", "Orphan", id="orphan-finalizer-kept"),
    pytest.param("foregroundDeletion", "Foreground", id="foreground-finalizer-kept"),
])
def test_decide_honours_the_dependents_own_finalizer(finalizer: str, policy: str) -> None:
    obj = owned("p", A)
    obj["metadata"]["finalizers"] = [finalizer]
    assert gc.decide(obj, [(A, "dangling")], has_dependents=False) == \
        gc.Action("delete", policy=policy)


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
    collector._on_delete(replicaset("web"))
    assert collector.queue.get_nowait() == "core/pods|default/web-1"
    assert collector.queue.get_nowait() is None
    assert collector.resync() == 1


def blocking(kind: str, name: str, uid: str) -> Obj:
    return {**ref(kind, name, uid), "blockOwnerDeletion": True}


async def test_foreground_owner_deletes_dependents_first() -> None:
    rs = owner("web", finalizers=("foregroundDeletion",), deleting=True)
    pod = owned("web-1", blocking("ReplicaSet", "web", "uid-web"))
    client = FakeClient([("pods", pod)])
    collector = _collector(client, [pod], [rs])
    await collector.sync("apps/replicasets|default/web")
    assert client.writes() == []  # a blocking dependent is left: the finalizer stays
    assert collector.queue.get_nowait() == "core/pods|default/web-1"
    await collector.sync("core/pods|default/web-1")
    assert client.calls == [("delete", "pods", "web-1")]  # its owner is in the cache


async def test_foreground_owner_loses_its_finalizer_when_no_dependent_blocks() -> None:
    rs = owner("web", finalizers=("foregroundDeletion", "example.com/other"), deleting=True)
    loose = owned("loose", ref("ReplicaSet", "web", "uid-web"))  # blockOwnerDeletion unset
    client = FakeClient()
    collector = _collector(client, [loose], [rs])
    await collector.sync("apps/replicasets|default/web")
    assert client.calls == [("patch", "replicasets", {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["foregroundDeletion"]}})]


async def test_orphaning_owner_unlinks_dependents_then_drops_its_finalizer() -> None:
    rs = owner("web", finalizers=("orphan",), deleting=True)
    pod = owned("web-1", blocking("ReplicaSet", "web", "uid-web"))
    client = FakeClient()
    collector = _collector(client, [pod, owned("other")], [rs])
    await collector.sync("apps/replicasets|default/web")
    assert client.calls == [
        ("patch", "pods", {"metadata": {"ownerReferences": [
            {"$patch": "delete", "uid": "uid-web"}]}}),
        ("patch", "replicasets", {"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["orphan"]}}),
    ]


async def test_dependent_of_foreground_owner_with_dependents_is_deleted_in_foreground(
        ) -> None:
    deploy = {**owner("d", finalizers=("foregroundDeletion",), deleting=True),
              "kind": "Deployment"}
    rs = {**owner("web"), "metadata": {**owner("web")["metadata"],
                                       "ownerReferences": [blocking("Deployment", "d", "uid-d")]}}
    pod = owned("web-1", blocking("ReplicaSet", "web", "uid-web"))
    client = FakeClient([("replicasets", rs)])
    collector = _collector(client, [pod], [rs])
    _, deployments = collector.watched["apps/deployments"]
    deployments.cache.put("default/d", deploy)
    await collector.sync("apps/replicasets|default/web")
    assert client.calls == [("delete", "replicasets", "web")]
    assert client.deletes[-1]["propagation_policy"] == "Foreground"
    assert client.deletes[-1]["preconditions"] == {"uid": "uid-web"}


CRONTABS_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com", "uid": "uid-crd"},
    "spec": {"group": "stable.example.com", "scope": "Namespaced",
             "names": {"plural": "crontabs", "kind": "CronTab"},
             "versions": [{"name": "v1", "served": True, "storage": True}]},
    "status": {"acceptedNames": {"plural": "crontabs", "kind": "CronTab"},
               "conditions": [{"type": "Established", "status": "True"}]},
}
CRONTAB_REF = ref("CronTab", "nightly", "uid-nightly", "stable.example.com/v1")


@pytest.mark.parametrize(("objects", "writes"), [
    pytest.param([("customresourcedefinitions", CRONTABS_CRD)], [("delete", "pods", "web-1")],
                 id="custom-owner-gone"),
    pytest.param([("customresourcedefinitions", CRONTABS_CRD),
                  ("crontabs", {"metadata": {"name": "nightly", "namespace": "default",
                                             "uid": "uid-nightly"}})], [],
                 id="custom-owner-live"),
    pytest.param([], [], id="no-crd-serves-the-kind"),
])
async def test_custom_resource_owners_are_found_through_their_crds(
        objects: list[tuple[str, Obj]], writes: list[tuple[str, str, str]]) -> None:
    client = FakeClient(objects)
    collector = _collector(client, [owned("web-1", CRONTAB_REF)], [])
    await collector.sync("core/pods|default/web-1")
    assert client.writes() == writes


def _crontab(name: str, *refs: Obj, finalizers: tuple[str, ...] = (),
             deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                 "resourceVersion": "7"}
    if refs:
        meta["ownerReferences"] = list(refs)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": meta}


async def test_established_crds_are_watched_and_dropped() -> None:
    collector = _collector(FakeClient(), [], [])
    collector._on_crd(CRONTABS_CRD)
    res, _informer = collector.watched["stable.example.com/crontabs"]
    assert (res.kind, res.version, res.custom is not None) == ("CronTab", "v1", True)
    collector._on_crd(CRONTABS_CRD)  # unchanged: the same informer
    assert len(collector._custom) == 1
    collector._forget_crd(CRONTABS_CRD)
    assert "stable.example.com/crontabs" not in collector.watched
    await collector.sync("stable.example.com/crontabs|default/x")  # its CRD gone: nothing
    unestablished = {**CRONTABS_CRD, "status": {}}
    collector._on_crd(unestablished)
    assert "stable.example.com/crontabs" not in collector.watched


async def test_custom_resource_dependents_and_owners() -> None:
    """A CR owned by a gone pod is deleted; a pod owned by a cached CR is kept; a CR's
    reference to a gone owner, beside a live one, is dropped with a merge patch."""
    pod_ref = ref("Pod", "gone", "uid-gone", "v1")
    client = FakeClient([("crontabs", _crontab("orphan", pod_ref))])
    collector = _collector(client, [owned("web-1", CRONTAB_REF)], [replicaset("a")])
    collector._on_crd(CRONTABS_CRD)
    _, crontabs = collector.watched["stable.example.com/crontabs"]
    crontabs.cache.put("default/nightly", _crontab("nightly"))
    crontabs.cache.put("default/orphan", _crontab("orphan", pod_ref))
    crontabs.cache.put("default/half", _crontab("half", pod_ref, A))
    assert [k for k, _ in collector.dependents_of("uid-gone")] == [
        collector.watched["stable.example.com/crontabs"][0]] * 2
    await collector.sync("core/pods|default/web-1")
    await collector.sync("stable.example.com/crontabs|default/orphan")
    await collector.sync("stable.example.com/crontabs|default/half")
    assert client.writes() == [
        ("delete", "crontabs", "orphan"),
        ("patch", "crontabs", {"metadata": {"ownerReferences": [A], "resourceVersion": "7"}})]
    collector._forget_crd(CRONTABS_CRD)


async def test_custom_resource_foreground_finalizer_removed_with_merge_patch() -> None:
    client = FakeClient()
    collector = _collector(client, [], [])
    collector._on_crd(CRONTABS_CRD)
    _, crontabs = collector.watched["stable.example.com/crontabs"]
    crontabs.cache.put("default/done", _crontab(
        "done", finalizers=("foregroundDeletion", "example.com/keep"), deleting=True))
    await collector.sync("stable.example.com/crontabs|default/done")
    assert client.writes() == [("patch", "crontabs", {"metadata": {
        "finalizers": ["example.com/keep"], "resourceVersion": "7"}})]
    collector._forget_crd(CRONTABS_CRD)
