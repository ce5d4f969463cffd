"""The apiextensions controllers inside the API server (`apiserver.crds`), on a real registry
and store: a CRD is named, established and served; a conflicting one is not; deleting one
deletes its objects first, then takes its rows out of the resource table."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import errors, resources
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.bootstrap import bootstrap
from tinykube.apiserver.crds import CRDS, FINALIZER, CRDController
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields":
                                                              True}}}]},
}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR), clock=lambda: NOW)
    bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    yield registry
    for plural in ("widgets", "gadgets"):  # the resource table is the process's
        resources.unregister("example.com", plural)
    store.close()


def _conditions(registry: Registry, name: str) -> dict[str, str]:
    crd = registry.get(CRDS, "", name).obj
    return {c["type"]: c["status"] for c in crd["status"]["conditions"]}


def test_crd_is_established_and_served(registry: Registry) -> None:
    registry.create(CRDS, copy.deepcopy(CRD))
    CRDController(registry).reconcile()
    assert _conditions(registry, "widgets.example.com") == {"NamesAccepted": "True",
                                                           "Established": "True"}
    widgets = resources.lookup("example.com", "v1", "widgets")
    assert widgets is not None and widgets.short_names == ("wd",)
    created = registry.create(widgets, {"apiVersion": "example.com/v1", "kind": "Widget",
                                        "metadata": {"name": "w", "namespace": "default"},
                                        "anything": 1})
    assert created.obj["metadata"]["generation"] == 1
    service = registry.get(resources.must("apiregistration.k8s.io", "v1", "apiservices"), "",
                           "v1.example.com").obj
    assert service["spec"]["groupPriorityMinimum"] == 1000
    assert service["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}


def test_conflicting_short_name_is_not_established(registry: Registry) -> None:
    controller = CRDController(registry)
    registry.create(CRDS, copy.deepcopy(CRD))
    controller.reconcile()
    other = copy.deepcopy(CRD)
    other["metadata"]["name"] = "gadgets.example.com"
    other["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget", "shortNames": ["wd"]}
    registry.create(CRDS, other)
    controller.reconcile()
    assert _conditions(registry, "gadgets.example.com") == {"NamesAccepted": "False",
                                                           "Established": "False"}
    assert resources.lookup("example.com", "v1", "gadgets") is None


def test_deleting_a_crd_deletes_its_objects_then_itself(registry: Registry) -> None:
    controller = CRDController(registry)
    registry.create(CRDS, copy.deepcopy(CRD))
    controller.reconcile()
    widgets = resources.must("example.com", "v1", "widgets")
    registry.create(widgets, {"apiVersion": "example.com/v1", "kind": "Widget",
                              "metadata": {"name": "w", "namespace": "default",
                                           "finalizers": ["example.com/hold"]}})
    _, gone = registry.delete(CRDS, "", "widgets.example.com", {})
    assert not gone
    assert registry.get(CRDS, "", "widgets.example.com").obj["metadata"]["finalizers"] == [
        FINALIZER]
    assert controller.reconcile()  # its object waits on its own finalizer
    assert _conditions(registry, "widgets.example.com")["Terminating"] == "True"
    held = registry.get(widgets, "default", "w").obj
    assert held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    registry.update(widgets, held)
    assert not controller.reconcile()
    with pytest.raises(errors.NotFound):
        registry.get(CRDS, "", "widgets.example.com")
    assert resources.lookup("example.com", "v1", "widgets") is None
    apis = resources.must("apiregistration.k8s.io", "v1", "apiservices")
    assert registry.store.get(apis.storage_key, "", "v1.example.com") is None
