"""Deletion in the registry: the propagation policy becomes the garbage collector's finalizer,
a pod's grace period can only be shortened, and an object goes with its last finalizer."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import errors, resources
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

Obj = dict[str, Any]
NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)
CONFIGMAPS = resources.must("", "v1", "configmaps")
EVENTS = resources.must("", "v1", "events")
PODS = resources.must("", "v1", "pods")
NAMESPACES = resources.must("", "v1", "namespaces")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR), clock=lambda: NOW)
    registry.create(NAMESPACES, {"metadata": {"name": "default"}})
    return registry


def configmap(*finalizers: str) -> Obj:
    meta: Obj = {"name": "cm", "namespace": "default"}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def stored(registry: Registry, res: resources.Resource, name: str) -> Obj | None:
    entry = registry.store.get(res.storage_key, "default", name)
    return entry.obj if entry is not None else None


@pytest.mark.parametrize(("finalizers", "options", "left"), [
    pytest.param((), {}, None, id="background-by-default"),
    pytest.param((), {"propagationPolicy": "Background"}, None, id="background"),
    pytest.param((), {"propagationPolicy": "Foreground"}, ["foregroundDeletion"],
                 id="foreground"),
    pytest.param((), {"propagationPolicy": "Orphan"}, ["orphan"], id="orphan"),
    pytest.param((), {"orphanDependents": True}, ["orphan"], id="orphan-dependents"),
    pytest.param((), {"orphanDependents": False}, None, id="orphan-dependents-false"),
    pytest.param(("example.com/x",), {"propagationPolicy": "Orphan"},
                 ["example.com/x", "orphan"], id="added-to-others"),
    pytest.param(("orphan",), {}, ["orphan"], id="no-policy-keeps-the-finalizer"),
    pytest.param(("orphan",), {"propagationPolicy": "Foreground"}, ["foregroundDeletion"],
                 id="policy-replaces-the-finalizer"),
])
def test_policy_becomes_a_finalizer(registry: Registry, finalizers: tuple[str, ...],
                                    options: Obj, left: list[str] | None) -> None:
    registry.create(CONFIGMAPS, configmap(*finalizers))
    _, gone = registry.delete(CONFIGMAPS, "default", "cm", options)
    obj = stored(registry, CONFIGMAPS, "cm")
    assert gone is (left is None)
    if left is not None:
        assert obj is not None
        assert obj["metadata"]["finalizers"] == left
        assert obj["metadata"]["deletionTimestamp"] == "2026-11-27T12:00:00Z"
        assert obj["metadata"]["deletionGracePeriodSeconds"] == 0


def test_second_delete_with_background_lets_a_foreground_deletion_go(
        registry: Registry) -> None:
    registry.create(CONFIGMAPS, configmap())
    registry.delete(CONFIGMAPS, "default", "cm", {"propagationPolicy": "Foreground"})
    _, gone = registry.delete(CONFIGMAPS, "default", "cm", {"propagationPolicy": "Background"})
    assert gone and stored(registry, CONFIGMAPS, "cm") is None


def test_removing_the_last_finalizer_deletes(registry: Registry) -> None:
    registry.create(CONFIGMAPS, configmap())
    registry.delete(CONFIGMAPS, "default", "cm", {"propagationPolicy": "Foreground"})
    obj = stored(registry, CONFIGMAPS, "cm")
    assert obj is not None
    obj["metadata"]["finalizers"] = []
    registry.update(CONFIGMAPS, obj)
    assert stored(registry, CONFIGMAPS, "cm") is None


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "d", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


@pytest.mark.parametrize(("version", "options", "left"), [
    pytest.param("v1", {}, None, id="v1-background"),
    pytest.param("v1beta1", {}, ["orphan"], id="v1beta1-orphans"),
    pytest.param("v1beta2", {}, ["orphan"], id="v1beta2-orphans"),
    pytest.param("v1beta2", {"propagationPolicy": "Background"}, None, id="explicit-wins"),
])
def test_legacy_apps_versions_orphan_by_default(registry: Registry, version: str,
                                                options: Obj, left: list[str] | None) -> None:
    registry.create(resources.must("apps", "v1", "deployments"), dict(DEPLOYMENT))
    _, gone = registry.delete(resources.must("apps", version, "deployments"), "default", "d",
                              options)
    obj = stored(registry, resources.must("apps", "v1", "deployments"), "d")
    assert gone is (left is None)
    assert (obj or {}).get("metadata", {}).get("finalizers") == left


def test_uncollected_kinds_get_no_finalizer(registry: Registry) -> None:
    registry.create(EVENTS, {"metadata": {"name": "e", "namespace": "default"},
                             "involvedObject": {"kind": "Pod", "name": "p"},
                             "reason": "R", "message": "m", "type": "Normal"})
    _, gone = registry.delete(EVENTS, "default", "e", {"propagationPolicy": "Foreground"})
    assert gone


@pytest.mark.parametrize(("options", "message"), [
    pytest.param({"propagationPolicy": "Sideways"},
                 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                 'value: "Sideways": supported values: "Foreground", "Background", "Orphan", '
                 '"nil"', id="unknown-policy"),
    pytest.param({"propagationPolicy": "Orphan", "orphanDependents": True},
                 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: '
                 '"Orphan": orphanDependents and deletionPropagation cannot be both set',
                 id="both-set"),
])
def test_bad_options_are_invalid(registry: Registry, options: Obj, message: str) -> None:
    registry.create(CONFIGMAPS, configmap())
    with pytest.raises(errors.Invalid) as caught:
        registry.delete(CONFIGMAPS, "default", "cm", options)
    assert str(caught.value) == message
    assert stored(registry, CONFIGMAPS, "cm") is not None


def bound_pod(*finalizers: str) -> Obj:
    meta: Obj = {"name": "p", "namespace": "default"}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}]}}


@pytest.mark.parametrize(("second", "grace", "stamp"), [
    pytest.param({}, 30, "2026-11-27T12:00:30Z", id="no-grace-keeps-it"),
    pytest.param({"gracePeriodSeconds": 60}, 30, "2026-11-27T12:00:30Z", id="longer-ignored"),
    pytest.param({"gracePeriodSeconds": 10}, 10, "2026-11-27T12:00:10Z", id="shorter-moves"),
])
def test_pod_grace_period_can_only_shrink(registry: Registry, second: Obj, grace: int,
                                          stamp: str) -> None:
    registry.create(PODS, bound_pod())
    registry.delete(PODS, "default", "p", {})
    registry.delete(PODS, "default", "p", second)
    obj = stored(registry, PODS, "p")
    assert obj is not None
    assert (obj["metadata"]["deletionGracePeriodSeconds"],
            obj["metadata"]["deletionTimestamp"]) == (grace, stamp)


def test_pod_with_finalizer_stays_after_its_node_is_done(registry: Registry) -> None:
    registry.create(PODS, bound_pod("example.com/hold"))
    registry.delete(PODS, "default", "p", {})
    _, gone = registry.delete(PODS, "default", "p", {"gracePeriodSeconds": 0})  # the node
    obj = stored(registry, PODS, "p")
    assert not gone and obj is not None
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    obj["metadata"]["finalizers"] = []
    registry.update(PODS, obj)
    assert stored(registry, PODS, "p") is None
